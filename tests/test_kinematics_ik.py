"""Inverse kinematics is the exact inverse of forward kinematics on a rigid skeleton."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from molam_ros.motion.ik import inverse_kinematics, make_quats_continuous
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.rotations import axis_angle_to_quat, quat_to_matrix
from molam_ros.motion.skeleton import (
    CHILDREN,
    LEAF_JOINTS,
    NUM_JOINTS,
    REST_OFFSETS,
    bone_lengths,
    rest_bone_lengths,
    scaled_offsets,
)


def random_motion(
    seed: int, frames: int = 60, max_angle: float = 0.8
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Smooth random local rotations, bone-length scaling and root path; returns (pos, quats, lengths)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / 30.0  # (T, 1, 1) seconds
    amp = rng.uniform(0, max_angle, size=(1, NUM_JOINTS, 3))
    freq = rng.uniform(0.2, 1.5, size=(1, NUM_JOINTS, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, NUM_JOINTS, 3))
    aa = amp * np.sin(2 * np.pi * freq * t + phase)  # (T, 22, 3)
    aa[:, 0, 1] += rng.uniform(-np.pi, np.pi) + 0.5 * t[:, 0, 0]  # any heading, turning
    quats = axis_angle_to_quat(aa)
    lengths = rest_bone_lengths() * rng.uniform(0.8, 1.25)
    lengths[1:] *= rng.uniform(0.9, 1.1, size=NUM_JOINTS - 1)
    root = rng.normal(size=3) + np.cumsum(rng.normal(scale=0.01, size=(frames, 3)), axis=0)
    pos, _ = forward_kinematics(quats, root, scaled_offsets(lengths))
    return pos, quats, lengths


def fk_of_ik(pos: np.ndarray, lengths: np.ndarray | None = None) -> np.ndarray:
    q = inverse_kinematics(pos, lengths)
    if lengths is None:
        lengths = bone_lengths(pos)
    out, _ = forward_kinematics(q, pos[..., 0, :], scaled_offsets(lengths))
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.1, 1.5))
def test_ik_then_fk_reproduces_positions(seed, max_angle):
    pos, _, _ = random_motion(seed, frames=30, max_angle=max_angle)
    np.testing.assert_allclose(fk_of_ik(pos), pos, atol=1e-6, rtol=0)


def test_ik_recovers_rotations_of_non_leaf_swing_free_joints():
    """The multi-child joints' world rotations are fully observable, so IK finds them exactly."""
    pos, quats, lengths = random_motion(7)
    q = inverse_kinematics(pos, lengths)
    # Pelvis: its local rotation is its world rotation.
    np.testing.assert_allclose(quat_to_matrix(q[:, 0]), quat_to_matrix(quats[:, 0]), atol=1e-9)


