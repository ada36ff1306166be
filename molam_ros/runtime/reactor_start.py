"""Where the live reactor stands when a stream segment starts, and the first step that says so.

Why. A reactor reads its own previous step; at the start of a segment there is none. Recordings
always give one, so the reactors were trained and measured from a recorded first step. The node used
to feed zeros instead, and the person's first codes saw no partner at all: both inputs never seen in
training, and the reactor placed itself wherever that led (README, "the live start"). A robot stands
somewhere when a person arrives; this gives the reactor that as its first step: a body standing
still (data/standing.py, as the generator poses its people), at the robot's place, facing the person.
The first chunk published is that standing step; the person's first codes see the robot as their
partner, and the reactor's placement continues from there.

Where the robot stands (`StartConfig.position`): in the pose stream's frame, metres, as the tracker
publishes poses. A tracker on the robot publishes in the robot's own frame, where the robot is at
the origin: `position: [0, 0, 0]`. Unset, the robot is taken to stand `distance` metres in front of
the person's first pose (1.8 m: the median distance at which the generator's pairs start), which is
where a person who walks up to a robot to interact usually stops.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from molam_ros.data.interhuman import zup_to_yup
from molam_ros.data.standing import (
    FRONT_DISTANCE,
    STANDING_HEIGHT,
    facing_towards,
    place_in_front,
    standing_frames,
)
from molam_ros.motion import ego
from molam_ros.motion.canonical import CanonicalTransform, facing_angle
from molam_ros.motion.features import positions_to_features


@dataclass(frozen=True, kw_only=True)
class StartConfig:
    """The robot's place when a segment starts (module docstring); the node's `start_*` parameters."""

    position: tuple[float, float, float] | None = None  # in the pose stream's frame (m); None: in front
    distance: float = FRONT_DISTANCE  # m from the person's root when `position` is None
    height: float = STANDING_HEIGHT  # m: the standing body the reactor starts as

    def __post_init__(self) -> None:
        if self.position is not None:
            p = np.asarray(self.position, dtype=np.float64)
            if p.shape != (3,) or not np.all(np.isfinite(p)):
                raise ValueError(f"start position must be 3 finite numbers (m), got {self.position!r}")
        if not (np.isfinite(self.distance) and 0.3 <= self.distance <= 10.0):
            raise ValueError(f"start distance must be within 0.3-10 m, got {self.distance!r}")
        if not (np.isfinite(self.height) and 0.5 <= self.height <= 2.5):
            raise ValueError(f"start height must be within 0.5-2.5 m, got {self.height!r}")


def start_frames(
    config: StartConfig,
    person: np.ndarray,
    transform: CanonicalTransform,
    *,
    z_up: bool = False,
) -> np.ndarray:
    """(l, 22, 3) the robot standing still in the segment's canonical frame, facing the person.

    `person` (l, 22, 3): the person's first step in that canonical frame (floor at y = 0); `transform`
    maps the stream's (Y-up) world into it; `z_up`: `config.position` is in a Z-up stream frame.
    """
    person = np.asarray(person, dtype=np.float64)
    them = person[0, 0, [0, 2]]
    if config.position is None:
        me = place_in_front(person, config.distance)
    else:
        world = np.asarray(config.position, dtype=np.float64)
        world = zup_to_yup(world) if z_up else world
        me = transform.apply(world)[[0, 2]]
    return standing_frames(me, facing_towards(me, them), len(person), config.height)


def start_codes(
    engine: Any, stand: np.ndarray, person: np.ndarray, *, ego_layout: bool = True
) -> tuple[np.ndarray, tuple[float, np.ndarray]]:
    """The standing step's (D,) codes as the reactor's first step, and the (yaw, root) it leaves the
    reactor at (the placement's frame before the next). `stand`, `person` (l, 22, 3) canonical.

    Encoded from a fresh encoder state: a first step has no past, as the recordings' first steps."""
    feats = ego.person_to_ego(stand, person) if ego_layout else positions_to_features(stand)
    codes, _ = engine.encode_step(feats[None].astype(np.float32), engine.init_encoder_state(1))
    return np.asarray(codes[0, 0], dtype=np.int64), (float(facing_angle(stand[-1:])[0]), stand[-1, 0].copy())


def parse_start(
    position: str, distance: float = FRONT_DISTANCE, height: float = STANDING_HEIGHT
) -> StartConfig | None:
    """The node's `start_position` parameter: "front" (`distance` m in front of the person), "x,y,z"
    (metres in the pose stream's frame; "0,0,0": a tracker on the robot), or "none" (no first step:
    the reactor places itself, as before this existed). ValueError says what it accepts."""
    text = str(position).strip().lower()
    if text == "none":
        return None
    if text in ("", "front"):
        return StartConfig(distance=float(distance), height=height)
    try:
        xyz = tuple(float(v) for v in text.replace(",", " ").split())
    except ValueError:
        xyz = ()
    if len(xyz) != 3:
        raise ValueError(f"start_position must be 'front', 'none' or 'x,y,z' in metres, got {position!r}")
    return StartConfig(position=xyz, distance=float(distance), height=height)


__all__ = ["StartConfig", "parse_start", "start_codes", "start_frames"]
