"""The avatar's skeleton as a transform tree (what ROS TF and VR engines take), in their conventions.

A skeleton in ROS is a TF tree: one transform per bone, parent frame -> child frame, the child's
translation from its parent (in the parent's frame) and its rotation relative to the parent. The
avatar's frames carry exactly that: SMPL local rotations (w, x, y, z) per bone, relative to a rest
pose whose bone frames are aligned with the world (the T-pose, facing +Z, Y up, the person's left
+X), and the root translation. The bone offsets are the rest offsets (motion/skeleton.py), scaled
to the avatar's bone lengths. So frame j sits at joint j, turned by the chain of local rotations
from the root: composing the tree from the world gives the joint positions (tested).

Conventions (`Convention`):
- `ros`: as the core, right-handed, Y up (the world the reactor's positions are in). A Z-up
  (REP 103) consumer adds one fixed transform above the root.
- `unity`: Unity's left-handed world, Y up, +Z forward, +X right. The person faces +Z in both, so
  only the lateral axis flips: a point (x, y, z) becomes (-x, y, z), and a rotation, conjugated by
  that mirror, (w, x, y, z) -> (w, x, -y, -z). Unity's Quaternion and Vector3 compose with the same
  formulas, so a client chains these numbers as they are.

What a rig does with them: VRM 1.0 "normalized" humanoid bones are world-aligned at rest, so the
local rotations apply as they are (`localRotation`). Any other Unity Humanoid rig has its own bone
rest orientations: chain the rotations to a global one G (parent first) and set
`bone.rotation = G * rest_rotation(bone)`, with the bone's world rotation captured in its T-pose.
The bone names come from the avatar profile (config/profiles/avatar_unity_humanoid.yaml,
avatar_vrm.yaml).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molam_ros.motion.rotations import quat_mul, quat_rotate
from molam_ros.motion.skeleton import JOINT_NAMES, PARENTS, REST_OFFSETS, scaled_offsets
from molam_ros.runtime.profiles import Profile

CONVENTIONS = ("ros", "unity")
_Y_UP_TO_Z_UP = np.array([np.sqrt(0.5), np.sqrt(0.5), 0.0, 0.0])  # +90 degrees about +X


@dataclass(frozen=True)
class BoneTransform:
    """One edge of the tree: `child`'s frame in `parent`'s, translation (3,) metres and rotation (4,)
    (w, x, y, z); `parent` is the world frame's name for the root bone."""

    parent: str
    child: str
    translation: np.ndarray
    rotation: np.ndarray


def to_convention(points: np.ndarray, quats: np.ndarray, convention: str) -> tuple[np.ndarray, np.ndarray]:
    """Points (..., 3) and rotations (..., 4) (w, x, y, z) from the core's axes into `convention`."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown convention {convention!r}; choose from {CONVENTIONS}")
    p, q = np.array(points, dtype=np.float64), np.array(quats, dtype=np.float64)
    if convention == "unity":
        p[..., 0] *= -1.0
        q[..., 2:] *= -1.0
    return p, q


def bone_transforms(
    profile: Profile,
    rotations: np.ndarray,
    root: np.ndarray,
    *,
    lengths: np.ndarray | None = None,
    convention: str = "ros",
    world: str = "world",
    z_up: bool = False,
) -> list[BoneTransform]:
    """The avatar frame (rotations (B, 4) in the profile's bone order, root (3,)) as its transform
    tree, root first and parents before children, bones named as the profile names them.

    A bone whose SMPL parent the profile leaves out hangs from the nearest ancestor it has, the
    offsets of the bones in between added (their rotations are not in the frame: identity).
    `z_up`: the world is Z up (REP 103, the input's when the node reads `pose_up_axis: z`): the root
    is turned into it, (x, y, z) -> (x, -z, y), a quarter turn about +X; only with `ros`."""
    if z_up and convention != "ros":
        raise ValueError(f"a Z-up world is a ROS convention, not {convention!r}")
    names = {smpl: name for name, smpl in profile.bones}
    local = {smpl: np.asarray(rotations[b], dtype=np.float64) for b, (_, smpl) in enumerate(profile.bones)}
    offsets = REST_OFFSETS if lengths is None else scaled_offsets(lengths)
    out = []
    identity = np.array([1.0, 0.0, 0.0, 0.0])
    for j, parent in enumerate(PARENTS):
        smpl = JOINT_NAMES[j]
        if smpl not in names:
            continue
        if parent < 0:
            t, q = np.asarray(root, dtype=np.float64), local[smpl]
            if z_up:
                t, q = np.array([t[0], -t[2], t[1]]), quat_mul(_Y_UP_TO_Z_UP, q)
            out.append(BoneTransform(world, names[smpl], *to_convention(t, q, convention)))
            continue
        # Walk up to the nearest listed ancestor, composing the skipped bones' offsets and turns.
        t, turn, k = offsets[j], identity, parent
        while k >= 0 and JOINT_NAMES[k] not in names:
            skipped = local.get(JOINT_NAMES[k], identity)
            t = offsets[k] + quat_rotate(skipped, t)
            turn = quat_mul(skipped, turn)
            k = PARENTS[k]
        parent_name = world if k < 0 else names[JOINT_NAMES[k]]
        out.append(
            BoneTransform(
                parent_name, names[smpl], *to_convention(t, quat_mul(turn, local[smpl]), convention)
            )
        )
    return out


def world_positions(transforms: list[BoneTransform], world: str = "world") -> dict[str, np.ndarray]:
    """Each frame's origin in the world, chaining the tree (a check, and what a viewer draws)."""
    pose: dict[str, tuple[np.ndarray, np.ndarray]] = {world: (np.zeros(3), np.array([1.0, 0.0, 0.0, 0.0]))}
    for tf in transforms:
        p, q = pose[tf.parent]
        pose[tf.child] = (p + quat_rotate(q, tf.translation), quat_mul(q, tf.rotation))
    return {name: p for name, (p, _) in pose.items() if name != world}
