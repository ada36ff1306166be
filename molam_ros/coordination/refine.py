"""InterSyn-style coordination: one person's motion refined relative to a partner's.

A generated reactor (person b) is often almost right and physically wrong: a little too far or
inside the partner, turned a few tens of degrees away, floating above the floor, skating. The
partner (person a) is never changed; b is moved as a rigid whole per frame (a yaw about b's own
root, a root offset), never re-posed, so whatever b does with its limbs is kept. In order:

1. floor: b's lowest foot is put on the floor (y = 0) wherever it is near it (not in a jump);
2. facing: while interacting, b is turned about its root towards a, by the part of the error
   beyond a tolerance, smoothly and at a bounded turning speed;
3. placement: one horizontal root offset trajectory o(t) for b solves, in the least-squares sense,
   - contacts: a foot in contact (features.foot_contacts on b) does not move (pins the feet),
   - distance: b's root stays inside the interaction's distance band to a (`PLACEMENT`),
   - penetration: every capsule overlap of the distance map (metrics.capsule_contacts) is pushed
     out, one direction per run of overlapping frames (goals much heavier than the rest),
   - smoothness: o has small second differences; distance and penetration goals are ramps of
     bounded slope, so no goal asks for a jump;
   iterated until b is in its band and out of a, since a goal met at one frame can move another;
   then facing and placement once more, as the offset changes the direction to a.
   Solving all of them together is what "distributes the root correction": the offset that
   keeps a foot planted is spread into the swing phases instead of sliding the stance foot.
   What it cannot do is step: where b must move a long way while both feet are planted, the
   feet slide (penetration and distance win over contacts).

Everything is numpy/scipy; metres, Y up, floor y = 0, 30 fps.

    pair = refine_reactor(pair, "handshake")                       # (2, T, 22, 3), b refined
    newcomer = refine_person(group, newcomer, partner=0, face_target=centre)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.ndimage import binary_closing, gaussian_filter1d, label
from scipy.sparse.linalg import spsolve

from molam_ros.coordination.metrics import (
    capsule_contacts,
    check_people,
    contact_exclusions,
    horizontal,
    lowest_foot,
    unit,
)
from molam_ros.motion.canonical import facing_angle, facing_direction
from molam_ros.motion.features import DEFAULT_CONTACT, ContactConfig, foot_contacts
from molam_ros.motion.skeleton import FOOT_JOINTS

_EPS = 1e-9


@dataclass(frozen=True)
class Placement:
    """Where a reactor stands in one interaction: a band of root distances and whether it faces a."""

    min_distance: float  # metres, horizontal pelvis to pelvis
    max_distance: float
    face: bool = True


# Root distance bands while interacting, measured on the generator's clips (synth.py; 2nd to 98th
# percentile over its interaction segments) and widened by ~0.1 m below and ~0.2 m above. point_look
# (the reactor looks where a points) and lead_follow (the follower looks where it walks) do not
# face the partner all the time, so they are not turned.
PLACEMENT: dict[str, Placement] = {
    "handshake": Placement(0.45, 0.8),
    "fist_bump": Placement(0.45, 0.8),
    "hand_over": Placement(0.45, 0.8),
    "high_five": Placement(0.65, 1.05),
    "hug": Placement(0.3, 1.4),
    "push": Placement(0.55, 1.6),
    "punch": Placement(0.7, 1.3),
    "kick": Placement(1.2, 2.2),
    "wave": Placement(1.6, 3.1),
    "bow": Placement(1.55, 2.6),
    "beckon": Placement(1.0, 3.4),
    "lead_follow": Placement(0.85, 1.75, face=False),
    "mirror": Placement(1.25, 2.0),
    "point_look": Placement(1.25, 2.2, face=False),
}
DEFAULT_PLACEMENT = Placement(0.5, 3.0)  # any other interaction, or none given: near enough to interact


def placement_for(interaction: str | None) -> Placement:
    """The interaction's table entry, else the default."""
    return PLACEMENT.get(interaction or "", DEFAULT_PLACEMENT)


