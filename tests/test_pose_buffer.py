"""PoseBuffer: any order, any rate, any garbage in; an ordered, validated 30 Hz stream out."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.interhuman import Z_UP_TO_Y_UP
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.skeleton import JOINT_NAMES, NUM_JOINTS, REST_OFFSETS
from molam_ros.runtime.pose_buffer import (
    PUSH_OUTCOMES,
    JointMappingError,
    PoseBuffer,
    PoseBufferConfig,
    PoseFrame,
    map_named_joints,
)

FPS = 30.0
REST = forward_kinematics(np.tile([1.0, 0.0, 0.0, 0.0], (NUM_JOINTS, 1)), [0.0, 0.95, 0.0], REST_OFFSETS)[0]
VELOCITY = np.array([0.3, 0.0, -0.2])  # m/s: the person walks, so interpolation is checkable


def pose_at(t: float) -> np.ndarray:
    """A body translating at constant velocity: linear interpolation reproduces it exactly."""
    return REST + VELOCITY * t


def drain(buf: PoseBuffer) -> list[PoseFrame]:
    return buf.pop_ready() + buf.flush()


def test_exact_grid_input_comes_out_unchanged() -> None:
    buf = PoseBuffer()
    stamps = np.arange(60) / FPS + 10.0
    for t in stamps:
        assert buf.push(t, pose_at(t)) == "accepted"
    frames = drain(buf)
    assert [f.index for f in frames] == list(range(300, 360))
    np.testing.assert_allclose([f.stamp for f in frames], stamps)
    for f in frames:
        np.testing.assert_allclose(f.positions, pose_at(f.stamp), atol=1e-12)
    assert [f.segment_start for f in frames] == [True] + [False] * 59
    assert buf.stats["accepted"] == 60 and buf.stats["emitted"] == 60


@pytest.mark.parametrize("src_fps", [25.0, 60.0, 90.0])
def test_other_rates_are_resampled_onto_the_30hz_grid(src_fps: float) -> None:
    buf = PoseBuffer()
    stamps = 3.01 + np.arange(int(2 * src_fps)) / src_fps
    for t in stamps:
        buf.push(t, pose_at(t))
    frames = drain(buf)
    grid = np.array([f.stamp for f in frames])
    np.testing.assert_allclose(np.diff(grid), 1 / FPS)
    assert grid[0] >= stamps[0] and grid[0] - stamps[0] < 1 / FPS and grid[-1] <= stamps[-1]
    np.testing.assert_allclose(grid * FPS, np.round(grid * FPS), atol=1e-9)  # on the absolute grid
    for f in frames:
        np.testing.assert_allclose(f.positions, pose_at(f.stamp), atol=1e-9)


def test_reordering_within_the_window_gives_the_in_order_result() -> None:
    rng = np.random.default_rng(0)
    stamps = 1.0 + np.arange(180) / 60.0 + rng.uniform(-0.004, 0.004, 180)  # 60 Hz with jitter
    in_order = PoseBuffer()
    for t in stamps:
        in_order.push(t, pose_at(t))
    expected = drain(in_order)
    # Shuffle in blocks of 4 frames (67 ms < the 100 ms reorder window).
    order = np.concatenate([rng.permutation(block) for block in np.array_split(np.arange(180), 45)])
    shuffled = PoseBuffer()
    frames = []
    for i in order:
        assert shuffled.push(stamps[i], pose_at(stamps[i])) == "accepted"
        frames += shuffled.pop_ready()
    frames += shuffled.flush()
    assert [f.index for f in frames] == [f.index for f in expected]
    np.testing.assert_allclose([f.positions for f in frames], [f.positions for f in expected], atol=1e-12)


def test_latency_is_bounded_by_the_reorder_window() -> None:
    cfg = PoseBufferConfig(reorder_window=0.1)
    buf = PoseBuffer(cfg)
    stamps = 5.0 + np.arange(120) / 60.0
    for t in stamps:
        buf.push(t, pose_at(t))
        for f in buf.pop_ready():
            # Emitted as soon as a frame reorder_window later exists, and not before.
            assert t - cfg.reorder_window >= f.stamp - 1e-9
            assert t - cfg.reorder_window < f.stamp + 1 / 60.0 + 1e-9


def test_late_duplicate_old_and_future_frames_are_counted() -> None:
    clock_now = [100.0]
    buf = PoseBuffer(PoseBufferConfig(max_future=0.5, max_age=1.0), clock=lambda: clock_now[0])
    for t in np.arange(30) / FPS + 99.0:
        assert buf.push(t, pose_at(t - 99.0)) == "accepted"
    emitted = buf.pop_ready()
    assert emitted
    assert buf.push(emitted[-1].stamp, REST) == "dropped_stale"  # not after the last emitted frame
    assert buf.push(99.0 + 29 / FPS, REST) == "dropped_duplicate"
    assert buf.push(97.5, REST) == "dropped_stale"
    assert buf.push(100.6, REST) == "rejected_future"
    assert "ahead of the clock" in buf.last_reason
    assert buf.push(100.6, REST, now=100.2) == "accepted"  # an explicit `now` overrides the clock
    assert buf.stats["dropped_stale"] == 2 and buf.stats["rejected_future"] == 1
    assert buf.stats["dropped_duplicate"] == 1 and buf.last_status == "accepted"


def test_garbage_is_rejected_with_a_reason_and_never_raises() -> None:
    buf = PoseBuffer()
    far = REST.copy()
    far[3] = [0.0, 11.0, 0.0]
    stretched = REST.copy()
    stretched[20] += [1.5, 0.0, 0.0]  # a 1.8 m forearm
    nan = REST.copy()
    nan[5, 1] = np.nan
    cases = [
        ("nan", REST, "rejected_stamp"),
        (float("inf"), REST, "rejected_stamp"),
        (None, REST, "rejected_stamp"),
        (1.0, nan, "rejected_nan"),
        (1.0, np.full((NUM_JOINTS, 3), np.inf), "rejected_nan"),
        (1.0, REST[:21], "rejected_shape"),
        (1.0, REST.reshape(-1), "rejected_shape"),
        (1.0, "a pose", "rejected_shape"),
        (1.0, [[1, 2], [3]], "rejected_shape"),
        (1.0, None, "rejected_shape"),
        (1.0, far, "rejected_scale"),
        (1.0, REST * 1e9, "rejected_scale"),
        (1.0, stretched, "rejected_bones"),
    ]
    for stamp, positions, expected in cases:
        assert buf.push(stamp, positions) == expected, (stamp, expected)
        assert buf.last_reason, expected
    assert buf.stats["rejected_shape"] == 5 and buf.pending == 0
    assert set(buf.stats) >= set(PUSH_OUTCOMES)
    assert buf.push(1.0, stretched) == "rejected_bones" and "left_wrist" in buf.last_reason
    # Random garbage: a status every time, no exception.
    rng = np.random.default_rng(1)
    for _ in range(300):
        shape = [(NUM_JOINTS, 3), (NUM_JOINTS, 3), (3,), (NUM_JOINTS, 4)][rng.integers(4)]
        junk = rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 12)
        junk[rng.random(shape) < 0.05] = np.nan
        assert buf.push(rng.uniform(0, 10), junk) in PUSH_OUTCOMES


def test_a_long_gap_restarts_the_stream_instead_of_interpolating() -> None:
    buf = PoseBuffer(PoseBufferConfig(max_gap=0.25))
    first = 2.0 + np.arange(30) / 60.0
    second = 3.0 + np.arange(30) / 60.0  # 0.52 s gap
    for t in np.concatenate([first, second]):
        buf.push(t, pose_at(t))
    frames = drain(buf)
    stamps = np.array([f.stamp for f in frames])
    assert not np.any((stamps > first[-1]) & (stamps < second[0]))  # nothing invented in the gap
    starts = [f.stamp for f in frames if f.segment_start]
    assert starts == pytest.approx([2.0, 3.0])
    assert buf.stats["restarts"] == 1 and "gap" in buf.last_reason
    # A short gap is interpolated.
    short = PoseBuffer(PoseBufferConfig(max_gap=0.25))
    for t in np.concatenate([first, first[-1] + 0.2 + np.arange(10) / 60.0]):
        short.push(t, pose_at(t))
    frames = drain(short)
    np.testing.assert_allclose(np.diff([f.stamp for f in frames]), 1 / FPS)
    assert sum(f.segment_start for f in frames) == 1


def test_named_joints_map_onto_smpl_order() -> None:
    rng = np.random.default_rng(2)
    extra = ["nose", "left_index1", "right_thumb3"]
    names = list(JOINT_NAMES) + extra
    positions = np.concatenate([REST, rng.standard_normal((3, 3))])
    order = rng.permutation(len(names))
    mapped = map_named_joints([names[i] for i in order], positions[order])
    np.testing.assert_array_equal(mapped, REST)
    with pytest.raises(JointMappingError, match=r"missing SMPL joints \['left_elbow', 'head'\]|left_elbow"):
        map_named_joints([n for n in JOINT_NAMES if n not in ("left_elbow", "head")], REST[:20])
    with pytest.raises(JointMappingError, match="repeated"):
        map_named_joints([*JOINT_NAMES, "neck"], np.concatenate([REST, REST[:1]]))
    buf = PoseBuffer()
    assert buf.push_named(1.0, [names[i] for i in order], positions[order]) == "accepted"
    assert buf.push_named(2.0, list(JOINT_NAMES[:-1]), REST[:-1]) == "rejected_joints"
    assert "right_wrist" in buf.last_reason
    assert buf.push_named(3.0, list(JOINT_NAMES), REST[:5]) == "rejected_shape"
    assert buf.push_named(4.0, list(JOINT_NAMES), "garbage") == "rejected_shape"


def test_z_up_input_is_turned_to_y_up() -> None:
    zup = REST @ np.linalg.inv(Z_UP_TO_Y_UP).T  # the same body in a Z-up world
    assert np.ptp(zup[:, 2]) > np.ptp(zup[:, 1])  # tall along z
    buf = PoseBuffer(PoseBufferConfig(z_up=True, reorder_window=0.0))
    buf.push(0.0, zup)
    (frame,) = buf.flush()
    np.testing.assert_allclose(frame.positions, REST, atol=1e-12)


def test_memory_stays_bounded() -> None:
    buf = PoseBuffer(PoseBufferConfig(max_pending=16, reorder_window=0.1))
    for t in np.arange(2000) / 120.0:  # 120 Hz for 16 s, never popped
        buf.push(t, pose_at(t))
        assert buf.pending <= 16
    assert buf.stats["dropped_overflow"] > 0
    frames = drain(buf)  # still a valid, ordered stream
    assert np.all(np.diff([f.index for f in frames]) >= 1)
    assert frames[0].segment_start


def test_reset_and_config_checks() -> None:
    buf = PoseBuffer()
    buf.push(1.0, REST)
    buf.reset()
    assert buf.pending == 0 and buf.pop_ready() == [] and buf.flush() == []
    assert buf.push(0.5, REST) == "accepted"  # the stream may start over, earlier
    with pytest.raises(ValueError, match="fps"):
        PoseBufferConfig(fps=0.0)
    with pytest.raises(ValueError, match="reorder_window"):
        PoseBufferConfig(reorder_window=-0.1)
    with pytest.raises(ValueError, match="max_pending"):
        PoseBufferConfig(max_pending=1)
