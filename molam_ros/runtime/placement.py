"""Causal placement of the live reactor relative to the person: a plausible distance and facing.

The model places the reactor itself (it decodes in the person's canonical frame), but an early or
undertrained model, or a person who walks off, can leave the reactor inside the person, far away,
or with its back turned. Offline, coordination/refine.py solves that over a whole clip; live, only
the past is known, so this keeps a small correction (a horizontal offset and a yaw about the
reactor's root) that moves towards what the current frame needs and is rate-limited, so the
corrected reactor never jumps:

- distance: the reactor's root is kept within a band of horizontal distances from the person's
  root (the default band of coordination/refine.py, 0.5-3.0 m: near enough to interact, never
  inside); outside it the offset moves towards the band's edge at most `max_speed` m/s;
- facing: within `interact_distance`, a facing error above `facing_tolerance` is turned away at
  most `max_turn` rad/s; further away the reactor faces where the model says.

What it changes is what is published as positions (markers, the reactor's PersonPose, the
avatar's root and heading); a robot's joint angles do not depend on where it stands.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from molam_ros.motion.canonical import facing_angle

ROOT = 0


@dataclass(frozen=True, kw_only=True)
class PlacementConfig:
    min_distance: float = 0.5  # m, root to root, horizontal
    max_distance: float = 3.0
    max_speed: float = 0.6  # m/s of the correction
    interact_distance: float = 2.0  # m: closer than this the reactor should face the person
    facing_tolerance: float = math.radians(45.0)
    max_turn: float = math.radians(90.0)  # rad/s of the correction
    fps: float = 30.0

    def __post_init__(self) -> None:
        if not 0.0 < self.min_distance < self.max_distance:
            raise ValueError("PlacementConfig needs 0 < min_distance < max_distance")
        if self.max_speed <= 0 or self.max_turn <= 0 or self.fps <= 0:
            raise ValueError("PlacementConfig needs positive max_speed, max_turn and fps")


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


class LivePlacement:
    """Per-frame correction of the reactor's place and heading (module docstring)."""

    def __init__(self, config: PlacementConfig | None = None) -> None:
        self.config = config or PlacementConfig()
        self.reset()

    def reset(self) -> None:
        """A new stream segment: no correction."""
        self.offset = np.zeros(3)
        self.yaw = 0.0

    def _rotate(self, pose: np.ndarray, yaw: float) -> np.ndarray:
        """`pose` (22, 3) turned by `yaw` about the vertical through its root."""
        c, s = math.cos(yaw), math.sin(yaw)
        rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
        root = pose[ROOT] * [1.0, 0.0, 1.0]
        return (pose - root) @ rot.T + root

    def apply(self, person: np.ndarray, reactor: np.ndarray) -> np.ndarray:
        """(n, 22, 3) world frames of both -> the reactor's corrected frames, in order."""
        cfg = self.config
        dt = 1.0 / cfg.fps
        out = np.empty_like(np.asarray(reactor, dtype=np.float64))
        for k, (p, r) in enumerate(zip(np.asarray(person, float), np.asarray(reactor, float), strict=True)):
            placed = self._rotate(r, self.yaw) + self.offset
            # Distance: where the root should be, then a rate-limited step of the offset towards it.
            d = (placed[ROOT] - p[ROOT]) * [1.0, 0.0, 1.0]
            dist = float(np.linalg.norm(d))
            if dist < 1e-6:
                d, dist = np.array([0.0, 0.0, 1.0]), 0.0
            want = min(max(dist, cfg.min_distance), cfg.max_distance)
            step = (d / max(dist, 1e-6)) * (want - dist)
            norm = float(np.linalg.norm(step))
            if norm > cfg.max_speed * dt:
                step *= cfg.max_speed * dt / norm
            self.offset += step
            # Facing: while close, turn the reactor's heading towards the person.
            to_person = p[ROOT] - (placed[ROOT] + step)
            if np.hypot(to_person[0], to_person[2]) < cfg.interact_distance:
                heading = float(facing_angle(self._rotate(r, self.yaw)))
                error = _wrap(math.atan2(to_person[0], to_person[2]) - heading)
                excess = math.copysign(max(abs(error) - cfg.facing_tolerance, 0.0), error)
                self.yaw = _wrap(self.yaw + float(np.clip(excess, -cfg.max_turn * dt, cfg.max_turn * dt)))
            out[k] = self._rotate(r, self.yaw) + self.offset
        return out
