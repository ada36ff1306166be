"""LoRA on the backbone with peft: settings, wrapping, adapter checkpoints, loading and merging.

The backbone's own weights stay frozen; peft trains low-rank updates of the attention and MLP
projections plus, through `trainable_token_indices`, only the embedding rows of the motion tokens
(the rest of the vocabulary is untouched). With tied input/output embeddings (SmolLM2, the tiny
backbone) peft wraps `lm_head` with the same token delta, so a motion token's output row moves with
its input row.

An adapter directory (`save_adapter`) holds:

    adapter_config.json, adapter_model.safetensors   peft's adapter: LoRA matrices + token deltas
    motion_rows.safetensors                          the base rows of the motion tokens (see below)
    motion_vocab.json, tokenizer files               the vocabulary the rows belong to

peft's own answer to a resized vocabulary is to save the whole embedding matrix into the adapter
(113 MB for SmolLM2, for a few thousand new rows). Instead we save the base rows of the new tokens
only, and `load_for_inference` resizes a fresh base the same way and writes those rows back before
loading the adapter: the same numbers, a fraction of the size, and no dependence on the resize's
random initialisation being repeatable.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from molam_ros.llm.backbone import load_backbone
from molam_ros.llm.vocab import MotionVocab

MOTION_ROWS_FILE = "motion_rows.safetensors"
LORA_SETTINGS_FILE = "lora_settings.json"

# LLaMA-style names (LLaMA, SmolLM, Qwen, Mistral, Gemma): every attention projection and the gated
# MLP. Adapting the MLP as well as attention matters here: motion tokens are a new "language" whose
# statistics the feed-forward layers must learn, and QLoRA found all-linear targeting needed to
# match full fine-tuning. For another architecture, print `model.named_modules()` and pass its names.
LLAMA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@dataclass(frozen=True, kw_only=True)
class LoraSettings:
    """The LoRA adapter's shape; stored in every adapter directory (`lora_settings.json`)."""

    rank: int = 16  # r; 8-64 is the usual range, 16 keeps SmolLM2's adapter at ~4.9M parameters
    alpha: int = 32  # the update is scaled by alpha / rank; 2 x rank is the common default
    dropout: float = 0.05  # on the LoRA input; small data (the generator) overfits without it
    target_modules: tuple[str, ...] = LLAMA_TARGETS
    train_motion_rows: bool = True  # the motion tokens' embedding rows (peft trainable_token_indices)
    extra: dict[str, Any] = field(default_factory=dict)  # more LoraConfig keywords, passed as they are

    def __post_init__(self) -> None:
        if self.rank < 1 or self.alpha <= 0 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("LoraSettings needs rank >= 1, alpha > 0 and 0 <= dropout < 1")
        if not self.target_modules:
            raise ValueError("LoraSettings.target_modules is empty; name the Linear layers to adapt")

    def to_peft(self, vocab: MotionVocab | None) -> Any:
        """The peft `LoraConfig`; `vocab` (bound) gives the motion token rows to train."""
        from peft import LoraConfig, TaskType

        tokens = vocab.trainable_token_indices() if (vocab is not None and self.train_motion_rows) else None
        return LoraConfig(
            task_type=TaskType.CAUSAL_LM,
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            trainable_token_indices=tokens,
            **self.extra,
        )


def wrap(model: Any, vocab: MotionVocab, settings: LoraSettings) -> Any:
    """`get_peft_model(model, settings.to_peft(vocab))`: base frozen, LoRA + motion rows trainable.

    `vocab` must be bound to a tokenizer whose size matches the model (`vocab.add_to(tok, model)`).
    """
    from peft import get_peft_model

    rows = model.get_input_embeddings().weight.shape[0]
    ids = vocab.trainable_token_indices()
    if max(ids) >= rows:
        raise ValueError(
            f"motion token id {max(ids)} is outside the model's {rows} embedding rows; "
            "call vocab.add_to(tokenizer, model) before wrap()"
        )
    return get_peft_model(model, settings.to_peft(vocab))


