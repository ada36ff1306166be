"""Retargeting SMPL local joint rotations onto an output profile (robot joints or avatar bones).

Robots: per-joint axis decomposition. Each group of robot joints driven by the same SMPL joint (or
chain, composed) is a *drive*: its rotation, re-expressed relative to the robot's zero pose, is
decomposed into the drive's ordered axes, e.g. a hip's yaw-roll-pitch as intrinsic Euler angles in
that order, an elbow as a single flexion angle (the twist about its axis); then each angle gets the
joint's sign and offset and is clamped to its limits.

Why axis decomposition and not IK on positions: every drive is solved on its own, in closed form,
with no iterations, no initial guess and no tolerance, so the result is deterministic, the cost per
frame is bounded and tiny (a few 3x3 products per drive, vectorised over frames), and a bad frame
cannot make a solver diverge or wander into a different local minimum from one frame to the next.
The motion model already produces local rotations (features carry them in 6D), so the rotations
are the natural input; positional IK would add a solve to undo information we already have.

The relative rotation of a drive: with G the SMPL global rotation of the chain's parent in the
profile's zero pose and Z the chain's zero-pose local rotation, the robot-relative rotation of a
chain whose local rotations compose to R is  M = G R Z^-1 G^-1  (identity exactly at the robot's
zero pose; axes of M are the URDF's, renamed into SMPL body axes, see profiles.py).

Euler angles have two solutions (a, b, c) and (a + pi, pi - b, c + pi) for three axes, and each
angle is defined up to 2 pi. Per drive and frame the retargeter picks the solution, and for each
angle the shift by 2 pi, with the least cost: the clamping it needs (rad beyond the limits), plus
for a 2-axis drive the rotation about the missing axis, plus `reference_weight` times the joint
travel from `reference` (the previous output, for continuity; the neutral pose when none
is given). The distance term keeps a stream on one branch: the twin is always far (its first
angle differs by pi), so it only wins when the branch in use would need much more clamping.

The pelvis rotation (the body's world orientation) and the root translation drive no robot joint:
a humanoid's balance controller owns where its base is, so robots ignore them.

Garbage in is never garbage out: a frame with a non-finite or zero quaternion (or root) returns
the neutral pose with `fallback` set; every output is finite and within limits.
Avatars: rotations pass through (normalised) with the root translation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molam_ros.motion.rotations import (
    quat_conjugate,
    quat_mul,
    quat_normalize,
    quat_to_matrix,
)
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS
from molam_ros.runtime.profiles import Profile

_TWO_PI = 2.0 * np.pi
# cos(middle angle) below this: gimbal lock. The first and last axes (nearly) coincide, their angles
# are determined only by their sum, and the atan2 of two rounding-sized numbers would be noise; the
# last angle is set to 0 instead (error of order this value).
_LOCK_EPS = 1e-6
_MIN_NORM = 1e-6  # a quaternion shorter than this (after scaling) carries no rotation: invalid


@dataclass(frozen=True)
class RobotFrame:
    """Robot joint positions for one frame (J,) or a batch (..., J), controller order.

    fallback (...,): the input was not usable and the neutral pose was returned.
    clamped (..., J): the decomposed value was outside the joint's limits and was clamped.
    """

    positions: np.ndarray
    fallback: np.ndarray
    clamped: np.ndarray


@dataclass(frozen=True)
class AvatarFrame:
    """Avatar bones: local rotations (..., B, 4) (w, x, y, z), root translation (..., 3), fallback (...,)."""

    rotations: np.ndarray
    root: np.ndarray
    fallback: np.ndarray


@dataclass(frozen=True)
class _Drive:
    chain: tuple[int, ...]  # SMPL joint indices, parent first
    members: tuple[int, ...]  # profile joint indices, in decomposition order
    axes: tuple[int, ...]  # axis index of each member
    g0: np.ndarray  # (4,) zero-pose global rotation of the chain's parent
    z: np.ndarray  # (4,) zero-pose local rotation of the whole chain


def _axis_quat(axis: int, angle: np.ndarray) -> np.ndarray:
    angle = np.asarray(angle, dtype=np.float64)
    q = np.zeros(angle.shape + (4,))
    q[..., 0] = np.cos(0.5 * angle)
    q[..., 1 + axis] = np.sin(0.5 * angle)
    return q


def _wrap(a: np.ndarray) -> np.ndarray:
    """Angles into (-pi, pi]."""
    return np.pi - np.mod(np.pi - a, _TWO_PI)


def euler_from_matrix(m: np.ndarray, axes: tuple[int, int, int]) -> np.ndarray:
    """Both intrinsic Tait-Bryan decompositions of rotation matrices about three distinct axes.

    m = R_i(a) R_j(b) R_k(c) for axes (i, j, k), a permutation of (0, 1, 2). Returns (..., 2, 3):
    the principal solution (b in [-pi/2, pi/2]) and its twin (a + pi, pi - b, c + pi), wrapped
    into (-pi, pi]. At gimbal lock (|cos b| ~ 0) c is set to 0 and a absorbs the rest.
    """
    i, j, k = axes
    if sorted(axes) != [0, 1, 2]:
        raise ValueError(f"axes must be a permutation of (0, 1, 2), got {axes}")
    p = 1.0 if (i, j, k) in ((0, 1, 2), (1, 2, 0), (2, 0, 1)) else -1.0  # even permutation
    # atan2 rather than arcsin: accurate near +-pi/2, where arcsin loses half the digits.
    b = np.arctan2(p * m[..., i, k], np.hypot(m[..., i, i], m[..., i, j]))
    a = np.arctan2(-p * m[..., j, k], m[..., k, k])
    c = np.arctan2(-p * m[..., i, j], m[..., i, i])
    lock = np.abs(np.cos(b)) < _LOCK_EPS
    if np.any(lock):
        # With c = 0, column j of m is R_i(a) e_j = cos(a) e_j + p sin(a) e_k.
        a = np.where(lock, np.arctan2(p * m[..., k, j], m[..., j, j]), a)
        c = np.where(lock, 0.0, c)
    first = np.stack([a, b, c], axis=-1)
    second = _wrap(np.stack([a + np.pi, np.pi - b, c + np.pi], axis=-1))
    return np.stack([first, second], axis=-2)


def _into_limits(
    q: np.ndarray, lower: np.ndarray, upper: np.ndarray, target: np.ndarray, weight: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shift angles by a multiple of 2 pi for the joint's range: (value, violation, cost).

    Of the two shifts that bracket [lower, upper] (one inside it when the angle fits), take the one
    with the least violation + weight * |value - target|: a joint's travel is not periodic, so
    the distance to the target is measured without wrapping.
    """
    up = lower + np.mod(q - lower, _TWO_PI)  # in [lower, lower + 2 pi)
    down = up - _TWO_PI  # below lower
    v_up = np.maximum(up - upper, 0.0)
    v_down = lower - down
    c_up = v_up + weight * np.abs(up - target)
    c_down = v_down + weight * np.abs(down - target)
    pick_up = c_up <= c_down
    return np.where(pick_up, up, down), np.where(pick_up, v_up, v_down), np.where(pick_up, c_up, c_down)


