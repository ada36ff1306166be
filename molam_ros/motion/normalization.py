"""Per-dimension mean/std of motion features (any layout, `layout.py`), for the tokenizer's input and output.

Statistics are accumulated batch by batch (Chan et al.'s parallel form of Welford's update, in
float64), so a dataset larger than memory can be streamed through once and the result does not
lose precision to the cancellation that a naive sum/sum-of-squares suffers on position dims
with large means. The stats are saved next to every tokenizer checkpoint: a model is only valid
with the stats it was trained with.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molam_ros.motion.layout import layout_of

# Floors on the std, so a constant dim (a joint that never moved, a contact that never fired)
# maps to a finite value instead of dividing by ~0. Continuous dims: 1 mm / 1 mm per frame /
# 1e-3 of a 6D entry, well below any real variation. Binary contacts: 0.1, the std of a contact
# that fires 1% of the time, so an unseen contact normalises to at most ~10 rather than 1000.
STD_FLOOR = 1e-3
CONTACT_STD_FLOOR = 0.1
# Rotation entries: 0.05. A joint that turns about one axis only in the training data (a knee of
# the procedural generator) has 6D entries with std ~1e-3; real motion that twists it a little
# would normalise to hundreds of std and wreck the tokenizer's input. 0.05 of a unit 6D entry
# (about 3 degrees) bounds that to ~20 std while leaving every really varying entry untouched.
ROT_STD_FLOOR = 0.05


@dataclass
class FeatureStats:
    """mean (F,) and std (F,) float32 over `count` frames; F names the layout (262 or 268)."""

    mean: np.ndarray
    std: np.ndarray
    count: int

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float32)
        self.std = np.asarray(self.std, dtype=np.float32)
        for name, arr in (("mean", self.mean), ("std", self.std)):
            if arr.shape != self.mean.shape or arr.ndim != 1:
                raise ValueError(f"FeatureStats.{name} must have shape {self.mean.shape}, got {arr.shape}")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"FeatureStats.{name} contains NaN or infinite values")
        layout_of(self.mean.shape[0])  # a width no layout has is an error here, not at first use
        if np.any(self.std <= 0):
            raise ValueError("FeatureStats.std must be positive")
        self.count = int(self.count)

    @classmethod
    def from_features(
        cls,
        batches: Iterable[np.ndarray],
        *,
        std_floor: float = STD_FLOOR,
        contact_std_floor: float = CONTACT_STD_FLOOR,
        rot_std_floor: float = ROT_STD_FLOOR,
    ) -> FeatureStats:
        """Stats over every frame of every (..., F) array in `batches` (consumed once, one F for all)."""
        count = 0
        dim = 0
        mean = m2 = np.zeros(0)  # m2: sum of squared deviations from the mean
        for batch in batches:
            x = np.asarray(batch, dtype=np.float64)
            if not dim:
                dim = layout_of(x.shape[-1]).dim
                mean, m2 = np.zeros(dim), np.zeros(dim)
            if x.shape[-1:] != (dim,):
                raise ValueError(f"expected (..., {dim}) features, got {x.shape}")
            x = x.reshape(-1, dim)
            if x.shape[0] == 0:
                continue
            if not np.all(np.isfinite(x)):
                raise ValueError("features contain NaN or infinite values")
            n_b = x.shape[0]
            mean_b = x.mean(axis=0)
            m2_b = ((x - mean_b) ** 2).sum(axis=0)
            total = count + n_b
            delta = mean_b - mean
            mean = mean + delta * (n_b / total)
            m2 = m2 + m2_b + delta**2 * (count * n_b / total)
            count = total
        if count == 0:
            raise ValueError("no frames to compute feature statistics from")
        std = np.sqrt(m2 / count)
        layout = layout_of(dim)
        floor = np.full(dim, std_floor)
        floor[layout.rotations] = rot_std_floor
        for binary in (layout.contacts, *layout.flags):
            floor[binary] = contact_std_floor
        return cls(mean=mean, std=np.maximum(std, floor), count=count)

    def normalize(self, x: Any) -> Any:
        """(x - mean) / std over the last dim; numpy arrays or torch tensors (same device)."""
        x, mean, std = self._like(x)
        return (x - mean) / std

    def denormalize(self, x: Any) -> Any:
        """x * std + mean, the inverse of `normalize`."""
        x, mean, std = self._like(x)
        return x * std + mean

    def _like(self, x: Any) -> tuple[Any, Any, Any]:
        """x (numpy, or a torch tensor left as is) with mean and std in its dtype and device."""
        if not hasattr(x, "new_tensor"):  # torch tensors are detected without importing torch
            x = np.asarray(x)
            if not np.issubdtype(x.dtype, np.floating):
                x = x.astype(np.float64)
        if x.ndim < 1 or x.shape[-1] != self.dim:
            raise ValueError(f"expected (..., {self.dim}) features, got {tuple(x.shape)}")
        if hasattr(x, "new_tensor"):
            return x, x.new_tensor(self.mean), x.new_tensor(self.std)
        return x, self.mean.astype(x.dtype), self.std.astype(x.dtype)

    def save(self, path: str | Path) -> None:
        """Write mean, std, count and feature_dim to an .npz file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            np.savez(fh, mean=self.mean, std=self.std, count=np.int64(self.count), feature_dim=self.dim)

    @property
    def dim(self) -> int:
        """F, the width of the features (262 intergen, 268 ego)."""
        return int(self.mean.shape[0])

    @classmethod
    def load(cls, path: str | Path, dim: int | None = None) -> FeatureStats:
        """Stats from `save`; `dim` (when given) is the width the caller needs, checked here."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"feature statistics file not found: {path}")
        with np.load(path) as data:
            missing = {"mean", "std", "count", "feature_dim"} - set(data.files)
            if missing:
                raise ValueError(f"{path}: not a feature statistics file, missing {sorted(missing)}")
            found = int(data["feature_dim"])
            if data["mean"].shape != (found,) or data["std"].shape != (found,):
                raise ValueError(f"{path}: mean/std shape {data['mean'].shape} is not ({found},)")
            if dim is not None and found != dim:
                raise ValueError(
                    f"{path}: statistics are for {int(data['feature_dim'])}-d features, expected {dim}"
                )
            return cls(mean=data["mean"], std=data["std"], count=int(data["count"]))
