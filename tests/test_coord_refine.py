"""refine_reactor on generator clips deliberately broken: b pulled into a, turned away, lifted,
sunk, sliding. Each fault must be repaired without moving a and without a jump in b."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.coordination.metrics import (
    contact_exclusions,
    facing_error,
    foot_floor,
    foot_sliding,
    interpersonal_distance,
    penetration,
    summarize,
)
from molam_ros.coordination.refine import (
    PLACEMENT,
    RefineConfig,
    placement_for,
    refine_person,
    refine_reactor,
)
from molam_ros.data.synth import INTERACTIONS, generate_clip
from molam_ros.motion.canonical import facing_angle


def _pair(seed: int, interaction: str) -> np.ndarray:
    clip = generate_clip(seed, interaction)
    return clip.positions[[clip.meta["actor"], clip.meta["reactor"]]].astype(np.float64)


def _turn(body: np.ndarray, yaw: float) -> np.ndarray:
    root = body[:, :1] * np.array([1.0, 0.0, 1.0])
    c, s = np.cos(yaw), np.sin(yaw)
    return (body - root) @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T + root


def _pull_in(pair: np.ndarray, gap: float) -> np.ndarray:
    """b moved towards a until their mean roots are `gap` metres apart: overlapping bodies."""
    out = pair.copy()
    rel = (pair[1, :, 0] - pair[0, :, 0]).mean(axis=0) * np.array([1.0, 0.0, 1.0])
    out[1] -= rel * (1.0 - gap / np.linalg.norm(rel))
    return out


def _no_jump(before: np.ndarray, after: np.ndarray) -> None:
    """b's correction (a root shift and a turn per frame) changes smoothly from frame to frame: the
    root at most at a quick step's pace, the heading at most the configured turn speed."""
    root = after[1, :, 0].astype(np.float64) - before[1, :, 0]
    assert np.abs(np.diff(root, axis=0)).max() < 0.08  # metres per frame (2.4 m/s)
    assert np.abs(np.diff(root, n=2, axis=0)).max() < 0.03
    turn = np.unwrap(facing_angle(after[1])) - np.unwrap(facing_angle(before[1]))
    assert np.degrees(np.abs(np.diff(turn)).max()) <= RefineConfig().max_turn_speed_deg + 0.5


def test_the_table_covers_every_generator_interaction() -> None:
    assert set(PLACEMENT) == set(INTERACTIONS)
    assert all(0 < p.min_distance < p.max_distance for p in PLACEMENT.values())
    assert placement_for(None) == placement_for("tango")


@pytest.mark.parametrize("interaction", ["handshake", "wave", "hug", "punch"])
def test_penetration_is_pushed_out_smoothly(interaction: str) -> None:
    pair = _pair(11, interaction)
    bad = _pull_in(pair, 0.25)
    allowed = contact_exclusions(interaction)
    before = penetration(bad, allowed)
    out = refine_reactor(bad, interaction)
    after = penetration(out, allowed)
    assert before["max_mm"] > 50 and after["max_mm"] < 1.0
    assert np.array_equal(out[0], bad[0].astype(np.float32))  # a never moves
    place = PLACEMENT[interaction]
    d = interpersonal_distance(out)
    assert np.mean((d > place.min_distance - 0.03) & (d < place.max_distance + 0.03)) > 0.9
    _no_jump(bad, out)


def test_b_is_turned_to_face_a_about_its_root() -> None:
    pair = _pair(12, "high_five")
    bad = pair.copy()
    bad[1] = _turn(pair[1], np.radians(70))
    out = refine_reactor(bad, "high_five")
    assert facing_error(bad).mean() > 60
    assert facing_error(out).mean() < RefineConfig().facing_tolerance_deg + 3
    heading = np.unwrap(facing_angle(out[1]))
    assert np.abs(np.diff(heading)).max() < np.radians(5)  # turned smoothly
    # a whole-body turn about the root: every bone keeps its length
    bones = np.linalg.norm(out[1, :, 1:] - out[1, :, :1], axis=-1)
    assert np.allclose(bones, np.linalg.norm(bad[1, :, 1:] - bad[1, :, :1], axis=-1), atol=1e-4)
    # an interaction whose reactor looks elsewhere is not turned
    look = _pair(12, "point_look")
    look[1] = _turn(look[1], np.radians(40))
    assert np.allclose(facing_angle(refine_reactor(look, "point_look")[1]), facing_angle(look[1]), atol=1e-3)