def test_ik_rotations_are_unit_and_orthonormal():
    pos, _, _ = random_motion(1, frames=40)
    q = inverse_kinematics(pos)
    assert q.shape == (40, NUM_JOINTS, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-12)
    m = quat_to_matrix(q)
    np.testing.assert_allclose(m @ np.swapaxes(m, -1, -2), np.broadcast_to(np.eye(3), m.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(m), 1.0, atol=1e-12)
    leaves = q[:, list(LEAF_JOINTS)]
    np.testing.assert_allclose(np.abs(leaves[..., 0]), 1.0)


def test_ik_batches_over_any_leading_dims():
    a, _, _ = random_motion(2, frames=20)
    b, _, _ = random_motion(3, frames=20)
    lengths = bone_lengths(a)
    both = inverse_kinematics(np.stack([a, a]), lengths)
    assert both.shape == (2, 20, NUM_JOINTS, 4)
    np.testing.assert_allclose(both[1], inverse_kinematics(a, lengths), atol=1e-12)
    single = inverse_kinematics(b[5])
    assert single.shape == (NUM_JOINTS, 4)


def test_rest_pose_gives_identity():
    lengths = rest_bone_lengths() * 1.1
    pos, _ = forward_kinematics(
        np.tile([1.0, 0, 0, 0], (NUM_JOINTS, 1)), [0.0, 1.0, 0.0], scaled_offsets(lengths)
    )
    q = inverse_kinematics(pos)
    np.testing.assert_allclose(q, np.tile([1.0, 0, 0, 0], (NUM_JOINTS, 1)), atol=1e-9)


def test_ik_output_is_sign_continuous_over_time():
    pos, _, _ = random_motion(4, frames=120, max_angle=1.5)
    q = inverse_kinematics(pos)
    assert np.all(np.sum(q[1:] * q[:-1], axis=-1) >= 0)
    flipped = q * np.where(np.random.default_rng(0).random((120, NUM_JOINTS, 1)) < 0.5, -1.0, 1.0)
    fixed = make_quats_continuous(flipped)
    assert np.all(np.sum(fixed[1:] * fixed[:-1], axis=-1) >= 0)
    np.testing.assert_allclose(np.abs(np.sum(fixed * q, -1)), 1.0, atol=1e-12)


def test_ik_is_causal_with_fixed_lengths():
    pos, _, lengths = random_motion(5)
    full = inverse_kinematics(pos, lengths)
    np.testing.assert_array_equal(inverse_kinematics(pos[:17], lengths), full[:17])


@pytest.mark.parametrize("case", ["zeros", "collapsed_bone", "collinear", "opposite", "huge"])
def test_degenerate_input_gives_no_nan(case):
    pos, _, _ = random_motion(6, frames=10)
    if case == "zeros":
        pos = np.zeros_like(pos)
    elif case == "collapsed_bone":
        pos[:, 4] = pos[:, 1]  # knee on the hip
        pos[:, 13] = pos[:, 9]  # a collar on spine3
    elif case == "collinear":
        # Every child of the pelvis and of spine3 on one vertical line through the joint.
        for j in (0, 9):
            for k, c in enumerate(CHILDREN[j]):
                pos[:, c] = pos[:, j] + np.array([0.0, 0.1 * (k + 1), 0.0])
    elif case == "opposite":
        # Left thigh turned by pi about an axis across it: the observed bone is minus the rest one.
        quats = np.tile([1.0, 0.0, 0.0, 0.0], (10, NUM_JOINTS, 1))
        axis = np.cross(REST_OFFSETS[4], [1.0, 0.0, 0.0])
        quats[:, 1] = axis_angle_to_quat(axis / np.linalg.norm(axis) * np.pi)
        pos, _ = forward_kinematics(quats, pos[:, 0], scaled_offsets(bone_lengths(pos)))
    else:
        pos = pos * 1e6
    q = inverse_kinematics(pos)
    assert np.all(np.isfinite(q))
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-9)
    if case == "collinear":
        # No exact answer exists (the rest children are not collinear), but the single-child
        # bones below still point exactly where they are observed to.
        out = fk_of_ik(pos)
        assert np.all(np.isfinite(out))
        for parent, child in ((4, 7), (17, 19), (18, 20)):
            got, want = out[:, child] - out[:, parent], pos[:, child] - pos[:, parent]
            np.testing.assert_allclose(got, want, atol=1e-6)
    if case == "opposite":
        np.testing.assert_allclose(fk_of_ik(pos), pos, atol=1e-6)


def test_ik_rejects_bad_input():
    with pytest.raises(ValueError):
        inverse_kinematics(np.zeros((10, 21, 3)))
    bad = np.zeros((10, NUM_JOINTS, 3))
    bad[3, 4, 1] = np.nan
    with pytest.raises(ValueError):
        inverse_kinematics(bad)
    with pytest.raises(ValueError):
        inverse_kinematics(np.zeros((10, NUM_JOINTS, 3)), lengths=np.ones(5))


def test_multi_child_fit_is_the_best_proper_rotation_for_a_mirrored_pose():
    """A mirrored body has no exact rotation; the fit must still be the least-squares proper one."""
    pos, _, lengths = random_motion(8, frames=1)
    mirrored = pos * np.array([-1.0, 1.0, 1.0])  # a reflection: the naive SVD answer has det -1
    q = inverse_kinematics(mirrored, lengths)
    rest = scaled_offsets(lengths)
    candidates = axis_angle_to_quat(np.random.default_rng(0).uniform(-np.pi, np.pi, size=(20000, 3)))
    _, world = forward_kinematics(q, mirrored[:, 0], rest)
    for joint, parent in ((0, np.eye(3)), (9, quat_to_matrix(world[0, 6]))):  # spine3's parent: spine2
        children = list(CHILDREN[joint])
        observed = (mirrored[0, children] - mirrored[0, joint]) @ parent  # in the parent's frame

        def cost(m: np.ndarray, a: np.ndarray = rest[children], b: np.ndarray = observed) -> np.ndarray:
            return np.sum((np.einsum("...ij,cj->...ci", m, a) - b) ** 2, axis=(-1, -2))

        best_sampled = cost(quat_to_matrix(candidates)).min()
        assert cost(quat_to_matrix(q[0, joint])) <= best_sampled + 1e-9
