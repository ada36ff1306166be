"""Dataset clips as one-person streams for the completion model, and batches of training windows.

Completion sees one person at a time (a VR user is tracked alone), so every person of every clip
of a split is one stream: its (T, 22, 3) positions and the yaw its head is given (the body's facing,
motion/sparse.py says why). Streams of a dataset are concatenated into one array with their
offsets, so a batch of windows is cut out with one fancy index instead of a Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from molam_ros.data.dataset import MotionDataset
from molam_ros.data.real_clips import mirror
from molam_ros.motion.skeleton import JOINT_INDEX
from molam_ros.motion.sparse import NUM_SLOTS, OPTIONAL, REQUIRED, TRACKED_INDEX, body_yaw


@dataclass
class Streams:
    """Every person of a split, concatenated: positions (N, 22, 3) float32, yaw (N,), and per frame
    the first frame of its stream (`start`), so a causal window never reaches into another stream.
    `names`: (clip id, person) of each stream, `bounds`: its [begin, end) rows."""

    label: str
    positions: np.ndarray
    yaw: np.ndarray
    start: np.ndarray
    names: list[tuple[str, int]]
    bounds: list[tuple[int, int]]

    def __len__(self) -> int:
        return len(self.positions)

    def stream(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(T, 22, 3) positions and (T,) yaw of stream i."""
        a, b = self.bounds[i]
        return self.positions[a:b].astype(np.float64), self.yaw[a:b]


def load_streams(root: str | Path, split: str, min_frames: int = 2) -> Streams:
    """Every person of every clip of `split` in the dataset at `root` (module docstring)."""
    ds = MotionDataset(root)
    positions, yaws, starts, names, bounds = [], [], [], [], []
    n = 0
    for clip_id in ds.ids(split):
        clip = ds.load(clip_id)
        for p, pos in enumerate(np.asarray(clip.positions, dtype=np.float64)):
            if len(pos) < min_frames or not np.all(np.isfinite(pos)):
                continue
            positions.append(pos.astype(np.float32))
            yaws.append(body_yaw(pos))
            starts.append(np.full(len(pos), n))
            names.append((clip_id, p))
            bounds.append((n, n + len(pos)))
            n += len(pos)
    if not positions:
        raise ValueError(f"{root}: no clips in the {split!r} split")
    return Streams(
        label=f"{ds.label} ({split})",
        positions=np.concatenate(positions),
        yaw=np.concatenate(yaws),
        start=np.concatenate(starts),
        names=names,
        bounds=bounds,
    )


@dataclass(frozen=True)
class Augment:
    """What a training window may be changed by (each drawn per window).

    optional_rate: share of windows with some optional trackers (each then present with p = 0.5);
        the rest are head + hands only, the set every VR user has.
    yaw_noise: std (rad) of a head turned away from the torso: the heading frame turns, the body
        does not, so the model learns not to take a look to the side for a turned body.
    yaw_noise_rate: share of windows with such a turn.
    scale: body sizes drawn uniformly from this range (about the floor).
    mirror: left and right exchanged with p = 0.5.
    tracker_noise: std (m) of independent noise on each tracked point of each frame, the targets
        untouched (tracker jitter; 0: the points are the recorded joints).
    reverse_rate: share of windows played backwards (the window runs from later frames to the
        target frame): a get-up backwards is a lying down, a step forward one back; the poses are
        all recorded ones, only the direction of the motion is new.
    arm_swing_rate: share of windows whose arms are turned to somewhere else (each side: the upper
        arm by a uniformly random rotation about the shoulder, the forearm by up to 90 degrees about
        the elbow, the same over the window; the bones keep their lengths). The hands then go where
        no clip took them (behind the head, above it) over the recorded legs, so the model learns
        that an odd hand position says nothing about the legs: with no such clip, hands behind the
        head made it lift both feet off the floor.
    arm_swing_turn: how far (radians) a swung upper arm also turns over the window (`swing_arms`).
    arm_swing_each: each arm drawn on its own (with p = arm_swing_rate) instead of both together, so
        that most windows keep one recorded arm (a walker's arm swing tells the legs' phase).
    """

    optional_rate: float = 0.5
    yaw_noise: float = 0.3
    yaw_noise_rate: float = 0.5
    scale: tuple[float, float] = (0.9, 1.1)
    mirror: bool = True
    tracker_noise: float = 0.0
    reverse_rate: float = 0.0
    arm_swing_rate: float = 0.0
    arm_swing_turn: float = 0.0
    arm_swing_each: bool = False


# (shoulder, elbow, wrist) of each arm: the chains `swing_arms` turns.
ARMS = tuple(
    tuple(JOINT_INDEX[f"{side}_{j}"] for j in ("shoulder", "elbow", "wrist")) for side in ("left", "right")
)


