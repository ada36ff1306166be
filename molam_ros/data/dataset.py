"""The on-disk layout of a molam dataset, and writing and reading it.

A dataset directory written by `molam data synth` (or by converting any loader's clips):

    DIR/dataset.json         manifest: format, version, fps, clip count, how it was made
    DIR/motions/<id>.npz     positions (P, T, 22, 3) float32, world metres, Y up, 30 fps
    DIR/texts/<id>.txt       one caption per line
    DIR/meta/<id>.json       facts about the clip (interaction, style, actor, segments, ...)
    DIR/splits/{train,val,test}.txt   clip ids, one per line
    DIR/stats.npz            mean/std of the clips' features (default layout, motion/layout.py) over the
                             train split, or over every clip when the dataset has no train split

Only joint positions are stored: rotations are derived by inverse kinematics when features are
computed, exactly as for a live pose stream that carries only positions, so the features a model
is trained on and the features it sees at run time come from the same computation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from molam_ros.data.clip import MotionClip
from molam_ros.data.errors import DatasetFormatError
from molam_ros.motion.layout import DEFAULT_LAYOUT, Layout, pair_to_features
from molam_ros.motion.normalization import FeatureStats

log = logging.getLogger(__name__)

FORMAT_NAME = "molam-dataset"
FORMAT_VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitFractions:
    """Share of clips held out for validation and test; the rest trains."""

    val: float = 0.05
    test: float = 0.05

    def assign(self, clip_id: str) -> str:
        """Split of a clip, from a hash of its id so it never changes when the dataset grows."""
        u = int(hashlib.sha256(clip_id.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        if u < self.test:
            return "test"
        if u < self.test + self.val:
            return "val"
        return "train"


def _fill_empty_splits(assignment: dict[str, str], edit_of: dict[str, str] | None = None) -> bool:
    """Make sure no split is empty; returns whether any clip moved.

    Hash splits of a small dataset can leave a split empty, and an evaluation on no clips would
    silently report nothing. With fewer than three clips everything trains. An edit variant
    (`edit_of`: variant id -> source id) moves with its source, never alone.
    """
    moved = False
    if len(assignment) < 3:
        for clip_id, split in assignment.items():
            moved |= split != "train"
            assignment[clip_id] = "train"
        return moved
    edit_of = edit_of or {}
    ids = sorted(i for i in assignment if i not in edit_of)
    for split in SPLITS:
        if split not in assignment.values():
            donor_split = (
                "train" if split != "train" else max(("val", "test"), key=list(assignment.values()).count)
            )
            candidates = [i for i in reversed(ids) if assignment[i] == donor_split]
            if not candidates or (edit_of and len(candidates) < 2):
                continue  # moving the donor split's only clip and its variants would empty it
            donor = candidates[0]
            for clip_id in (donor, *(v for v, src in edit_of.items() if src == donor)):
                assignment[clip_id] = split
            moved = True
    return moved


def write_clip(root: Path, clip: MotionClip) -> None:
    """Write one clip's motion, texts and meta into the dataset directory `root`."""
    root = Path(root)
    for sub in ("motions", "texts", "meta"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    np.savez(root / "motions" / f"{clip.name}.npz", positions=clip.positions.astype(np.float32), fps=clip.fps)
    (root / "texts" / f"{clip.name}.txt").write_text("".join(t.strip() + "\n" for t in clip.texts))
    (root / "meta" / f"{clip.name}.json").write_text(json.dumps(clip.meta, indent=1, default=_json_default))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"cannot store {type(o).__name__} in clip meta")


def clip_features(clip: MotionClip, layout: str | Layout = DEFAULT_LAYOUT) -> np.ndarray:
    """The (P, T, F) features of a clip in `layout` (default: the bounded ego layout, 268 numbers)."""
    features, _ = pair_to_features(clip.positions, layout=layout)
    return features