class Retargeter:
    """SMPL local rotations -> a profile's outputs; stateless, vectorised over leading dimensions.

    Construct once per profile (it precomputes each drive's zero-pose frames), then call `robot`
    or `avatar` per frame or per chunk of frames. `to_smpl` is the exact inverse for robots (used by
    tests, previews and to show what a robot was commanded).
    """

    def __init__(self, profile: Profile, reference_weight: float = 0.1) -> None:
        if not reference_weight >= 0:
            raise ValueError(f"reference_weight must be >= 0, got {reference_weight}")
        self.profile = profile
        self.reference_weight = reference_weight
        self.zero = quat_normalize(np.asarray(profile.zero_pose, dtype=np.float64))
        # Zero-pose global rotations (forward kinematics of rotations only).
        g = np.empty_like(self.zero)
        for j in range(NUM_JOINTS):
            g[j] = self.zero[j] if PARENTS[j] < 0 else quat_mul(g[PARENTS[j]], self.zero[j])
        self._global_zero = g
        drives: dict[tuple[str, ...], list[int]] = {}
        for idx, spec in enumerate(profile.joints):
            drives.setdefault(spec.smpl, []).append(idx)
        self._drives = []
        for chain_names, members in drives.items():
            chain = tuple(JOINT_INDEX[n] for n in chain_names)
            z = np.array([1.0, 0.0, 0.0, 0.0])
            for c in chain:
                z = quat_mul(z, self.zero[c])
            self._drives.append(
                _Drive(
                    chain=chain,
                    members=tuple(members),
                    axes=tuple(profile.joints[m].axis for m in members),
                    g0=g[PARENTS[chain[0]]],
                    z=z,
                )
            )
        if profile.is_robot:
            self._lower, self._upper = profile.lower, profile.upper
            self._neutral = profile.neutral
            self._sign = np.array([j.sign for j in profile.joints])
            self._offset = np.array([j.offset for j in profile.joints])
            self._legs = profile.leg_mask
            self._bone_index = np.zeros(0, dtype=int)
        else:
            self._bone_index = np.array([JOINT_INDEX[s] for _, s in profile.bones], dtype=int)

    # ----------------------------------------------------------------------------------------
    # Input checks

    @staticmethod
    def _clean_quats(local_quats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., 22, 4) -> (unit quaternions with invalid frames set to identity, invalid (...,))."""
        q = np.asarray(local_quats, dtype=np.float64)
        if q.shape[-2:] != (NUM_JOINTS, 4):
            raise ValueError(f"expected (..., {NUM_JOINTS}, 4) local quaternions, got {q.shape}")
        with np.errstate(invalid="ignore", over="ignore"):
            finite = np.all(np.isfinite(q), axis=(-2, -1))
            scale = np.max(np.abs(np.where(np.isfinite(q), q, 0.0)), axis=-1, keepdims=True)
            scaled = np.where(scale > 0, q / np.where(scale > 0, scale, 1.0), 0.0)
            norm = np.linalg.norm(scaled, axis=-1)
        invalid = ~finite | np.any(norm < _MIN_NORM, axis=-1)
        unit = quat_normalize(np.where(invalid[..., None, None], np.array([1.0, 0.0, 0.0, 0.0]), scaled))
        return unit, invalid

    def _drive_rotation(self, q: np.ndarray, drive: _Drive) -> np.ndarray:
        """M = G R Z^-1 G^-1 for every frame, (..., 4)."""
        r = q[..., drive.chain[0], :]
        for c in drive.chain[1:]:
            r = quat_mul(r, q[..., c, :])
        m = quat_mul(quat_mul(drive.g0, r), quat_conjugate(drive.z))
        return quat_normalize(quat_mul(m, quat_conjugate(drive.g0)))

    # ----------------------------------------------------------------------------------------
    # Robots

    def robot(self, local_quats: np.ndarray, reference: np.ndarray | None = None) -> RobotFrame:
        """Joint positions (..., J) from SMPL local rotations (..., 22, 4) (w, x, y, z).

        reference (J,) or (..., J): the values to stay close to when choosing between the two
        Euler solutions (pass the previous output for continuity); default the neutral pose.
        Leg joints stay at neutral when the profile is upper_body_only. Never raises on values;
        raises ValueError only for a wrong shape (a programming error, not a data error).
        """
        if not self.profile.is_robot:
            raise ValueError(f"profile {self.profile.name!r} is an avatar; use avatar()")
        q, invalid = self._clean_quats(local_quats)
        batch = q.shape[:-2]
        out = np.broadcast_to(self._neutral, batch + (len(self._neutral),)).copy()
        violation = np.zeros_like(out)
        ref = None
        if reference is not None:
            ref = np.broadcast_to(np.asarray(reference, dtype=np.float64), out.shape)
            ref = np.where(np.isfinite(ref), ref, self._neutral)
        for drive in self._drives:
            self._solve_drive(q, drive, out, violation, ref)
        clamped = violation > 1e-9
        out = np.clip(out, self._lower, self._upper)
        if self.profile.upper_body_only:
            out[..., self._legs] = self._neutral[self._legs]
            clamped[..., self._legs] = False
        bad = invalid | ~np.all(np.isfinite(out), axis=-1)
        out = np.where(bad[..., None], self._neutral, out)
        clamped = np.where(bad[..., None], False, clamped)
        return RobotFrame(positions=out, fallback=bad, clamped=clamped)

    def _solve_drive(
        self, q: np.ndarray, drive: _Drive, out: np.ndarray, violation: np.ndarray, ref: np.ndarray | None
    ) -> None:
        members = list(drive.members)
        lower, upper = self._lower[members], self._upper[members]
        sign, offset = self._sign[members], self._offset[members]
        target = self._neutral[members] if ref is None else ref[..., members]
        w = self.reference_weight
        m = self._drive_rotation(q, drive)
        if len(members) == 1:
            # Twist about the axis (swing-twist): the single angle that best explains the rotation.
            angle = _wrap(2.0 * np.arctan2(m[..., 1 + drive.axes[0]], m[..., 0]))
            value, viol, _ = _into_limits(sign[0] * angle + offset[0], lower[0], upper[0], target[..., 0], w)
            out[..., members[0]] = value
            violation[..., members[0]] = viol
            return
        axes = list(drive.axes)
        if len(axes) == 2:
            axes.append(3 - axes[0] - axes[1])
        sols = euler_from_matrix(quat_to_matrix(m), (axes[0], axes[1], axes[2]))  # (..., 2, 3)
        n = len(members)
        values, viols, costs = _into_limits(
            sign * sols[..., :n] + offset, lower, upper, target[..., None, :], w
        )
        cost = costs.sum(axis=-1)  # (..., 2)
        if n == 2:
            cost = cost + np.abs(sols[..., 2])  # the rotation about the missing axis is lost
        idx = np.argmin(cost, axis=-1)[..., None, None]  # a tie keeps the principal solution
        out[..., members] = np.take_along_axis(values, idx, axis=-2)[..., 0, :]
        violation[..., members] = np.take_along_axis(viols, idx, axis=-2)[..., 0, :]

    def to_smpl(self, positions: np.ndarray) -> np.ndarray:
        """SMPL local rotations (..., 22, 4) that `robot` maps back to `positions` (..., J).

        The inverse of the decomposition: joints driven by no robot joint take the zero pose, and
        a chain's whole rotation goes to its last joint (the others keep their zero pose).
        """
        if not self.profile.is_robot:
            raise ValueError(f"profile {self.profile.name!r} is an avatar")
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape[-1:] != (len(self.profile.joints),):
            raise ValueError(f"expected (..., {len(self.profile.joints)}) joint positions, got {pos.shape}")
        batch = pos.shape[:-1]
        q = np.broadcast_to(self.zero, batch + (NUM_JOINTS, 4)).copy()
        for drive in self._drives:
            m = np.broadcast_to(np.array([1.0, 0.0, 0.0, 0.0]), batch + (4,))
            for member, axis in zip(drive.members, drive.axes, strict=True):
                spec = self.profile.joints[member]
                angle = (pos[..., member] - spec.offset) / spec.sign
                m = quat_mul(m, _axis_quat(axis, angle))
            r = quat_mul(quat_mul(quat_mul(quat_conjugate(drive.g0), m), drive.g0), drive.z)
            head = np.array([1.0, 0.0, 0.0, 0.0])
            for c in drive.chain[:-1]:
                head = quat_mul(head, self.zero[c])
            q[..., drive.chain[-1], :] = quat_mul(quat_conjugate(head), r)
        return quat_normalize(q)

    # ----------------------------------------------------------------------------------------
    # Avatars

    def avatar(self, local_quats: np.ndarray, root: np.ndarray | None = None) -> AvatarFrame:
        """Bone rotations (..., B, 4) in the profile's bone order and the root translation (..., 3).

        A frame with a non-finite or zero quaternion, or a non-finite root, falls back to the
        profile's neutral pose and root, with `fallback` set.
        """
        if self.profile.is_robot:
            raise ValueError(f"profile {self.profile.name!r} is a robot; use robot()")
        q, invalid = self._clean_quats(local_quats)
        batch = q.shape[:-2]
        neutral_root = np.array(self.profile.neutral_root)
        if root is None or not self.profile.root_translation:
            r = np.broadcast_to(neutral_root, batch + (3,)).copy()
        else:
            r = np.asarray(root, dtype=np.float64)
            if r.shape != batch + (3,):
                raise ValueError(f"expected root translation {batch + (3,)}, got {r.shape}")
            invalid = invalid | ~np.all(np.isfinite(r), axis=-1)
        q = np.where(invalid[..., None, None], self.zero, q)
        r = np.where(invalid[..., None], neutral_root, r)
        return AvatarFrame(rotations=q[..., self._bone_index, :], root=r, fallback=invalid)
