"""The tokenizer engine interface every backend implements (engines.py, tensorrt_engine.py).

Raw features in and out (the engine applies the checkpoint's normalisation), int64 codes, whole
sequences or one step of l frames with an explicit state. A backend subclass supplies the four
graph calls and the two state initialisers; the input checks here run before any graph does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from molam_ros.motion.normalization import FeatureStats

State = list[np.ndarray]


class TokenizerEngine(ABC):
    """The backend-independent tokenizer interface (raw features in and out, int64 codes)."""

    name: str = "abstract"

    def __init__(self, stats: FeatureStats, stride: int, depths: int, feature_dim: int) -> None:
        self.stats = stats
        self.stride = stride
        self.depths = depths  # codes per token step: D body depths, then R relation depths
        self.feature_dim = feature_dim

    # --- checks shared by every backend: bad input gets a clear error before any graph runs

    def _check_features(self, x: np.ndarray, *, step: bool) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[-1] != self.feature_dim:
            raise ValueError(f"expected features of shape (B, T, {self.feature_dim}), got {x.shape}")
        if x.shape[1] == 0 or x.shape[1] % self.stride or (step and x.shape[1] != self.stride):
            want = f"exactly {self.stride}" if step else f"a positive multiple of {self.stride}"
            raise ValueError(f"expected {want} frames, got {x.shape[1]}")
        if not np.all(np.isfinite(x)):
            raise ValueError("features contain NaN or infinite values")
        return x

    def _check_codes(self, codes: np.ndarray, *, step: bool) -> np.ndarray:
        c = np.asarray(codes)
        if c.ndim != 3 or c.shape[-1] != self.depths or c.shape[1] == 0 or (step and c.shape[1] != 1):
            want = "(B, 1, D)" if step else "(B, N, D)"
            raise ValueError(f"expected codes of shape {want} with D={self.depths}, got {c.shape}")
        if not np.issubdtype(c.dtype, np.integer):
            raise ValueError(f"codes must be integers, got {c.dtype}")
        return c.astype(np.int64)

    def _normalize(self, x: np.ndarray) -> np.ndarray:
        return self.stats.normalize(x).astype(np.float32)

    def _denormalize(self, x: np.ndarray) -> np.ndarray:
        return self.stats.denormalize(np.asarray(x, dtype=np.float32)).astype(np.float32)

    # --- public API

    def encode(self, features: np.ndarray) -> np.ndarray:
        """(B, T, 262) raw features, T a multiple of l -> (B, T/l, D) int64 codes."""
        return self._encode(self._normalize(self._check_features(features, step=False)))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(B, N, D) codes -> (B, N l, 262) raw features."""
        return self._denormalize(self._decode(self._check_codes(codes, step=False)))

    def encode_step(self, frames: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """l new frames (B, l, 262) -> the step's codes (B, 1, D) and the new state."""
        return self._encode_step(self._normalize(self._check_features(frames, step=True)), state)

    def decode_step(self, codes: np.ndarray, state: State) -> tuple[np.ndarray, State]:
        """One step's codes (B, 1, D) -> l raw frames (B, l, 262) and the new state."""
        frames, state = self._decode_step(self._check_codes(codes, step=True), state)
        return self._denormalize(frames), state

    @abstractmethod
    def init_encoder_state(self, batch: int = 1) -> State: ...

    @abstractmethod
    def init_decoder_state(self, batch: int = 1) -> State: ...

    @abstractmethod
    def _encode(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _decode(self, codes: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _encode_step(self, x: np.ndarray, state: State) -> tuple[np.ndarray, State]: ...

    @abstractmethod
    def _decode_step(self, codes: np.ndarray, state: State) -> tuple[np.ndarray, State]: ...


def state_zeros(shapes: list[list[int]], batch: int) -> State:
    """Zero convolution states of the given per-row shapes for `batch` rows."""
    return [np.zeros((batch, *shape), dtype=np.float32) for shape in shapes]


def config_depths(config: dict) -> int:
    """Codes per token step of an exported tokenizer's config (D + R; exports before relation
    codes have no `relation_quantizers`)."""
    return int(config["num_quantizers"]) + int(config.get("relation_quantizers", 0))
