"""The input side of the streaming pipeline: one person's pose frames in, a clean 30 Hz stream out.

Pose messages arrive with their capture stamps, at the tracker's rate, in any order, sometimes
twice, sometimes broken. The model wants SMPL 22-joint positions (metres, Y up) on a fixed 30 fps
grid. `PoseBuffer` sits between the two:

- `push(stamp, positions)` (or `push_named(stamp, joint_names, positions)` for named joints)
  validates a frame and stores it, or counts why it was not: shape, non-finite values, absurd
  scale (a coordinate beyond `max_coordinate`) or bone length, a stamp from the far future
  relative to the clock it was given, a duplicate stamp, a stale frame (not newer than the last
  emitted grid time, or older than `max_age` behind the newest). It never raises on data: the
  live path gets a status string back, `stats` counts every outcome and `last_reason` says what
  happened last, for diagnostics.
- `pop_ready()` returns the grid frames (t = k / fps, on an absolute grid) that are final:
  linear interpolation between the source frames around t, emitted once a frame stamped at least
  `reorder_window` after t has arrived (or the adaptive window's current value, when the buffer
  has one: runtime/reorder_window.py). A late frame within the window still slots in; the
  latency is bounded by reorder_window plus one source frame period (in stamp time).
- A gap longer than `max_gap` between consecutive source frames is not interpolated across: the
  stream restarts at the next grid point after the gap, and that frame has `segment_start` set so
  the consumer resets its causal state (encoder cache, velocities).

The clock (for the future check) is injected, so tests and replays are deterministic.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from molam_ros.data.interhuman import zup_to_yup
from molam_ros.motion.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS
from molam_ros.runtime.reorder_window import AdaptiveWindow

ACCEPTED = "accepted"
# Outcomes of push(), each counted in PoseBuffer.stats under the same name.
PUSH_OUTCOMES = (
    ACCEPTED,
    "dropped_stale",  # not newer than the last emitted grid time, or older than max_age behind the newest
    "dropped_duplicate",  # a frame with the same stamp is already buffered
    "dropped_overflow",  # the buffer held max_pending frames; the oldest one was dropped for this one
    "rejected_stamp",  # the stamp is not a finite number
    "rejected_shape",  # positions are not (22, 3) numbers (or names and positions do not pair up)
    "rejected_joints",  # named joints: a required SMPL joint is missing or listed twice
    "rejected_nan",  # a position is NaN or infinite
    "rejected_scale",  # a coordinate is beyond max_coordinate metres
    "rejected_bones",  # a bone is longer than max_bone_length metres
    "rejected_future",  # stamped more than max_future seconds after the clock
)
_STAMP_EPS = 1e-9  # s: stamps closer than this are the same instant
_PARENT_INDEX = np.array(PARENTS[1:])


@dataclass(frozen=True)
class PoseBufferConfig:
    """Pose buffer settings (seconds, metres).

    fps: the output grid rate; the models run at 30 fps.
    reorder_window: how long a grid frame waits for late source frames; the added latency.
    max_age: frames older than this behind the newest frame are stale.
    max_gap: a longer gap between source frames restarts the stream instead of being interpolated
        (a quarter second of linear motion still looks like motion; longer does not).
    max_future: frames stamped further than this after the clock are rejected (a wrong clock or a
        corrupt stamp would otherwise make every later frame stale).
    max_coordinate: |x|, |y|, |z| must stay below this; a tracker that lost the person often
        reports huge values.
    max_bone_length: the longest plausible bone (SMPL's longest, the shin, is about 0.43 m).
    z_up: the input world is Z up; turn it to Y up with (x, y, z) -> (x, z, -y) (a rotation, so
        left stays left), as the InterHuman loader does.
    max_pending: memory bound on buffered source frames.
    """

    fps: float = 30.0
    reorder_window: float = 0.1
    max_age: float = 1.0
    max_gap: float = 0.25
    max_future: float = 0.5
    max_coordinate: float = 10.0
    max_bone_length: float = 0.8
    z_up: bool = False
    max_pending: int = 256

    def __post_init__(self) -> None:
        for name in ("fps", "max_age", "max_gap", "max_future", "max_coordinate", "max_bone_length"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"PoseBufferConfig.{name} must be > 0, got {value}")
        if not (math.isfinite(self.reorder_window) and self.reorder_window >= 0):
            raise ValueError(f"PoseBufferConfig.reorder_window must be >= 0 s, got {self.reorder_window}")
        if self.max_pending < 2:
            raise ValueError(f"PoseBufferConfig.max_pending must be >= 2, got {self.max_pending}")


@dataclass(frozen=True)
class PoseFrame:
    """One output frame: grid time `stamp` = index / fps (s), SMPL positions (22, 3) metres Y up.

    segment_start: the first frame of the stream or of a new segment after a gap; the consumer
    resets anything that assumes continuity with the previous frame.
    """

    stamp: float
    index: int
    positions: np.ndarray
    segment_start: bool


class JointMappingError(ValueError):
    """Named joints that cannot be mapped onto the SMPL 22 joints (missing or repeated names)."""


def map_named_joints(joint_names: Sequence[str], positions: np.ndarray) -> np.ndarray:
    """Positions (22, 3) in SMPL order from named joints, e.g. a PersonPose message.

    `joint_names` (N,) and `positions` (N, 3) pair up; names other than the 22 SMPL joint names
    (SMPL-X hands, face points, ...) are ignored. Raises JointMappingError naming every missing
    or repeated SMPL joint, ValueError if names and positions do not pair up.
    """
    names = list(joint_names)
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] != len(names):
        raise ValueError(f"expected positions ({len(names)}, 3) for {len(names)} names, got {pos.shape}")
    rows: dict[str, int] = {}
    repeated = []
    for row, name in enumerate(names):
        if name in JOINT_INDEX:
            if name in rows:
                repeated.append(name)
            rows[name] = row
    missing = [n for n in JOINT_NAMES if n not in rows]
    if missing or repeated:
        parts = []
        if missing:
            parts.append(f"missing SMPL joints {missing}")
        if repeated:
            parts.append(f"repeated {sorted(set(repeated))}")
        raise JointMappingError("; ".join(parts) + f" (got {len(names)} names: {names[:30]})")
    return pos[[rows[n] for n in JOINT_NAMES]]


class PoseBuffer:
    """Reorders, validates and resamples one person's pose stream onto a fixed grid.

    clock: returns the current time in the stamps' time base (e.g. the ROS clock in seconds); used
    to reject frames from the far future. Without one, that check is skipped unless `push` is
    given `now`.
    """

    def __init__(
        self,
        config: PoseBufferConfig | None = None,
        clock: Callable[[], float] | None = None,
        window: AdaptiveWindow | None = None,
    ) -> None:
        """`window`: an adaptive reorder window (runtime/reorder_window.py) used instead of the
        config's fixed `reorder_window`; it is shown every valid frame's reorder depth."""
        self.config = config or PoseBufferConfig()
        self.clock = clock
        self.window = window
        self.stats: dict[str, int] = dict.fromkeys((*PUSH_OUTCOMES, "emitted", "restarts"), 0)
        self.last_status = ""
        self.last_reason = ""
        self.reset()

    def reset(self) -> None:
        """Forget every buffered frame and the stream position (the counters are kept)."""
        self._stamps: list[float] = []
        self._frames: list[np.ndarray] = []
        self._newest: float | None = None
        self._next_index: int | None = None  # next grid index to emit; None until the stream starts
        self._last_emitted: float | None = None
        self._segment_start = True

    @property
    def reorder_window(self) -> float:
        """The window in use now (s): the adaptive one's value, or the config's."""
        return self.window.value if self.window is not None else self.config.reorder_window

    @property
    def pending(self) -> int:
        """Source frames currently buffered."""
        return len(self._stamps)

    def _outcome(self, status: str, reason: str) -> str:
        self.stats[status] += 1
        self.last_status = status
        self.last_reason = reason
        return status

    # ----------------------------------------------------------------------------------------
    # Input

    def push_named(
        self, stamp: float, joint_names: Sequence[str], positions: np.ndarray, now: float | None = None
    ) -> str:
        """`push` for named joints (see `map_named_joints`); never raises on data."""
        try:
            mapped = map_named_joints(joint_names, positions)
        except JointMappingError as e:
            return self._outcome("rejected_joints", str(e))
        except (TypeError, ValueError) as e:
            return self._outcome("rejected_shape", f"named joints: {e}")
        return self.push(stamp, mapped, now=now)

    def push(
        self, stamp: float, positions: np.ndarray, now: float | None = None, *, y_up: bool = False
    ) -> str:
        """Offer one frame: stamp (s), positions (22, 3) metres in SMPL order.

        Returns "accepted" or the reason it was not (one of PUSH_OUTCOMES). `now` overrides the
        clock for the future check. `y_up`: the positions are Y up already (a body the sparse
        completer made from Z-up input), so `z_up` does not turn them again. Never raises on data.
        """
        cfg = self.config
        try:
            t = float(stamp)
        except (TypeError, ValueError):
            return self._outcome("rejected_stamp", f"stamp {stamp!r} is not a number")
        if not math.isfinite(t):
            return self._outcome("rejected_stamp", f"stamp {t} is not finite")
        try:
            pos = np.array(positions, dtype=np.float64)
        except (TypeError, ValueError) as e:
            return self._outcome("rejected_shape", f"positions are not numeric: {e}")
        if pos.shape != (NUM_JOINTS, 3):
            return self._outcome("rejected_shape", f"positions of shape {pos.shape}, not ({NUM_JOINTS}, 3)")
        if not np.all(np.isfinite(pos)):
            bad = int(np.sum(~np.isfinite(pos)))
            return self._outcome("rejected_nan", f"{bad} non-finite coordinate(s)")
        if cfg.z_up and not y_up:
            pos = zup_to_yup(pos)
        if np.max(np.abs(pos)) >= cfg.max_coordinate:
            return self._outcome(
                "rejected_scale", f"coordinate {np.max(np.abs(pos)):.3g} m beyond {cfg.max_coordinate} m"
            )
        bones = np.linalg.norm(pos[1:] - pos[_PARENT_INDEX], axis=-1)
        if np.max(bones) > cfg.max_bone_length:
            j = int(np.argmax(bones)) + 1
            length = bones[j - 1]
            return self._outcome("rejected_bones", f"bone to {JOINT_NAMES[j]} is {length:.3g} m long")
        if now is None and self.clock is not None:
            now = self.clock()
        try:
            now = None if now is None else float(now)
        except (TypeError, ValueError):
            now = None  # no usable clock reading: the future check is skipped for this frame
        if now is not None and t > now + cfg.max_future:
            return self._outcome("rejected_future", f"stamp {t:.3f} is {t - now:.3f} s ahead of the clock")
        if self.window is not None:  # how late this frame is, whether or not it still fits
            self.window.observe(0.0 if self._newest is None else self._newest - t)
        if self._last_emitted is not None and t <= self._last_emitted + _STAMP_EPS:
            return self._outcome("dropped_stale", f"stamp {t:.3f} not after the last emitted grid time")
        if self._newest is not None and t < self._newest - cfg.max_age:
            behind = self._newest - t
            return self._outcome("dropped_stale", f"stamp {t:.3f} is {behind:.3f} s behind the newest")
        i = bisect.bisect_left(self._stamps, t)
        for j in (i - 1, i):
            if 0 <= j < len(self._stamps) and abs(self._stamps[j] - t) <= _STAMP_EPS:
                return self._outcome("dropped_duplicate", f"stamp {t:.3f} already buffered")
        self._stamps.insert(i, t)
        self._frames.insert(i, pos)
        self._newest = t if self._newest is None else max(self._newest, t)
        self._prune()
        if len(self._stamps) > cfg.max_pending:
            dropped = self._stamps.pop(0)
            self._frames.pop(0)
            return self._outcome("dropped_overflow", f"buffer full: oldest frame {dropped:.3f} dropped")
        return self._outcome(ACCEPTED, "")

    def _prune(self) -> None:
        """Drop consumed frames: keep the newest frame at or before the next grid time, and later ones.

        Unconsumed frames are never dropped silently; only `max_pending` (counted) bounds them.
        """
        if self._next_index is None or not self._stamps:
            return
        horizon = self._next_index / self.config.fps
        keep_from = max(bisect.bisect_right(self._stamps, horizon + _STAMP_EPS) - 1, 0)
        if keep_from:
            del self._stamps[:keep_from]
            del self._frames[:keep_from]

    # ----------------------------------------------------------------------------------------
    # Output

    def pop_ready(self) -> list[PoseFrame]:
        """Grid frames that are final (a source frame reorder_window later has arrived), in order."""
        if self._newest is None:
            return []
        return self._emit_until(self._newest - self.reorder_window)

    def flush(self) -> list[PoseFrame]:
        """Every grid frame up to the newest source frame, not waiting for late ones (end of stream)."""
        if self._newest is None:
            return []
        return self._emit_until(self._newest)

    def _start_index(self, t: float) -> int:
        """First grid index at or after time t."""
        return math.ceil(t * self.config.fps - 1e-6)

    def _restart(self, why: str) -> None:
        if self._last_emitted is not None:  # the very first start is not a restart
            self.stats["restarts"] += 1
            self.last_reason = f"{why}: stream restarts"
        self._segment_start = True

    def _emit_until(self, watermark: float) -> list[PoseFrame]:
        fps, out = self.config.fps, []
        stamps = self._stamps
        if not stamps:
            return out
        if self._next_index is None:
            if stamps[0] > watermark + _STAMP_EPS:
                return out  # the first frame could still be preceded by a late one
            self._next_index = self._start_index(stamps[0])
        while True:
            t = self._next_index / fps
            if t > watermark + _STAMP_EPS:
                break
            b = bisect.bisect_left(stamps, t - _STAMP_EPS)  # first frame at or after t
            if b >= len(stamps):
                break
            if abs(stamps[b] - t) <= _STAMP_EPS:
                pos = self._frames[b].copy()
            else:
                a = b - 1
                if a < 0:  # the frame before t was dropped (overflow): skip ahead, as after a gap
                    self._next_index = self._start_index(stamps[0])
                    self._restart("frame before the next grid time was dropped")
                    continue
                ta, tb = stamps[a], stamps[b]
                if tb - ta > self.config.max_gap:
                    self._next_index = self._start_index(tb)
                    self._restart(f"gap of {tb - ta:.3f} s (> max_gap {self.config.max_gap} s)")
                    continue
                w = (t - ta) / (tb - ta)
                pos = (1.0 - w) * self._frames[a] + w * self._frames[b]
            frame = PoseFrame(
                stamp=t, index=self._next_index, positions=pos, segment_start=self._segment_start
            )
            out.append(frame)
            self._segment_start = False
            self._last_emitted = t
            self._next_index += 1
        self.stats["emitted"] += len(out)
        self._prune()
        return out
