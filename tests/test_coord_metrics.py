"""The coordination measures on motions whose answer is known: moved, turned, lifted, sliding copies."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.coordination.metrics import (
    _segment_closest,
    contact_exclusions,
    distance_map,
    facing_error,
    foot_floor,
    foot_sliding,
    interpersonal_distance,
    join_speeds,
    penetration,
    summarize,
)
from molam_ros.data.synth import generate_clip
from molam_ros.motion.skeleton import JOINT_INDEX


@pytest.fixture(scope="module")
def wave() -> np.ndarray:
    """A wave (no contact), actor first, float64."""
    clip = generate_clip(5, "wave", "friendly")
    return clip.positions[[clip.meta["actor"], clip.meta["reactor"]]].astype(np.float64)


def _turn(body: np.ndarray, yaw: float) -> np.ndarray:
    root = body[:, :1] * np.array([1.0, 0.0, 1.0])
    c, s = np.cos(yaw), np.sin(yaw)
    R = np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    return (body - root) @ R.T + root


def test_segment_closest_points_match_a_dense_search() -> None:
    rng = np.random.default_rng(0)
    p0, p1, q0, q1 = (rng.normal(size=(200, 3)) for _ in range(4))
    q1[:20] = q0[:20] + (p1[:20] - p0[:20])  # parallel pairs
    pa, pb = _segment_closest(p0, p1, q0, q1)
    s = np.linspace(0, 1, 101)
    dense_p = p0[:, None] + s[None, :, None] * (p1 - p0)[:, None]  # (200, 201, 3)
    dense_q = q0[:, None] + s[None, :, None] * (q1 - q0)[:, None]
    brute = np.linalg.norm(dense_p[:, :, None] - dense_q[:, None], axis=-1).min(axis=(1, 2))
    exact = np.linalg.norm(pa - pb, axis=-1)
    assert np.all(exact <= brute + 1e-9) and np.allclose(exact, brute, atol=1e-2)


def test_distance_map_sees_people_apart_and_inside_each_other(wave: np.ndarray) -> None:
    a = wave[0]
    far = a + np.array([3.0, 0.0, 0.0])
    dmap = distance_map(a, far)
    assert dmap.shape == (a.shape[0], 21, 21) and dmap.min() > 2.0
    inside = penetration(np.stack([a, a + np.array([0.05, 0.0, 0.0])]))
    assert inside["frames"] == 1.0 and inside["max_mm"] > 150  # torsos 5 cm apart: deep overlap
    assert penetration(np.stack([a, far]))["max_mm"] == 0.0
    # the recorded pair never overlaps, and its depth per frame is one number per frame
    rec = penetration(wave)
    assert rec["per_frame_mm"].shape == (wave.shape[1],) and rec["max_mm"] == 0.0


def test_contact_interactions_exclude_the_touching_limbs() -> None:
    clip = generate_clip(3, "hug")
    pair = clip.positions[[clip.meta["actor"], clip.meta["reactor"]]]
    allowed = contact_exclusions("hug")
    assert JOINT_INDEX["left_wrist"] in allowed and contact_exclusions("wave") == ()
    assert contact_exclusions(None) == () and contact_exclusions("tango") == ()
    assert penetration(pair, allowed)["max_mm"] <= penetration(pair)["max_mm"]
    assert penetration(pair, allowed)["max_mm"] == 0.0


def test_foot_sliding_reads_a_drift_of_the_whole_body(wave: np.ndarray) -> None:
    still = foot_sliding(wave)
    assert still["mean_mm"] < 2.0 and 0 < still["contact_share"] <= 1
    drift = wave.copy()
    drift[..., 0] += 0.006 * np.arange(wave.shape[1])[None, :, None]  # 6 mm per frame sideways
    slid = foot_sliding(drift)
    assert slid["mean_mm"] == pytest.approx(6.0 + still["mean_mm"], abs=1.5)
    assert slid["per_frame_mm"].shape == wave.shape[:2]


def test_foot_floor_is_the_lowest_foot_height(wave: np.ndarray) -> None:
    on = foot_floor(wave)
    assert on["abs_mm"] < 2.0
    up = wave.copy()
    up[..., 1] += 0.04
    down = wave.copy()
    down[..., 1] -= 0.03
    assert foot_floor(up)["above_mm"] == pytest.approx(40.0, abs=2.0) and foot_floor(up)["below_mm"] < 0.5
    assert foot_floor(down)["below_mm"] == pytest.approx(30.0, abs=2.0)


def test_facing_error_and_distance(wave: np.ndarray) -> None:
    assert facing_error(wave).mean() < 5.0  # the generator's reactor faces the actor
    turned = wave.copy()
    turned[1] = _turn(wave[1], np.radians(90))
    assert facing_error(turned).mean() == pytest.approx(90.0, abs=5.0)
    d = interpersonal_distance(wave)
    root = wave[:, :, 0]
    assert np.allclose(d, np.hypot(*(root[0] - root[1])[:, [0, 2]].T))


def test_summarize_two_and_three_people(wave: np.ndarray) -> None:
    two = summarize(wave)
    expected = {
        "foot_sliding_mm",
        "floor_below_mm",
        "floor_above_mm",
        "penetration_mean_mm",
        "penetration_max_mm",
        "penetration_frames",
        "facing_deg",
        "distance_m",
    }
    assert set(two) == expected and all(np.isfinite(v) for v in two.values())
    third = wave[1] + np.array([0.0, 0.0, 2.5])
    three = summarize(np.concatenate([wave, third[None]]))
    assert set(three) == expected and three["distance_m"] <= two["distance_m"] + 1e-9
    assert set(summarize(wave[:1])) == {"foot_sliding_mm", "floor_below_mm", "floor_above_mm"}


def test_join_speeds_separate_joins_from_pieces(wave: np.ndarray) -> None:
    jumped = wave.copy()
    jumped[:, 60:] += np.array([0.3, 0.0, 0.0])
    r = join_speeds(jumped, [60])
    assert r["jump_m"] == pytest.approx(r["join"]) and r["join"] > 0.3 > r["inside"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="joint positions"):
        summarize(np.zeros((2, 10, 21, 3)))
    with pytest.raises(ValueError, match="at least 2 people"):
        penetration(np.zeros((1, 10, 22, 3)))
    with pytest.raises(ValueError, match="NaN"):
        foot_floor(np.full((1, 3, 22, 3), np.nan))