def write_dataset(
    root: Path,
    clips: Iterable[MotionClip],
    *,
    total: int | None = None,
    manifest: dict[str, Any] | None = None,
    splits: SplitFractions = SplitFractions(),  # noqa: B008 (frozen dataclass, safe default)
    split_of: Callable[[MotionClip], str] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write clips, splits, normalisation statistics and the manifest; returns the manifest.

    Statistics are accumulated over the train split while the clips stream past, so a large
    dataset is never held in memory. `split_of` keeps a source's published split (imports of
    real datasets, so results stay comparable with papers); otherwise ids are hashed into splits.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    assignment: dict[str, str] = {}
    edit_of: dict[str, str] = {}  # edit variant id -> source id (edit_variants.py)
    interactions: dict[str, int] = {}
    frames = 0

    def train_features() -> Iterator[np.ndarray]:
        nonlocal frames
        for clip in tqdm(clips, total=total, desc=f"writing {root.name}", unit="clip", disable=not progress):
            if clip.name in assignment:
                raise ValueError(f"duplicate clip id {clip.name!r}")
            write_clip(root, clip)
            split = _split_for(clip, assignment, splits, split_of)
            source = clip.meta.get("edit_of")
            if isinstance(source, str) and source in assignment:
                edit_of[clip.name] = source
            if split not in SPLITS:
                raise ValueError(f"clip {clip.name!r}: unknown split {split!r}")
            assignment[clip.name] = split
            kind = str(clip.meta.get("interaction", "unknown"))
            interactions[kind] = interactions.get(kind, 0) + 1
            frames += clip.num_frames
            if assignment[clip.name] == "train":
                yield clip_features(clip).reshape(-1, DEFAULT_LAYOUT.dim)

    stream = train_features()
    first = next(stream, None)  # None: no clip hashed into train (tiny dataset), all written anyway
    stats = FeatureStats.from_features(itertools.chain([first], stream)) if first is not None else None
    if not assignment:
        raise ValueError("no clips to write")
    if _fill_empty_splits(assignment, edit_of) or stats is None:
        # Small datasets, and imports that keep a published split without a train part (an
        # evaluation-only copy), get here; re-reading their clips is cheap enough.
        source = [i for i, s in assignment.items() if s == "train"]
        if not source:
            source = sorted(assignment)
            log.info("%s has no train split: feature statistics come from all %d clips", root, len(source))
        stats = FeatureStats.from_features(
            clip_features(load_clip(root, i)).reshape(-1, DEFAULT_LAYOUT.dim) for i in source
        )
    stats.save(root / "stats.npz")
    (root / "splits").mkdir(exist_ok=True)
    for split in SPLITS:
        ids = sorted(i for i, s in assignment.items() if s == split)
        (root / "splits" / f"{split}.txt").write_text("".join(i + "\n" for i in ids))
    info = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "fps": 30.0,
        "count": len(assignment),
        "frames": frames,
        "splits": {s: sum(1 for v in assignment.values() if v == s) for s in SPLITS},
        "interactions": dict(sorted(interactions.items())),
        **({"edit_variants": len(edit_of)} if edit_of else {}),
        **(manifest or {}),
    }
    (root / "dataset.json").write_text(json.dumps(info, indent=1))
    return info


def _split_for(
    clip: MotionClip, assignment: dict[str, str], splits: SplitFractions,
    split_of: Callable[[MotionClip], str] | None,
) -> str:  # fmt: skip
    """The split of a clip being written: an edit variant's is its source's (no train/test leakage)."""
    source = clip.meta.get("edit_of")
    if isinstance(source, str) and source in assignment:
        return assignment[source]
    if split_of is not None:
        return split_of(clip)
    return splits.assign(source if isinstance(source, str) else clip.name)


def load_clip(root: Path, clip_id: str) -> MotionClip:
    """One clip of the dataset directory `root` by id, with its texts and meta."""
    root = Path(root)
    path = root / "motions" / f"{clip_id}.npz"
    if not path.is_file():
        raise DatasetFormatError(path, f"missing motion file for clip {clip_id!r}")
    try:
        with np.load(path) as z:
            positions = z["positions"]
            fps = float(z["fps"]) if "fps" in z else 30.0
    except (OSError, ValueError, KeyError, EOFError) as e:
        raise DatasetFormatError(path, f"unreadable motion file ({e})") from e
    if positions.ndim != 4 or positions.shape[-2:] != (22, 3):
        raise DatasetFormatError(path, f"positions have shape {positions.shape}, expected (P, T, 22, 3)")
    text_path = root / "texts" / f"{clip_id}.txt"
    texts = (
        [t.strip() for t in text_path.read_text().splitlines() if t.strip()] if text_path.is_file() else []
    )
    meta_path = root / "meta" / f"{clip_id}.json"
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except json.JSONDecodeError as e:
        raise DatasetFormatError(meta_path, f"not valid JSON ({e})") from e
    try:
        return MotionClip(name=clip_id, positions=positions, fps=fps, texts=texts, meta=meta)
    except ValueError as e:
        raise DatasetFormatError(path, str(e)) from e


class MotionDataset:
    """Read access to a dataset directory written by `write_dataset`."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        manifest = self.root / "dataset.json"
        if not manifest.is_file():
            raise DatasetFormatError(manifest, f"missing; is {self.root} a molam dataset (molam data synth)?")
        try:
            self.manifest: dict[str, Any] = json.loads(manifest.read_text())
        except json.JSONDecodeError as e:
            raise DatasetFormatError(manifest, f"not valid JSON ({e})") from e
        if self.manifest.get("format") != FORMAT_NAME:
            raise DatasetFormatError(
                manifest, f"format is {self.manifest.get('format')!r}, expected {FORMAT_NAME!r}"
            )

    def ids(self, split: str | None = None) -> list[str]:
        """Clip ids of one split, or of all splits when `split` is None."""
        if split is None:
            return sorted(i for s in SPLITS for i in self.ids(s))
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        path = self.root / "splits" / f"{split}.txt"
        if not path.is_file():
            raise DatasetFormatError(path, "missing split file")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]

    def load(self, clip_id: str) -> MotionClip:
        """One clip by id, with its texts and meta."""
        return load_clip(self.root, clip_id)

    def iter_split(self, split: str | None = None) -> Iterator[MotionClip]:
        for clip_id in self.ids(split):
            yield self.load(clip_id)

    @property
    def label(self) -> str:
        """What the dataset is, for tables: its manifest's name, the generator, or the directory."""
        name = self.manifest.get("name")
        if isinstance(name, str) and name:
            return f"{name}: {self.root.name}" if name != self.root.name else name
        if self.manifest.get("source") == "synth":
            return f"generator: {self.root.name}"
        return str(self.manifest.get("source") or self.root.name)

    def stats(self) -> FeatureStats:
        return FeatureStats.load(self.root / "stats.npz")

    def __len__(self) -> int:
        return len(self.ids())
