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

from molam_ros.data.dataset import MotionDataset
from molam_ros.data.real_clips import mirror
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
    """

    optional_rate: float = 0.5
    yaw_noise: float = 0.3
    yaw_noise_rate: float = 0.5
    scale: tuple[float, float] = (0.9, 1.1)
    mirror: bool = True
    tracker_noise: float = 0.0
    reverse_rate: float = 0.0


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
