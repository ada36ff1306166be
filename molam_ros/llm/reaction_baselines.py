"""Reaction error: MPJPE of a generated reactor, next to two trivial reactors measured on the same clip.

Given person a's motion the model generates the reactor (person b). `reaction_errors` scores it by
MPJPE against the recorded reactor, next to `still_reactor` (b stands still in its first pose) and
`mirror_reactor` (b mirrors a), so a figure in millimetres says whether the model beats doing
nothing or copying the partner. numpy only.

    errors = reaction_errors(pos_a, ref_b, pred_b)           # {"model": mm, "still": mm, "mirror": mm}
"""

from __future__ import annotations

import numpy as np

from molam_ros.motion.canonical import facing_direction
from molam_ros.motion.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS

J = JOINT_INDEX


def _check_motion(positions: np.ndarray, name: str, ndim: int = 3) -> np.ndarray:
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != ndim or pos.shape[-2:] != (NUM_JOINTS, 3):
        shape = "(T, 22, 3)" if ndim == 3 else "(22, 3)" if ndim == 2 else f"{ndim}-d (..., 22, 3)"
        raise ValueError(f"{name}: expected {shape} joint positions, got {pos.shape}")
    if ndim == 3 and pos.shape[0] == 0:
        raise ValueError(f"{name}: no frames")
    if not np.all(np.isfinite(pos)):
        raise ValueError(f"{name}: positions contain NaN or infinite values")
    return pos


def mpjpe_mm(pred: np.ndarray, ref: np.ndarray) -> float:
    """Mean per-joint position error in millimetres over the common length of two motions.

    pred, ref: (T, 22, 3) or (P, T, 22, 3) joint positions in metres, in one frame shared by both;
    the longer one is cropped to the shorter one's frames (a generated reaction may stop early).

    Frame: the value is the one in person a's first-frame canonical frame (`canonical.py`). That
    map is rigid (a yaw and a translation), and a rigid map applied to both motions leaves every
    joint distance unchanged, so world positions and canonical positions give the same number:
    where the scene stands in the world does not matter. There is deliberately no per-person root
    or Procrustes alignment, so a reactor in the right pose at the wrong place relative to person a
    is penalised: where b stands relative to a is part of a correct reaction.
    """
    p, r = np.asarray(pred, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if p.ndim != r.ndim or p.ndim not in (3, 4) or p.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected two (T, 22, 3) or (P, T, 22, 3) motions, got {p.shape} and {r.shape}")
    if p.shape[:-3] != r.shape[:-3]:
        raise ValueError(f"different numbers of people: {p.shape} and {r.shape}")
    T = min(p.shape[-3], r.shape[-3])
    if T == 0:
        raise ValueError("a motion has no frames")
    p, r = p[..., :T, :, :], r[..., :T, :, :]
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(r))):
        raise ValueError("positions contain NaN or infinite values")
    return float(np.linalg.norm(p - r, axis=-1).mean() * 1000.0)


def still_reactor(pos_b_first_frame: np.ndarray, T: int) -> np.ndarray:
    """Baseline: the reactor holds its first pose for T frames, (T, 22, 3).

    The weakest sensible answer a live system can give, knowing only where the reactor stands at
    the start; any model worth running must beat it.
    """
    b0 = _check_motion(pos_b_first_frame, "pos_b_first_frame", ndim=2)
    if T < 1:
        raise ValueError(f"T must be at least 1, got {T}")
    return np.repeat(b0[None], int(T), axis=0)


def _swap_side(name: str) -> str:
    if name.startswith("left_"):
        return "right_" + name[len("left_") :]
    if name.startswith("right_"):
        return "left_" + name[len("right_") :]
    return name


# Joint j of a mirror image is the reflection of joint MIRROR_JOINTS[j] (left and right exchanged).
MIRROR_JOINTS: tuple[int, ...] = tuple(J[_swap_side(n)] for n in JOINT_NAMES)


def mirror_plane(root_a: np.ndarray, root_b: np.ndarray, facing_a: np.ndarray) -> tuple[np.ndarray, float]:
    """(unit normal n, offset c) of the vertical mirror plane {p : n . p = c} between two people.

    The plane bisects the horizontal segment from a's root to b's root at right angles. When the
    two roots are at the same horizontal place, the normal is a's facing direction (the plane then
    passes through a, and the mirror image overlaps a).
    """
    ra, rb = np.asarray(root_a, dtype=np.float64), np.asarray(root_b, dtype=np.float64)
    n = rb - ra
    n[1] = 0.0
    if np.linalg.norm(n) < 1e-6:
        n = np.asarray(facing_a, dtype=np.float64).copy()
        n[1] = 0.0
        if np.linalg.norm(n) < 1e-6:
            n = np.array([0.0, 0.0, 1.0])
    n = n / np.linalg.norm(n)
    return n, float(n @ (0.5 * (ra + rb)))


def mirror_reactor(pos_a: np.ndarray, pos_b_first_frame: np.ndarray) -> np.ndarray:
    """Baseline: the reactor is person a's mirror image, (T, 22, 3) for a's (T, 22, 3).

    Exact definition (what a live system knows: a's motion so far and where b stands at frame 0):
    a vertical mirror stands halfway between a's root and b's root at frame 0, at right angles to
    the line joining them (`mirror_plane`). Every frame of a is reflected in it,
    p' = p - 2 (n . p - c) n, and left and right joint labels are exchanged (`MIRROR_JOINTS`), so
    the result is a proper skeleton, not an inside-out one: when a raises the right hand, the image
    raises its left hand, the one on the same side as seen by a, as in a mirror.

    Consequences, all by construction: at frame 0 the image's root is exactly at b's root in the
    horizontal plane (the reflection of a's root in the bisector), at a's root height; a step of a
    towards b is a step of the image towards a, a step to a's left is a step to the image's right;
    if a faces b, the image faces a. The image has person a's body: its bone lengths are a's with
    left and right exchanged (equal to a's for a symmetric skeleton), and it stands on a's floor.
    b's first pose is used only for where b stands; b's own height and pose are not (no retargeting).
    """
    a = _check_motion(pos_a, "pos_a")
    b0 = _check_motion(pos_b_first_frame, "pos_b_first_frame", ndim=2)
    n, c = mirror_plane(a[0, J["pelvis"]], b0[J["pelvis"]], facing_direction(a[0]))
    reflected = a - 2.0 * (a @ n - c)[..., None] * n
    return reflected[:, MIRROR_JOINTS]


def reaction_errors(
    pos_a: np.ndarray, ref_b: np.ndarray, pred_b: np.ndarray | None = None
) -> dict[str, float]:
    """MPJPE (mm) against the recorded reactor of the model's reactor and of both baselines.

    pos_a, ref_b, pred_b: (T, 22, 3) metres, all in one frame (world, or a's canonical frame).
    The baselines are built from pos_a and ref_b's first frame only. Keys: "still", "mirror", and
    "model" when pred_b is given.
    """
    a, ref = _check_motion(pos_a, "pos_a"), _check_motion(ref_b, "ref_b")
    out = {
        "still": mpjpe_mm(still_reactor(ref[0], ref.shape[0]), ref),
        "mirror": mpjpe_mm(mirror_reactor(a, ref[0]), ref),
    }
    if pred_b is not None:
        out["model"] = mpjpe_mm(_check_motion(pred_b, "pred_b"), ref)
    return out
