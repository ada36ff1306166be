"""Two-person canonicalisation: both people in person a's first-frame frame.

InterGen's representation is non-canonical per person: each person keeps global positions, but
the pair is expressed in person a's canonical frame at frame 0 (a's root above the origin, a
facing +Z, the floor at y = 0). The relative placement of b to a, which is what an interaction is
about, is therefore kept, and the pair is invariant to where in the world and which way it was
recorded. Up is +Y; a person's left is +X when facing +Z (see `skeleton.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from molam_ros.motion.features import (
    DEFAULT_CONTACT,
    ContactConfig,
    features_to_positions,
    positions_to_features,
)
from molam_ros.motion.skeleton import FACING_JOINTS, NUM_JOINTS

_EPS = 1e-9


def _check_people(positions: np.ndarray) -> np.ndarray:
    """(P, T, 22, 3) float64, or a (T, 22, 3) single person promoted to P = 1."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim == 3:
        pos = pos[None]
    if pos.ndim != 4 or pos.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(
            f"expected (P, T, {NUM_JOINTS}, 3) or (T, {NUM_JOINTS}, 3) positions, got {pos.shape}"
        )
    if pos.shape[0] == 0 or pos.shape[1] == 0:
        raise ValueError(f"positions have no people or no frames: {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError("joint positions contain NaN or infinite values")
    return pos


def _yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about +Y by `yaw` radians (takes +Z towards +X), (3, 3)."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def facing_direction(positions: np.ndarray) -> np.ndarray:
    """Unit forward direction in the XZ plane, (..., 22, 3) -> (..., 3); zero when undefined.

    across = (right_hip - left_hip) + (right_shoulder - left_shoulder) points to the person's
    right; forward = up x across. Hips and shoulders together are robust to a twisted torso.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected (..., {NUM_JOINTS}, 3) joint positions, got {pos.shape}")
    across = sum(pos[..., right, :] - pos[..., left, :] for left, right in FACING_JOINTS)
    forward = np.cross(np.array([0.0, 1.0, 0.0]), across)  # y component is 0
    norm = np.linalg.norm(forward, axis=-1, keepdims=True)
    return np.where(norm > _EPS, forward / np.maximum(norm, _EPS), 0.0)


def facing_angle(positions: np.ndarray) -> np.ndarray:
    """Heading (radians, (...,)) of each frame: 0 facing +Z, +pi/2 facing +X; 0 when undefined."""
    forward = facing_direction(positions)
    return np.arctan2(forward[..., 0], forward[..., 2])


@dataclass(frozen=True, eq=False)
class CanonicalTransform:
    """World -> canonical map: subtract `translation`, then rotate about +Y by `yaw` radians.

    translation is (root x, floor y, root z) of person a at frame 0, metres; yaw = -heading of
    person a at frame 0. Kept with a generated reaction so it can be put back into the world.
    """

    yaw: float
    translation: np.ndarray  # (3,)

    def __post_init__(self) -> None:
        t = np.array(self.translation, dtype=np.float64).reshape(-1)
        if t.shape != (3,) or not np.all(np.isfinite(t)) or not np.isfinite(self.yaw):
            raise ValueError(f"invalid CanonicalTransform(yaw={self.yaw}, translation={self.translation})")
        t.flags.writeable = False
        object.__setattr__(self, "yaw", float(self.yaw))
        object.__setattr__(self, "translation", t)

    @property
    def matrix(self) -> np.ndarray:
        """The rotation part, (3, 3)."""
        return _yaw_matrix(self.yaw)

    def apply(self, points: np.ndarray) -> np.ndarray:
        """World -> canonical, points (..., 3) -> (..., 3) float64."""
        p = np.asarray(points, dtype=np.float64)
        return (p - self.translation) @ self.matrix.T

    def invert(self, points: np.ndarray) -> np.ndarray:
        """Canonical -> world, points (..., 3) -> (..., 3) float64."""
        p = np.asarray(points, dtype=np.float64)
        return p @ self.matrix + self.translation

    def to_dict(self) -> dict[str, Any]:
        return {"yaw": self.yaw, "translation": [float(x) for x in self.translation]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CanonicalTransform:
        try:
            return cls(yaw=float(d["yaw"]), translation=np.asarray(d["translation"], dtype=np.float64))
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a CanonicalTransform dict: {d!r}") from e


def canonical_transform(positions: np.ndarray, floor_height: float | None = None) -> CanonicalTransform:
    """The transform that puts person a at the origin facing +Z at frame 0, floor at y = 0.

    Args:
        positions: (T, 22, 3) person a alone, or (P, T, 22, 3) with person a first.
        floor_height: y of the floor in world metres; default the lowest joint height over the
            whole clip and all given people. Streaming passes a fixed value, since the clip's
            minimum is not known in advance.
    """
    pos = _check_people(positions)
    if floor_height is None:
        floor_height = float(pos[..., 1].min())
    if not np.isfinite(floor_height):
        raise ValueError(f"floor_height must be finite, got {floor_height}")
    root = pos[0, 0, 0]
    return CanonicalTransform(
        yaw=-float(facing_angle(pos[0, 0])),
        translation=np.array([root[0], floor_height, root[2]]),
    )


def canonicalize(
    positions: np.ndarray, floor_height: float | None = None
) -> tuple[np.ndarray, CanonicalTransform]:
    """Everyone's positions (P, T, 22, 3) in person a's canonical frame, and the transform."""
    pos = _check_people(positions)
    transform = canonical_transform(pos, floor_height)
    return transform.apply(pos), transform


def pair_to_features(
    positions: np.ndarray,
    floor_height: float | None = None,
    *,
    local_quats: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    contact: ContactConfig = DEFAULT_CONTACT,
) -> tuple[np.ndarray, CanonicalTransform]:
    """262-number frames (P, T, 262) float32 of all people in person a's canonical frame.

    local_quats (P, T, 22, 4), where the source has them, are used as they are: the canonical
    map only turns the root, whose rotation the features do not store. Otherwise IK runs on the
    canonical positions, per person with that person's own bone lengths: `lengths` (P, 22) or
    (22,), default each person's clip median. With a fixed `floor_height` and fixed `lengths` the
    features are causal (a prefix gives the prefix of the features), as streaming needs.
    """
    canon, transform = canonicalize(positions, floor_height)
    if local_quats is not None:
        local_quats = np.asarray(local_quats, dtype=np.float64)
        if local_quats.shape != canon.shape[:-1] + (4,):
            raise ValueError(f"local_quats shape {local_quats.shape} does not match positions {canon.shape}")
    if lengths is not None:
        lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), (canon.shape[0], NUM_JOINTS))
    feats = np.stack(
        [
            positions_to_features(
                canon[p],
                None if local_quats is None else local_quats[p],
                contact,
                lengths=None if lengths is None else lengths[p],
            )
            for p in range(canon.shape[0])
        ]
    )
    return feats, transform


def pair_from_features(features: np.ndarray, transform: CanonicalTransform | None = None) -> np.ndarray:
    """Positions (P, T, 22, 3) float32 from features (P, T, 262): world, or canonical if no transform.

    Any leading dims work, since every person shares the one transform.
    """
    pos = features_to_positions(features)
    if transform is None:
        return pos
    return transform.invert(pos).astype(np.float32)
