"""Leave-source-out folds of the real clips: a validation set for choosing a completion recipe.

The real dataset (`molam data real`) has 8 held-out test clips and 1 validation clip. A recipe
chosen on the test clips would be tuned to them, and one clip is too little to choose by. The
test clips are motion the training sources show little of (a get-up from lying on the back,
kicks, a spin kick), so what a recipe has to be good at is motion it has not seen; a fold
measures that on the training sources themselves:

- a fold holds out whole training sources (`FOLDS`): every augmentation of them (`<source>_augNN`)
  leaves the train split, so the model never sees them;
- the held-out sources, as recorded (no augmentation, like the test clips), are the fold's val
  split; the fold has no test split.

A fold is a dataset directory like any other (data/dataset.py): its train clips are symbolic links
to the real dataset's files, its val clips are written. Train on it in place of the real dataset
and measure with `molam completion eval --split val`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import MotionDataset, write_clip
from molam_ros.data.real_clips import real_sources

# Two disjoint folds of 7 of the 23 training sources each, each mixing DeepMimic clips (a get-up,
# a dance, a punch / a roll, a spin, a jump, a crawl) with CMU / boxing windows, as the test split
# does. Sources with a sibling left in training (turn_left0 / turn_right0, walk / 0walk_forward)
# are in too: the test split has such pairs (turn_right1, the BVH windows).
FOLDS: dict[str, tuple[str, ...]] = {
    "A": (
        "humanoid3d_getup_facedown",
        "humanoid3d_dance_a",
        "humanoid3d_punch",
        "walker_turn_left0",
        "01_01_w1",
        "01_03_w3",
        "Boxing_Toes_w1",
    ),
    "B": (
        "humanoid3d_roll",
        "humanoid3d_spin",
        "humanoid3d_jump",
        "humanoid3d_crawl",
        "humanoid3d_walk",
        "01_03_w1",
        "Boxing_Toes_w3",
    ),
}


def source_of(clip_id: str) -> str:
    """The source clip of a real training clip id (`<source>_augNN` -> `<source>`)."""
    head, sep, tail = clip_id.rpartition("_aug")
    return head if sep and tail.isdigit() else clip_id


def write_source_fold(
    real: str | Path,
    held_out: Sequence[str],
    out: str | Path,
    *,
    recorded: Mapping[str, Callable[[], MotionClip]] | None = None,
) -> dict[str, Any]:
    """Write the fold of the real dataset at `real` that holds out the sources `held_out` (module
    docstring) into `out`; returns its manifest. A name that is not a training source is an error.
    `recorded`: how to load each source as recorded (default: real_clips.real_sources())."""
    real, out = Path(real), Path(out)
    ds = MotionDataset(real)
    train_ids = ds.ids("train")
    sources = {source_of(i) for i in train_ids}
    unknown = sorted(set(held_out) - sources)
    if unknown:
        raise ValueError(f"not training sources of {real}: {unknown}; choose from {sorted(sources)}")
    held = set(held_out)
    keep = [i for i in train_ids if source_of(i) not in held]
    (out / "motions").mkdir(parents=True, exist_ok=True)
    for clip_id in keep:
        link = out / "motions" / f"{clip_id}.npz"
        link.unlink(missing_ok=True)
        link.symlink_to((real / "motions" / f"{clip_id}.npz").resolve())
    if recorded is None:
        recorded = {s.name: s.load for s in real_sources()}
    missing = sorted(held - set(recorded))
    if missing:
        raise ValueError(f"sources {missing} are not installed here (real_clips.real_sources)")
    val = sorted(held)
    for name in val:
        clip = recorded[name]()  # as recorded, as real_clips writes the test clips
        meta = {**clip.meta, "split": "val", "source_clip": name}
        write_clip(out, MotionClip(name, clip.positions, fps=clip.fps, texts=clip.texts, meta=meta))
    (out / "splits").mkdir(exist_ok=True)
    for split, ids in (("train", keep), ("val", val), ("test", [])):
        (out / "splits" / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
    manifest = {
        "format": ds.manifest["format"],
        "version": ds.manifest["version"],
        "fps": ds.manifest.get("fps", 30.0),
        "count": len(keep) + len(val),
        "splits": {"train": len(keep), "val": len(val), "test": 0},
        "name": "real, sources held out",
        "generator": "molam completion fold",
        "fold_of": str(real),
        "held_out_sources": val,
    }
    (out / "dataset.json").write_text(json.dumps(manifest, indent=1))
    return manifest
