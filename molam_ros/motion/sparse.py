"""Sparse tracking (a VR headset and controllers) as model input: which points, and in what frame.

A VR user is tracked at three points, the head and both hands, sometimes more (a hip tracker, foot
trackers). The completion model (molam_ros/completion/) turns a short window of those points into
the full 22-joint body. What it sees must not depend on where the person stands or which way they
face in the room, or a model trained on a few thousand clips would have to learn every place and
heading: so every point is expressed in the *head's heading frame* of the current frame, as the
ego layout (motion/ego.py) does for the root:

    origin  the head's position projected on the floor (x, z); y stays the height above the floor
    +Z      the head's facing direction on the floor (its yaw), +Y up, +X the person's left

Slots (`TRACKED`): head, left_wrist, right_wrist (required: a headset and two controllers), then
pelvis, left_ankle, right_ankle, left_foot, right_foot (optional trackers; a foot tracker is named
for the SMPL joint it sits nearest). An absent slot is NaN in the arrays here; `window_inputs`
zeroes it and says which optional slots are present in a mask, so one model serves every set.

Per frame t the input is the last `window` frames t-W+1..t (a causal window; before the stream's
first frame the first frame repeats, as at the start of a live stream), each frame's points in the
heading frame of t, plus each frame's yaw relative to t's as (cos, sin): a turn of the head is
seen as such, not as the whole scene rotating. Targets are the 22 joints in the same frame of t.

The yaw of the head comes from the headset's orientation when the tracker sends it (`yaw_from_quat`).
Training clips carry positions only; their head yaw is the body's facing (canonical.facing_angle),
perturbed in training so that a head turned away from the torso is not taken for a turned body.
Without an orientation, `yaw_from_wrists` guesses it from the line between the hands.
"""

from __future__ import annotations

import numpy as np

from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.ego import rotate_y, wrap_angle
from molam_ros.motion.rotations import quat_rotate
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS

REQUIRED: tuple[str, ...] = ("head", "left_wrist", "right_wrist")
OPTIONAL: tuple[str, ...] = ("pelvis", "left_ankle", "right_ankle", "left_foot", "right_foot")
TRACKED: tuple[str, ...] = REQUIRED + OPTIONAL
TRACKED_INDEX = np.array([JOINT_INDEX[n] for n in TRACKED])
NUM_SLOTS = len(TRACKED)
HEAD = 0  # slot of the head in TRACKED
FRAME_DIM = NUM_SLOTS * 3 + 2  # per window frame: the slots' points, then (cos, sin) of the relative yaw
# Joint groups for reporting (every SMPL joint in exactly one).
JOINT_GROUPS: dict[str, tuple[str, ...]] = {
    "head": ("neck", "head"),
    "torso": ("pelvis", "left_hip", "right_hip", "spine1", "spine2", "spine3"),
    "arms": (
        "left_collar",
        "right_collar",
        "left_shoulder",
        "right_shoulder",
        "left_elbow",
        "right_elbow",
        "left_wrist",
        "right_wrist",
    ),
    "legs": ("left_knee", "right_knee", "left_ankle", "right_ankle", "left_foot", "right_foot"),
}
# The SMPL rest pose faces +Z in a Y-up world: a head orientation maps this to where the face points.
REST_FORWARD = np.array([0.0, 0.0, 1.0])


def input_dim(window: int) -> int:
    """Numbers per model input: `window` frames of FRAME_DIM, then the optional slots' mask."""
    return window * FRAME_DIM + len(OPTIONAL)


def body_yaw(positions: np.ndarray) -> np.ndarray:
    """(T,) the body's facing of full-body clips (T, 22, 3): what training uses as the head's yaw."""
    return facing_angle(positions)


def yaw_from_quat(quat: np.ndarray, rest_forward: np.ndarray = REST_FORWARD) -> np.ndarray:
    """Yaw (...,) of a global head orientation (..., 4) (w, x, y, z), Y-up world: 0 facing +Z.

    `rest_forward` is where the face points at the identity orientation in that world. A head that
    looks straight up or down has no yaw: the result is then 0 (`np.arctan2(0, 0)`); callers that
    track a stream keep their previous yaw in that case (`SparseCompleter`).
    """
    forward = quat_rotate(
        np.asarray(quat, dtype=np.float64), np.broadcast_to(rest_forward, np.shape(quat)[:-1] + (3,))
    )
    return np.arctan2(forward[..., 0], forward[..., 2])


def yaw_from_wrists(left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The facing implied by the hands, (yaw (...,), confidence (...,) = the hands' horizontal
    distance in metres): forward = (left - right) x up, perpendicular to the line from the right
    hand to the left one on the floor, as the shoulders' line gives the body's facing. Hands close
    together (clapping, holding something) or crossed mislead it; a caller smooths it and trusts it
    by the confidence."""
    d = np.asarray(left, dtype=np.float64) - np.asarray(right, dtype=np.float64)
    fx, fz = -d[..., 2], d[..., 0]  # (left - right) x (0, 1, 0)
    return np.arctan2(fx, fz), np.hypot(fx, fz)


def to_heading(points: np.ndarray, head: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """Points (..., K, 3) world (Y up, floor y = 0) into the heading frame of `head` (..., 3), `yaw` (...)."""
    origin = np.array(head, dtype=np.float64, copy=True)
    origin[..., 1] = 0.0
    return rotate_y(np.asarray(points, dtype=np.float64) - origin[..., None, :], -np.asarray(yaw)[..., None])


def from_heading(points: np.ndarray, head: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """The inverse of `to_heading`: points (..., K, 3) in the heading frame back into the world."""
    origin = np.array(head, dtype=np.float64, copy=True)
    origin[..., 1] = 0.0
    return rotate_y(np.asarray(points, dtype=np.float64), np.asarray(yaw)[..., None]) + origin[..., None, :]


def tracked_points(positions: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """(..., NUM_SLOTS, 3) the tracked slots of full bodies (..., 22, 3); slots not `present`
    ((NUM_SLOTS,) bool; default: the required ones only) are NaN, as a sparse tracker sends them."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected (..., {NUM_JOINTS}, 3) positions, got {pos.shape}")
    out = pos[..., TRACKED_INDEX, :].copy()
    if present is None:
        present = np.arange(NUM_SLOTS) < len(REQUIRED)
    out[..., ~np.asarray(present, dtype=bool), :] = np.nan
    return out