def _random_rotations(rng: np.random.Generator, n: int, max_angle: float | None = None) -> np.ndarray:
    """(n, 3, 3) rotation matrices: uniform over all rotations, or a uniform axis and an angle
    uniform in [0, max_angle]."""
    if max_angle is None:
        return Rotation.from_quat(rng.normal(size=(n, 4))).as_matrix()  # a normal 4-vector: uniform
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    return Rotation.from_rotvec(axis * rng.uniform(0.0, max_angle, (n, 1))).as_matrix()


def swing_arms(
    pos: np.ndarray, rng: np.random.Generator, turn: float = 0.0, arms: tuple[tuple[int, ...], ...] = ARMS
) -> np.ndarray:
    """(n, W, 22, 3) windows with `arms` (both by default) turned (`Augment.arm_swing_rate`), a new array.

    `turn` (radians): the upper arm's rotation also turns by up to this much over the window, about
    a random axis, so the hands move in ways the recorded body did not.
    """
    out = np.array(pos, dtype=np.float64)
    n, W = out.shape[:2]
    for shoulder, elbow, wrist in arms:
        upper, fore = _random_rotations(rng, n), _random_rotations(rng, n, np.pi / 2)
        if turn > 0:
            spin = _random_rotations(rng, n, turn)  # the whole turn, eased in over the window
            rotvec = Rotation.from_matrix(spin).as_rotvec()[:, None] * np.linspace(0.0, 1.0, W)[None, :, None]
            upper = np.einsum(
                "nij,nwjk->nwik",
                upper,
                Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(n, W, 3, 3),
            )
        else:
            upper = np.broadcast_to(upper[:, None], (n, W, 3, 3))
        s = out[:, :, shoulder : shoulder + 1]
        arm = np.einsum("nwij,nwkj->nwki", upper, out[:, :, [elbow, wrist]] - s) + s
        e = arm[:, :, :1]
        arm[:, :, 1:] = np.einsum("nij,nwkj->nwki", fore, arm[:, :, 1:] - e) + e
        out[:, :, [elbow, wrist]] = arm
    return out


def sample_windows(
    streams: Streams, count: int, window: int, rng: np.random.Generator, augment: Augment
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`count` random training windows: tracked points (count, W, NUM_SLOTS, 3) with NaN for absent
    slots, head yaw (count, W), and the full body of the window's last frame (count, 22, 3)."""
    t = rng.integers(0, len(streams), count)
    idx = np.maximum(t[:, None] - np.arange(window - 1, -1, -1)[None, :], streams.start[t][:, None])
    if augment.reverse_rate > 0:
        first, stop = (np.array(b, dtype=np.int64) for b in zip(*streams.bounds, strict=True))
        last = stop[np.searchsorted(first, t, side="right") - 1] - 1  # the last frame of t's stream
        ahead = np.minimum(t[:, None] + np.arange(window - 1, -1, -1)[None, :], last[:, None])
        idx = np.where((rng.random(count) < augment.reverse_rate)[:, None], ahead, idx)
    pos = streams.positions[idx].astype(np.float64)  # (count, W, 22, 3)
    yaw = streams.yaw[idx].copy()
    if augment.mirror:
        flip = rng.random(count) < 0.5
        pos[flip] = mirror(pos[flip])
        yaw[flip] = -yaw[flip]
    pos *= rng.uniform(*augment.scale, count)[:, None, None, None]
    if augment.arm_swing_rate > 0:  # drawn only when asked: runs without it draw as before
        for arms in [(arm,) for arm in ARMS] if augment.arm_swing_each else [ARMS]:
            swung = rng.random(count) < augment.arm_swing_rate
            pos[swung] = swing_arms(pos[swung], rng, augment.arm_swing_turn, arms)
    turned = rng.random(count) < augment.yaw_noise_rate
    yaw += np.where(turned, rng.normal(0.0, augment.yaw_noise, count), 0.0)[:, None]
    points = pos[:, :, TRACKED_INDEX]
    present = np.zeros((count, NUM_SLOTS), dtype=bool)
    present[:, : len(REQUIRED)] = True
    some = rng.random(count) < augment.optional_rate
    present[:, len(REQUIRED) :] = some[:, None] & (rng.random((count, len(OPTIONAL))) < 0.5)
    points[~np.broadcast_to(present[:, None], points.shape[:3])] = np.nan
    if augment.tracker_noise > 0:  # drawn last: the other draws are those of a run without noise
        points += rng.normal(0.0, augment.tracker_noise, points.shape)
    return points, yaw, pos[:, -1]
