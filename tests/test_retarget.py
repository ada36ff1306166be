"""Retargeting: exact axis decomposition, the right sense of every joint, garbage never gets out."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from molam_ros.motion.rotations import axis_angle_to_quat, quat_mul, quat_normalize, quat_to_matrix
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS
from molam_ros.runtime.profiles import Profile, load_profile, profile_from_dict
from molam_ros.runtime.retarget import Retargeter, euler_from_matrix

ROBOTS = ("unitree_h1", "unitree_g1")


def _full_body(name: str) -> Profile:
    """The robot profile with the legs retargeted too (the shipped ones hold them at neutral)."""
    return dataclasses.replace(load_profile(name), upper_body_only=False)


def _pose(**rotvecs_deg: list[float]) -> np.ndarray:
    """SMPL local rotations (22, 4): identity except the given rotation vectors (degrees)."""
    q = np.tile([1.0, 0.0, 0.0, 0.0], (NUM_JOINTS, 1))
    for joint, rv in rotvecs_deg.items():
        q[JOINT_INDEX[joint]] = axis_angle_to_quat(np.radians(rv))
    return q


def _axis_rot(axis: int, angle: np.ndarray) -> np.ndarray:
    aa = np.zeros(np.shape(angle) + (3,))
    aa[..., axis] = angle
    return axis_angle_to_quat(aa)


# Robot zero pose (upper arms hanging, forearms forward) in SMPL terms.
ARMS_ZERO = {
    "left_shoulder": [0, 0, -90],
    "right_shoulder": [0, 0, 90],
    "left_elbow": [0, -90, 0],
    "right_elbow": [0, 90, 0],
}


@pytest.mark.parametrize("axes", list(itertools.permutations(range(3))))
def test_euler_decomposition_is_exact_for_every_order(axes: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    angles = rng.uniform(-np.pi, np.pi, (500, 3))
    angles[:, 1] = rng.uniform(-np.pi / 2, np.pi / 2, 500)
    angles[:20, 1] = np.pi / 2 * np.sign(rng.standard_normal(20))  # gimbal lock
    angles[20:40, 1] = np.pi / 2 - 1e-8  # next to it
    q = quat_mul(
        quat_mul(_axis_rot(axes[0], angles[:, 0]), _axis_rot(axes[1], angles[:, 1])),
        _axis_rot(axes[2], angles[:, 2]),
    )
    m = quat_to_matrix(q)
    sols = euler_from_matrix(m, axes)
    for k in range(2):
        s = sols[:, k]
        back = quat_mul(
            quat_mul(_axis_rot(axes[0], s[:, 0]), _axis_rot(axes[1], s[:, 1])), _axis_rot(axes[2], s[:, 2])
        )
        assert np.abs(quat_to_matrix(back) - m).max() < 1e-6
    np.testing.assert_allclose(sols[40:, 0], angles[40:], atol=1e-9)  # away from the lock: the angles
    assert np.all(np.abs(sols[:, 0, 1]) <= np.pi / 2 + 1e-12)  # principal solution first


@pytest.mark.parametrize("name", ROBOTS)
def test_every_joint_alone_round_trips_over_its_range(name: str) -> None:
    """A rotation built from known angles about the profile's axes decomposes back to them."""
    profile = _full_body(name)
    rt = Retargeter(profile)
    for j, spec in enumerate(profile.joints):
        values = np.linspace(spec.lower, spec.upper, 13)
        q = np.tile(profile.neutral, (len(values), 1))
        q[:, j] = values
        back = rt.robot(rt.to_smpl(q))
        assert not back.fallback.any() and not back.clamped.any(), spec.name
        np.testing.assert_allclose(back.positions, q, atol=1e-7, err_msg=spec.name)


