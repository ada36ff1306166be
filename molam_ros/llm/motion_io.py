"""Motion files in and out of the motion-language model: positions <-> RQ-VAE codes.

A motion file is an `.npz` with `positions` (P, T, 22, 3) float, metres, Y up, 30 fps (the layout of
a molam dataset's `motions/<id>.npz`; P is 1 or 2), optionally `fps` (resampled to 30 when it
differs). `molam generate` reads such files, or a clip of a dataset by `DATA_DIR:CLIP_ID`, and
writes the same layout back, plus the codes (`codes.npz`, (P, L, D)).

Two people are tokenized in the tokenizer's layout (docs/representation.md, motion/layout.py: by
default each person relative to themselves and their partner); generated motion comes back in
person a's first-frame canonical frame, or in the world frame of the input motion when there was one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from molam_ros.motion.canonical import CanonicalTransform
from molam_ros.motion.layout import layout_of, pair_from_features, pair_to_features
from molam_ros.motion.skeleton import NUM_JOINTS


class MotionFileError(ValueError):
    """A motion file that cannot be used, with the file and the reason."""


def load_positions(spec: str | Path) -> np.ndarray:
    """(P, T, 22, 3) float32 positions at 30 fps from a motion .npz or `DATA_DIR:CLIP_ID`."""
    spec = str(spec)
    if ":" in spec and not Path(spec).exists():
        from molam_ros.data.dataset import MotionDataset

        root, clip_id = spec.rsplit(":", 1)
        return np.asarray(MotionDataset(root).load(clip_id).positions, dtype=np.float32)
    path = Path(spec)
    if not path.is_file():
        raise MotionFileError(f"{path}: no such motion file (a .npz with 'positions', or DATA_DIR:CLIP_ID)")
    try:
        with np.load(path) as z:
            if "positions" not in z:
                raise MotionFileError(f"{path}: no 'positions' array (found {sorted(z.files)})")
            pos = np.asarray(z["positions"], dtype=np.float32)
            fps = float(z["fps"]) if "fps" in z else 30.0
    except (OSError, ValueError) as e:
        if isinstance(e, MotionFileError):
            raise
        raise MotionFileError(f"{path}: not a readable .npz ({e})") from e
    if pos.ndim == 3:
        pos = pos[None]
    if pos.ndim != 4 or pos.shape[0] not in (1, 2) or pos.shape[2:] != (NUM_JOINTS, 3):
        raise MotionFileError(
            f"{path}: positions must be (P, T, {NUM_JOINTS}, 3) with P = 1 or 2, got {pos.shape}"
        )
    if not np.all(np.isfinite(pos)):
        raise MotionFileError(f"{path}: positions contain NaN or infinite values")
    if fps != 30.0:
        from molam_ros.motion.resample import resample_positions

        pos = resample_positions(pos, fps, 30.0, axis=1).astype(np.float32)
    return pos


def save_positions(path: str | Path, positions: np.ndarray, **extra: Any) -> Path:
    """Write a motion file (`positions`, fps 30, and any extra arrays)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        path, positions=np.asarray(positions, dtype=np.float32), fps=np.float32(30.0), **extra
    )
    return path


class MotionCodec:
    """Positions <-> codes with a tokenizer engine (molam_ros.runtime.engines)."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.stride = engine.stride

    @classmethod
    def from_checkpoint(cls, checkpoint: str | Path) -> MotionCodec:
        from molam_ros.tokenizer.engines import TorchEngine

        return cls(TorchEngine(checkpoint))

    def encode(self, positions: np.ndarray) -> tuple[np.ndarray, CanonicalTransform]:
        """(P, T, 22, 3) -> ((P, T // l, D) codes, the canonical transform of the pair)."""
        features, transform = pair_to_features(positions, layout=layout_of(int(self.engine.feature_dim)))
        T = features.shape[1] // self.stride * self.stride
        if T == 0:
            raise MotionFileError(
                f"the motion has {features.shape[1]} frames, fewer than one step ({self.stride})"
            )
        return self.engine.encode(features[:, :T].astype(np.float32)), transform

    def decode(self, codes: np.ndarray, transform: CanonicalTransform | None = None) -> np.ndarray:
        """(P, L, D) codes -> (P, L l, 22, 3) positions (world frame with `transform`, else canonical)."""
        features = self.engine.decode(np.asarray(codes, dtype=np.int64))
        return pair_from_features(features, transform)
