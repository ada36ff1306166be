"""Inverse kinematics: local joint rotations from 22 joint positions (numpy, vectorised).

Most sources (trackers, the procedural generator, pybullet clips, InterHuman) give joint
positions only, while the 262-number feature frame also carries local rotations. Like
HumanML3D's `inverse_kinematics_np`, rotations are derived from bone directions, but solved so
that the result is exact for a rigid skeleton: `forward_kinematics(q, positions[..., 0, :],
scaled_offsets(lengths))` gives the input positions back whenever they come from that skeleton.

- A joint with several children (pelvis: hips + spine1; spine3: neck + collars) gets the world
  rotation that best maps its rest child offsets onto the observed child offsets, a least-squares
  (Kabsch/SVD) fit of exactly the children's FK position error, with the sign fix that keeps it a
  proper rotation.
- A joint with one child gets the shortest-arc rotation, in its parent's frame, from the rest
  bone direction to the observed one. The twist about the bone is not observable from positions;
  choosing no twist relative to the parent keeps rotations small and continuous.
- A leaf joint (head, wrists, feet) gets the identity: its rotation moves no joint.
Joints are solved parent before child, so local = inv(world_parent) * world.
"""

from __future__ import annotations

import numpy as np

from molam_ros.motion.rotations import matrix_to_quat, quat_between, quat_to_matrix
from molam_ros.motion.skeleton import CHILDREN, NUM_JOINTS, PARENTS, REST_OFFSETS, bone_lengths

# Below this ratio of the second to the first singular value, a multi-child joint's observed
# children count as collinear: the rotation about that line is unobservable, and the SVD's basis
# for it would be arbitrary, so `_kabsch` takes the shortest arc instead.
_RANK_TOL = 1e-6
_EPS = 1e-12  # metres^2 for singular values: below it every child has collapsed onto the joint

# Rest direction of each bone (unit, joint's own frame); the root row is unused.
_REST_DIRS = REST_OFFSETS / np.maximum(np.linalg.norm(REST_OFFSETS, axis=-1, keepdims=True), _EPS)


def make_quats_continuous(q: np.ndarray, axis: int = -3) -> np.ndarray:
    """Flip quaternion signs along the time `axis` so consecutive frames have a non-negative dot.

    q and -q are the same rotation; slerp, filtering and learned decoders want the path on the
    sphere to be continuous. The first frame keeps its sign and each later frame depends only on
    earlier ones, so this is causal. Shape (..., T, ..., 4) with T at `axis` (default: (..., T, J, 4)).
    """
    q = np.array(q, dtype=np.float64 if np.asarray(q).dtype != np.float32 else np.float32)
    if q.shape[-1] != 4:
        raise ValueError(f"expected quaternions (..., 4), got {q.shape}")
    axis = axis % q.ndim
    if axis == q.ndim - 1:
        raise ValueError("the time axis cannot be the quaternion axis")
    if q.shape[axis] < 2:
        return q
    qt = np.moveaxis(q, axis, 0)  # (T, ..., 4), a view into q
    dots = np.sum(qt[1:] * qt[:-1], axis=-1)  # (T-1, ...)
    signs = np.cumprod(np.where(dots < 0, -1.0, 1.0), axis=0).astype(q.dtype)
    qt[1:] *= signs[..., None]
    return q


