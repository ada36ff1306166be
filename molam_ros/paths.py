"""Where molam keeps what it generates: datasets, checkpoints, exports, converted backbones.

One cache for everything, outside the repository (generated checkpoints never go into git):
`$MOLAM_CACHE` if set, else `~/.cache/molam`. The Makefile uses the same default.
"""

from __future__ import annotations

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


def default_tokenizer_dir(cache_dir: str | Path | None = None) -> Path:
    """The default tokenizer checkpoint (`make tokenizer` trains it there)."""
    return cache_root(cache_dir) / "tokenizer" / "small"


def default_export_dir(cache_dir: str | Path | None = None) -> Path:
    """The ONNX/TensorRT export of the default tokenizer (`make bench` writes it)."""
    return cache_root(cache_dir) / "export" / "small"


def default_llm_dir(cache_dir: str | Path | None = None) -> Path:
    """The default LLM checkpoint: stage 3 (`make llm`) when it finished, else stage 2."""
    root = cache_root(cache_dir) / "llm"
    return root / "stage3" if (root / "stage3" / "molam_llm.json").is_file() else root / "stage2"


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
