"""The SMPL 22-joint body skeleton that every part of molam_ros speaks.

Joint order, parents and kinematic chains follow SMPL's body joints (the layout used by
HumanML3D, InterHuman and InterGen), so loaders of those datasets can index joints directly.
Coordinates are metres, Y up, the body facing +Z in the rest pose, so the person's left side
is +X. The rest pose is SMPL's T-pose (arms straight out along +/-X).
"""

from __future__ import annotations

import numpy as np

JOINT_NAMES: tuple[str, ...] = (
    "pelvis",
    "left_hip",
    "right_hip",
    "spine1",
    "left_knee",
    "right_knee",
    "spine2",
    "left_ankle",
    "right_ankle",
    "spine3",
    "left_foot",
    "right_foot",
    "neck",
    "left_collar",
    "right_collar",
    "head",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}

# Parent of each joint (-1 for the root). Every parent comes before its children, so a single
# forward pass over the joints is a valid traversal order for forward kinematics.
PARENTS: tuple[int, ...] = (-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19)

# Chains from the root (or spine3) to each extremity: right leg, left leg, spine+head,
# right arm, left arm. Used for drawing and for per-limb losses.
KINEMATIC_CHAINS: tuple[tuple[int, ...], ...] = (
    (0, 2, 5, 8, 11),
    (0, 1, 4, 7, 10),
    (0, 3, 6, 9, 12, 15),
    (9, 14, 17, 19, 21),
    (9, 13, 16, 18, 20),
)

# Rest-pose offset of each joint from its parent, metres, in the parent's frame (which is the
# world frame in the rest pose). Rounded from the SMPL neutral body's regressed joints, re-expressed
# Y-up/facing +Z. Only directions matter for inverse kinematics; bone lengths are taken from the
# clip itself (see `bone_lengths`) so a tall or short person is represented exactly.
REST_OFFSETS = np.array(
    [
        [0.000, 0.000, 0.000],  # pelvis (root; its offset is the root translation)
        [0.058, -0.082, -0.018],  # left_hip
        [-0.060, -0.091, -0.014],  # right_hip
        [0.004, 0.124, -0.038],  # spine1
        [0.043, -0.386, 0.008],  # left_knee
        [-0.043, -0.383, -0.005],  # right_knee
        [0.004, 0.138, 0.027],  # spine2
        [-0.015, -0.427, -0.037],  # left_ankle
        [0.019, -0.420, -0.035],  # right_ankle
        [-0.002, 0.056, 0.002],  # spine3
        [0.041, -0.060, 0.122],  # left_foot
        [-0.035, -0.062, 0.130],  # right_foot
        [-0.013, 0.212, -0.033],  # neck
        [0.072, 0.114, -0.019],  # left_collar
        [-0.083, 0.112, -0.024],  # right_collar
        [0.010, 0.089, 0.050],  # head
        [0.123, 0.045, -0.019],  # left_shoulder
        [-0.113, 0.047, -0.008],  # right_shoulder
        [0.255, -0.016, -0.021],  # left_elbow
        [-0.260, -0.014, -0.031],  # right_elbow
        [0.266, 0.009, -0.007],  # left_wrist
        [-0.269, -0.007, -0.006],  # right_wrist
    ],
    dtype=np.float64,
)

# Joints whose world rotation carries no information for positions (no children).
LEAF_JOINTS: tuple[int, ...] = tuple(j for j in range(NUM_JOINTS) if j not in PARENTS)
CHILDREN: tuple[tuple[int, ...], ...] = tuple(
    tuple(c for c, p in enumerate(PARENTS) if p == j) for j in range(NUM_JOINTS)
)

# Foot joints used for contact labels: (left_ankle, left_foot, right_ankle, right_foot).
FOOT_JOINTS: tuple[int, ...] = (
    JOINT_INDEX["left_ankle"],
    JOINT_INDEX["left_foot"],
    JOINT_INDEX["right_ankle"],
    JOINT_INDEX["right_foot"],
)
# Joints that define the body's facing: hips and shoulders, as (left, right) pairs.
FACING_JOINTS: tuple[tuple[int, int], ...] = (
    (JOINT_INDEX["left_hip"], JOINT_INDEX["right_hip"]),
    (JOINT_INDEX["left_shoulder"], JOINT_INDEX["right_shoulder"]),
)


def rest_bone_lengths() -> np.ndarray:
    """Bone length of each joint to its parent in the template rest pose, shape (22,)."""
    return np.linalg.norm(REST_OFFSETS, axis=-1)


def bone_lengths(positions: np.ndarray) -> np.ndarray:
    """Median bone length of each joint to its parent over a clip, shape (22,) (root: 0).

    The median makes the estimate robust to a few noisy frames of a tracker.
    `positions` is (..., T, 22, 3) or (22, 3).
    """
    pos = np.asarray(positions, dtype=np.float64)
    if pos.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected (..., {NUM_JOINTS}, 3) joint positions, got {pos.shape}")
    parents = np.array(PARENTS[1:])
    lengths = np.linalg.norm(pos[..., 1:, :] - pos[..., parents, :], axis=-1)
    lengths = lengths.reshape(-1, NUM_JOINTS - 1)
    return np.concatenate([[0.0], np.median(lengths, axis=0)])


def scaled_offsets(lengths: np.ndarray) -> np.ndarray:
    """Template rest offsets rescaled so each bone has the given length, shape (22, 3)."""
    lengths = np.asarray(lengths, dtype=np.float64)
    if lengths.shape != (NUM_JOINTS,):
        raise ValueError(f"expected {NUM_JOINTS} bone lengths, got shape {lengths.shape}")
    rest = rest_bone_lengths()
    out = REST_OFFSETS.copy()
    out[1:] *= (lengths[1:] / rest[1:])[:, None]
    return out
