"""Composition: pieces of generator clips joined without a position jump or a velocity spike."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.coordination.compose import (
    compose_codes,
    compose_positions,
    decode_composed,
    join_frames,
    smooth_joins,
)
from molam_ros.coordination.metrics import join_speeds
from molam_ros.data.synth import generate_dataset
from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.skeleton import FOOT_JOINTS, NUM_JOINTS, PARENTS, REST_OFFSETS

FEET = list(FOOT_JOINTS)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    """Six generator clips (two people each), float64."""
    return [c.positions.astype(np.float64) for c in generate_dataset(6, seed=21)]


def _max_speed(pieces: list[np.ndarray]) -> float:
    """Largest per-frame joint displacement inside any piece."""
    return max(float(np.linalg.norm(np.diff(p, axis=1), axis=-1).max()) for p in pieces)


def _accel(x: np.ndarray) -> np.ndarray:
    """(T - 2,) largest per-frame change of a joint's per-frame displacement."""
    return np.linalg.norm(np.diff(x, n=2, axis=1), axis=-1).max(axis=(0, 2))


# --- tokens


class _StepCodec:
    """A stand-in for MotionCodec: each code step is 4 frames of a rest pose walking along +X, set
    off sideways by 5 cm x the step's first code, so different pieces meet with a jump."""

    stride = 4

    def __init__(self) -> None:
        self.calls = 0
        rest = np.zeros((NUM_JOINTS, 3))
        for j in range(1, NUM_JOINTS):
            rest[j] = rest[PARENTS[j]] + REST_OFFSETS[j]
        self.rest = rest - np.array([0.0, rest[:, 1].min(), 0.0])

    def decode(self, codes: np.ndarray, transform: object = None) -> np.ndarray:
        self.calls += 1
        P, L, _ = codes.shape
        t = np.arange(L * self.stride)
        side = 0.05 * np.repeat(codes[:, :, 0], self.stride, axis=1)  # (P, T)
        shift = np.zeros((P, len(t), 1, 3))
        shift[..., 0, 0] = 0.01 * t + side
        return (self.rest + shift).astype(np.float32)


def test_compose_codes_concatenates_in_time_and_checks_shapes() -> None:
    a, b = np.zeros((2, 3, 4), dtype=np.int64), np.ones((2, 5, 4), dtype=np.int64)
    out = compose_codes([a, b])
    assert out.shape == (2, 8, 4) and out[:, :3].sum() == 0 and out[:, 3:].min() == 1
    with pytest.raises(ValueError, match="piece 1"):
        compose_codes([a, np.ones((2, 5, 3), dtype=np.int64)])
    with pytest.raises(ValueError, match="integers"):
        compose_codes([a.astype(np.float32)])
    with pytest.raises(ValueError, match="at least one"):
        compose_codes([])


def test_decode_composed_decodes_once_and_smooths_the_joins() -> None:
    codec = _StepCodec()
    pieces = [np.full((2, 10, 3), k, dtype=np.int64) for k in (0, 3, 1)]
    raw = decode_composed(codec, pieces, smooth_frames=0)
    smooth = decode_composed(codec, pieces)
    assert codec.calls == 2 and raw.shape == smooth.shape == (2, 120, NUM_JOINTS, 3)
    joins = join_frames([40, 40, 40])
    assert joins == [40, 80]
    before, after = join_speeds(raw, joins), join_speeds(smooth, joins)
    assert before["jump_m"] > 0.1  # 15 cm sideways in one frame
    assert after["jump_m"] < 0.02 and after["join"] < 0.25 * before["join"]
    # away from the joins the decoder's frames are kept
    assert np.allclose(smooth[:, :5], raw[:, :5]) and np.allclose(smooth[:, -5:], raw[:, -5:])


# --- positions


def test_smooth_joins_leaves_a_continuous_line_alone() -> None:
    t = np.arange(60, dtype=np.float64)
    line = np.zeros((1, 60, NUM_JOINTS, 3))
    line[..., 0] = 0.02 * t[:, None]
    line[..., 1] = 0.5 + 0.001 * t[:, None]
    assert np.allclose(smooth_joins(line, [20, 41]), line, atol=1e-6)


def test_smooth_joins_removes_a_jump_with_continuous_velocity(clips: list[np.ndarray]) -> None:
    clip = clips[0]
    left, right = clip[:, :80], clip[:, 100:170]  # a turn of the actor cut out
    raw = np.concatenate([left, right], axis=1)
    out = smooth_joins(raw, [80])
    inside = _max_speed([left, right])
    before, after = join_speeds(raw, [80]), join_speeds(out, [80])
    assert before["join"] > inside  # the cut is a real discontinuity
    assert after["join"] <= inside and after["jump_m"] <= inside
    # velocity is continuous: the change of per-frame displacement at the join is no bigger than
    # inside the pieces (a jump in velocity would be an acceleration spike there)
    acc = _accel(out)
    assert acc[70:90].max() <= max(_accel(left).max(), _accel(right).max()) * 1.5
    assert acc[70:90].max() < 0.2 * _accel(raw)[70:90].max()
    # frames beyond the (adaptive) window are untouched
    assert np.array_equal(out[:, :30], raw[:, :30].astype(np.float32))


def test_composing_different_clips_has_no_spike_at_the_joins(clips: list[np.ndarray]) -> None:
    spikes = []
    for first in range(0, 6, 2):
        pieces = [clips[first], clips[first + 1], clips[(first + 2) % 6][:, 10:90]]
        joins = join_frames([p.shape[1] for p in pieces])
        inside = _max_speed(pieces)
        raw = compose_positions(pieces, smooth_frames=0)
        out = compose_positions(pieces)
        assert out.shape == (2, sum(p.shape[1] for p in pieces), NUM_JOINTS, 3)
        spikes.append(join_speeds(raw, joins)["join"] > inside)  # without smoothing
        r = join_speeds(out, joins)
        assert r["join"] <= inside and r["jump_m"] <= inside
        # re-rooted, not lifted: the floor stays where it was (the smoothing may dip a foot by a
        # centimetre at a join), person a's heading carries on
        floor = min(p[..., FEET, 1].min() for p in pieces)
        assert raw[..., FEET, 1].min() == pytest.approx(floor, abs=1e-6)
        assert abs(out[..., FEET, 1].min() - floor) < 0.02
        heading = np.unwrap(facing_angle(out[0]))
        for j in joins:
            assert abs(heading[j] - heading[j - 1]) < np.radians(10)
    assert any(spikes)  # the smoothing had something to do


def test_composing_cut_pieces_of_one_clip_has_no_spike_at_the_joins(clips: list[np.ndarray]) -> None:
    rng = np.random.default_rng(4)
    for clip in clips:
        T = clip.shape[1]
        if T < 150:
            continue
        a = int(rng.integers(45, T - 105))
        b = int(rng.integers(a, T - 45))
        pieces = [clip[:, :a], clip[:, b:]]
        r = join_speeds(compose_positions(pieces), [a])
        assert r["join"] <= _max_speed(pieces) and r["jump_m"] <= _max_speed(pieces)


def test_compose_positions_refuses_mixed_people(clips: list[np.ndarray]) -> None:
    with pytest.raises(ValueError, match="same number of people"):
        compose_positions([clips[0], clips[1][:1]])
    assert compose_positions([clips[0]]).shape == clips[0].shape
