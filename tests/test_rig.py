"""The avatar's transform tree (runtime/rig.py) and the Unity Humanoid / VRM bone mappings: chaining
the tree gives forward kinematics, and a Unity-convention frame of a known pose has the bone
directions worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.rotations import quat_normalize, yaw_quat
from molam_ros.motion.skeleton import JOINT_NAMES, REST_OFFSETS
from molam_ros.runtime.profiles import load_profile, profile_from_dict
from molam_ros.runtime.rig import bone_transforms, to_convention, world_positions

HUMANOID = {"left_shoulder": "LeftUpperArm", "left_collar": "LeftShoulder", "left_wrist": "LeftHand"}


def _pose(rng: np.random.Generator) -> np.ndarray:
    return quat_normalize(np.array([1.0, 0, 0, 0]) + 0.3 * rng.normal(size=(22, 4)))


def test_chaining_the_tree_is_forward_kinematics() -> None:
    profile = load_profile("avatar_smpl")
    quats, root = _pose(np.random.default_rng(0)), np.array([1.0, 0.9, -2.0])
    tree = bone_transforms(profile, quats, root)
    assert [t.child for t in tree] == list(JOINT_NAMES) and tree[0].parent == "world"
    positions, _ = forward_kinematics(quats, root, REST_OFFSETS)
    got = world_positions(tree)
    np.testing.assert_allclose(np.stack([got[n] for n in JOINT_NAMES]), positions, atol=1e-9)
    # The same in Unity's axes is the mirror image in x.
    unity = world_positions(bone_transforms(profile, quats, root, convention="unity"))
    np.testing.assert_allclose(np.stack([unity[n] for n in JOINT_NAMES]), positions * [-1, 1, 1], atol=1e-9)


def test_a_unity_frame_of_a_known_pose_by_hand() -> None:
    """T-pose, the left elbow bent 90 degrees so the forearm points forward. By hand: the left upper
    arm runs along the rest offset of the elbow (0.255, -0.016, -0.021) m, in Unity's axes
    (-0.255, -0.016, -0.021), i.e. to the avatar's left, which is Unity's -X; the forearm, the wrist's
    offset (0.266, 0.009, -0.007) turned -90 degrees about +Y, is (0.007, 0.009, 0.266), in Unity
    (-0.007, 0.009, 0.266): forward, +Z in both."""
    profile = load_profile("avatar_unity_humanoid")
    assert profile.convention == "unity"
    assert {smpl: name for name, smpl in profile.bones if smpl in HUMANOID} == HUMANOID
    quats = np.tile([1.0, 0, 0, 0], (22, 1))
    quats[JOINT_NAMES.index("left_elbow")] = yaw_quat(np.float64(-np.pi / 2))
    tree = bone_transforms(profile, quats, np.array([0.0, 0.95, 0.0]), convention=profile.convention)
    pos = world_positions(tree)
    np.testing.assert_allclose(pos["LeftLowerArm"] - pos["LeftUpperArm"], [-0.255, -0.016, -0.021], atol=1e-9)
    np.testing.assert_allclose(pos["LeftHand"] - pos["LeftLowerArm"], [-0.007, 0.009, 0.266], atol=1e-9)
    by_name = {t.child: t for t in tree}
    # The elbow's own rotation in Unity: -90 degrees about +Y mirrors to +90 degrees about +Y.
    np.testing.assert_allclose(
        by_name["LeftLowerArm"].rotation, [np.sqrt(0.5), 0, np.sqrt(0.5), 0], atol=1e-12
    )
    assert by_name["Hips"].parent == "world" and by_name["LeftLowerArm"].parent == "LeftUpperArm"


def test_vrm_names_and_a_profile_that_leaves_bones_out() -> None:
    vrm = load_profile("avatar_vrm")
    assert vrm.convention == "ros" and [b for b, _ in vrm.bones][:3] == [
        "hips",
        "leftUpperLeg",
        "rightUpperLeg",
    ]
    # A rig without upperChest: neck hangs from chest, the offsets of spine3 and neck added up.
    partial = profile_from_dict(
        {
            "name": "p",
            "kind": "avatar",
            "joints": [{"name": n, "smpl": n} for n in JOINT_NAMES if n != "spine3"],
        }
    )
    quats = np.tile([1.0, 0, 0, 0], (21, 1))
    tree = {t.child: t for t in bone_transforms(partial, quats, np.zeros(3))}
    assert tree["neck"].parent == "spine2"
    np.testing.assert_allclose(tree["neck"].translation, REST_OFFSETS[9] + REST_OFFSETS[12], atol=1e-12)
    with pytest.raises(ValueError, match="convention"):
        to_convention(np.zeros(3), np.array([1.0, 0, 0, 0]), "unreal")


def test_a_z_up_world_turns_the_root_only() -> None:
    """REP 103 worlds: the root's place and turn go into Z up ((x, y, z) -> (x, -z, y)); the bones
    below are relative and stay; chaining gives the Y-up positions turned the same way."""
    profile = load_profile("avatar_smpl")
    quats, root = _pose(np.random.default_rng(3)), np.array([0.5, 0.9, -1.5])
    yup = world_positions(bone_transforms(profile, quats, root))
    zup = world_positions(bone_transforms(profile, quats, root, z_up=True))
    for name in JOINT_NAMES:
        x, y, z = yup[name]
        np.testing.assert_allclose(zup[name], [x, -z, y], atol=1e-9)
    with pytest.raises(ValueError, match="Z-up"):
        bone_transforms(profile, quats, root, convention="unity", z_up=True)
