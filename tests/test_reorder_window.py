"""The adaptive reorder window (runtime/reorder_window.py) in the pose buffer: no wait for an
in-order stream, as long as the measured reordering needs for a reordering one, never beyond the
cap, and back down once the reordering stops."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.runtime.pose_buffer import PoseBuffer, PoseBufferConfig
from molam_ros.runtime.reorder_window import AdaptiveWindow, AdaptiveWindowConfig
from molam_ros.runtime.teleop import TeleopConfig
from tests.test_pose_buffer import pose_at


def _buffer(cap: float = 0.1) -> PoseBuffer:
    return PoseBuffer(
        PoseBufferConfig(reorder_window=0.0), window=AdaptiveWindow(AdaptiveWindowConfig(floor=0.0, cap=cap))
    )


def _feed(buf: PoseBuffer, stamps: np.ndarray) -> tuple[list, list[float]]:
    """Push frames in the given order; (emitted frames, latency of each in stamp time: the newest
    stamp received when it was emitted minus its own)."""
    frames, lag = [], []
    newest = -np.inf
    for t in stamps:
        buf.push(t, pose_at(t))
        newest = max(newest, t)
        out = buf.pop_ready()
        frames += out
        lag += [newest - f.stamp for f in out]
    return frames, lag


def test_an_in_order_stream_waits_for_nothing() -> None:
    buf = _buffer()
    frames, lag = _feed(buf, 2.0 + np.arange(300) / 30.0)
    assert buf.reorder_window == 0.0 and max(lag) < 1e-9  # each frame out as soon as it is in
    assert len(frames) == 300 and buf.stats["dropped_stale"] == 0


def test_a_reordering_stream_widens_the_window_until_late_frames_fit_then_it_shrinks() -> None:
    stamps = 2.0 + np.arange(700) / 30.0  # (pose_at leaves the buffer's 10 m bound after 30 s)
    swapped = stamps.copy()
    for i in range(0, 400, 2):  # the first 13 s: every other pair swapped (one frame, 33 ms late)
        swapped[i], swapped[i + 1] = stamps[i + 1], stamps[i]
    buf = _buffer(cap=0.3)
    fixed = PoseBuffer(PoseBufferConfig(reorder_window=0.0))  # today's teleop default, for contrast
    _feed(fixed, swapped)
    assert fixed.stats["dropped_stale"] >= 190  # with no window every late frame is lost
    frames, lag = _feed(buf, swapped[:400])
    assert abs(buf.reorder_window - (1 / 30 + 0.005)) < 1e-6  # the measured depth and the margin
    # Once measured, late frames slot in: only the first few before the window learned were lost.
    assert buf.stats["dropped_stale"] <= 3
    # The wait is the window plus the newest stamp's jump (two frames where a swapped pair
    # follows), far below the 0.3 s cap a fixed window would have to be set to.
    assert max(lag[100:]) <= buf.reorder_window + 2 / 30 + 1e-9
    _feed(buf, swapped[400:])  # in order again for 10 s: the history forgets the reordering
    assert buf.reorder_window == 0.0


def test_the_cap_bounds_the_wait_and_the_floor_is_kept() -> None:
    window = AdaptiveWindow(AdaptiveWindowConfig(floor=0.02, cap=0.05, quantile=0.9, history=50))
    assert window.value == 0.02
    for _ in range(50):
        window.observe(0.5)  # a terrible link: half a second of reordering
    assert window.value == 0.05
    for _ in range(50):
        window.observe(0.0)
    assert window.value == 0.02
    window.observe(float("nan"))  # ignored
    assert window.value == 0.02
    for bad in ({"floor": 0.2, "cap": 0.1}, {"floor": -0.1}, {"quantile": 0.0}, {"history": 0}):
        with pytest.raises(ValueError):
            AdaptiveWindowConfig(**bad)


def test_teleoperation_uses_the_adaptive_window_within_its_parameters() -> None:
    config = TeleopConfig(person_id="op", reorder_window=0.0, reorder_window_max=0.08)
    buf = config.make_buffer()
    assert buf.window is not None and buf.window.config.cap == 0.08 and buf.reorder_window == 0.0
    with pytest.raises(ValueError):
        TeleopConfig(person_id="op", reorder_window=0.1, reorder_window_max=0.05)
