"""HumanML3D (Guo et al., CVPR 2022) single-person clips, read from its published layout.

Layout (as produced by the HumanML3D repository's scripts)::

    <root>/new_joints/<id>.npy        (T, 22, 3) float, SMPL joints, metres, Y up, floor at y=0
    <root>/new_joint_vecs/<id>.npy    (T-1, 263) float features (one fewer row: they hold velocities)
    <root>/texts/<id>.txt             lines "caption#tok/POS tok/POS ...#start#end"
    <root>/{train,val,test,all}.txt   ids, one per line (mirrored clips are ids starting with "M")

Facts this loader relies on: 20 fps; joints are already Y up, facing +Z in the first frame and on
the floor, so no axis change or floor shift is applied; `start`/`end` are seconds, and 0.0/0.0 (or
NaN, written "nan") means the caption describes the whole clip, otherwise only [start, end).
Clips are resampled to 30 fps. The 263-d vectors are not used (molam_ros builds its own 262-d
features), but their length is checked against the joints because a mismatch means the two folders
come from different processing runs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molam_ros.data._files import check_finite, load_npy, read_lines, read_split, require_file
from molam_ros.data.clip import TARGET_FPS, MotionClip
from molam_ros.data.errors import DatasetFormatError
from molam_ros.motion.resample import resample_positions
from molam_ros.motion.skeleton import NUM_JOINTS

SOURCE_FPS = 20.0
SPLITS = ("train", "val", "test", "all")
FEATURE_DIM = 263


@dataclass(frozen=True)
class Caption:
    """One line of a HumanML3D text file. `start`/`end` are seconds; both None for the whole clip."""

    text: str
    tokens: tuple[str, ...]
    start: float | None
    end: float | None


def parse_text_file(path: str | Path) -> list[Caption]:
    """Parse `caption#tokens#start#end` lines; a malformed line raises naming file and line."""
    path = Path(path)
    out: list[Caption] = []
    for i, line in enumerate(read_lines(path, "caption file"), start=1):
        # rsplit: the caption is free text, the last three fields never contain '#'.
        parts = line.rsplit("#", 3)
        if len(parts) != 4 or not parts[0].strip():
            raise DatasetFormatError(path, f"line {i}: expected 'caption#tokens#start#end', got {line!r}")
        caption, tokens, start_s, end_s = parts
        try:
            start, end = float(start_s), float(end_s)
        except ValueError as exc:
            raise DatasetFormatError(path, f"line {i}: start/end {start_s!r}/{end_s!r} not numbers") from exc
        start = 0.0 if math.isnan(start) else start
        end = 0.0 if math.isnan(end) else end
        if start < 0 or end < 0 or (end != 0.0 and end <= start):
            raise DatasetFormatError(path, f"line {i}: bad time range {start}..{end} s")
        whole = start == 0.0 and end == 0.0
        out.append(
            Caption(
                caption.strip(),
                tuple(tokens.split()),
                None if whole else start,
                None if whole else end,
            )
        )
    if not out:
        raise DatasetFormatError(path, "caption file has no captions")
    return out


class HumanML3D:
    """Reader of a local HumanML3D copy.

    `load(id)` gives the whole clip at 30 fps with its whole-clip captions in `texts` and the
    captions of sub-segments in `meta["segments"]` (frame ranges at 30 fps). `iter_split` yields,
    like HumanML3D's own data loader, the whole clip (if it has whole-clip captions) and one clip per
    captioned segment, lazily.
    """

    def __init__(self, root: str | Path, fps: float = TARGET_FPS) -> None:
        self.root = Path(root)
        self.fps = float(fps)
        if not self.root.is_dir():
            raise DatasetFormatError(self.root, "HumanML3D root directory does not exist")

    def split_ids(self, split: str) -> list[str]:
        """Ids listed in `<root>/<split>.txt`."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        return read_split(self.root / f"{split}.txt")

    def load_joints(self, clip_id: str) -> np.ndarray:
        """(T, 22, 3) float32 joints at the source 20 fps, checked against the feature file."""
        path = self.root / "new_joints" / f"{clip_id}.npy"
        joints = load_npy(path, "joint positions")
        if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3) or joints.shape[0] < 2:
            raise DatasetFormatError(path, f"expected (T>=2, {NUM_JOINTS}, 3) joints, got {joints.shape}")
        joints = np.asarray(joints, dtype=np.float32)
        check_finite(joints, path, "joint positions")
        vec_path = self.root / "new_joint_vecs" / f"{clip_id}.npy"
        if vec_path.exists():
            vecs = load_npy(vec_path, "joint feature vectors", mmap=True)
            t = joints.shape[0]
            if vecs.ndim != 2 or vecs.shape[1] != FEATURE_DIM:
                raise DatasetFormatError(vec_path, f"expected (T, {FEATURE_DIM}) features, got {vecs.shape}")
            if vecs.shape[0] not in (t, t - 1):
                raise DatasetFormatError(
                    vec_path,
                    f"{vecs.shape[0]} feature rows but new_joints/{clip_id}.npy has {t} frames "
                    f"(expected {t - 1} or {t}): the two folders come from different runs",
                )
        return joints

    def load(self, clip_id: str) -> MotionClip:
        """The whole clip, resampled to `fps`, with whole-clip captions and segment captions in meta."""
        joints = self.load_joints(clip_id)
        text_path = require_file(self.root / "texts" / f"{clip_id}.txt", "caption file")
        captions = parse_text_file(text_path)
        pos = resample_positions(joints, SOURCE_FPS, self.fps, axis=0).astype(np.float32)
        segments: dict[tuple[int, int], list[str]] = {}
        for c in captions:
            if c.start is None:
                continue
            f0 = int(round(c.start * self.fps))
            f1 = min(int(round(c.end * self.fps)), pos.shape[0])
            if f1 - f0 >= 2:
                segments.setdefault((f0, f1), []).append(c.text)
        meta = {
            "source": "humanml3d",
            "id": clip_id,
            "source_fps": SOURCE_FPS,
            "mirrored": clip_id.startswith("M"),
            "segments": [{"start_frame": a, "end_frame": b, "texts": t} for (a, b), t in segments.items()],
            "tokens": [c.tokens for c in captions if c.start is None],
        }
        texts = [c.text for c in captions if c.start is None]
        return MotionClip(name=clip_id, positions=pos[None], fps=self.fps, texts=texts, meta=meta)

    def segments(self, clip: MotionClip) -> list[MotionClip]:
        """Sub-clips for the captioned segments of a clip returned by `load`."""
        out = []
        for seg in clip.meta.get("segments", []):
            a, b = seg["start_frame"], seg["end_frame"]
            meta = dict(clip.meta, segments=[], parent=clip.name, start_frame=a, end_frame=b)
            out.append(
                MotionClip(
                    name=f"{clip.name}#{a}#{b}",
                    positions=clip.positions[:, a:b],
                    fps=clip.fps,
                    texts=list(seg["texts"]),
                    meta=meta,
                )
            )
        return out

    def iter_split(self, split: str, segments: bool = True) -> Iterator[MotionClip]:
        """Lazily yield the clips of a split (whole clips with captions, then their segments)."""
        for clip_id in self.split_ids(split):
            clip = self.load(clip_id)
            if clip.texts:
                yield clip
            if segments:
                yield from self.segments(clip)
