"""The motion-language model as one object: backbone (+ LoRA), tokenizer, motion vocabulary, depth head.

    mlm = MotionLM.create(backbone_dir, vocab, DepthHeadConfig(), lora=LoraSettings())  # to train
    mlm = load_motion_lm(checkpoint_dir)                                               # to generate
    out = mlm.loss(input_ids, labels, attention_mask)   # {"loss", "lm_loss", "depth_loss"}

The training loss is the usual next-token loss over the supervised tokens (every task, text and
motion) plus the depth head's loss: at every supervised person-step of a motion span, the hidden
state at the person marker must predict that person's D codes (depth_head.py explains why).

The backbone is called through its decoder (`get_decoder()`, the transformer without the LM head)
so that one pass gives the hidden states for the depth head and, through the LM head, the logits,
with LoRA applied either way (peft injects it into the decoder's own modules).

A checkpoint directory (`MotionLM.save`) holds:

    molam_llm.json           what rebuilds it: stage, the base backbone, the tokenizer checkpoint,
                             the depth head config, the motion vocabulary, training metadata
    adapter/                 the LoRA adapter (lora.save_adapter), when the model is adapted
    merged/                  a plain transformers directory with the adapter folded in (stage 2's
                             output, the base of stage 3), when merged; `adapter/` stays beside it
                             so that the run can be resumed
    depth_head.safetensors   the depth head
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from molam_ros.llm.backbone import load_backbone
from molam_ros.llm.depth_head import DepthHead, DepthHeadConfig
from molam_ros.llm.lora import LoraSettings, load_for_inference, merge, save_adapter, wrap
from molam_ros.llm.motion_io import MotionCodec
from molam_ros.llm.prompts import IGNORE_INDEX
from molam_ros.llm.vocab import MotionVocab

CHECKPOINT_FILE = "molam_llm.json"
HEAD_FILE = "depth_head.safetensors"
_FORMAT = 1


class CheckpointError(ValueError):
    """A motion-language-model checkpoint that is missing or does not fit together."""


def depth_targets(
    input_ids: torch.Tensor, labels: torch.Tensor, vocab: MotionVocab
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(batch index, position, codes (N, D)) of every supervised person-step in a batch.

    A person-step is a person marker followed by D code tokens of depths 0..D-1 whose labels are
    all supervised; the marker's position is where the depth head reads the hidden state. Person
    a's steps of a reaction are inputs (unsupervised) and so give no target, as in the LM loss.
    """
    if not vocab.step_markers:
        raise ValueError("the depth head needs the step-marker layout (MotionVocab(step_markers=True))")
    ids = vocab.require_ids()
    K, D = vocab.codebook_size, vocab.depth
    B, T = input_ids.shape
    if T <= D:
        empty = torch.zeros(0, dtype=torch.long)
        return empty, empty, torch.zeros(0, D, dtype=torch.long)
    marker = (input_ids == ids.person_a) | (input_ids == ids.person_b)
    marker = marker[:, : T - D]
    ok = marker.clone()
    codes = []
    for d in range(D):
        nxt = input_ids[:, 1 + d : T - D + 1 + d]
        code = nxt - ids.code_base - d * K
        ok &= (code >= 0) & (code < K) & (labels[:, 1 + d : T - D + 1 + d] != IGNORE_INDEX)
        codes.append(code)
    b, t = ok.nonzero(as_tuple=True)
    stacked = torch.stack(codes, dim=-1)[b, t]  # (N, D)
    return b, t, stacked


def _codes_at(
    input_ids: torch.Tensor, b: torch.Tensor, start: torch.Tensor, vocab: MotionVocab
) -> torch.Tensor:
    """(N, D) codes of the tokens start..start+D-1 of rows b, K where a token is not the code of
    its depth (or lies outside the sequence)."""
    ids = vocab.require_ids()
    K, D = vocab.codebook_size, vocab.depth
    T = input_ids.shape[1]
    pos = start[:, None] + torch.arange(D, device=start.device)  # (N, D)
    inside = (pos >= 0) & (pos < T)
    tok = input_ids[b[:, None], pos.clamp(0, T - 1)]
    code = tok - ids.code_base - torch.arange(D, device=start.device) * K
    ok = inside & (code >= 0) & (code < K)
    return torch.where(ok.all(dim=1, keepdim=True), code, torch.full_like(code, K))