@pytest.mark.parametrize("name", ROBOTS)
def test_random_poses_round_trip(name: str) -> None:
    """All joints at once, anywhere within limits: exact with the true angles as reference.

    Without a reference the retargeter prefers the solution nearer neutral unless that one needs
    much more clamping (retarget.py), so over the full (super-human) ranges some frames take a
    slightly clamped twin; every unclamped frame is an exact decomposition of the same rotations.
    """
    profile = _full_body(name)
    rt = Retargeter(profile)
    rng = np.random.default_rng(1)
    q = rng.uniform(profile.lower, profile.upper, (2000, profile.num_joints))
    smpl = rt.to_smpl(q)
    with_ref = rt.robot(smpl, reference=q)
    np.testing.assert_allclose(with_ref.positions, q, atol=1e-7)
    assert not with_ref.clamped.any()
    free = rt.robot(smpl)
    assert np.all((free.positions >= profile.lower) & (free.positions <= profile.upper))
    exact = ~free.clamped.any(axis=-1)
    assert exact.mean() > 0.9
    back = quat_to_matrix(rt.to_smpl(free.positions[exact]))
    np.testing.assert_allclose(back, quat_to_matrix(smpl[exact]), atol=1e-7)
    # Human-range poses (near neutral) come back exactly without any reference.
    near = np.clip(profile.neutral + rng.uniform(-0.6, 0.6, q.shape), profile.lower, profile.upper)
    np.testing.assert_allclose(rt.robot(rt.to_smpl(near)).positions, near, atol=1e-7)


@pytest.mark.parametrize("name", ROBOTS)
def test_known_poses_move_the_right_joints_the_right_way(name: str) -> None:
    profile = _full_body(name)
    rt = Retargeter(profile)
    names = profile.joint_names

    def moved(q: np.ndarray) -> dict[str, float]:
        out = rt.robot(q)
        assert not out.fallback
        return {n: round(float(v), 4) for n, v in zip(names, out.positions, strict=True) if abs(v) > 1e-6}

    # The robot's zero pose in SMPL terms gives all zeros.
    assert moved(_pose(**ARMS_ZERO)) == {}
    # SMPL's T-pose: arms abducted 90 degrees (left roll +, right roll -), elbows straight (+pi/2).
    half_pi = round(np.pi / 2, 4)
    tpose = moved(_pose())
    assert tpose["left_shoulder_roll_joint"] == half_pi and tpose["right_shoulder_roll_joint"] == -half_pi
    assert tpose["left_elbow_joint"] == half_pi and tpose["right_elbow_joint"] == half_pi
    # Left arm raised forward to horizontal (pitched about the lateral axis from hanging):
    # negative shoulder pitch, the Unitree convention.
    forward = _pose(**ARMS_ZERO)
    forward[JOINT_INDEX["left_shoulder"]] = quat_mul(
        _axis_rot(0, -np.pi / 2), forward[JOINT_INDEX["left_shoulder"]]
    )
    assert moved(forward) == {"left_shoulder_pitch_joint": -half_pi}
    # Thigh forward 30 degrees, knee bent 60: hip pitch -0.5236, knee +1.0472.
    legs = moved(_pose(**ARMS_ZERO, left_hip=[-30, 0, 0], left_knee=[60, 0, 0]))
    assert legs == {"left_hip_pitch_joint": -0.5236, "left_knee_joint": 1.0472}
    # Twisting the chest to the left by 3 x 10 degrees: the waist/torso yaw takes all of it.
    twist = moved(_pose(**ARMS_ZERO, spine1=[0, 10, 0], spine2=[0, 10, 0], spine3=[0, 10, 0]))
    assert twist == {("torso_joint" if name == "unitree_h1" else "waist_yaw_joint"): 0.5236}


def test_upper_body_only_holds_the_legs() -> None:
    h1 = load_profile("unitree_h1")
    out = Retargeter(h1).robot(_pose(**dict(ARMS_ZERO, left_knee=[60, 0, 0], left_shoulder=[0, -90, 0])))
    legs = h1.leg_mask
    np.testing.assert_array_equal(out.positions[legs], h1.neutral[legs])
    assert out.positions[h1.joint_names.index("left_shoulder_pitch_joint")] == pytest.approx(-np.pi / 2)


