"""Two-person canonicalisation: invariance to where and which way a pair was recorded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from molam_ros.motion.canonical import (
    CanonicalTransform,
    canonical_transform,
    canonicalize,
    facing_angle,
    pair_from_features,
    pair_to_features,
)
from molam_ros.motion.features import CONTACT, FEATURE_DIM
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.rotations import axis_angle_to_quat, quat_mul, yaw_quat
from molam_ros.motion.skeleton import NUM_JOINTS, bone_lengths, rest_bone_lengths, scaled_offsets


def person(seed: int, frames: int = 60, heading: float = 0.0, start=(0.0, 0.0)) -> np.ndarray:
    """One person moving smoothly, facing `heading` at frame 0, on a floor at y = 0."""
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None, None] / 30.0
    amp = rng.uniform(0, 0.4, size=(1, NUM_JOINTS, 3))
    freq = rng.uniform(0.2, 1.5, size=(1, NUM_JOINTS, 3))
    aa = amp * np.sin(2 * np.pi * freq * t)  # zero at frame 0: rest pose facing +Z, then moving
    quats = axis_angle_to_quat(aa)
    quats[:, 0] = quat_mul(yaw_quat(np.full(frames, heading)), quats[:, 0])
    root = np.array([start[0], 0.95, start[1]]) + np.cumsum(rng.normal(scale=0.01, size=(frames, 3)), axis=0)
    pos, _ = forward_kinematics(quats, root, scaled_offsets(rest_bone_lengths() * rng.uniform(0.85, 1.15)))
    return pos


def pair(seed: int = 0) -> np.ndarray:
    return np.stack(
        [person(seed, heading=0.7, start=(2.0, -1.0)), person(seed + 1, heading=-2.0, start=(3.0, 0.5))]
    )


def random_rigid_motion(positions: np.ndarray, seed: int) -> np.ndarray:
    """The same pair turned about +Y and moved anywhere in 3D (the floor moves with it)."""
    rng = np.random.default_rng(seed)
    yaw = rng.uniform(-np.pi, np.pi)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])
    return positions @ rot.T + rng.uniform(-5.0, 5.0, size=3)


def test_facing_angle_of_rest_pose_and_turned_pose():
    # The template's hips and shoulders are not perfectly symmetric: the rest pose faces almost +Z.
    rest = facing_angle(person(0)[0])
    assert abs(rest) < 0.05
    for heading in (0.5, np.pi / 2, -2.5):
        turned = facing_angle(person(0, heading=heading)[0]) - rest
        np.testing.assert_allclose(np.angle(np.exp(1j * (turned - heading))), 0.0, atol=1e-9)
    # Undefined facing (everything on one point) is 0, not NaN.
    assert facing_angle(np.zeros((NUM_JOINTS, 3))) == 0.0


def test_person_a_at_origin_facing_plus_z_floor_at_zero():
    canon, transform = canonicalize(pair())
    np.testing.assert_allclose(canon[0, 0, 0, [0, 2]], 0.0, atol=1e-9)
    np.testing.assert_allclose(facing_angle(canon[0, 0]), 0.0, atol=1e-9)
    assert abs(canon[..., 1].min()) < 1e-9
    assert canon[1, 0, 0, 1] > 0.5  # person b is still standing on the floor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_features_invariant_to_global_yaw_and_translation(seed):
    pos = pair(seed)
    f, _ = pair_to_features(pos)
    moved = random_rigid_motion(pos, seed + 100)
    f2, transform = pair_to_features(moved)
    assert f.shape == (2, 60, FEATURE_DIM) and f.dtype == np.float32
    np.testing.assert_allclose(f2, f, atol=1e-5, rtol=0)
    assert 0 < f[..., CONTACT].mean() <= 1  # contacts are in play, and match (exactly, above)


def test_round_trip_to_world_below_a_millimetre():
    pos = random_rigid_motion(pair(3), 7)
    f, transform = pair_to_features(pos)
    back = pair_from_features(f, transform)
    assert back.shape == pos.shape
    assert np.abs(back - pos).max() < 1e-3
    canon = pair_from_features(f)
    np.testing.assert_allclose(canon, canonicalize(pos)[0], atol=1e-5)


def test_transform_apply_invert_and_dict():
    t = CanonicalTransform(yaw=1.2, translation=np.array([1.0, -0.2, 3.0]))
    pts = np.random.default_rng(0).normal(size=(4, 5, 3))
    np.testing.assert_allclose(t.invert(t.apply(pts)), pts, atol=1e-12)
    # Lengths and heights relative to the floor are kept.
    np.testing.assert_allclose(
        np.linalg.norm(t.apply(pts) - t.apply(np.zeros(3)), axis=-1), np.linalg.norm(pts, axis=-1)
    )
    t2 = CanonicalTransform.from_dict(json.loads(json.dumps(t.to_dict())))
    np.testing.assert_allclose(t2.apply(pts), t.apply(pts))
    with pytest.raises(ValueError):
        CanonicalTransform.from_dict({"yaw": 0.0})
    with pytest.raises(ValueError):
        CanonicalTransform(yaw=float("nan"), translation=np.zeros(3))
    with pytest.raises(ValueError):
        t.translation[0] = 5.0  # frozen, array included


def test_floor_height_is_over_all_people_or_given():
    pos = pair(4)
    pos[1, :, :, 1] -= 0.2  # person b stands lower
    assert np.isclose(canonical_transform(pos).translation[1], pos[..., 1].min())
    assert np.isclose(canonical_transform(pos[0]).translation[1], pos[0, ..., 1].min())
    t = canonical_transform(pos, floor_height=-0.05)
    assert t.translation[1] == -0.05
    # Streaming with a fixed floor: a prefix canonicalises exactly like the whole clip.
    lengths = np.stack([bone_lengths(p) for p in pos])
    f_full, _ = pair_to_features(pos, floor_height=-0.05, lengths=lengths)
    f_pre, _ = pair_to_features(pos[:, :20], floor_height=-0.05, lengths=lengths)
    np.testing.assert_allclose(f_pre, f_full[:, :20], atol=1e-6)


def test_single_person_and_bad_input():
    f, _ = pair_to_features(person(5))
    assert f.shape == (1, 60, FEATURE_DIM)
    with pytest.raises(ValueError):
        pair_to_features(np.zeros((2, 10, 21, 3)))
    bad = pair(6)
    bad[1, 3, 4, 2] = np.nan
    with pytest.raises(ValueError):
        canonicalize(bad)