def _kabsch(rest: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Rotations (N, 4) minimising sum_c |R rest_c - observed_c|^2 (children's FK position error).

    rest: (C, 3) rest child offsets (metres); observed: (N, C, 3) observed child offsets.
    Degenerate frames stay well defined: when the observed children are (nearly) collinear, every
    rotation taking the principal rest direction onto the principal observed one is optimal and
    we take the shortest arc between them (no spin about the line); when all children collapse
    onto the joint, the identity.
    """
    H = np.einsum("ci,ncj->nij", rest, observed)  # (N, 3, 3) cross-covariance; maximise tr(R H)
    U, S, Vt = np.linalg.svd(H)
    V = np.swapaxes(Vt, -1, -2)
    Ut = np.swapaxes(U, -1, -2)
    # Proper-rotation fix: flip the weakest axis when V U^T would be a reflection.
    d = np.where(np.linalg.det(V @ Ut) < 0, -1.0, 1.0)
    D = np.ones((H.shape[0], 3))
    D[:, 2] = d
    q = matrix_to_quat((V * D[:, None, :]) @ Ut)
    rank1 = S[:, 1] <= _RANK_TOL * S[:, 0] + _EPS
    arc = quat_between(U[:, :, 0], V[:, :, 0])  # sign-symmetric: (-u, -v) gives the same arc
    q = np.where(rank1[:, None], arc, q)
    return np.where((S[:, 0] <= _EPS)[:, None], np.array([1.0, 0.0, 0.0, 0.0]), q)


def inverse_kinematics(
    positions: np.ndarray, lengths: np.ndarray | None = None, *, continuous: bool = True
) -> np.ndarray:
    """Local joint rotations (w, x, y, z) that reproduce the given joint positions by FK.

    Args:
        positions: (..., 22, 3) world joint positions in metres, any leading dims (e.g. (T, 22, 3)
            or (P, T, 22, 3)).
        lengths: (22,) bone lengths for `scaled_offsets`; default `bone_lengths(positions)`, the
            clip's median lengths. For a rigid skeleton the rotations do not depend on them; for
            noisy data they weight the children in the multi-child fit (it minimises the FK
            position error of those children). Streaming callers should pass fixed lengths so a
            frame's rotations never depend on later frames.
        continuous: when positions has ndim >= 3, treat axis -3 as time and make the output's
            quaternion signs continuous over it (see `make_quats_continuous`); otherwise every
            quaternion has w >= 0.

    Returns:
        (..., 22, 4) float64 local rotations; the root's is its world orientation, leaves are
        identity. Never NaN, also for zero-length bones or collinear children.
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim < 2 or pos.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected (..., {NUM_JOINTS}, 3) joint positions, got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError("joint positions contain NaN or infinite values")
    if lengths is None:
        lengths = bone_lengths(pos)
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape != (NUM_JOINTS,) or not np.all(np.isfinite(lengths)) or np.any(lengths < 0):
        raise ValueError(f"expected {NUM_JOINTS} finite non-negative bone lengths, got {lengths}")

    batch = pos.shape[:-2]
    flat = pos.reshape(-1, NUM_JOINTS, 3)  # (N, 22, 3)
    n = flat.shape[0]
    rest = _REST_DIRS * lengths[:, None]  # (22, 3) = scaled_offsets(lengths)
    world = np.empty((n, NUM_JOINTS, 3, 3))
    local_q = np.zeros((n, NUM_JOINTS, 4))
    local_q[..., 0] = 1.0
    eye = np.broadcast_to(np.eye(3), (n, 3, 3))

    for j in range(NUM_JOINTS):  # parents come before children
        children = CHILDREN[j]
        parent_R = eye if PARENTS[j] < 0 else world[:, PARENTS[j]]  # (N, 3, 3)
        if not children:
            world[:, j] = parent_R  # leaf: identity local rotation
            continue
        observed = flat[:, children, :] - flat[:, j : j + 1, :]  # (N, C, 3) world offsets
        observed_local = np.einsum("nki,nck->nci", parent_R, observed)  # R_parent^T v
        if len(children) == 1:
            # Zero-length bones give the identity (quat_between of a zero vector).
            q = quat_between(_REST_DIRS[children[0]], observed_local[:, 0])  # (N, 4)
        else:
            q = _kabsch(rest[list(children)], observed_local)  # (N, 4)
        local_q[:, j] = q
        world[:, j] = parent_R @ quat_to_matrix(q)

    out = local_q.reshape(batch + (NUM_JOINTS, 4))
    if continuous and out.ndim >= 3:
        out = make_quats_continuous(out, axis=-3)
    return out
