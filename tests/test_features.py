"""The 262-number frame: layout, inverse, causality and foot contacts."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.motion.features import (
    CONTACT,
    FEATURE_DIM,
    POS,
    ROT,
    VEL,
    ContactConfig,
    features_to_local_quats,
    features_to_positions,
    foot_contacts,
    integrate_velocities,
    positions_to_features,
)
from molam_ros.motion.ik import inverse_kinematics
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.rotations import axis_angle_to_quat, quat_to_matrix
from molam_ros.motion.skeleton import FOOT_JOINTS, NUM_JOINTS, bone_lengths, rest_bone_lengths, scaled_offsets

IDENTITY = np.array([1.0, 0.0, 0.0, 0.0])


def random_motion(seed: int, frames: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Smooth random local rotations over a drifting root, feet near y = 0; returns (pos, quats)."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / 30.0
    amp = rng.uniform(0, 0.6, size=(1, NUM_JOINTS, 3))
    freq = rng.uniform(0.2, 1.5, size=(1, NUM_JOINTS, 3))
    phase = rng.uniform(0, 2 * np.pi, size=(1, NUM_JOINTS, 3))
    quats = axis_angle_to_quat(amp * np.sin(2 * np.pi * freq * t + phase))
    root = np.array([0.0, 0.95, 0.0]) + np.cumsum(rng.normal(scale=0.01, size=(frames, 3)), axis=0)
    pos, _ = forward_kinematics(quats, root, scaled_offsets(rest_bone_lengths() * rng.uniform(0.85, 1.15)))
    return pos, quats


def standing(frames: int = 30) -> np.ndarray:
    """A rest pose standing still with the lowest joint on the floor."""
    quats = np.tile(IDENTITY, (frames, NUM_JOINTS, 1))
    pos, _ = forward_kinematics(quats, np.zeros((frames, 3)), scaled_offsets(rest_bone_lengths()))
    pos[..., 1] -= pos[..., 1].min()
    return pos


def test_layout_and_shapes():
    assert (POS.stop - POS.start, VEL.stop - VEL.start, ROT.stop - ROT.start) == (66, 66, 126)
    assert CONTACT == slice(258, 262) and FEATURE_DIM == 262
    pos, _ = random_motion(0)
    f = positions_to_features(pos)
    assert f.shape == (60, FEATURE_DIM) and f.dtype == np.float32
    batched = positions_to_features(np.stack([pos, pos + 1.0]))
    assert batched.shape == (2, 60, FEATURE_DIM)
    np.testing.assert_array_equal(batched[0], f)


def test_positions_round_trip_below_a_millimetre():
    pos, _ = random_motion(1)
    f = positions_to_features(pos)
    back = features_to_positions(f)
    assert back.shape == (60, NUM_JOINTS, 3)
    assert np.abs(back - pos).max() < 1e-3
    # The velocity block integrates back to the same positions.
    assert np.abs(integrate_velocities(f, pos[0]) - pos).max() < 1e-3
    assert np.abs(integrate_velocities(f) - pos).max() < 1e-3


def test_velocity_is_backward_difference():
    pos, _ = random_motion(2)
    vel = positions_to_features(pos)[:, VEL].reshape(60, NUM_JOINTS, 3)
    np.testing.assert_array_equal(vel[0], 0.0)
    np.testing.assert_allclose(vel[1:], pos[1:] - pos[:-1], atol=1e-6)


def test_rotations_survive_the_6d_block():
    pos, _ = random_motion(3)
    q_ik = features_to_local_quats(positions_to_features(pos))
    q = inverse_kinematics(pos)
    np.testing.assert_allclose(quat_to_matrix(q_ik[:, 1:]), quat_to_matrix(q[:, 1:]), atol=1e-5)
    np.testing.assert_allclose(q_ik[:, 0], np.tile(IDENTITY, (60, 1)))
    assert np.all(np.sum(q_ik[1:] * q_ik[:-1], -1) >= 0)  # sign-continuous over time
    # FK of the decoded rotations, with the root's rotation from the source, gives the positions.
    q_ik[:, 0] = q[:, 0]
    rebuilt, _ = forward_kinematics(q_ik, pos[:, 0], scaled_offsets(bone_lengths(pos)))
    assert np.abs(rebuilt - pos).max() < 1e-3


def test_given_local_quats_are_used():
    pos, quats = random_motion(4)
    f = positions_to_features(pos, local_quats=quats)
    np.testing.assert_allclose(
        quat_to_matrix(features_to_local_quats(f)[:, 1:]), quat_to_matrix(quats[:, 1:]), atol=1e-6
    )


def test_features_are_causal():
    pos, _ = random_motion(5, frames=60)
    pos[:, FOOT_JOINTS, 1] *= 0.1  # bring the feet near the floor so contacts vary
    lengths = bone_lengths(pos)
    full = positions_to_features(pos, lengths=lengths)
    assert 0 < full[:, CONTACT].mean() < 1
    for k in (1, 2, 17, 59):
        np.testing.assert_array_equal(positions_to_features(pos[:k], lengths=lengths), full[:k])


def test_contacts_standing_still_vs_moving_foot():
    pos = standing(30)
    c = positions_to_features(pos)[:, CONTACT]
    np.testing.assert_array_equal(c, 1.0)  # still, on the floor
    # Swing the left foot (ankle + toe) forward fast, still low: moving means no contact.
    moving = pos.copy()
    moving[:, [7, 10], 2] += 0.05 * np.arange(30)[:, None]
    c = foot_contacts(moving)
    np.testing.assert_array_equal(c[1:, [0, 1]], 0.0)
    np.testing.assert_array_equal(c[0], 1.0)  # frame 0 has no velocity yet
    np.testing.assert_array_equal(c[:, [2, 3]], 1.0)
    # Lift the right foot, still: high means no contact.
    lifted = pos.copy()
    lifted[:, [8, 11], 1] += 0.3
    np.testing.assert_array_equal(foot_contacts(lifted)[:, [2, 3]], 0.0)
    # The floor height is a setting.
    np.testing.assert_array_equal(foot_contacts(pos + [0.0, 2.0, 0.0], ContactConfig(floor_height=2.0)), 1.0)
    np.testing.assert_array_equal(foot_contacts(pos + [0.0, 2.0, 0.0]), 0.0)


def test_bad_input_is_rejected():
    pos, _ = random_motion(6, frames=5)
    with pytest.raises(ValueError):
        positions_to_features(pos[:, :21])
    with pytest.raises(ValueError):
        positions_to_features(pos[0])  # no time axis
    bad = pos.copy()
    bad[2, 3, 0] = np.nan
    with pytest.raises(ValueError):
        positions_to_features(bad)
    with pytest.raises(ValueError):
        positions_to_features(pos, local_quats=np.zeros((5, NUM_JOINTS, 3)))
    with pytest.raises(ValueError):
        features_to_positions(np.zeros((5, 261)))
    f = positions_to_features(pos)
    f[1, 5] = np.inf
    with pytest.raises(ValueError):
        features_to_local_quats(f)
    with pytest.raises(ValueError):
        ContactConfig(max_speed=-1.0)


def test_raw_network_output_decodes_to_valid_rotations():
    f = np.random.default_rng(7).normal(size=(3, 10, FEATURE_DIM)).astype(np.float32)
    q = features_to_local_quats(f)
    assert q.shape == (3, 10, NUM_JOINTS, 4)
    np.testing.assert_allclose(np.linalg.norm(q, axis=-1), 1.0, atol=1e-6)
