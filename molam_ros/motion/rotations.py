"""Rotation conversions between quaternions, axis-angle, matrices and the continuous 6D form.

Conventions, fixed across molam_ros:
- quaternions are (w, x, y, z), scalar first (as HumanML3D and SMPL tooling use). ROS messages
  carry (x, y, z, w); convert at the message boundary only.
- matrices act on column vectors: v_world = R @ v_local.
- 6D is the first two columns of the matrix, concatenated: (r00, r10, r20, r01, r11, r21)
  (Zhou et al., CVPR 2019), continuous and therefore learnable.
All functions are numpy, broadcast over leading dimensions and return float64 unless the input
is float32.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-9


def _as_float(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternion with a non-negative w (one canonical sign of the double cover)."""
    q = _as_float(q)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    q = q / np.maximum(n, _EPS)
    return np.where(q[..., :1] < 0, -q, q)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a*b (apply b first, then a)."""
    a, b = _as_float(a), _as_float(b)
    aw, ax, ay, az = np.moveaxis(a, -1, 0)
    bw, bx, by, bz = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        axis=-1,
    )


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """Inverse of a unit quaternion."""
    q = _as_float(q)
    return q * np.array([1.0, -1.0, -1.0, -1.0], dtype=q.dtype)


def quat_rotate(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors v (..., 3) by unit quaternions q (..., 4)."""
    q, v = _as_float(q), _as_float(v)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) -> (..., 3, 3)."""
    q = quat_normalize(q)
    w, x, y, z = np.moveaxis(q, -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )  # fmt: skip
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 4), numerically stable for every rotation (Shepperd's method)."""
    m = _as_float(m)
    batch = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=1, axis2=2)
    diag = np.stack([m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], axis=1)
    # Candidate magnitudes 4w^2, 4x^2, 4y^2, 4z^2: pick the largest to avoid dividing by ~0.
    cand = np.stack([1 + tr, 1 + 2 * diag[:, 0] - tr, 1 + 2 * diag[:, 1] - tr, 1 + 2 * diag[:, 2] - tr], 1)
    best = np.argmax(cand, axis=1)
    q = np.empty((m.shape[0], 4), dtype=m.dtype)
    s = 2.0 * np.sqrt(np.maximum(cand[np.arange(len(best)), best], _EPS))  # = 4*|component|
    r = m
    for k in range(4):
        i = best == k
        if not np.any(i):
            continue
        si = s[i]
        ri = r[i]
        if k == 0:
            q[i] = np.stack([si / 4, (ri[:, 2, 1] - ri[:, 1, 2]) / si, (ri[:, 0, 2] - ri[:, 2, 0]) / si,
                             (ri[:, 1, 0] - ri[:, 0, 1]) / si], 1)  # fmt: skip
        elif k == 1:
            q[i] = np.stack([(ri[:, 2, 1] - ri[:, 1, 2]) / si, si / 4, (ri[:, 0, 1] + ri[:, 1, 0]) / si,
                             (ri[:, 0, 2] + ri[:, 2, 0]) / si], 1)  # fmt: skip
        elif k == 2:
            q[i] = np.stack([(ri[:, 0, 2] - ri[:, 2, 0]) / si, (ri[:, 0, 1] + ri[:, 1, 0]) / si, si / 4,
                             (ri[:, 1, 2] + ri[:, 2, 1]) / si], 1)  # fmt: skip
        else:
            q[i] = np.stack([(ri[:, 1, 0] - ri[:, 0, 1]) / si, (ri[:, 0, 2] + ri[:, 2, 0]) / si,
                             (ri[:, 1, 2] + ri[:, 2, 1]) / si, si / 4], 1)  # fmt: skip
    return quat_normalize(q).reshape(batch + (4,))


def axis_angle_to_quat(aa: np.ndarray) -> np.ndarray:
    """Rotation vectors (axis * angle in radians, ..., 3) -> (..., 4)."""
    aa = _as_float(aa)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle -> 0.5 as angle -> 0 (Taylor), so small rotations stay exact.
    k = np.where(angle < 1e-6, 0.5 - angle**2 / 48.0, np.sin(half) / np.maximum(angle, _EPS))
    return np.concatenate([np.cos(half), aa * k], axis=-1)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(..., 4) -> rotation vectors (..., 3) with angle in [0, pi]."""
    q = quat_normalize(q)
    s = np.linalg.norm(q[..., 1:], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., :1])
    k = np.where(s < 1e-6, 2.0 + angle**2 / 12.0, angle / np.maximum(s, _EPS))
    return q[..., 1:] * k


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """(..., 3) -> (..., 3, 3)."""
    return quat_to_matrix(axis_angle_to_quat(aa))


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 3)."""
    return quat_to_axis_angle(matrix_to_quat(m))


def matrix_to_6d(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two columns."""
    m = _as_float(m)
    return np.concatenate([m[..., :, 0], m[..., :, 1]], axis=-1)


def rot6d_to_matrix(d6: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt; any 6 numbers give a valid rotation.

    This is the projection a network's raw output needs before it can be used as a rotation.
    """
    d6 = _as_float(d6)
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), _EPS)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), _EPS)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-1)


def quat_to_6d(q: np.ndarray) -> np.ndarray:
    """(..., 4) -> (..., 6)."""
    return matrix_to_6d(quat_to_matrix(q))


def rot6d_to_quat(d6: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 4)."""
    return matrix_to_quat(rot6d_to_matrix(d6))


def quat_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking direction u onto direction v (both (..., 3), any length).

    For opposite vectors the axis is any perpendicular one, chosen deterministically.
    """
    u, v = _as_float(u), _as_float(v)
    u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), _EPS)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)
    w = 1.0 + np.sum(u * v, axis=-1, keepdims=True)
    axis = np.cross(u, v)
    # Opposite directions: rotate by pi about an axis perpendicular to u. Only where the cross
    # product is too small to give an axis (1e-8: w's rounding, ~2e-16, then tilts the arc by
    # < 1e-7 rad): a threshold on w itself (w < 1e-8) took directions up to 1.4e-4 rad from
    # opposite for opposite, and rotated them that far off.
    opposite = (w[..., 0] < 1.0) & (np.linalg.norm(axis, axis=-1) < 1e-8)
    if np.any(opposite):
        alt = np.cross(u, np.array([1.0, 0.0, 0.0]))
        small = np.linalg.norm(alt, axis=-1, keepdims=True) < 1e-6
        alt = np.where(small, np.cross(u, np.array([0.0, 1.0, 0.0])), alt)
        axis = np.where(opposite[..., None], alt, axis)
        w = np.where(opposite[..., None], 0.0, w)
    return quat_normalize(np.concatenate([w, axis], axis=-1))


def yaw_quat(angle: np.ndarray) -> np.ndarray:
    """Rotation about +Y (the up axis) by `angle` radians, (...,) -> (..., 4)."""
    angle = _as_float(angle)
    half = 0.5 * angle
    zeros = np.zeros_like(half)
    return np.stack([np.cos(half), zeros, np.sin(half), zeros], axis=-1)


def quat_slerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Spherical interpolation from a to b at fraction t (broadcast), shortest path."""
    a, b = quat_normalize(a), quat_normalize(b)
    t = _as_float(t)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    t = t[..., None] if np.ndim(t) == np.ndim(dot) - 1 else t
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    wa = np.where(near, 1.0 - t, np.sin((1.0 - t) * theta) / np.maximum(sin_theta, _EPS))
    wb = np.where(near, t, np.sin(t * theta) / np.maximum(sin_theta, _EPS))
    return quat_normalize(wa * a + wb * b)
