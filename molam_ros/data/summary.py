"""A dataset at a glance: what `molam data stats` prints before anyone trains on it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from molam_ros.data.dataset import SPLITS, MotionDataset
from molam_ros.motion.skeleton import JOINT_INDEX


@dataclass
class DatasetSummary:
    """Counts and physical ranges of a dataset (lengths in metres, speeds in m/s, times in s)."""

    root: str
    splits: dict[str, int]
    people: Counter = field(default_factory=Counter)
    interactions: Counter = field(default_factory=Counter)
    styles: Counter = field(default_factory=Counter)
    durations: list[float] = field(default_factory=list)
    heights: list[float] = field(default_factory=list)
    distances: list[float] = field(default_factory=list)
    root_speeds: list[float] = field(default_factory=list)
    captions_per_clip: list[int] = field(default_factory=list)
    lowest_joint: list[float] = field(default_factory=list)


def summarize(dataset: MotionDataset, *, progress: bool = True) -> DatasetSummary:
    """Read every clip once and collect the summary."""
    summary = DatasetSummary(root=str(dataset.root), splits={s: len(dataset.ids(s)) for s in SPLITS})
    head, pelvis = JOINT_INDEX["head"], JOINT_INDEX["pelvis"]
    for clip in tqdm(
        dataset.iter_split(), total=len(dataset), desc="reading", unit="clip", disable=not progress
    ):
        pos = clip.positions  # (P, T, 22, 3)
        summary.people[clip.num_people] += 1
        summary.interactions[str(clip.meta.get("interaction", "unknown"))] += 1
        summary.styles[str(clip.meta.get("style", "unknown"))] += 1
        summary.durations.append(clip.duration)
        summary.captions_per_clip.append(len(clip.texts))
        summary.lowest_joint.append(float(pos[..., 1].min()))
        # Head-joint height above the lowest point of that person, at its tallest (stature ~ +0.1 m).
        summary.heights.extend(
            float((pos[p, :, head, 1] - pos[p, :, :, 1].min()).max()) for p in range(len(pos))
        )
        speed = np.linalg.norm(np.diff(pos[:, :, pelvis, [0, 2]], axis=1), axis=-1) * clip.fps
        summary.root_speeds.append(float(speed.mean()) if speed.size else 0.0)
        if clip.num_people >= 2:
            d = np.linalg.norm(pos[0, :, pelvis, [0, 2]] - pos[1, :, pelvis, [0, 2]], axis=0)
            summary.distances.append(float(d.mean()))
    return summary


def _range(values: list[float], unit: str) -> str:
    if not values:
        return "n/a"
    v = np.asarray(values)
    return f"{v.min():.2f} / {np.median(v):.2f} / {v.max():.2f} {unit} (min / median / max)"


def format_summary(s: DatasetSummary) -> str:
    """Human-readable report."""
    total = sum(s.splits.values())
    lines = [
        f"dataset {s.root}",
        f"  clips           {total} (" + ", ".join(f"{k} {v}" for k, v in s.splits.items()) + ")",
        f"  motion          {sum(s.durations) / 60:.1f} min at 30 fps",
        "  people/clip     " + ", ".join(f"{k}: {v}" for k, v in sorted(s.people.items())),
        f"  clip duration   {_range(s.durations, 's')}",
        f"  head height     {_range(s.heights, 'm')}",
        f"  pelvis distance {_range(s.distances, 'm')}",
        f"  root speed      {_range(s.root_speeds, 'm/s')}",
        f"  lowest joint    {_range(s.lowest_joint, 'm')}",
        f"  captions/clip   {_range([float(c) for c in s.captions_per_clip], '')}",
        f"  interactions    {len(s.interactions)} types",
    ]
    lines += [f"    {k:<24} {v}" for k, v in sorted(s.interactions.items())]
    lines.append(f"  styles          {len(s.styles)}")
    lines += [f"    {k:<24} {v}" for k, v in sorted(s.styles.items())]
    return "\n".join(lines)