@pytest.mark.parametrize("name", ROBOTS)
def test_garbage_in_is_finite_and_within_limits_out(name: str) -> None:
    profile = _full_body(name)
    rt = Retargeter(profile)
    rng = np.random.default_rng(2)
    n = 400
    q = rng.standard_normal((n, NUM_JOINTS, 4)) * 10.0 ** rng.uniform(-3, 9, (n, NUM_JOINTS, 1))
    q[0, 3, 1] = np.nan
    q[1, 5] = np.inf
    q[2, 7] = 0.0  # not a rotation
    q[3] = 1e300
    q[4, :, 0] = -np.inf
    out = rt.robot(q)
    assert np.all(np.isfinite(out.positions))
    assert np.all((out.positions >= profile.lower) & (out.positions <= profile.upper))
    np.testing.assert_array_equal(out.fallback[:5], [True, True, True, False, True])
    assert not out.fallback[5:].any()
    np.testing.assert_array_equal(out.positions[[0, 1, 2, 4]], np.tile(profile.neutral, (4, 1)))
    # A non-unit quaternion is the rotation it represents.
    good = rt.to_smpl(profile.neutral)
    np.testing.assert_allclose(rt.robot(good * 7.5).positions, rt.robot(good).positions, atol=1e-9)
    # A garbage reference is ignored where not finite.
    ref = np.full(profile.num_joints, np.nan)
    assert np.all(np.isfinite(rt.robot(q[5], reference=ref).positions))


def test_batches_equal_single_frames() -> None:
    profile = _full_body("unitree_g1")
    rt = Retargeter(profile)
    rng = np.random.default_rng(3)
    quats = quat_normalize(rng.standard_normal((2, 5, NUM_JOINTS, 4)))
    batch = rt.robot(quats)
    assert batch.positions.shape == (2, 5, profile.num_joints) and batch.fallback.shape == (2, 5)
    for i, k in itertools.product(range(2), range(5)):
        np.testing.assert_array_equal(rt.robot(quats[i, k]).positions, batch.positions[i, k])
    with pytest.raises(ValueError, match="local quaternions"):
        rt.robot(np.zeros((21, 4)))


def test_reference_keeps_a_stream_on_its_branch() -> None:
    """Sweeping the left arm up sideways past the horizontal: no branch flip, no jump."""
    profile = _full_body("unitree_h1")
    rt = Retargeter(profile)
    roll = profile.joint_names.index("left_shoulder_roll_joint")
    q = np.tile(profile.neutral, (200, 1))
    q[:, roll] = np.linspace(0.0, 3.0, 200)
    q[:, roll - 1] = 0.3  # some pitch, so the path does not cross the gimbal lock exactly
    smpl = rt.to_smpl(q)
    previous = profile.neutral
    path = []
    for frame in smpl:
        previous = rt.robot(frame, reference=previous).positions
        path.append(previous)
    np.testing.assert_allclose(np.array(path), q, atol=1e-7)


def test_avatar_passes_rotations_and_root_through() -> None:
    avatar = load_profile("avatar_smpl")
    rt = Retargeter(avatar)
    rng = np.random.default_rng(4)
    quats = rng.standard_normal((3, NUM_JOINTS, 4))
    root = rng.standard_normal((3, 3))
    root[2] = np.nan
    out = rt.avatar(quats, root)
    np.testing.assert_allclose(out.rotations[:2], quat_normalize(quats[:2]), atol=1e-12)
    np.testing.assert_allclose(out.root[:2], root[:2])
    np.testing.assert_array_equal(out.fallback, [False, False, True])
    np.testing.assert_allclose(out.rotations[2], avatar.zero_pose, atol=1e-12)  # neutral: arms relaxed
    np.testing.assert_allclose(out.root[2], avatar.neutral_root)
    rig = profile_from_dict(
        {
            "name": "rig",
            "kind": "avatar",
            "joints": [{"name": "Head", "smpl": "head"}, {"name": "Hips", "smpl": "pelvis"}],
        }
    )
    picked = Retargeter(rig).avatar(quats[0], root[0])
    np.testing.assert_allclose(picked.rotations, quat_normalize(quats[0, [JOINT_INDEX["head"], 0]]))
    with pytest.raises(ValueError, match="avatar"):
        rt.robot(quats[0])
    with pytest.raises(ValueError, match="robot"):
        Retargeter(load_profile("unitree_h1")).avatar(quats[0], root[0])
