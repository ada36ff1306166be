"""Where molam keeps what it generates: datasets, checkpoints, exports, converted backbones.

One cache for everything, outside the repository (generated checkpoints never go into git):
`$MOLAM_CACHE` if set, else `~/.cache/molam`. The Makefile uses the same default.
"""

from __future__ import annotations

import os
from pathlib import Path


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
