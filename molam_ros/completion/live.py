"""The live completer: sparse poses as they arrive (any rate, any subset with head and hands) in,
one full 22-joint body per pose out, for the reaction pipeline's pose buffer.

The model was trained on 30 fps windows, but a headset streams at 72-120 Hz and a replay at 30 Hz,
so the completer keeps a second of the points it was sent with their stamps and samples the window
at the model's rate backwards from the newest pose (linear interpolation; before the first pose the
first pose repeats, as in training). So the inputs are those of a whole-clip pass whatever the
tracker's rate (tested against `evaluate.complete_stream`).

What a headset stream does that a dataset clip does not, and what happens then:
- no head orientation: the yaw is guessed from the hands, smoothed (motion/sparse.py);
- a controller drops out (NaN, low confidence or left out of the message): the hand is held where it
  was relative to the head for `hold_time`, then eased to the side of the body over `rest_time`,
  so the avatar's arm stays with the body instead of freezing in the room; a hand never seen yet
  cannot be completed (the pose is refused);
- the headset re-centres (the head jumps more than `max_jump` between poses) or the stream pauses
  longer than `max_gap`: the history is dropped and a new stream starts, as at a gap in the pose
  buffer (which then starts a new segment of the reaction too);
- poses out of order: an older pose than the newest is dropped (the window is already past it).
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from molam_ros.completion.model import CompletionModel
from molam_ros.data.interhuman import zup_to_yup
from molam_ros.motion.ego import wrap_angle
from molam_ros.motion.rotations import quat_rotate
from molam_ros.motion.sparse import (
    HEAD,
    NUM_SLOTS,
    REQUIRED,
    TRACKED,
    from_heading,
    inputs_from_windows,
    smooth_yaw,
    to_heading,
    yaw_from_wrists,
)

ACCEPTED = "accepted"
# The hands' place relative to the head (heading frame, metres) where a lost controller eases to:
# arms hanging at the sides, from the training data's mean standing body.
REST_HANDS = {"left_wrist": np.array([0.2, -0.75, 0.0]), "right_wrist": np.array([-0.2, -0.75, 0.0])}


@dataclass(frozen=True)
class LiveCompletionConfig:
    """Live completion settings (seconds, metres; a Y-up world).

    fps: the model's frame rate (the window is sampled at it).
    floor_height: y of the floor in the input world; the model measures heights from it.
    max_gap: a longer silence starts a new stream.
    max_jump: a head that moves further than this between two poses was re-centred: a new stream.
    hold_time, rest_time: a lost hand held, then eased to the side (module docstring).
    history: seconds of poses kept (more than the model's window).
    """

    fps: float = 30.0
    floor_height: float = 0.0
    max_gap: float = 0.25
    max_jump: float = 0.5
    hold_time: float = 1.0
    rest_time: float = 1.0
    history: float = 1.0


def head_forward_from_quat(quat: np.ndarray, rest_forward: np.ndarray) -> np.ndarray:
    """Where a head with global orientation `quat` (w, x, y, z) faces: `rest_forward` rotated."""
    return quat_rotate(np.asarray(quat, dtype=np.float64), np.asarray(rest_forward, dtype=np.float64))


def sparse_input(
    positions: np.ndarray,
    joint_names: Sequence[str],
    orientations: np.ndarray | None = None,
    *,
    z_up: bool = False,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """A tracker's sparse pose as `SparseCompleter.complete` reads it: name -> (3,) Y-up position, and
    the head's facing where its orientation (N, 4) global (w, x, y, z) came; ValueError on a shape
    mismatch. The rest forward is +Z in a Y-up world (SMPL), +X in a Z-up one (REP 103)."""
    pos = np.asarray(positions, dtype=np.float64)
    names = list(joint_names)
    if pos.shape != (len(names), 3):
        raise ValueError(f"{len(names)} joint names but positions of shape {pos.shape}")
    pos = zup_to_yup(pos) if z_up else pos
    forward = None
    if orientations is not None and "head" in names and len(orientations) == len(names):
        rest = np.array([1.0, 0.0, 0.0]) if z_up else np.array([0.0, 0.0, 1.0])
        q = np.asarray(orientations[names.index("head")], dtype=np.float64)
        if np.all(np.isfinite(q)) and np.linalg.norm(q) > 1e-6:
            forward = head_forward_from_quat(q / np.linalg.norm(q), rest)
            forward = zup_to_yup(forward) if z_up else forward
    return dict(zip(names, pos, strict=True)), forward


class SparseCompleter:
    """Sparse poses in, full bodies out, one per pose (module docstring)."""

    def __init__(self, model: CompletionModel, config: LiveCompletionConfig | None = None) -> None:
        self.model = model.eval()
        self.config = config or LiveCompletionConfig()
        self.window = model.config.window
        self.stats: dict[str, int] = {"completed": 0, "restarts": 0, "held_hands": 0, "yaw_from_hands": 0}
        self.last_reason = ""
        self.reset()

    def diagnostics(self) -> dict[str, object]:
        """The figures for a node's diagnostics (poses completed, hands held, yaw from hands, restarts)."""
        s = self.stats
        return {
            "sparse_completion": True,
            "completed_poses": s["completed"],
            "completion_held_hands": s["held_hands"],
            "completion_yaw_from_hands": s["yaw_from_hands"],
            "completion_restarts": s["restarts"],
        }

    def reset(self) -> None:
        """Forget the stream (history, held hands, yaw); counters are kept."""
        self._stamps: list[float] = []
        self._points: list[np.ndarray] = []  # (NUM_SLOTS, 3) each, NaN: absent
        self._yaws: list[float] = []
        self._hand_yaw: float | None = None
        self._last_hand: dict[str, tuple[float, np.ndarray]] = {}  # name -> (stamp, heading-frame point)

    # --- one pose

    def complete(
        self,
        stamp: float,
        points: Mapping[str, np.ndarray],
        head_forward: np.ndarray | None = None,
    ) -> tuple[np.ndarray | None, str]:
        """The full body (22, 3), Y up, in the input world, for one sparse pose, or (None, why not).

        points: tracked joint name -> (3,) position (Y up; NaN or left out: not tracked now);
        names outside motion/sparse.py TRACKED are ignored. head_forward: the headset's facing
        direction (3,) in the same world when the tracker sends an orientation.
        """
        cfg = self.config
        slots = np.full((NUM_SLOTS, 3), np.nan)
        for k, name in enumerate(TRACKED):
            if name in points:
                p = np.asarray(points[name], dtype=np.float64).reshape(-1)
                if p.shape == (3,) and np.all(np.isfinite(p)):
                    slots[k] = p
        if not np.all(np.isfinite(slots[HEAD])):
            return self._refuse("rejected_joints", "no head position: a sparse pose needs the headset")
        slots[:, 1] -= cfg.floor_height
        if self._stamps:
            newest = self._stamps[-1]
            if stamp <= newest:
                return self._refuse("dropped_stale", f"stamp {stamp:.3f} not after the newest {newest:.3f}")
            jump = float(np.linalg.norm(slots[HEAD] - self._points[-1][HEAD]))
            if stamp - newest > cfg.max_gap or jump > cfg.max_jump:
                self.stats["restarts"] += 1
                self.last_reason = f"new stream: gap {stamp - newest:.2f} s, head moved {jump:.2f} m"
                self.reset()
        yaw = self._yaw(stamp, slots, head_forward)
        if not self._fill_hands(stamp, slots, yaw):
            return self._refuse("rejected_joints", "a hand has not been tracked yet: nothing to hold")
        self._stamps.append(float(stamp))
        self._points.append(slots)
        self._yaws.append(yaw)
        while self._stamps[0] < stamp - cfg.history:
            self._stamps.pop(0), self._points.pop(0), self._yaws.pop(0)
        win, win_yaw = self._window(stamp)
        with torch.no_grad():
            local = self.model(torch.from_numpy(inputs_from_windows(win[None], win_yaw[None]))).numpy()[0]
        body = from_heading(local.astype(np.float64), slots[HEAD], yaw)
        body[:, 1] += cfg.floor_height
        self.stats["completed"] += 1
        return body, ACCEPTED

    def _refuse(self, status: str, reason: str) -> tuple[None, str]:
        self.last_reason = reason
        return None, status

    def _yaw(self, stamp: float, slots: np.ndarray, head_forward: np.ndarray | None) -> float:
        """The head's yaw: the headset's when it sent a usable orientation, else from the hands."""
        if head_forward is not None:
            f = np.asarray(head_forward, dtype=np.float64)
            if f.shape == (3,) and np.all(np.isfinite(f)) and np.hypot(f[0], f[2]) > 0.2:
                return float(np.arctan2(f[0], f[2]))  # (a head looking nearly straight down has none)
        self.stats["yaw_from_hands"] += 1
        left, right = slots[TRACKED.index("left_wrist")], slots[TRACKED.index("right_wrist")]
        previous = self._yaws[-1] if self._yaws else None
        if not (np.all(np.isfinite(left)) and np.all(np.isfinite(right))):
            return previous if previous is not None else 0.0
        guess, trust = yaw_from_wrists(left, right)
        dt = stamp - self._stamps[-1] if self._stamps else 0.0
        self._hand_yaw = smooth_yaw(self._hand_yaw, float(guess), dt, float(trust) / 0.3)
        return self._hand_yaw

    def _fill_hands(self, stamp: float, slots: np.ndarray, yaw: float) -> bool:
        """Lost hands held relative to the head, then eased to the side; False if one was never seen."""
        cfg = self.config
        head = slots[HEAD]
        for name in REQUIRED[1:]:
            k = TRACKED.index(name)
            if np.all(np.isfinite(slots[k])):
                self._last_hand[name] = (stamp, to_heading(slots[k][None], head, np.float64(yaw))[0])
                continue
            if name not in self._last_hand:
                return False
            seen, local = self._last_hand[name]
            w = min(max((stamp - seen - cfg.hold_time) / cfg.rest_time, 0.0), 1.0)
            w = w * w * (3.0 - 2.0 * w)
            rest = REST_HANDS[name] + [0.0, head[1], 0.0]
            slots[k] = from_heading(((1.0 - w) * local + w * rest)[None], head, np.float64(yaw))[0]
            self.stats["held_hands"] += 1
        return True

    def _window(self, stamp: float) -> tuple[np.ndarray, np.ndarray]:
        """(W, NUM_SLOTS, 3) points and (W,) yaw at the model's frame times up to `stamp`."""
        times = stamp - np.arange(self.window - 1, -1, -1) / self.config.fps
        pts = np.empty((self.window, NUM_SLOTS, 3))
        yaw = np.empty(self.window)
        stamps = self._stamps
        for i, t in enumerate(times):
            b = bisect.bisect_left(stamps, t - 1e-9)
            if b >= len(stamps):
                b = len(stamps) - 1
            if b == 0 or abs(stamps[b] - t) <= 1e-9:
                pts[i], yaw[i] = self._points[b], self._yaws[b]
                continue
            a = b - 1
            w = (t - stamps[a]) / (stamps[b] - stamps[a])
            pa, pb = self._points[a], self._points[b]
            mix = (1.0 - w) * pa + w * pb
            pts[i] = np.where(np.isfinite(mix), mix, np.where(np.isfinite(pa), pa, pb))
            yaw[i] = self._yaws[a] + w * float(wrap_angle(self._yaws[b] - self._yaws[a]))
        return pts, yaw