def _base_model(model: Any) -> Any:
    """The transformers model under a peft wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _motion_row_weights(model: Any, vocab: MotionVocab) -> dict[str, torch.Tensor]:
    """The base (not adapted) embedding rows of the motion tokens, input and untied output."""
    ids = torch.tensor(vocab.trainable_token_indices())
    inp = _base_model(model).get_input_embeddings()
    out = _base_model(model).get_output_embeddings()
    # Under peft these are TrainableTokensWrapper / layers holding `base_layer`; the rows we want
    # are the frozen base ones (the deltas are in the adapter file).
    w_in = _unwrap_weight(inp)
    tensors = {"ids": ids, "input": w_in[ids].detach().cpu().contiguous()}
    if out is not None:
        w_out = _unwrap_weight(out)
        if w_out.data_ptr() != w_in.data_ptr():
            tensors["output"] = w_out[ids].detach().cpu().contiguous()
    return tensors


def _unwrap_weight(module: Any) -> torch.Tensor:
    """The plain weight of an embedding or linear layer, looking through peft's wrappers."""
    while not hasattr(module, "weight") or not isinstance(module.weight, torch.Tensor):
        module = getattr(module, "token_adapter", None) or getattr(module, "base_layer", None)
        if module is None:
            raise TypeError("cannot find the base weight of an embedding layer")
    if hasattr(module, "base_layer"):
        return _unwrap_weight(module.base_layer)
    return module.weight


def save_adapter(
    model: Any,
    directory: str | Path,
    *,
    vocab: MotionVocab,
    tokenizer: Any,
    settings: LoraSettings | None = None,
) -> Path:
    """Write the adapter directory described in the module docstring; returns it."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    # save_embedding_layers=False: the base rows go to motion_rows.safetensors instead (docstring).
    model.save_pretrained(str(directory), save_embedding_layers=False)
    save_file(_motion_row_weights(model, vocab), str(directory / MOTION_ROWS_FILE))
    vocab.save(directory)
    tokenizer.save_pretrained(str(directory))
    if settings is not None:
        (directory / LORA_SETTINGS_FILE).write_text(json.dumps(asdict(settings), indent=1) + "\n")
    return directory


def prepare_base(
    backbone_dir: str | Path,
    adapter_dir: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
) -> tuple[Any, Any, MotionVocab]:
    """The base backbone resized for the adapter's vocabulary, its motion rows restored.

    Returns `(model, tokenizer, vocab)`, the tokenizer being the adapter's (with the motion tokens).
    """
    from transformers import AutoTokenizer

    adapter_dir = Path(adapter_dir)
    model, _ = load_backbone(backbone_dir, dtype=dtype, device=device)
    tokenizer = AutoTokenizer.from_pretrained(str(adapter_dir), local_files_only=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    vocab = MotionVocab.load(adapter_dir, tokenizer)
    if model.get_input_embeddings().weight.shape[0] < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    rows = load_file(str(adapter_dir / MOTION_ROWS_FILE))
    ids = rows["ids"].long()
    if ids.tolist() != vocab.trainable_token_indices():
        raise ValueError(f"{adapter_dir}: {MOTION_ROWS_FILE} rows do not match motion_vocab.json")
    with torch.no_grad():
        w_in = model.get_input_embeddings().weight
        w_in[ids.to(w_in.device)] = rows["input"].to(w_in)
        out = model.get_output_embeddings()
        if "output" in rows and out is not None and out.weight.data_ptr() != w_in.data_ptr():
            out.weight[ids.to(w_in.device)] = rows["output"].to(out.weight)
    return model, tokenizer, vocab


def load_for_inference(
    backbone_dir: str | Path,
    adapter_dir: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    device: str | torch.device = "cpu",
    trainable: bool = False,
) -> tuple[Any, Any, MotionVocab]:
    """`(peft model, tokenizer, vocab)`: the base resized as at training, then the adapter loaded.

    `trainable=True` keeps the adapter trainable (resuming a run).
    """
    from peft import PeftModel

    model, tokenizer, vocab = prepare_base(backbone_dir, adapter_dir, dtype=dtype, device=device)
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    if not trainable:
        peft_model.eval()
    return peft_model, tokenizer, vocab


def merge(
    model: Any,
    out_dir: str | Path | None = None,
    *,
    tokenizer: Any | None = None,
    vocab: MotionVocab | None = None,
) -> Any:
    """Fold the adapter into the weights (`merge_and_unload`): a plain transformers model, saved to
    `out_dir` (with tokenizer and vocab) when given, loadable by `load_backbone` like any backbone.

    Merging loses the adapter's separability (no switching or stacking adapters, no un-merging), which
    is what stage 2 wants: stage 3 starts a fresh adapter on the merged model.
    """
    plain = model.merge_and_unload()
    if out_dir is not None:
        out = Path(out_dir)
        plain.save_pretrained(str(out), safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(str(out))
        if vocab is not None:
            vocab.save(out)
    return plain
