"""InterHuman (Liang et al., InterGen, IJCV 2024) two-person clips, read from its published layout.

Layout::

    <root>/annots/<id>.txt                         captions, one per line
    <root>/motions_processed/person1/<id>.npy      (T, 492) float32, 30 fps
    <root>/motions_processed/person2/<id>.npy      (T, 492)
    <root>/split/{train,val,test,ignore_list}.txt  ids, one per line

Columns of a (T, 492) row: [0:186] 62 joint positions x 3 (SMPL-X joint order; the first 22 are the
SMPL body joints 0..21 that molam_ros uses), [186:492] 51 joint rotations in 6D (the first 21 are the
body joints 1..21, i.e. SMPL `body_pose`, local to their parents; the root's orientation is NOT in
this block).

Axes: the world is Z up. It is turned to Y up with the proper rotation (x, y, z) -> (x, z, -y), the
same `trans_matrix` InterGen applies (a rotation of -90 degrees about X, determinant +1), so
handedness and the person's left/right are preserved; a mirror such as swapping y and z would turn
every left hand into a right hand. The clip is then put on the floor: the lowest joint of both
people over the whole clip is moved to y=0 (one shared floor, so their relative height is kept).

Rotations: the 6D layout (first two columns, ours; or first two rows, pytorch3d's) is not stated by
the dataset, so every candidate is tried and the one whose forward kinematics reproduces the clip's
own bone directions is kept; the root rotation is derived from the positions (best rigid fit of the
pelvis' children, Kabsch). If no candidate fits, `local_quats` is left None and the reason is put in
`meta["rotations"]`, and downstream IK derives rotations from positions instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from molam_ros.data._files import check_finite, floor_offset, load_npy, read_lines, read_split
from molam_ros.data.clip import MotionClip
from molam_ros.data.errors import DatasetFormatError
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.rotations import matrix_to_quat, quat_normalize, rot6d_to_matrix
from molam_ros.motion.skeleton import (
    CHILDREN,
    NUM_JOINTS,
    PARENTS,
    bone_lengths,
    scaled_offsets,
)

FPS = 30.0
ROW_DIM = 492
NUM_SOURCE_JOINTS = 62
POS_COLS = slice(0, NUM_JOINTS * 3)  # 0:66
ROT_COLS = slice(NUM_SOURCE_JOINTS * 3, NUM_SOURCE_JOINTS * 3 + (NUM_JOINTS - 1) * 6)  # 186:312
SPLITS = ("train", "val", "test")

# Z-up -> Y-up: (x, y, z) -> (x, z, -y). Rows are the new axes in old coordinates.
Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# Mean cosine between FK and observed bone directions above which the rotation block is trusted.
# A correct decoding scores about 0.97-1.0 (the residual is body shape); a transposed one bends
# knees and elbows the wrong way and scores far lower.
ROTATION_FIT_MIN = 0.9


def zup_to_yup(x: np.ndarray) -> np.ndarray:
    """Rotate points (..., 3) from a Z-up world into the Y-up world, keeping handedness."""
    return np.asarray(x) @ Z_UP_TO_Y_UP.T


def kabsch(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Rotations (T, 3, 3) that best map vectors src (K, 3) onto dst (T, K, 3) (least squares)."""
    h = np.einsum("ki,tkj->tij", src, dst)  # (T, 3, 3) covariance
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(np.einsum("tij,tjk->tik", u, vt)))
    fix = np.ones(u.shape[:-1])
    fix[:, -1] = d
    return np.einsum("tji,tj,tkj->tik", vt, fix, u)  # V diag(1,1,d) U^T


def root_rotation_from_positions(positions: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """World rotation (T, 3, 3) of the pelvis: the rigid fit of its children's rest offsets."""
    kids = list(CHILDREN[0])
    observed = positions[:, kids] - positions[:, :1]
    return kabsch(offsets[kids], observed)


def bone_direction_fit(local_quats: np.ndarray, positions: np.ndarray, offsets: np.ndarray) -> float:
    """Mean cosine between bone directions from FK and those observed, over all bones and frames."""
    fk, _ = forward_kinematics(local_quats, positions[:, 0], offsets)
    parents = np.array(PARENTS[1:])
    a = fk[:, 1:] - fk[:, parents]
    b = positions[:, 1:] - positions[:, parents]
    cos = np.sum(a * b, -1) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1), 1e-9)
    return float(np.mean(cos))


