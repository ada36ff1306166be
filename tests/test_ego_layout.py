"""The bounded ego layout (motion/ego.py): exact inverse, invariance, boundedness, causality, anchoring."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.pybullet_clips import load_pybullet_clip
from molam_ros.data.real_clips import loop, mirror
from molam_ros.data.synth import generate_clip
from molam_ros.motion import ego
from molam_ros.motion.canonical import canonicalize
from molam_ros.motion.layout import (
    EGO,
    INTERGEN,
    features_to_local_quats,
    layout_of,
    pair_from_features,
    pair_to_features,
)
from molam_ros.motion.normalization import FeatureStats
from molam_ros.motion.skeleton import bone_lengths


def _turn(pos: np.ndarray, yaw: float, shift: tuple[float, float]) -> np.ndarray:
    """Positions turned about +Y by yaw and moved on the floor by shift (x, z)."""
    out = ego.rotate_y(pos, np.full(pos.shape[:-1], yaw))
    return out + np.array([shift[0], 0.0, shift[1]])


@pytest.fixture(scope="module")
def pair() -> np.ndarray:
    return generate_clip(3).positions.astype(np.float64)


def test_round_trip_is_exact_for_pairs_and_solo(pair: np.ndarray) -> None:
    feats, transform = pair_to_features(pair)
    assert feats.shape == (2, pair.shape[1], 268) and layout_of(feats) is EGO
    np.testing.assert_allclose(pair_from_features(feats, transform), pair, atol=1e-5)
    np.testing.assert_allclose(pair_from_features(feats), canonicalize(pair)[0], atol=1e-5)
    solo = load_pybullet_clip("humanoid3d_walk").positions.astype(np.float64)
    f1, t1 = pair_to_features(solo)
    assert f1.shape[0] == 1 and np.all(f1[0, :, ego.PARTNER] == 0)
    np.testing.assert_allclose(pair_from_features(f1, t1), solo, atol=1e-5)


def test_features_do_not_depend_on_where_the_pair_is(pair: np.ndarray) -> None:
    """Moved 40 m and turned: the same numbers (the intergen layout's positions would not be)."""
    far = _turn(pair, 2.0, (40.0, -25.0))
    a, _ = pair_to_features(pair)
    b, _ = pair_to_features(far)
    np.testing.assert_allclose(a, b, atol=2e-4)


def test_a_long_walk_stays_in_the_range_of_a_short_one() -> None:
    """Walking cycles looped for 60 s (tens of metres): every number within the first 4 s's range."""
    walk = load_pybullet_clip("walker_0walk_forward").positions[0].astype(np.float64)
    long = loop(walk, seconds=60.0)
    assert np.linalg.norm(long[-1, 0, [0, 2]] - long[0, 0, [0, 2]]) > 20.0
    f, _ = pair_to_features(long)
    early, late = f[0, 1:120], f[0, -600:]
    span = early.max(0) - early.min(0) + 1e-3
    assert np.all(late.max(0) <= early.max(0) + 0.1 * span + 1e-3)
    assert np.all(late.min(0) >= early.min(0) - 0.1 * span - 1e-3)


def test_features_are_causal(pair: np.ndarray) -> None:
    lengths = np.stack([bone_lengths(p[0]) for p in pair])
    full, _ = pair_to_features(pair, floor_height=0.0, lengths=lengths)
    part, _ = pair_to_features(pair[:, :37], floor_height=0.0, lengths=lengths)
    np.testing.assert_allclose(full[:, :37], part, atol=1e-5)


def test_person_b_is_anchored_to_person_a(pair: np.ndarray) -> None:
    """Noise on b's own velocities does not make b drift: its relation to a places it (frame by frame
    with pull 1, exactly; smoothed by default, within a bound that does not grow with time)."""
    feats, _ = pair_to_features(pair)
    noisy = feats.copy()
    rng = np.random.default_rng(0)
    noisy[1, :, ego.ROOT_VEL] += rng.normal(0.0, 0.05, size=noisy[1, :, ego.ROOT_VEL].shape)
    noisy[1, :, ego.YAW_VEL] += rng.normal(0.0, 0.2, size=noisy[1, :, ego.YAW_VEL].shape)
    canon = canonicalize(pair)[0]
    np.testing.assert_allclose(pair_from_features(noisy, pull=1.0)[1], canon[1], atol=1e-4)
    drift = ego.ego_to_positions(noisy, anchor_b=False)[1]
    assert np.abs(drift - canon[1]).max() > 0.1  # integrating them would drift
    # four times the clip: the smoothed placement's error stays where it was after the first quarter
    long = np.concatenate([noisy] * 4, axis=1)
    long_ref = ego.ego_to_positions(np.concatenate([feats] * 4, axis=1), pull=1.0)[1]
    err = np.linalg.norm(pair_from_features(long)[1] - long_ref, axis=-1).mean(-1)
    free = np.linalg.norm(ego.ego_to_positions(long, anchor_b=False)[1] - long_ref, axis=-1).mean(-1)
    q = len(err) // 4
    assert err[-q:].mean() < 1.5 * err[q : 2 * q].mean() + 0.01 and err[-q:].mean() < 0.5 * free[-q:].mean()


def test_the_smoothed_placement_decodes_a_noisy_relation_closer(pair: np.ndarray) -> None:
    """Frame-to-frame noise in b's decoded relation (what a tokenizer gives) swings an anchor taken
    frame by frame about a; the default placement smoothing (`ego.DECODE_PULL`) places b closer."""
    feats, _ = pair_to_features(pair)
    canon = canonicalize(pair)[0]
    np.testing.assert_allclose(pair_from_features(feats)[1], canon[1], atol=1e-4)  # exact stays exact
    noisy = feats.copy().astype(np.float64)
    rng = np.random.default_rng(1)
    noisy[1, :, ego.REL_POS] += rng.normal(0.0, 0.05, size=noisy[1, :, ego.REL_POS].shape)
    turn = np.arctan2(noisy[1, :, 266], noisy[1, :, 265]) + rng.normal(0.0, 0.05, noisy.shape[1])
    noisy[1, :, ego.REL_HEAD] = np.stack([np.cos(turn), np.sin(turn)], -1)
    err = lambda pull: np.linalg.norm(pair_from_features(noisy, pull=pull)[1] - canon[1], axis=-1).mean()  # noqa: E731
    assert err(ego.DECODE_PULL) < 0.7 * err(1.0)


def test_a_partner_far_away_is_clipped_and_still_decodes(pair: np.ndarray) -> None:
    far = pair.copy()
    far[1] = _turn(pair[1], 0.0, (30.0, 0.0))  # b walks 30 m off
    feats, transform = pair_to_features(far)
    assert np.linalg.norm(feats[1, :, ego.REL_POS], axis=-1).max() <= ego.REL_RADIUS + 1e-5
    back = pair_from_features(feats, transform)
    assert np.all(np.isfinite(back))
    np.testing.assert_allclose(back[0], far[0], atol=1e-4)  # person a is exact; b integrates instead


def test_lying_upside_down_and_mirrored_motion_is_finite() -> None:
    for name in ("humanoid3d_backflip", "humanoid3d_roll", "humanoid3d_getup_facedown"):
        pos = load_pybullet_clip(name).positions.astype(np.float64)
        for p in (pos, mirror(pos)):
            f, t = pair_to_features(p)
            assert np.all(np.isfinite(f)) and np.abs(f).max() < 50
            np.testing.assert_allclose(pair_from_features(f, t), p, atol=1e-4)
            assert np.all(np.isfinite(features_to_local_quats(f)))


def test_bad_input_is_a_clear_error(pair: np.ndarray) -> None:
    bad = pair.copy()
    bad[0, 3, 5, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pair_to_features(bad)
    with pytest.raises(ValueError, match="22"):
        pair_to_features(pair[:, :, :20])
    with pytest.raises(ValueError, match="two people"):
        pair_to_features(np.concatenate([pair, pair[:1]]))
    with pytest.raises(ValueError, match="268"):
        ego.ego_to_positions(np.zeros((1, 4, 100)))
    with pytest.raises(ValueError, match="numbers wide"):
        layout_of(100)


def test_layouts_and_their_stats_floors(pair: np.ndarray) -> None:
    assert layout_of("intergen") is INTERGEN and layout_of(262) is INTERGEN and layout_of("ego") is EGO
    feats, _ = pair_to_features(pair)
    stats = FeatureStats.from_features([feats])
    assert stats.dim == 268
    assert np.all(stats.std[ego.PARTNER] >= 0.1) and np.all(stats.std[ego.CONTACT] >= 0.1)
    np.testing.assert_allclose(stats.denormalize(stats.normalize(feats)), feats, atol=1e-4)


def test_follow_anchor_smooths_a_noisy_relation_without_drifting(pair: np.ndarray) -> None:
    """The complementary filter: pull 1 is the anchor; a smaller pull removes frame-to-frame noise of
    the decoded relation, stays near the true placement, and continues across stream steps."""
    canon, _ = canonicalize(pair)
    a, b = canon
    fb = ego.person_to_ego(b, a).astype(np.float64)
    yaw_a, root_a = ego.heading(a), a[:, 0]
    exact = ego.anchored_root(fb, yaw_a, root_a)
    one = ego.follow_anchor(fb, yaw_a, root_a, pull=1.0)
    assert np.allclose(one[0], exact[0]) and np.allclose(one[1], exact[1])
    noisy = fb.copy()
    rng = np.random.default_rng(0)
    noisy[:, ego.REL_HEAD] = np.stack(
        [np.cos(r := np.arctan2(fb[:, 266], fb[:, 265]) + rng.normal(0, 0.08, len(fb))), np.sin(r)], -1
    )
    raw = ego.anchored_root(noisy, yaw_a, root_a)[1]
    smooth = ego.follow_anchor(noisy, yaw_a, root_a, pull=0.04)[1]
    jitter = lambda r: np.linalg.norm(np.diff(r, 2, axis=0), axis=-1).mean()  # noqa: E731
    assert jitter(smooth) < 0.2 * jitter(raw)
    err = lambda r: np.linalg.norm(r - exact[1], axis=-1).mean()  # noqa: E731
    assert err(smooth) < err(raw)
    # streaming in steps of 4 frames, carrying the last frame, gives the same as one call
    whole = ego.follow_anchor(noisy, yaw_a, root_a, pull=0.04)
    prev, parts = None, []
    for s in range(0, len(fb) // 4 * 4, 4):
        y, r = ego.follow_anchor(noisy[s : s + 4], yaw_a[s : s + 4], root_a[s : s + 4], pull=0.04, prev=prev)
        prev = (float(y[-1]), r[-1])
        parts.append(r)
    assert np.allclose(np.concatenate(parts), whole[1][: len(parts) * 4])
    with pytest.raises(ValueError, match="pull"):
        ego.follow_anchor(fb, yaw_a, root_a, pull=0.0)
