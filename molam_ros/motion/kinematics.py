"""Forward kinematics on the SMPL 22-joint skeleton (numpy).

Rotations are local: joint j's rotation is relative to its parent's frame, and it turns the
offsets of j's children. The root's rotation is its world orientation. Inverse kinematics (joint
positions -> local rotations) lives in `ik.py`.
"""

from __future__ import annotations

import numpy as np

from molam_ros.motion.rotations import quat_mul, quat_rotate
from molam_ros.motion.skeleton import NUM_JOINTS, PARENTS


def forward_kinematics(
    local_quats: np.ndarray, root_positions: np.ndarray, offsets: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Joint world positions and world rotations from local rotations.

    Args:
        local_quats: (..., 22, 4) local rotations, (w, x, y, z).
        root_positions: (..., 3) world position of the pelvis.
        offsets: (22, 3) or (..., 22, 3) rest offsets of each joint from its parent, metres
            (for example `skeleton.scaled_offsets(bone_lengths(clip))`).

    Returns:
        positions (..., 22, 3) and world rotations (..., 22, 4).
    """
    local_quats = np.asarray(local_quats, dtype=np.float64)
    if local_quats.shape[-2:] != (NUM_JOINTS, 4):
        raise ValueError(f"expected (..., {NUM_JOINTS}, 4) local quaternions, got {local_quats.shape}")
    batch = local_quats.shape[:-2]
    offsets = np.broadcast_to(np.asarray(offsets, dtype=np.float64), batch + (NUM_JOINTS, 3))
    root_positions = np.broadcast_to(np.asarray(root_positions, dtype=np.float64), batch + (3,))
    world_q = np.empty(batch + (NUM_JOINTS, 4))
    pos = np.empty(batch + (NUM_JOINTS, 3))
    world_q[..., 0, :] = local_quats[..., 0, :]
    pos[..., 0, :] = root_positions
    for j in range(1, NUM_JOINTS):
        p = PARENTS[j]
        pos[..., j, :] = pos[..., p, :] + quat_rotate(world_q[..., p, :], offsets[..., j, :])
        world_q[..., j, :] = quat_mul(world_q[..., p, :], local_quats[..., j, :])
    return pos, world_q
