"""The avatar's output: the watchdog, idle pose and blending of runtime/avatar_safety.py, and the
30 Hz frames stamped with their display time of runtime/avatar_stream.py."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.motion.rotations import quat_normalize, quat_rotate, yaw_quat
from molam_ros.runtime.avatar_safety import AvatarSafety
from molam_ros.runtime.avatar_stream import AvatarFrameQueue, AvatarStreamConfig
from molam_ros.runtime.profiles import load_profile
from molam_ros.runtime.safety import SafetyConfig

FPS = 30.0


@pytest.fixture(scope="module")
def profile():
    return load_profile("avatar_smpl")


def _pose(rng: np.random.Generator, yaw: float = 0.0) -> np.ndarray:
    q = quat_normalize(np.array([1.0, 0.0, 0.0, 0.0]) + 0.2 * rng.normal(size=(22, 4)))
    q[0] = yaw_quat(np.float64(yaw))
    return q


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return 2 * np.arccos(np.clip(np.abs(np.sum(a * b, axis=-1)), 0, 1))


def test_follows_the_reaction_then_eases_to_idle_where_it_stands_and_resumes(profile) -> None:
    cfg = SafetyConfig(timeout=0.5, ease_time=1.0, resume_time=0.5)
    guard = AvatarSafety(profile, cfg)
    rng = np.random.default_rng(0)
    live = _pose(rng, yaw=2.0)
    root = np.array([3.0, 0.9, -1.0])
    t, outs = 0.0, []
    for _ in range(30):  # 1 s of reaction: resumed from the idle start, then followed exactly
        outs.append(guard.update(t, live, root))
        t += 1 / FPS
    assert outs[-1].state == "active"
    np.testing.assert_allclose(outs[-1].rotations, live, atol=1e-6)
    np.testing.assert_allclose(outs[-1].root, root, atol=1e-9)
    # The partner is gone: after the timeout the avatar eases to idle, keeping where it stands and faces.
    states = []
    for _ in range(90):
        outs.append(guard.update(t))
        states.append(outs[-1].state)
        t += 1 / FPS
    assert "easing_to_neutral" in states and states[-1] == "neutral"
    idle = outs[-1]
    assert idle.root[[0, 2]] == pytest.approx(root[[0, 2]]) and idle.root[1] == pytest.approx(
        profile.neutral_root[1]
    )
    forward = quat_rotate(idle.rotations[0], np.array([0.0, 0.0, 1.0]))
    assert np.arctan2(forward[0], forward[2]) == pytest.approx(2.0, abs=1e-6)  # still facing the same way
    np.testing.assert_allclose(idle.rotations[1:], guard.neutral[1:], atol=1e-6)
    # Every frame of it moved smoothly: no bone turned more than the speed limit in a frame.
    rots = np.stack([o.rotations for o in outs])
    assert _angle(rots[1:], rots[:-1]).max() <= guard.limits.max_bone_speed / FPS + 1e-6
    # The reaction comes back: a crossfade, no jump.
    back = [guard.update(t + k / FPS, live, root).rotations for k in range(20)]
    assert guard.state == "active" and guard.stats["resumes"] == 2
    steps = _angle(np.stack(back)[1:], np.stack(back)[:-1])
    assert steps.max() < 0.2 and _angle(back[0], idle.rotations).max() < 0.05


def test_garbage_counts_as_silence_and_a_new_segment_is_blended(profile) -> None:
    guard = AvatarSafety(profile, SafetyConfig(timeout=0.3, blend_time=0.3))
    rng = np.random.default_rng(1)
    a, b = _pose(rng), _pose(rng, yaw=1.0)
    for k in range(30):
        guard.update(k / FPS, a, np.zeros(3))
    bad = a.copy()
    bad[4] = np.nan
    for k in range(30, 45):  # NaN and zero quaternions: rejected, the watchdog trips
        out = guard.update(k / FPS, bad if k % 2 else np.zeros((22, 4)), np.zeros(3))
        assert np.isfinite(out.rotations).all()
    assert guard.stats["rejected"] == 15 and guard.state == "easing_to_neutral"
    guard2 = AvatarSafety(profile, SafetyConfig(blend_time=0.3))
    for k in range(30):
        guard2.update(k / FPS, a, np.zeros(3))
    blended = [
        guard2.update(1.0 + k / FPS, b, np.zeros(3), new_segment=(k == 0)).rotations for k in range(12)
    ]
    assert guard2.stats["blends"] == 1
    assert _angle(blended[0], a).max() < 0.05 and _angle(blended[-1], b).max() < 1e-6


def test_frames_are_released_at_30_hz_stamped_for_display() -> None:
    """Chunks of 4 frames every 133 ms, arriving with jitter: released one or two per tick, stamps
    evenly spaced at 1/30 s, each before its display time; a frame older than the last one released
    is dropped, a late one counted."""
    queue = AvatarFrameQueue(AvatarStreamConfig(display_delay=0.3))
    rng = np.random.default_rng(2)
    rot, root = np.tile([1.0, 0, 0, 0], (22, 1)), np.zeros(3)
    released = []
    capture0 = 100.0
    for tick in range(300):  # 10 s of a 30 Hz timer
        now = capture0 + tick / FPS
        if tick % 4 == 0 and tick >= 8:  # a chunk: frames captured 0.13-0.23 s ago
            first = capture0 + (tick - 8) / FPS
            for k in range(4):
                queue.push(first + k / FPS, rot, root, "active")
        released += [(now + rng.uniform(0, 0.002), f.display_time) for f in queue.pop_due(now)]
    stamps = np.array([d for _, d in released])
    assert np.allclose(np.diff(stamps), 1 / FPS)
    assert all(d >= t - 1e-9 for t, d in released) and queue.stats["late"] == 0
    assert queue.rate() == pytest.approx(30.0, rel=0.05)
    queue.push(stamps[-1] - 0.3 - 1.0, rot, root, "active")  # from before the last release
    assert queue.stats["dropped_old"] == 1
    queue.push(stamps[-1] - 0.3 + 1 / FPS, rot, root, "active")
    queue.pop_due(stamps[-1] + 0.2)  # released after its display time
    assert queue.stats["late"] == 1
