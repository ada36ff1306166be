"""A person standing still, as the generator poses one: where a reactor starts before it reacts.

Why it exists. A reactor reads its own previous step; at the start of a stream there is none. The
recordings always give one (the reactor's first frames), the live node did not: it fed zeros, which
training never shows, and the reactor placed itself wherever that led (README, "Not for a robot yet").
A robot does stand somewhere when a person arrives, so its first step is given: this body, standing
relaxed (arms down, feet under the hips) at the robot's place and heading, solved by the same
generator code that poses the training data (data/synth_poses.py), so the step is one the reactor
has seen in training (every generator clip starts with people standing like this).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from molam_ros.data.synth_poses import Track, make_body, solve
from molam_ros.motion.canonical import facing_angle

STANDING_HEIGHT = 1.7  # m: the generator's median adult
FRONT_DISTANCE = 1.8  # m: the median distance at which the generator's pairs start


@lru_cache(maxsize=8)
def _standing_at_origin(frames: int, height: float) -> np.ndarray:
    body = make_body(height, np.random.default_rng(0), jitter=0.0)
    track = Track(body, frames, 30.0)
    _, _, positions = solve([track])
    return positions[0]


def standing_frames(
    root_xz: np.ndarray | tuple[float, float], yaw: float, frames: int, height: float = STANDING_HEIGHT
) -> np.ndarray:
    """(frames, 22, 3) positions (Y up, floor at y = 0) of a person standing still with the root
    at `root_xz` (x, z) and facing `yaw` (radians, 0 facing +Z, as motion/canonical.facing_angle)."""
    if frames < 1:
        raise ValueError(f"frames must be at least 1, got {frames}")
    if not (np.isfinite(height) and 0.5 <= height <= 2.5):
        raise ValueError(f"a standing height must be within 0.5-2.5 m, got {height!r}")
    xz = np.asarray(root_xz, dtype=np.float64).reshape(-1)
    if xz.shape != (2,) or not np.all(np.isfinite(xz)) or not np.isfinite(yaw):
        raise ValueError(f"a standing place needs a finite (x, z) and yaw, got {root_xz!r}, {yaw!r}")
    base = _standing_at_origin(int(frames), float(height))
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])  # about +Y: +Z turns to (sin, 0, cos)
    return base @ rot.T + np.array([xz[0], 0.0, xz[1]])


def facing_towards(me_xz: np.ndarray, target_xz: np.ndarray) -> float:
    """The yaw (facing_angle convention) that faces from `me_xz` to `target_xz` (0 where they meet)."""
    d = np.asarray(target_xz, dtype=np.float64) - np.asarray(me_xz, dtype=np.float64)
    return float(np.arctan2(d[0], d[1])) if np.linalg.norm(d) > 1e-9 else 0.0


def place_in_front(person: np.ndarray, distance: float = FRONT_DISTANCE) -> np.ndarray:
    """(x, z) `distance` m in front of `person`'s first frame ((T, 22, 3), along its facing): where a
    robot whose place nobody gave is taken to stand when that person arrives."""
    yaw = float(facing_angle(np.asarray(person)[:1])[0])
    return np.asarray(person)[0, 0, [0, 2]] + distance * np.array([np.sin(yaw), np.cos(yaw)])


def standing_pair(distance: float, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Two people standing still `distance` m apart, facing each other: the first at the origin
    facing +Z, the second on +Z (where a text-to-motion pair starts, llm/pair_generator.py)."""
    b_xz = np.array([0.0, distance])
    return standing_frames((0.0, 0.0), 0.0, frames), standing_frames(
        b_xz, facing_towards(b_xz, np.zeros(2)), frames
    )


__all__ = [
    "FRONT_DISTANCE",
    "STANDING_HEIGHT",
    "facing_towards",
    "place_in_front",
    "standing_frames",
    "standing_pair",
]