def decode_rotations(rot6d: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray | None, str, float]:
    """Local quaternions (T, 22, 4) from the 6D block and Y-up positions, or None if none fits.

    Returns (quats or None, the layout chosen, its fit score).
    """
    offsets = scaled_offsets(bone_lengths(positions))
    root = matrix_to_quat(root_rotation_from_positions(positions.astype(np.float64), offsets))
    cols = rot6d_to_matrix(rot6d.astype(np.float64))  # (T, 21, 3, 3) from the first two columns
    m = Z_UP_TO_Y_UP
    candidates = {
        "columns": cols,
        "rows": np.swapaxes(cols, -1, -2),
        "columns_zup": m @ cols @ m.T,
        "rows_zup": m @ np.swapaxes(cols, -1, -2) @ m.T,
    }
    best: tuple[np.ndarray | None, str, float] = (None, "none", -1.0)
    for name, mats in candidates.items():
        q = np.concatenate([root[:, None], matrix_to_quat(mats)], axis=1)
        score = bone_direction_fit(q, positions, offsets)
        if score > best[2]:
            best = (q, name, score)
    if best[2] < ROTATION_FIT_MIN:
        return None, best[1], best[2]
    return quat_normalize(best[0]), best[1], best[2]


class InterHuman:
    """Reader of a local InterHuman copy: split ids, one clip by id, and a lazy split iterator."""

    def __init__(self, root: str | Path, use_rotations: bool = True) -> None:
        self.root = Path(root)
        self.use_rotations = use_rotations
        if not self.root.is_dir():
            raise DatasetFormatError(self.root, "InterHuman root directory does not exist")

    def ignore_list(self) -> set[str]:
        """Ids the authors flagged as broken (`split/ignore_list.txt`, optional)."""
        path = self.root / "split" / "ignore_list.txt"
        return set(read_split(path)) if path.exists() else set()

    def split_ids(self, split: str) -> list[str]:
        """Ids of `split/<split>.txt` minus the ignore list."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
        ignored = self.ignore_list()
        return [i for i in read_split(self.root / "split" / f"{split}.txt") if i not in ignored]

    def _load_person(self, clip_id: str, person: int) -> tuple[np.ndarray, np.ndarray, Path]:
        path = self.root / "motions_processed" / f"person{person}" / f"{clip_id}.npy"
        arr = load_npy(path, f"person{person} motion")
        if arr.ndim != 2 or arr.shape[1] != ROW_DIM or arr.shape[0] < 1:
            raise DatasetFormatError(path, f"expected (T, {ROW_DIM}) rows, got shape {arr.shape}")
        arr = np.asarray(arr, dtype=np.float32)
        check_finite(arr[:, : ROT_COLS.stop], path, "body positions/rotations")
        pos = zup_to_yup(arr[:, POS_COLS].reshape(-1, NUM_JOINTS, 3))
        rot6d = arr[:, ROT_COLS].reshape(-1, NUM_JOINTS - 1, 6)
        return pos, rot6d, path

    def load(self, clip_id: str) -> MotionClip:
        """Both people of one clip, Y up, on the floor, 30 fps, with captions."""
        texts = read_lines(self.root / "annots" / f"{clip_id}.txt", "caption file")
        if not texts:
            raise DatasetFormatError(self.root / "annots" / f"{clip_id}.txt", "caption file is empty")
        p1, r1, path1 = self._load_person(clip_id, 1)
        p2, r2, path2 = self._load_person(clip_id, 2)
        if p1.shape[0] != p2.shape[0]:
            raise DatasetFormatError(path2, f"{p2.shape[0]} frames but person1 has {p1.shape[0]}")
        pos = np.stack([p1, p2])
        pos[..., 1] -= floor_offset(pos)
        meta = {"source": "interhuman", "id": clip_id, "source_fps": FPS, "up_axis_source": "z"}
        quats = None
        if self.use_rotations:
            decoded = [decode_rotations(r, p) for r, p in ((r1, pos[0]), (r2, pos[1]))]
            fits = [round(d[2], 4) for d in decoded]
            if all(d[0] is not None for d in decoded):
                quats = np.stack([d[0] for d in decoded])
                meta["rotations"] = (
                    f"6D block decoded as {decoded[0][1]}/{decoded[1][1]}; root fit to positions"
                )
            else:
                meta["rotations"] = "6D block did not match the positions; left to IK"
            meta["rotation_fit"] = fits
        return MotionClip(name=clip_id, positions=pos, fps=FPS, texts=texts, meta=meta, local_quats=quats)

    def iter_split(self, split: str) -> Iterator[MotionClip]:
        """Lazily yield the clips of a split."""
        for clip_id in self.split_ids(split):
            yield self.load(clip_id)