def window_inputs(
    points: np.ndarray, yaw: np.ndarray, window: int, frames: np.ndarray | None = None
) -> np.ndarray:
    """(N, input_dim(window)) float32 model inputs of one stream's tracked points (T, NUM_SLOTS, 3)
    (NaN: absent slot) and head yaw (T,), for the frames `frames` (default every frame): the
    causal windows of the module docstring, cut out and passed to `inputs_from_windows`."""
    pts = np.asarray(points, dtype=np.float64)
    yaw = np.asarray(yaw, dtype=np.float64)
    T = pts.shape[0]
    if pts.shape != (T, NUM_SLOTS, 3) or yaw.shape != (T,):
        raise ValueError(f"expected points (T, {NUM_SLOTS}, 3) and yaw (T,), got {pts.shape} and {yaw.shape}")
    t = np.arange(T) if frames is None else np.asarray(frames, dtype=np.int64)
    idx = np.maximum(t[:, None] - np.arange(window - 1, -1, -1)[None, :], 0)  # (N, W), oldest first
    return inputs_from_windows(pts[idx], yaw[idx])


def inputs_from_windows(win: np.ndarray, win_yaw: np.ndarray) -> np.ndarray:
    """(N, input_dim(W)) float32 from windows of tracked points (N, W, NUM_SLOTS, 3), oldest first,
    NaN where a slot is absent, and their head yaw (N, W); the last frame is the current one.

    An optional slot counts as present when it is finite in the current frame; a present slot's
    NaN in an earlier frame takes the nearest later finite value of the window (a tracker that
    flickered is held), an absent slot is zero. The required slots must be finite now.
    """
    win = np.array(win, dtype=np.float64)
    win_yaw = np.asarray(win_yaw, dtype=np.float64)
    n, window = win.shape[:2]
    if win.shape[2:] != (NUM_SLOTS, 3) or win_yaw.shape != (n, window):
        raise ValueError(
            f"expected windows (N, W, {NUM_SLOTS}, 3) and yaw (N, W), got {win.shape}, {win_yaw.shape}"
        )
    if not np.all(np.isfinite(win[:, -1, : len(REQUIRED)])):
        raise ValueError("the required slots (head and both wrists) must be finite in the current frame")
    present = np.isfinite(win[:, -1]).all(axis=-1)  # (N, K)
    for k in range(window - 2, -1, -1):  # back-fill holes from later frames (the newest is finite)
        hole = ~np.isfinite(win[:, k]).all(axis=-1)
        win[:, k] = np.where(hole[..., None], win[:, k + 1], win[:, k])
    win = np.where(present[:, None, :, None], win, 0.0)
    head, yaw_t = win[:, -1, HEAD], win_yaw[:, -1]  # the heading frame of the current frame
    local = to_heading(win.reshape(n, -1, 3), head, yaw_t).reshape(win.shape)
    local = np.where(present[:, None, :, None], local, 0.0)
    rel = wrap_angle(win_yaw - yaw_t[:, None])  # (N, W)
    frame = np.concatenate([local.reshape(n, window, -1), np.cos(rel)[..., None], np.sin(rel)[..., None]], -1)
    mask = present[:, len(REQUIRED) :].astype(np.float64)
    return np.concatenate([frame.reshape(n, -1), mask], axis=-1).astype(np.float32)


def smooth_yaw(previous: float | None, new: float, dt: float, weight: float, tau: float = 0.3) -> float:
    """One causal low-pass step of a yaw estimate (radians): `new` pulls `previous` by
    1 - exp(-dt / tau), scaled by `weight` in [0, 1] (how far to trust `new`); the first estimate
    is taken as it is. Used for the yaw guessed from the hands, which jumps with every gesture."""
    if previous is None:
        return float(new)
    alpha = (1.0 - np.exp(-max(dt, 0.0) / tau)) * min(max(weight, 0.0), 1.0)
    return float(wrap_angle(previous + alpha * wrap_angle(new - previous)))


def wrist_yaw_stream(
    left: np.ndarray, right: np.ndarray, fps: float = 30.0, full_trust: float = 0.3
) -> np.ndarray:
    """(T,) the causal, smoothed yaw of a stream guessed from the hands (T, 3) each: what the live
    completer uses when the headset sends no orientation. A hands' distance of `full_trust` metres
    or more is trusted fully, closer hands less."""
    yaw, conf = yaw_from_wrists(left, right)
    out = np.zeros(len(yaw))
    prev = None
    for t in range(len(yaw)):
        prev = smooth_yaw(prev, float(yaw[t]), 1.0 / fps, float(conf[t]) / full_trust)
        out[t] = prev
    return out


def body_targets(positions: np.ndarray, head: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(T, 22, 3) float32 full bodies (T, 22, 3) in the heading frame of their head (T, 3) and yaw (T,)."""
    return to_heading(positions, head, yaw).astype(np.float32)