@dataclass(frozen=True, kw_only=True)
class RefineConfig:
    """What the refinement does and how hard; every step can be turned off."""

    floor: bool = True
    floor_snap: float = 0.12  # metres: a lowest foot below this is put on the floor, above is a jump
    face: bool = True  # turn b towards a while interacting (where the interaction's entry says so)
    facing_tolerance_deg: float = 15.0  # error left alone: people look past each other a little
    max_turn_speed_deg: float = 4.0  # degrees per frame (120 deg/s): fastest b is turned
    distance: bool = True  # keep b's root inside the interaction's distance band to a
    penetration: bool = True
    penetration_margin: float = 0.01  # metres of clearance aimed for, so rounding leaves none
    sliding: bool = True  # pin b's feet while they are in contact
    smooth_sigma: float = 4.0  # frames: Gaussian smoothing of the yaw and floor corrections
    smoothness: float = 20.0  # weight of the root offset's second difference (m/frame^2)
    max_shift_speed: float = 0.02  # metres per frame (0.6 m/s): steepest ramp of a distance/push goal
    anchor: float = 1e-6  # weight pulling the offset to 0: only fixes the constant the other terms leave free
    band_weight: float = 1.0  # weight of a distance goal (contacts weigh 1 per foot)
    penetration_weight: float = 100.0  # weight of a penetration goal: it wins over everything else
    iterations: int = 8  # rounds of goals and solve, at most
    contact: ContactConfig = DEFAULT_CONTACT  # foot-contact labels, as the features use them

    def __post_init__(self) -> None:
        for name in ("floor_snap", "facing_tolerance_deg", "penetration_margin", "smooth_sigma"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"RefineConfig.{name} must be >= 0")
        positive = ("smoothness", "anchor", "band_weight", "penetration_weight", "max_shift_speed")
        for name in (*positive, "max_turn_speed_deg"):
            if not getattr(self, name) > 0:
                raise ValueError(f"RefineConfig.{name} must be > 0")
        if self.iterations < 1:
            raise ValueError("RefineConfig.iterations must be >= 1")


# helper functions


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over time (axis 0); edges hold their value."""
    return gaussian_filter1d(x, sigma, axis=0, mode="nearest") if sigma > 0 else x


def _turn(body: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """(T, 22, 3) body turned by yaw (T,) radians about +Y through each frame's own root."""
    pivot = horizontal(body[:, :1])
    local = body - pivot
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    out = local.copy()
    out[..., 0] = c * local[..., 0] + s * local[..., 2]  # +Z towards +X, as canonical.py
    out[..., 2] = -s * local[..., 0] + c * local[..., 2]
    return out + pivot


def _activity(active: np.ndarray | None, T: int, sigma: float) -> np.ndarray:
    """(T,) weight in [0, 1]: 1 while interacting; a given mask's edges are smoothed so nothing jumps."""
    if active is None:
        return np.ones(T)
    a = np.asarray(active, dtype=np.float64).reshape(-1)
    if a.shape != (T,):
        raise ValueError(f"active must have one value per frame ({T}), got {a.shape}")
    return np.clip(_smooth(a, sigma), 0.0, 1.0)


def put_on_floor(body: np.ndarray, snap: float, sigma: float) -> np.ndarray:
    """(T, 22, 3) body lifted or lowered so its lowest foot is on y = 0 wherever it is within `snap`.

    The correction fades out (smooth-step) between snap/2 and snap so a jump is left in the air,
    is smoothed over time, and never leaves a foot below the floor.
    """
    h = lowest_foot(body[None])[0]  # (T,)
    x = np.clip((h - snap / 2) / max(snap / 2, _EPS), 0.0, 1.0)
    weight = 1.0 - x * x * (3 - 2 * x)
    lift = np.maximum(_smooth(-h * weight, sigma), -h)
    out = body.copy()
    out[..., 1] += lift[:, None]
    return out


