"""SafetyFilter: whatever comes in, what goes out is finite, within limits and velocity limits."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.runtime.profiles import load_profile, profile_from_dict
from molam_ros.runtime.safety import ACTIVE, EASING, NEUTRAL, RESUMING, SafetyConfig, SafetyFilter

DT = 1.0 / 30.0


def _fast_profile(n: int = 3):
    """Wide limits and very fast joints: isolates blending and the watchdog from the rate limiter."""
    joints = [
        {
            "name": f"j{i}",
            "smpl": s,
            "axis": "x",
            "lower": -3.0,
            "upper": 3.0,
            "velocity": 1000.0,
            "neutral": 0.5,
        }
        for i, s in enumerate(["left_elbow", "right_elbow", "left_knee"][:n])
    ]
    return profile_from_dict({"name": "fast", "kind": "robot", "joints": joints})


def _check_step(f: SafetyFilter, before: np.ndarray, after: np.ndarray, dt: float) -> None:
    assert np.all(np.isfinite(after))
    assert np.all((after >= f.profile.lower) & (after <= f.profile.upper))
    assert np.all((after >= f.lower - 1e-12) & (after <= f.upper + 1e-12))
    assert np.all(np.abs(after - before) <= f.max_velocity * min(dt, f.config.control_period) + 1e-9)


@pytest.mark.parametrize("name", ["unitree_h1", "unitree_g1"])
def test_garbage_never_leaves_the_filter(name: str) -> None:
    profile = load_profile(name)
    f = SafetyFilter(profile)
    n = profile.num_joints
    rng = np.random.default_rng(0)
    garbage = [
        np.full(n, np.nan),
        np.full(n, np.inf),
        np.full(n, -np.inf),
        np.full(n, 1e9),
        np.full(n, -1e9),
        np.zeros(n + 1),
        np.zeros(n - 1),
        np.zeros((n, 1)),
        "not a target",
        [1.0, "x"],
        [],
        None,
        5.0,
        np.float64(2.0),
        {"a": 1},
    ]
    previous, now = f.positions, 0.0
    for step in range(3000):
        dt = DT if step % 97 else rng.choice([0.0, 0.2, 1e-4])  # also repeated and late calls
        now += dt
        kind = 3 if 1000 <= step < 1060 else rng.integers(4)  # 2 s of silence once
        if kind == 0:
            target = garbage[rng.integers(len(garbage))]
        elif kind == 1:
            target = rng.uniform(profile.lower, profile.upper)
            target[rng.random(n) < 0.3] = rng.choice([np.nan, np.inf, 1e9, -1e9])
        elif kind == 2:
            target = rng.uniform(profile.lower - 2, profile.upper + 2)
        else:
            target = None  # silence: the watchdog gets to run too
        out = f.update(now, target, new_segment=bool(rng.random() < 0.05))
        _check_step(f, previous, out.positions, dt)
        assert out.state in (ACTIVE, EASING, NEUTRAL, RESUMING)
        previous = out.positions
    for key in ("rejected_shape", "rejected_nan", "nan_held", "clamped_target", "rate_limited", "timeouts"):
        assert f.stats[key] > 0, key
    assert f.last_reason


def test_nan_holds_the_last_good_value() -> None:
    profile = _fast_profile()
    f = SafetyFilter(profile, SafetyConfig(position_margin=0.0, velocity_scale=1.0, resume_time=DT))
    f.update(0.0, np.array([0.1, 0.2, 0.3]))
    out = f.update(DT, np.array([0.1, 0.2, 0.3]))
    np.testing.assert_allclose(out.positions, [0.1, 0.2, 0.3])
    out = f.update(2 * DT, np.array([1.0, np.nan, np.inf]))
    np.testing.assert_allclose(out.positions, [1.0, 0.2, 0.3])
    assert out.held and f.stats["nan_held"] == 1
    out = f.update(3 * DT, np.full(3, np.nan))  # nothing usable: rejected, output unchanged
    np.testing.assert_allclose(out.positions, [1.0, 0.2, 0.3])
    assert f.stats["rejected_nan"] == 1


def test_velocity_limit_and_position_clamp() -> None:
    profile = load_profile("unitree_h1")
    cfg = SafetyConfig(velocity_scale=0.5, position_margin=0.05, resume_time=DT)
    f = SafetyFilter(profile, cfg)
    far = profile.upper + 10.0
    previous = f.positions
    for k in range(300):
        out = f.update(k * DT, far)
        _check_step(f, previous, out.positions, DT if k else 0.0)
        previous = out.positions
    np.testing.assert_allclose(previous, profile.upper - 0.05)  # got there, at the margin
    # A late call earns no bigger step than one control period.
    g = SafetyFilter(profile, cfg)
    g.update(0.0, profile.lower)
    out = g.update(5.0, profile.lower)
    assert np.all(np.abs(out.positions - g.neutral) <= g.max_velocity * DT + 1e-12)


def test_new_segment_crossfades_without_a_jump() -> None:
    profile = _fast_profile(1)
    cfg = SafetyConfig(position_margin=0.0, velocity_scale=1.0, blend_time=0.4, resume_time=DT)
    f = SafetyFilter(profile, cfg)
    t, outputs = 0.0, []
    for _ in range(30):  # segment A holds at 1.0
        outputs.append(f.update(t, [1.0]).positions[0])
        t += DT
    assert outputs[-1] == pytest.approx(1.0) and f.state == ACTIVE
    switch = t
    for _ in range(30):  # segment B at -1.0 takes over
        out = f.update(t, [-1.0], new_segment=(t == switch))
        outputs.append(out.positions[0])
        t += DT
    steps = np.abs(np.diff(outputs[29:]))  # from the last frame of A on
    assert steps.max() < 2.0 / (0.4 / DT) * 1.6  # spread over the blend (smoothstep peak slope 1.5)
    k = 30 + 6  # halfway through the 12-frame blend: smoothstep(0.5) = 0.5
    assert outputs[k] == pytest.approx(0.0, abs=1e-9)
    assert outputs[30] == pytest.approx(1.0) and steps[1] < 0.25 * 2.0 / 12  # eases in, unlike a linear fade
    assert outputs[30 + 12] == pytest.approx(-1.0) and f.state == ACTIVE
    assert f.stats["blends"] == 1


def test_blend_follows_a_moving_target() -> None:
    """The crossfade goes to the live stream, not to a snapshot of it."""
    profile = _fast_profile(1)
    f = SafetyFilter(profile, SafetyConfig(position_margin=0.0, velocity_scale=1.0, resume_time=DT))
    for k in range(5):
        f.update(k * DT, [0.0])
    t0 = 5 * DT
    outputs = [f.update(t0 + k * DT, [np.sin(k * DT)], new_segment=(k == 0)).positions[0] for k in range(40)]
    assert outputs[0] == pytest.approx(0.0)
    np.testing.assert_allclose(outputs[10:], np.sin(np.arange(10, 40) * DT), atol=1e-12)


def test_watchdog_eases_to_neutral_and_resumes() -> None:
    profile = _fast_profile(2)
    cfg = SafetyConfig(position_margin=0.0, velocity_scale=1.0, timeout=0.5, ease_time=1.0, resume_time=0.4)
    f = SafetyFilter(profile, cfg)
    assert f.state == NEUTRAL
    states, positions, t = [], [], 0.0

    def tick(target: list[float] | None) -> None:
        nonlocal t
        out = f.update(t, target)
        states.append(out.state)
        positions.append(out.positions)
        t += DT

    for _ in range(45):  # input for 1.5 s
        tick([2.0, -2.0])
    assert states[0] == RESUMING and states[-1] == ACTIVE
    np.testing.assert_allclose(positions[-1], [2.0, -2.0])
    silence_start = len(states)
    for _ in range(90):  # 3 s of silence
        tick(None)
    silent = states[silence_start:]
    timeout_at = silent.index(EASING)
    silent_for = (timeout_at + 1) * DT  # since the last input, when the watchdog tripped
    assert 0.5 - 1e-9 <= silent_for <= 0.5 + DT + 1e-9  # right after the timeout
    neutral_at = silent.index(NEUTRAL)
    assert neutral_at * DT == pytest.approx(0.5 + 1.0, abs=2 * DT)  # ease_time later
    np.testing.assert_allclose(positions[-1], f.neutral)
    eased = np.array(positions[silence_start + timeout_at - 1 : silence_start + neutral_at + 1])
    assert np.all(np.abs(np.diff(eased, axis=0)) <= 2.5 * 1.5 * DT / 1.0 + 1e-9)  # smooth, no jump
    back = len(states)
    for _ in range(30):  # input returns
        tick([1.0, 1.0])
    assert states[back] == RESUMING
    assert states[back + round(0.4 / DT) + 1] == ACTIVE
    np.testing.assert_allclose(positions[-1], [1.0, 1.0])
    assert f.stats["timeouts"] == 1 and f.stats["resumes"] == 2


def test_garbage_input_does_not_feed_the_watchdog() -> None:
    profile = _fast_profile(2)
    f = SafetyFilter(profile, SafetyConfig(timeout=0.2, ease_time=0.2, resume_time=DT, position_margin=0.0))
    for k in range(5):
        f.update(k * DT, [1.0, 1.0])
    for k in range(5, 40):
        f.update(k * DT, [np.nan, np.nan])  # a generator emitting garbage
    assert f.state == NEUTRAL
    np.testing.assert_allclose(f.positions, f.neutral)


def test_initial_position_eases_to_neutral_until_input() -> None:
    profile = _fast_profile(2)
    f = SafetyFilter(
        profile, SafetyConfig(ease_time=0.5, position_margin=0.0), initial=np.array([2.0, np.nan])
    )
    assert f.state == EASING
    np.testing.assert_allclose(f.positions, [2.0, 0.5])  # a non-finite start value: neutral
    for k in range(30):
        out = f.update(10.0 + k * DT)
    assert out.state == NEUTRAL
    np.testing.assert_allclose(out.positions, f.neutral)


def test_time_that_does_not_advance_holds_the_output() -> None:
    profile = _fast_profile(1)
    f = SafetyFilter(profile, SafetyConfig(position_margin=0.0, resume_time=DT))
    f.update(1.0, [0.0])
    held = f.update(1.0 + DT, [2.0]).positions
    for now in (1.0, float("nan"), 0.5, "soon", None):
        out = f.update(now, [-3.0])
        np.testing.assert_array_equal(out.positions, held)
        np.testing.assert_array_equal(out.velocities, 0.0)
    assert f.stats["bad_time"] == 5


def test_config_and_profile_checks() -> None:
    with pytest.raises(ValueError, match="velocity_scale"):
        SafetyConfig(velocity_scale=0.0)
    with pytest.raises(ValueError, match="blend_time"):
        SafetyConfig(blend_time=0.0)
    with pytest.raises(ValueError, match="timeout"):
        SafetyConfig(timeout=-1.0)
    with pytest.raises(ValueError, match="avatar"):
        SafetyFilter(load_profile("avatar_smpl"))
    with pytest.raises(ValueError, match="no range"):
        SafetyFilter(_fast_profile(1), SafetyConfig(position_margin=3.0))
    f = SafetyFilter(_fast_profile(1), SafetyConfig(timeout=0.0, resume_time=DT))  # watchdog off
    f.update(0.0, [1.0])
    assert f.update(100.0).state == ACTIVE