@pytest.mark.parametrize("dy", [0.06, -0.04])
def test_feet_are_put_on_the_floor(dy: float) -> None:
    pair = _pair(13, "bow")
    bad = pair.copy()
    bad[1, ..., 1] += dy
    out = refine_reactor(bad, "bow")
    floor = foot_floor(out[1:])
    assert abs(foot_floor(bad[1:])["mean_mm"]) > 35
    assert floor["below_mm"] < 1.5 and floor["above_mm"] < 3.0


def test_a_jump_stays_in_the_air() -> None:
    pair = _pair(13, "bow")
    bad = pair.copy()
    t = np.arange(pair.shape[1])
    hop = 0.3 * np.exp(-(((t - 60) / 6.0) ** 2))  # a 30 cm hop around frame 60
    bad[1, ..., 1] += hop[:, None]
    out = refine_reactor(bad, "bow")
    assert np.allclose(out[1, 58:63, 0, 1], bad[1, 58:63, 0, 1], atol=0.01)  # the top of the hop
    assert foot_floor(out[1:])["per_frame_mm"][0, 60] > 250


def test_foot_sliding_is_removed_by_the_root() -> None:
    pair = _pair(14, "wave")
    bad = pair.copy()
    rel = pair[1, 0, 0] - pair[0, 0, 0]
    side = np.array([-rel[2], 0.0, rel[0]]) / np.hypot(rel[0], rel[2])  # across the line a-b
    bad[1] += 0.005 * np.arange(pair.shape[1])[:, None, None] * side  # 5 mm per frame
    out = refine_reactor(bad, "wave")
    before, after, recorded = (foot_sliding(x[1:])["mean_mm"] for x in (bad, out, pair))
    assert before > 4.0 and after < 0.4 * before and after < recorded + 1.5
    _no_jump(bad, out)


def test_everything_broken_at_once_on_several_clips() -> None:
    for seed, interaction in [(21, "handshake"), (22, "hug"), (23, "kick"), (24, "fist_bump")]:
        pair = _pair(seed, interaction)
        bad = _pull_in(pair, 0.3)
        bad[1] = _turn(bad[1], np.radians(50))
        bad[1, ..., 1] += 0.05
        bad[1, ..., 0] += 0.004 * np.arange(pair.shape[1])[:, None]
        allowed = contact_exclusions(interaction)
        b, a = summarize(bad, allowed), summarize(refine_reactor(bad, interaction), allowed)
        assert a["penetration_max_mm"] < 1.0
        assert a["facing_deg"] < 20 < b["facing_deg"]
        assert a["floor_above_mm"] < 2.0 < 20 < b["floor_above_mm"]  # (the mean of a and b)
        assert a["foot_sliding_mm"] < b["foot_sliding_mm"]


def test_a_clean_clip_is_left_almost_alone() -> None:
    clip = generate_clip(31, "handshake")
    pair = clip.positions[[clip.meta["actor"], clip.meta["reactor"]]]
    seg = next(s for s in clip.meta["segments"] if s["kind"] == "interaction")
    active = np.zeros(pair.shape[1], dtype=bool)
    active[seg["start"] : seg["end"]] = True
    out = refine_reactor(pair, "handshake", active=active)
    assert np.abs(out - pair).mean() < 0.01 and np.abs(out - pair).max() < 0.1


def test_refine_person_keeps_out_of_everyone() -> None:
    pair = _pair(41, "wave")
    third = pair[1].copy()  # a newcomer standing inside person b
    third[..., 0] += 0.1
    out = refine_person(pair, third, partner=0)
    group = np.concatenate([pair, out[None]])
    assert penetration(group[[0, 2]])["max_mm"] < 1.0 and penetration(group[[1, 2]])["max_mm"] < 1.0


def test_turning_everything_off_changes_nothing_and_bad_input_is_refused() -> None:
    pair = _pair(51, "push")
    off = RefineConfig(floor=False, face=False, distance=False, penetration=False, sliding=False)
    assert np.allclose(refine_reactor(pair, "push", off), pair, atol=1e-5)
    with pytest.raises(ValueError, match="two people"):
        refine_reactor(np.concatenate([pair, pair[:1]]))
    with pytest.raises(ValueError, match="smoothness"):
        RefineConfig(smoothness=0.0)
    with pytest.raises(ValueError, match="one value per frame"):
        refine_reactor(pair, active=np.ones(3, dtype=bool))
    with pytest.raises(ValueError, match="partner"):
        refine_person(pair, pair[0], partner=2)