def _yaw_towards(body: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(T,) signed yaw (radians) that would turn the body's facing onto the direction to `target`."""
    to = horizontal(target - body[:, 0])
    want = np.arctan2(to[:, 0], to[:, 2])
    error = np.angle(np.exp(1j * (want - facing_angle(body))))
    defined = (np.linalg.norm(to, axis=-1) > 1e-3) & (np.linalg.norm(facing_direction(body), axis=-1) > 0)
    return np.unwrap(np.where(defined, error, 0.0))


def _slew(x: np.ndarray, rate: float) -> np.ndarray:
    """(T,) signal following x but changing by at most `rate` per frame: a forward then a backward
    pass of a slew limiter (the backward pass alone sets the bound, the forward pass keeps the
    result from lagging behind x on one side only)."""
    y = np.array(x, dtype=np.float64)
    for t in range(1, len(y)):
        y[t] = y[t - 1] + np.clip(y[t] - y[t - 1], -rate, rate)
    for t in range(len(y) - 2, -1, -1):
        y[t] = y[t + 1] + np.clip(y[t] - y[t + 1], -rate, rate)
    return y


def face_towards(
    body: np.ndarray, target: np.ndarray, weight: np.ndarray, config: RefineConfig
) -> np.ndarray:
    """(T, 22, 3) body turned about its root towards `target` (T, 3) by the error beyond the
    tolerance, scaled by weight (T,), smoothed over time and never turned faster than
    config.max_turn_speed_deg per frame (near the target the direction to it can swing fast)."""
    error = _yaw_towards(body, target)
    tol = np.radians(config.facing_tolerance_deg)
    yaw = np.sign(error) * np.maximum(np.abs(error) - tol, 0.0) * weight
    yaw = _slew(_smooth(yaw, config.smooth_sigma), np.radians(config.max_turn_speed_deg))
    return _turn(body, yaw)


def _runs(mask: np.ndarray) -> list[np.ndarray]:
    """(T,) boolean masks, one per run of `mask`; runs less than a second apart are joined (one
    correction, not a flicker)."""
    joined = binary_closing(mask, structure=np.ones(31)) | mask
    labels, count = label(joined)
    return [labels == r for r in range(1, count + 1)]


def _run_direction(rel: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """(3,) one horizontal direction (other -> body) to push the body along for a run of frames.

    One per run, not one per frame: where the roots are close, the line between them can swing
    round in a frame (the body passing through the other), and a push following it would throw
    the body across. rel (n, 3) are the run's root-to-root vectors: their mean direction where they
    agree, else the direction at the run's first frame with the roots apart (the side the body
    came from), else `fallback` (in front of the other person).
    """
    u = unit(horizontal(rel))
    mean = u.mean(axis=0)
    if np.linalg.norm(mean) > 0.5:
        return mean / np.linalg.norm(mean)
    apart = np.linalg.norm(horizontal(rel), axis=-1) > 0.05
    return u[int(np.argmax(apart))] if apart.any() else fallback


def _overlap(body: np.ndarray, other: np.ndarray, exclude: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Deepest capsule overlap of two (T, 22, 3) people per frame (metres, <= 0 where apart) and
    the unit normal (T, 3) from the other's closest point to the body's."""
    T = body.shape[0]
    dist, pa, pb = capsule_contacts(other, body, exclude_a=exclude, exclude_b=exclude)
    flat = dist.reshape(T, -1)
    k = flat.argmin(axis=1)
    rows = np.arange(T)
    normal = unit(pb.reshape(T, -1, 3)[rows, k] - pa.reshape(T, -1, 3)[rows, k])
    return -flat[rows, k], normal


def _push_out(
    body: np.ndarray,
    others: np.ndarray,
    excludes: Sequence[Sequence[int]],
    partner: int,
    short: np.ndarray,
    config: RefineConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """What takes the body out of everyone and back to the partner's band, eased in time.

    short: (T,) metres the body is too close to the partner for the band (0 where not). Returns
    the (T, 2) horizontal correction and its (T,) goal weights.

    For each other person the frames to push (overlapping, or too close to the partner) form runs,
    each pushed along one direction (`_run_direction`). A penetration needs its depth plus the
    margin divided by how much that direction separates the two closest points (at least 0.3, a
    glancing contact); the band needs `short`; the larger is eased in and out (`_ramp`).
    """
    T = body.shape[0]
    rate, sigma = config.max_shift_speed, config.smooth_sigma / 2
    push, need = np.zeros((T, 3)), np.zeros(T)
    for k, (other, exclude) in enumerate(zip(others, excludes, strict=True)):
        depth, normal = _overlap(body, other, exclude) if config.penetration else (np.zeros(T), None)
        hit = depth > 0
        gap = short if k == partner else np.zeros(T)
        if not (hit.any() or gap.any()):
            continue
        rel = body[:, 0] - other[:, 0]
        for run in _runs(hit | (gap > 0)):
            first = int(np.argmax(run))
            direction = _run_direction(rel[run & (hit | (gap > 0))], facing_direction(other[first]))
            amount = np.where(run, gap, 0.0)
            if hit[run].any():
                along = np.maximum(normal @ direction, 0.3)
                amount = np.maximum(
                    amount, np.where(run & hit, (depth + config.penetration_margin) / along, 0.0)
                )
            ramp = _ramp(amount, rate, sigma)
            push += ramp[:, None] * direction
            heavy = config.penetration_weight if hit[run].any() else config.band_weight
            need = np.maximum(need, heavy * np.minimum(ramp / 0.005, 1.0))
    return push[:, [0, 2]], need


class _OffsetSolver:
    """The least-squares root offset o (T, 2) of the module docstring, for fixed contacts.

    Normal equations (T x T, sparse, the same matrix for x and z):
        [sum_k D1' C_k D1 + s D2' D2 + diag(anchor + W)] o = -sum_k D1' C_k v_k + W g
    with D1, D2 first and second differences, v_k the horizontal step of foot joint k, C_k its
    contact weight, W and g the goal weights and targets.

    Contact weights are reweighted (IRLS, eps / (|residual| + eps)) rather than all 1: when one
    foot is planted and the other only labelled in contact (a heel rolling off, a toe pivoting),
    plain least squares would move the planted foot by half the other's motion, and real clips
    would come out sliding more than they went in. Reweighting approximates the sum of absolute
    slides (what foot_sliding measures), so the feet that are still stay still and a drift common
    to all of them is still cancelled.
    """

    IRLS_ROUNDS = 4
    IRLS_EPS = 0.001  # metres per frame: slides below this count as fully planted

    def __init__(self, body: np.ndarray, contacts: np.ndarray, config: RefineConfig) -> None:
        T = body.shape[0]
        base = config.anchor * sparse.eye(T)
        if T >= 3:
            d2 = sparse.diags(
                [np.ones(T - 2), -2 * np.ones(T - 2), np.ones(T - 2)], [0, 1, 2], shape=(T - 2, T)
            )
            base = base + config.smoothness * (d2.T @ d2)
        self.base, self.rhs = base.tocsc(), np.zeros((T, 2))
        if not (config.sliding and T >= 2):
            return
        d1 = sparse.diags([-np.ones(T - 1), np.ones(T - 1)], [0, 1], shape=(T - 1, T))
        feet = horizontal(body[:, list(FOOT_JOINTS)])[..., [0, 2]]  # (T, 4, 2)
        steps = feet[1:] - feet[:-1]  # (T - 1, 4, 2)
        stay = ((contacts[1:] > 0) & (contacts[:-1] > 0)).astype(np.float64)  # (T - 1, 4)
        w = stay
        for _ in range(self.IRLS_ROUNDS):
            a = (base + d1.T @ sparse.diags(w.sum(axis=1)) @ d1).tocsc()
            rhs = -(d1.T @ (w[..., None] * steps).sum(axis=1))
            o = np.column_stack([spsolve(a, rhs[:, 0]), spsolve(a, rhs[:, 1])])
            slide = np.linalg.norm(steps + np.diff(o, axis=0)[:, None], axis=-1)  # (T - 1, 4)
            w = stay * self.IRLS_EPS / (slide + self.IRLS_EPS)
        self.base, self.rhs = a, rhs

    def solve(self, weights: np.ndarray, goals: np.ndarray) -> np.ndarray:
        a = (self.base + sparse.diags(weights)).tocsc()
        b = self.rhs + weights[:, None] * goals
        return np.column_stack([spsolve(a, b[:, 0]), spsolve(a, b[:, 1])])


def _ramp(amount: np.ndarray, rate: float, sigma: float) -> np.ndarray:
    """(T,) non-negative goal magnitudes made into ramps no steeper than `rate` per frame.

    Each frame's amount becomes a cone (amount - rate |t - s|) over its neighbours and the upper
    envelope of the cones is rounded off with a Gaussian; the result is never below the input. So a
    push needed at one frame is eased in before it and out after it at a bounded speed, rather
    than met in one frame (a jump the smoothness term alone could not prevent against heavy goals).
    """
    env = np.asarray(amount, dtype=np.float64).copy()
    for t in range(1, len(env)):  # forward and backward passes give the cones' envelope
        env[t] = max(env[t], env[t - 1] - rate)
    for t in range(len(env) - 2, -1, -1):
        env[t] = max(env[t], env[t + 1] - rate)
    return np.maximum(_smooth(env, sigma), amount)


# the refinement


def refine_person(
    others: np.ndarray,
    person: np.ndarray,
    *,
    partner: int = 0,
    interaction: str | None = None,
    config: RefineConfig | None = None,
    face_target: np.ndarray | None = None,
    active: np.ndarray | None = None,
) -> np.ndarray:
    """(T, 22, 3) float32: `person` refined against `others` (K, T, 22, 3); the others do not move.

    partner: index into others of the person interacted with (distance band, allowed contacts);
    face_target: (T, 3) points to face instead of the partner's root (a group's centre);
    active: (T,) mask of the frames of the interaction (default all): facing and distance apply
    there, floor, contacts and penetration everywhere.
    """
    config = config or RefineConfig()
    others = check_people(others)
    body = check_people(np.asarray(person)[None])[0]
    K, T = others.shape[:2]
    if body.shape[0] != T:
        raise ValueError(f"person has {body.shape[0]} frames, the others {T}")
    if not 0 <= partner < K:
        raise ValueError(f"partner {partner} is not one of the {K} others")
    place = placement_for(interaction)
    weight = _activity(active, T, config.smooth_sigma)
    mate = others[partner]

    # 1) floor, then the contacts the feet have in the person's own motion
    if config.floor:
        body = put_on_floor(body, config.floor_snap, config.smooth_sigma)
    contacts = foot_contacts(body, config.contact)

    # 2) + 3) facing, then placement; twice, since the offset changes the direction to the target
    facing = config.face and place.face
    target = mate[:, 0] if face_target is None else np.broadcast_to(face_target, (T, 3))
    exclude = contact_exclusions(interaction)
    excludes = [exclude if k == partner else () for k in range(K)]
    correction, weights = np.zeros((T, 2)), np.zeros(T)
    offset = np.zeros((T, 2))
    turned = body
    for _ in range(2 if facing else 1):
        if facing:
            shifted = body.copy()
            shifted[..., [0, 2]] += offset[:, None]
            turned = face_towards(shifted, target, weight, config)
            turned[..., [0, 2]] -= offset[:, None]
        solver = _OffsetSolver(turned, contacts, config)
        offset = _place(turned, solver, others, excludes, partner, place, weight, correction, weights, config)
    out = turned.copy()
    out[..., [0, 2]] += offset[:, None]
    return out.astype(np.float32)


def _place(
    body: np.ndarray,
    solver: _OffsetSolver,
    others: np.ndarray,
    excludes: Sequence[Sequence[int]],
    partner: int,
    place: Placement,
    weight: np.ndarray,
    correction: np.ndarray,
    weights: np.ndarray,
    config: RefineConfig,
) -> np.ndarray:
    """(T, 2) root offset: the contacts-only solution plus a placement correction, re-solved until
    b is in its band and out of everyone.

    Each round measures what is still missing (distance band, penetration), eases it in and out
    in time (`_ramp`) and adds it to `correction` (T, 2), a sum of smooth ramps and so smooth
    itself; the goal of the solve is the contacts-only offset plus that correction, with weights
    (T,) that also fade in with the correction's size. Smooth goals and smooth weights give a
    smooth offset, whatever rounds the goals came from. `correction` and `weights` are updated in
    place, so a second call (after b is turned again) starts from what the first found.
    """
    mate = others[partner]
    rate, sigma = config.max_shift_speed, config.smooth_sigma / 2
    free = solver.solve(np.zeros(len(body)), np.zeros((len(body), 2)))  # contacts and smoothness only
    offset = solver.solve(weights, free + correction)
    for _ in range(config.iterations):
        placed = body.copy()
        placed[..., [0, 2]] += offset[:, None]
        rel = horizontal(placed[:, 0] - mate[:, 0])
        d = np.linalg.norm(rel, axis=-1)
        shift = (
            (np.clip(d, place.min_distance, place.max_distance) - d) * weight if config.distance else 0 * d
        )
        shift[np.abs(shift) < 0.005] = 0.0  # inside the band, give or take 5 mm
        # too close (and penetration) pushes out along one direction per run; too far pulls in
        # along the line to the partner, which is steady when they are apart
        missing, need = _push_out(placed, others, excludes, partner, np.maximum(shift, 0.0), config)
        inward = _ramp(np.maximum(-shift, 0.0), rate, sigma)
        missing -= inward[:, None] * unit(rel)[:, [0, 2]]
        need = np.maximum(need, config.band_weight * np.minimum(inward / 0.005, 1.0))
        if not need.any():
            break
        correction += missing
        np.maximum(weights, need, out=weights)
        offset = solver.solve(weights, free + correction)
    return offset


def refine_reactor(
    positions: np.ndarray,
    interaction: str | None = None,
    config: RefineConfig | None = None,
    *,
    active: np.ndarray | None = None,
) -> np.ndarray:
    """(2, T, 22, 3) float32: the pair with person b (index 1) refined relative to person a.

    interaction: a key of synth.INTERACTIONS (distance band, facing, which limbs may touch), or
    None for the defaults; active: (T,) mask of the interaction's frames (default all).
    """
    pos = check_people(positions, 2)
    if pos.shape[0] != 2:
        raise ValueError(f"refine_reactor takes two people, got {pos.shape[0]}; see refine_person")
    b = refine_person(pos[:1], pos[1], interaction=interaction, config=config, active=active)
    return np.stack([pos[0].astype(np.float32), b])