def depth_context(
    input_ids: torch.Tensor, b: torch.Tensor, t: torch.Tensor, vocab: MotionVocab
) -> torch.Tensor:
    """(N, 2, D) context codes of the person-steps whose markers are at (b, t) (depth_head.py):
    slot 0 the D codes right before the marker, slot 1 the same person's previous step (the nearest
    earlier marker of the same person, one or two person-steps back); K where missing. The
    generation paths build the same from the codes they keep (streaming.py, generate.py)."""
    D = vocab.depth
    T = input_ids.shape[1]
    before = _codes_at(input_ids, b, t - D, vocab)
    marker = input_ids[b, t]
    previous = torch.full_like(before, vocab.codebook_size)
    for back in (2, 1):  # two person-steps back (two people), overridden by one back (one person)
        m = t - back * (D + 1)
        same = (m >= 0) & (input_ids[b, m.clamp(0, T - 1)] == marker)
        codes = _codes_at(input_ids, b, m + 1, vocab)
        previous = torch.where(same[:, None], codes, previous)
    return torch.stack([before, previous], dim=1)


class MotionLM(torch.nn.Module):
    """Backbone + depth head + the vocabulary and tokenizer they were trained with."""

    def __init__(self, lm: Any, tokenizer: Any, vocab: MotionVocab, head: DepthHead) -> None:
        super().__init__()
        self.lm = lm
        self.head = head
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.info: dict[str, Any] = {}

    # --- construction

    @classmethod
    def create(
        cls,
        backbone_dir: str | Path,
        vocab: MotionVocab,
        head_config: DepthHeadConfig | None = None,
        *,
        lora: LoraSettings | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> MotionLM:
        """A fresh model to train: the backbone with the motion tokens added, LoRA-wrapped if `lora`."""
        model, tokenizer = load_backbone(backbone_dir, device=device)
        vocab.add_to(tokenizer, model, seed=seed)
        if lora is not None:
            model = wrap(model, vocab, lora)
        torch.manual_seed(seed)
        head = DepthHead(
            model.config.hidden_size, vocab.codebook_size, vocab.depth, head_config or DepthHeadConfig()
        )
        return cls(model, tokenizer, vocab, head.to(device))

    # --- the backbone's parts

    def base_model(self) -> Any:
        """The transformers *ForCausalLM under a peft wrapper (or the model itself)."""
        return self.lm.get_base_model() if hasattr(self.lm, "get_base_model") else self.lm

    @property
    def decoder(self) -> Any:
        return self.base_model().get_decoder()

    @property
    def lm_head(self) -> Any:
        return self.base_model().get_output_embeddings()

    @property
    def device(self) -> torch.device:
        return self.head.out_b.device

    @property
    def eos_token_id(self) -> int:
        return int(self.tokenizer.eos_token_id)

    # --- training

    def loss(
        self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Next-token loss over supervised tokens + depth_weight x the depth head's loss."""
        hidden = self.decoder(
            input_ids=input_ids, attention_mask=attention_mask, use_cache=False
        ).last_hidden_state
        shift = labels[:, 1:]
        keep = shift != IGNORE_INDEX
        # Logits only where there is a label: the full (B, T, V) tensor is most of a step's memory.
        logits = self.lm_head(hidden[:, :-1][keep])
        lm_loss = torch.nn.functional.cross_entropy(logits.float(), shift[keep])
        b, t, codes = depth_targets(input_ids, labels, self.vocab)
        if codes.shape[0]:
            context = depth_context(input_ids, b, t, self.vocab) if self.head.config.context else None
            depth_loss = self.head.loss(hidden[b, t], codes.to(hidden.device), context)
        else:
            depth_loss = hidden.new_zeros(())
        loss = lm_loss + self.head.config.loss_weight * depth_loss
        return {"loss": loss, "lm_loss": lm_loss.detach(), "depth_loss": depth_loss.detach()}

    def forward(
        self, input_ids: torch.Tensor, labels: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """`loss()`: the training step goes through forward so that DDP (accelerate) syncs gradients."""
        return self.loss(input_ids, labels, attention_mask)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # --- persistence

    def save(
        self,
        directory: str | Path,
        *,
        base: str | Path,
        stage: int,
        lora: LoraSettings | None = None,
        merged: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> Path:
        """Write the checkpoint layout of the module docstring; `merged` folds the adapter in.

        `base` is the backbone directory this model was built on (the adapter applies to it).
        Merging replaces `self.lm` with the plain merged model.
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        adapted = hasattr(self.lm, "get_base_model")
        if adapted:  # kept next to a merged copy too: it is what resuming the run continues from
            save_adapter(self.lm, out / "adapter", vocab=self.vocab, tokenizer=self.tokenizer, settings=lora)
        if merged:
            if adapted:
                self.lm = merge(self.lm, out / "merged", tokenizer=self.tokenizer, vocab=self.vocab)
            else:
                self.lm.save_pretrained(str(out / "merged"), safe_serialization=True)
                self.tokenizer.save_pretrained(str(out / "merged"))
                self.vocab.save(out / "merged")
        save_file(
            {k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
            str(out / HEAD_FILE),
        )
        record = {
            "format": _FORMAT,
            "stage": stage,
            "base": str(Path(base).resolve()),
            "weights": "merged" if merged else ("adapter" if adapted else "base"),
            "depth_head": self.head.config.to_dict(),
            "vocab": self.vocab.to_dict(),
            **self.info,
            **(extra or {}),
        }
        tmp = out / (CHECKPOINT_FILE + ".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(out / CHECKPOINT_FILE)  # last: its presence means the checkpoint is complete
        return out


def read_checkpoint_record(directory: str | Path) -> dict[str, Any]:
    """The `molam_llm.json` of a checkpoint, with a clear error when it is not one."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.is_file():
        raise CheckpointError(
            f"{directory} is not a molam LLM checkpoint (no {CHECKPOINT_FILE}); "
            "train one with `molam llm train`"
        )
    record = json.loads(path.read_text())
    if record.get("format") != _FORMAT:
        raise CheckpointError(f"{path}: format {record.get('format')!r}, expected {_FORMAT}")
    return record


def load_motion_lm(
    directory: str | Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    trainable: bool = False,
) -> MotionLM:
    """A checkpoint of `MotionLM.save`, ready to generate (eval mode) or, with `trainable`, to resume."""
    directory = Path(directory)
    record = read_checkpoint_record(directory)
    weights = record["weights"]
    if trainable and (directory / "adapter").is_dir():
        weights = "adapter"  # resuming: continue the adapter, not its merged copy
    if weights == "merged":
        lm, tokenizer = load_backbone(directory / "merged", dtype=dtype, device=device)
        vocab = MotionVocab.load(directory / "merged", tokenizer)
    elif weights == "adapter":
        base = Path(record["base"])
        if not base.is_dir():
            raise CheckpointError(f"{directory}: its base backbone {base} is gone; the adapter applies to it")
        lm, tokenizer, vocab = load_for_inference(
            base, directory / "adapter", dtype=dtype, device=device, trainable=trainable
        )
    else:
        raise CheckpointError(f"{directory}: unknown weights kind {weights!r}")
    head = DepthHead(
        lm.config.hidden_size, vocab.codebook_size, vocab.depth, DepthHeadConfig(**record["depth_head"])
    )
    head_file = directory / HEAD_FILE
    if not head_file.is_file():
        raise CheckpointError(f"{directory}: {HEAD_FILE} is missing")
    head.load_state_dict(load_file(str(head_file)))
    mlm = MotionLM(lm, tokenizer, vocab, head.to(device=device, dtype=dtype))
    mlm.info = {k: v for k, v in record.items() if k not in {"format", "weights", "depth_head", "vocab"}}
    if not trainable:
        mlm.eval()
    return mlm


def load_with_codec(
    directory: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[MotionLM, MotionCodec]:
    """A checkpoint ready to generate and the tokenizer that turns its codes into motion and back.

    The tokenizer is the one the checkpoint was trained with (its record's `tokenizer_checkpoint`);
    a `CheckpointError` names it when it is gone, or when its weights or layout are not those the
    checkpoint recorded at training.
    """
    mlm = load_motion_lm(directory, device=device)
    tok = mlm.info.get("tokenizer_checkpoint")
    if not tok or not Path(tok).is_dir():
        raise CheckpointError(f"{directory}: its tokenizer checkpoint {tok!r} is missing")
    # Codes of another tokenizer (new weights, another layout) would decode to nonsense.
    from molam_ros.tokenizer.rqvae import CheckpointError as TokenizerCheckpointError
    from molam_ros.tokenizer.rqvae import check_pairing

    try:
        check_pairing(mlm.info.get("tokenizer"), tok, f"the LLM {directory}")
    except TokenizerCheckpointError as e:
        raise CheckpointError(str(e)) from e
    return mlm, MotionCodec.from_checkpoint(tok)
