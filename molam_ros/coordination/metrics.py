"""Physical plausibility of a multi-person motion: penetration, foot sliding, floor, facing, distance.

These are the numbers the coordination step (refine.py) is meant to improve and the report
(report.py) prints before and after it. Each measure has a per-frame form (to see where a motion
goes wrong) and a summary; `summarize` collects the summaries into one flat dict.

Bodies are approximated by capsules on the 21 bones of the SMPL skeleton with radii of an adult
(`BONE_RADII`). The capsule surface distance between every bone of one person and every bone of
another is the "distance map" (InterSyn's joint distance map, extended from joints to bone
segments so that a forearm passing through a torso between two joints is seen); a negative entry
is a penetration as deep as its magnitude.

Units: positions are metres, Y up, floor at y = 0, 30 fps (`molam_ros.motion.skeleton`); the
summaries report millimetres, millimetres per frame (x 3 = cm/s at 30 fps), degrees and metres.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from molam_ros.motion.canonical import facing_direction
from molam_ros.motion.features import DEFAULT_CONTACT, ContactConfig, foot_contacts
from molam_ros.motion.skeleton import FOOT_JOINTS, JOINT_INDEX, NUM_JOINTS, PARENTS

J = JOINT_INDEX
_EPS = 1e-9

# One capsule per bone, named by its child joint: (parent, child) joint indices.
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(1, NUM_JOINTS))
BONE_CHILD = np.array([c for _, c in BONES])

# Capsule radius (metres) of the bone ending at each joint: an adult of about 1.7 m. The torso bones
# are fat (chest depth ~0.22 m), the limbs thin; the hands (beyond the wrists) are not modelled, so a
# touch of hands is never a penetration.
_RADIUS = {
    "left_hip": 0.09, "right_hip": 0.09, "spine1": 0.12, "left_knee": 0.07, "right_knee": 0.07,
    "spine2": 0.12, "left_ankle": 0.05, "right_ankle": 0.05, "spine3": 0.12, "left_foot": 0.04,
    "right_foot": 0.04, "neck": 0.06, "left_collar": 0.07, "right_collar": 0.07, "head": 0.10,
    "left_shoulder": 0.06, "right_shoulder": 0.06, "left_elbow": 0.05, "right_elbow": 0.05,
    "left_wrist": 0.04, "right_wrist": 0.04,
}  # fmt: skip
BONE_RADII = np.array([_RADIUS[n] for n in (list(J)[c] for c in BONE_CHILD)])


# helper functions


def check_people(positions: np.ndarray, min_people: int = 1) -> np.ndarray:
    """(P, T, 22, 3) float64 with P >= min_people, finite, at least one frame."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 4 or pos.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected (P, T, {NUM_JOINTS}, 3) joint positions, got {pos.shape}")
    if pos.shape[0] < min_people or pos.shape[1] == 0:
        raise ValueError(f"need at least {min_people} people and one frame, got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError("joint positions contain NaN or infinite values")
    return pos


def horizontal(v: np.ndarray) -> np.ndarray:
    """The XZ part of (..., 3) vectors, y set to 0."""
    out = np.array(v, dtype=np.float64)
    out[..., 1] = 0.0
    return out


def unit(v: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    """(..., n) vectors scaled to length 1; zero-length ones become `fallback` (default the first axis)."""
    v = np.asarray(v, dtype=np.float64)
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    fb = np.eye(v.shape[-1])[0] if fallback is None else fallback
    return np.where(n > _EPS, v / np.maximum(n, _EPS), fb)


def kept_bones(exclude: Sequence[int] = ()) -> np.ndarray:
    """Indices into BONES of the bones whose child joint is not in `exclude` (e.g. the hands of a
    handshake, which are meant to touch)."""
    return np.array([i for i, c in enumerate(BONE_CHILD) if c not in set(exclude)], dtype=np.int64)


def contact_exclusions(interaction: str | None) -> tuple[int, ...]:
    """Joints whose bones may touch the partner in an interaction of the generator (synth.py):
    the arms in a handshake or a push, arms, shoulders and head in a hug; none otherwise."""
    from molam_ros.data.synth import INTERACTIONS, contact_joints

    if interaction is None or interaction not in INTERACTIONS:
        return ()
    return contact_joints(INTERACTIONS[interaction].contact)


# capsules


def _segment_closest(
    p0: np.ndarray, p1: np.ndarray, q0: np.ndarray, q1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Closest points of segments p0-p1 and q0-q1 (broadcast (..., 3)), as (point on p, point on q).

    Minimises |p0 + s d1 - q0 - t d2| over s, t in [0, 1]: the unconstrained optimum of s is
    clamped, t follows from s, and where t had to be clamped s is solved again for that end.
    """
    d1, d2, r = p1 - p0, q1 - q0, p0 - q0
    a = np.einsum("...i,...i->...", d1, d1)
    e = np.einsum("...i,...i->...", d2, d2)
    b = np.einsum("...i,...i->...", d1, d2)
    c = np.einsum("...i,...i->...", d1, r)
    f = np.einsum("...i,...i->...", d2, r)
    denom = a * e - b * b
    a_, e_ = np.maximum(a, _EPS), np.maximum(e, _EPS)
    # Parallel (denom ~ 0) segments: any s works; take 0 and let the clamps below fix t.
    s = np.where(denom > _EPS * a_ * e_, np.clip((b * f - c * e) / np.maximum(denom, _EPS), 0.0, 1.0), 0.0)
    t = (b * s + f) / e_
    s = np.where(t < 0.0, np.clip(-c / a_, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / a_, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    return p0 + s[..., None] * d1, q0 + t[..., None] * d2


def capsule_contacts(
    a: np.ndarray, b: np.ndarray, *, exclude_a: Sequence[int] = (), exclude_b: Sequence[int] = ()
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance map of two people and the closest points behind it.

    a, b: (T, 22, 3) joint positions. Returns (dist (T, Ba, Bb) capsule surface distances in metres,
    negative where the capsules overlap; pa, pb (T, Ba, Bb, 3) the closest points on the bone axes)
    over the bones kept after `exclude_a`/`exclude_b` (see `kept_bones`).
    """
    ia, ib = kept_bones(exclude_a), kept_bones(exclude_b)
    bones = np.array(BONES)
    a0, a1 = a[:, bones[ia, 0]][:, :, None], a[:, bones[ia, 1]][:, :, None]  # (T, Ba, 1, 3)
    b0, b1 = b[:, bones[ib, 0]][:, None], b[:, bones[ib, 1]][:, None]  # (T, 1, Bb, 3)
    pa, pb = _segment_closest(a0, a1, b0, b1)  # (T, Ba, Bb, 3)
    radii = BONE_RADII[ia][:, None] + BONE_RADII[ib][None, :]  # (Ba, Bb)
    dist = np.linalg.norm(pa - pb, axis=-1) - radii
    return dist, pa, pb


def distance_map(
    a: np.ndarray, b: np.ndarray, *, exclude_a: Sequence[int] = (), exclude_b: Sequence[int] = ()
) -> np.ndarray:
    """(T, Ba, Bb) capsule surface distances (metres, negative = penetration) of two (T, 22, 3) people."""
    return capsule_contacts(
        np.asarray(a, np.float64), np.asarray(b, np.float64), exclude_a=exclude_a, exclude_b=exclude_b
    )[0]


# the measures


def penetration_depth(positions: np.ndarray, exclude: Sequence[int] = ()) -> np.ndarray:
    """(T,) deepest capsule overlap (metres, >= 0) between any two people at each frame."""
    pos = check_people(positions, 2)
    depth = np.zeros(pos.shape[1])
    for p in range(pos.shape[0]):
        for q in range(p + 1, pos.shape[0]):
            dmap = distance_map(pos[p], pos[q], exclude_a=exclude, exclude_b=exclude)
            depth = np.maximum(depth, -dmap.reshape(pos.shape[1], -1).min(axis=1))
    return np.maximum(depth, 0.0)


def penetration(positions: np.ndarray, exclude: Sequence[int] = ()) -> dict[str, Any]:
    """How far bodies pass into each other: per-frame depth and its summary.

    exclude: joints whose bones are allowed to touch (`contact_exclusions`), left out of the map.
    Returns per_frame_mm (T,), mean_mm (over all frames, so 0 when nothing penetrates), max_mm and
    frames (share of frames with any overlap).
    """
    depth = penetration_depth(positions, exclude) * 1000.0
    return {
        "per_frame_mm": depth,
        "mean_mm": float(depth.mean()),
        "max_mm": float(depth.max()),
        "frames": float((depth > 0).mean()),
    }


def foot_sliding(positions: np.ndarray, contact: ContactConfig = DEFAULT_CONTACT) -> dict[str, Any]:
    """Horizontal speed of the feet while they touch the floor, which should be zero.

    Contacts are features.foot_contacts' labels (a foot joint low and slow), so a foot that slides
    fast enough to lose its label is not counted: the measure is the skating the labels allow
    (< 31.6 mm/frame by default). Returns per_frame_mm (P, T) mean horizontal speed of the joints in
    contact (0 where none), mean_mm (mm/frame, over all contact samples), max_mm, contact_share.
    """
    pos = check_people(positions)
    feet = pos[:, :, list(FOOT_JOINTS)]  # (P, T, 4, 3)
    step = np.zeros(feet.shape[:-1])
    step[:, 1:] = np.linalg.norm(horizontal(feet[:, 1:] - feet[:, :-1]), axis=-1) * 1000.0
    touching = foot_contacts(pos, contact) > 0  # (P, T, 4)
    n = touching.sum(-1)
    per_frame = np.where(n > 0, (step * touching).sum(-1) / np.maximum(n, 1), 0.0)
    slid = step[touching]
    return {
        "per_frame_mm": per_frame,
        "mean_mm": float(slid.mean()) if slid.size else 0.0,
        "max_mm": float(slid.max()) if slid.size else 0.0,
        "contact_share": float(touching.mean()),
    }


def lowest_foot(positions: np.ndarray) -> np.ndarray:
    """(P, T) height (metres) of each person's lowest foot joint: 0 when standing on the floor."""
    pos = check_people(positions)
    return pos[:, :, list(FOOT_JOINTS), 1].min(axis=-1)


def foot_floor(positions: np.ndarray) -> dict[str, Any]:
    """Where the feet are against the floor (y = 0): the lowest foot joint of each person and frame.

    Below the floor is always wrong; above it is wrong except in a jump, so the summary keeps them
    apart: below_mm and above_mm are means over all frames of max(0, -h) and max(0, h), mean_mm the
    mean signed height, per_frame_mm (P, T) the heights.
    """
    h = lowest_foot(positions) * 1000.0
    return {
        "per_frame_mm": h,
        "mean_mm": float(h.mean()),
        "below_mm": float(np.maximum(-h, 0.0).mean()),
        "above_mm": float(np.maximum(h, 0.0).mean()),
        "abs_mm": float(np.abs(h).mean()),
    }


def facing_error_to(person: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(T,) angle in degrees between a (T, 22, 3) person's facing and the horizontal direction from
    their root to `target` ((T, 3) or (3,) points); 0 where either direction is undefined."""
    person = np.asarray(person, dtype=np.float64)
    forward = facing_direction(person)
    to = horizontal(np.asarray(target, dtype=np.float64) - person[:, 0])
    n = np.linalg.norm(to, axis=-1)
    cos = np.einsum("ti,ti->t", forward, to) / np.maximum(n, _EPS)
    ok = (n > _EPS) & (np.linalg.norm(forward, axis=-1) > _EPS)
    return np.where(ok, np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))), 0.0)


def facing_error(positions: np.ndarray, a: int = 0, b: int = 1) -> np.ndarray:
    """(T,) degrees between person b's facing and the direction from b to person a (0 = looking at a)."""
    pos = check_people(positions, 2)
    return facing_error_to(pos[b], pos[a, :, 0])


def interpersonal_distance(positions: np.ndarray, a: int = 0, b: int = 1) -> np.ndarray:
    """(T,) horizontal distance (metres) between the roots (pelvis) of persons a and b."""
    pos = check_people(positions, 2)
    return np.linalg.norm(horizontal(pos[a, :, 0] - pos[b, :, 0]), axis=-1)


def summarize(
    positions: np.ndarray, exclude: Sequence[int] = (), contact: ContactConfig = DEFAULT_CONTACT
) -> dict[str, float]:
    """Every measure's summary as one flat dict of floats (the report's row).

    With more than two people, facing_deg is the mean over persons 1.. of the angle to the centre of
    the others, distance_m the mean over frames of the smallest root distance of any pair; with two
    that is b facing a and their distance.
    """
    pos = check_people(positions)
    out: dict[str, float] = {}
    slide, floor = foot_sliding(pos, contact), foot_floor(pos)
    out["foot_sliding_mm"] = slide["mean_mm"]
    out["floor_below_mm"] = floor["below_mm"]
    out["floor_above_mm"] = floor["above_mm"]
    if pos.shape[0] >= 2:
        pen = penetration(pos, exclude)
        out["penetration_mean_mm"] = pen["mean_mm"]
        out["penetration_max_mm"] = pen["max_mm"]
        out["penetration_frames"] = pen["frames"]
        P = pos.shape[0]
        facing = []
        for p in range(1, P):
            others = [q for q in range(P) if q != p]
            facing.append(facing_error_to(pos[p], pos[others, :, 0].mean(axis=0)).mean())
        out["facing_deg"] = float(np.mean(facing))
        dist = np.min([interpersonal_distance(pos, p, q) for p in range(P) for q in range(p + 1, P)], axis=0)
        out["distance_m"] = float(dist.mean())
    return out


def join_speeds(positions: np.ndarray, joins: Sequence[int], window: int = 5) -> dict[str, float]:
    """Largest per-frame joint displacement (metres per frame) near joins and away from them.

    A composed motion is smooth when the first is no larger than the second: the join moves no
    joint faster than the pieces themselves do. Near a join j means the displacements into frames
    j - window .. j + window; every other frame is inside a piece. jump_m is the largest
    displacement across the joins themselves (frame j - 1 to j).
    """
    pos = check_people(positions)
    speed = np.zeros(pos.shape[1])
    speed[1:] = np.linalg.norm(np.diff(pos, axis=1), axis=-1).max(axis=(0, 2))
    near = np.zeros(pos.shape[1], dtype=bool)
    for j in joins:
        near[max(j - window, 1) : j + window + 1] = True
    near[0] = False
    inside = ~near
    inside[0] = False
    jumps = [speed[j] for j in joins if 0 < j < pos.shape[1]]
    return {
        "join": float(speed[near].max()) if near.any() else 0.0,
        "inside": float(speed[inside].max()) if inside.any() else 0.0,
        "jump_m": float(max(jumps)) if jumps else 0.0,
    }
