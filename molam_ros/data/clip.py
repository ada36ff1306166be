"""The one in-memory form every loader and the generator produce: a clip of one or two people."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molam_ros.motion.skeleton import NUM_JOINTS

TARGET_FPS = 30.0


@dataclass
class MotionClip:
    """A motion of one or more people on the SMPL 22-joint skeleton.

    positions: (P, T, 22, 3) float32 world joint positions in metres, Y up, floor at y=0 where the
        source lets us know it. P is 1 for single-person data, 2 for interactions.
    fps: frame rate of `positions` (loaders resample to 30).
    texts: captions; each names the interaction and, where known, the roles and style.
    meta: free-form facts about the clip (source, interaction type, style, index of the person
        who acts first as `actor`, solo/interaction segments as frame ranges, ...).
    local_quats: optional (P, T, 22, 4) local joint rotations (w, x, y, z) where the source has
        them; otherwise they are derived by inverse kinematics.
    """

    name: str
    positions: np.ndarray
    fps: float = TARGET_FPS
    texts: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    local_quats: np.ndarray | None = None

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.float32)
        if pos.ndim == 3:
            pos = pos[None]
        if pos.ndim != 4 or pos.shape[-2:] != (NUM_JOINTS, 3):
            raise ValueError(
                f"clip {self.name!r}: positions must be (P, T, {NUM_JOINTS}, 3), "
                f"got {np.shape(self.positions)}"
            )
        if pos.shape[1] == 0:
            raise ValueError(f"clip {self.name!r} has no frames")
        if not np.all(np.isfinite(pos)):
            raise ValueError(f"clip {self.name!r}: positions contain NaN or infinite values")
        self.positions = pos
        if self.local_quats is not None:
            q = np.asarray(self.local_quats, dtype=np.float32)
            if q.ndim == 3:
                q = q[None]
            if q.shape != pos.shape[:3] + (4,):
                raise ValueError(f"clip {self.name!r}: local_quats shape {q.shape} does not match positions")
            self.local_quats = q

    @property
    def num_people(self) -> int:
        return int(self.positions.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.positions.shape[1])

    @property
    def duration(self) -> float:
        """Seconds."""
        return self.num_frames / self.fps
