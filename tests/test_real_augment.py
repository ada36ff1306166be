"""Augmentations of the real clips (data/real_clips.py): the tilt keeps the body rigid and the floor."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.pybullet_clips import load_pybullet_clip
from molam_ros.data.real_clips import augment, real_clips, tilt
from molam_ros.motion.layout import pair_from_features, pair_to_features
from molam_ros.motion.skeleton import bone_lengths


@pytest.fixture(scope="module")
def walk() -> np.ndarray:
    return load_pybullet_clip("humanoid3d_walk").positions[0].astype(np.float64)


def _spine_tilt(pos: np.ndarray) -> np.ndarray:
    """(T,) angle (radians) between pelvis -> head and the vertical."""
    v = pos[:, 15] - pos[:, 0]
    return np.arccos(np.clip(v[:, 1] / np.linalg.norm(v, axis=-1), -1.0, 1.0))


def test_tilt_is_rigid_keeps_the_floor_and_eases_between_its_two_angles(walk: np.ndarray) -> None:
    out = tilt(walk, np.random.default_rng(3))
    dist = np.linalg.norm(walk[:, :, None] - walk[:, None], axis=-1)  # every pair of joints, every frame
    np.testing.assert_allclose(np.linalg.norm(out[:, :, None] - out[:, None], axis=-1), dist, atol=1e-9)
    np.testing.assert_allclose(out[..., 1].min(-1), walk[..., 1].min(-1), atol=1e-9)  # floor clearance
    # The angle drawn after the axis: the body turns from |a| to |b| about a horizontal axis, so
    # a walker (spine near vertical) ends tilted by about |b| and starts by about |a|.
    rng = np.random.default_rng(3)
    rng.uniform()
    a, b = rng.uniform(-np.radians(100), np.radians(100), size=2)
    before, after = _spine_tilt(walk), _spine_tilt(out)
    assert abs(after[0] - abs(a)) < before[0] + 0.05 and abs(after[-1] - abs(b)) < before[-1] + 0.05
    step = np.abs(np.diff(after)).max()
    assert step < 2 * abs(b - a) / len(walk) + 0.05  # smooth: no jump from frame to frame


def test_a_tilted_clip_is_a_valid_motion(walk: np.ndarray) -> None:
    for seed in range(5):
        out = tilt(walk, np.random.default_rng(seed), max_angle=np.pi / 2)
        f, t = pair_to_features(out[None])  # one person
        assert np.all(np.isfinite(f))
        np.testing.assert_allclose(pair_from_features(f, t), out[None], atol=1e-4)


def test_tilt_share_tilts_the_last_variants_and_leaves_the_others_as_before() -> None:
    def train_clips(share: float) -> list:
        clips = []
        for clip in real_clips(variants=4, seed=0, tilt_share=share):
            if clip.meta["split"] == "train":
                clips.append(clip)
            if len(clips) == 4:  # the first source's variants
                return clips
        raise AssertionError("no training source")

    plain, tilted = train_clips(0.0), train_clips(0.5)
    for v in range(2):
        np.testing.assert_array_equal(plain[v].positions, tilted[v].positions)
    for v in (2, 3):
        assert not np.allclose(plain[v].positions, tilted[v].positions)
        np.testing.assert_allclose(
            bone_lengths(tilted[v].positions[0]), bone_lengths(plain[v].positions[0]), atol=1e-4
        )
    with pytest.raises(ValueError, match="tilt share"):
        next(real_clips(variants=2, seed=0, tilt_share=1.5))


def test_augment_without_a_tilt_rng_is_unchanged(walk: np.ndarray) -> None:
    clip = load_pybullet_clip("humanoid3d_walk")
    a = augment(clip, np.random.default_rng(1), cyclic=True)
    b = augment(clip, np.random.default_rng(1), cyclic=True, tilt_rng=None)
    np.testing.assert_array_equal(a, b)
    c = augment(clip, np.random.default_rng(1), cyclic=True, tilt_rng=np.random.default_rng(2))
    assert c.shape == a.shape and not np.allclose(a, c)
