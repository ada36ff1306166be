"""The last stage before a robot: no NaN, no out-of-limit value, no jump ever leaves the node.

`SafetyFilter` takes the retargeted joint targets of a robot profile, one frame at a time, and
returns the joint positions to command. It is a small state machine driven only by the time stamps
it is given (no wall clock inside), so it behaves the same in a test, a replay and on the robot:

    active             following the input stream (crossfading when a new segment takes over)
    easing_to_neutral  the input has been silent longer than `timeout`: ease to the neutral pose
    neutral            holding the neutral pose, waiting for input
    resuming           input is back: crossfade from where the robot is to the live stream

Every `update(now, target)` applies, in this order:
1. input guard: a target of the wrong length or with no finite value is rejected and does not
   count as input (so a generator emitting garbage trips the watchdog); a non-finite value in an
   otherwise good target holds that joint's last good value; targets are clamped to the limits;
2. the watchdog and the transitions above;
3. blending: a crossfade (smoothstep, so no velocity step at either end) from the output at the
   moment of the switch to the live target, over `blend_time` when a new segment replaces the
   running one, `resume_time` after a silence, `ease_time` towards neutral;
4. the velocity limit: each joint moves at most velocity_limit * velocity_scale * dt per call,
   dt = time since the previous call, but never more than `control_period` (a late call does not
   earn a bigger step);
5. the position clamp (limits shrunk by `position_margin`);
6. the self-collision guard, when one is given (`guard`: sim/collision_guard.py, MuJoCo): a
   command whose capsules come closer than its clearance is moved, from the previous command and
   within the same velocity limit, to the nearest pose that keeps the clearance. It runs here,
   after the velocity limit and the crossfades, because those move joints independently along a
   straight line in joint space, and a straight line between two collision-free poses can pass
   through the body. Its output becomes the filter's state, so the next step starts from what
   was really commanded.
So every output is finite, within the limits, and within the velocity limit of the previous one
(and, with a guard, clear of the robot's own body). The velocity sent with a position near a limit
is capped so that the controller's spline through it does not swing past the limit (`_limit_safe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from molam_ros.runtime.profiles import Profile

ACTIVE = "active"
EASING = "easing_to_neutral"
NEUTRAL = "neutral"
RESUMING = "resuming"
STATES = (ACTIVE, EASING, NEUTRAL, RESUMING)
STAT_KEYS = (
    "updates",  # calls to update()
    "inputs",  # targets accepted (they feed the watchdog)
    "rejected_shape",  # targets of the wrong length or not numeric
    "rejected_nan",  # targets without a single finite value
    "nan_held",  # targets with some non-finite values (those joints held)
    "clamped_target",  # targets with values outside the limits
    "rate_limited",  # calls where the velocity limit cut a step
    "timeouts",  # watchdog trips
    "resumes",  # input returned after a silence
    "blends",  # new segments crossfaded in
    "bad_time",  # non-finite or decreasing time stamps
    "guarded",  # commands the self-collision guard moved
)
_NEUTRAL_TOL = 1e-9  # rad: this close to neutral counts as there


@dataclass(frozen=True)
class SafetyConfig:
    """Safety filter settings (seconds, radians).

    control_period: the nominal time between `update` calls (the pipeline runs at 30 Hz); the
        most time one call may credit to the velocity limiter.
    velocity_scale: fraction of each joint's velocity limit that may be used, in (0, 1]; the URDF
        limits are the motors' maxima, far faster than a friendly gesture needs.
    position_margin: kept from each position limit, so commands never press on a hard stop, and
        so the executed robot does not reach one either: the servo lags and overshoots a
        command that stops at the margin from speed. Measured on the 47 generator test clips
        (README, "The simulated robot"): with 0.02 rad the simulated G1 and H1 sat at a limit in
        up to 6 clips a stream (high fives, mirrors, hugs; 1 kHz steps G1 up to 328, H1 up to
        203 a stream), with 0.05 H1 never, G1 in 3 clips (a mirror, two high fives' reactions;
        at most 53 steps a stream); hand error unchanged.
    blend_time: crossfade when a new reaction segment replaces the one being executed.
    timeout: input silence after which the robot eases to neutral; 0 turns the watchdog off.
    ease_time: duration of the ease to neutral (the velocity limit may make it longer).
    resume_time: crossfade back to the live stream when input returns after a silence.
    limit_safe_velocity: cap the velocity sent with a position near a limit so the controller's
        spline does not swing past the limit (`SafetyFilter._limit_safe`); False: the raw step.
    """

    control_period: float = 1.0 / 30.0
    velocity_scale: float = 0.5
    position_margin: float = 0.05
    blend_time: float = 0.3
    timeout: float = 0.5
    ease_time: float = 2.0
    resume_time: float = 0.5
    limit_safe_velocity: bool = True

    def __post_init__(self) -> None:
        for name in ("control_period", "blend_time", "ease_time", "resume_time"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f"SafetyConfig.{name} must be > 0 s, got {value}")
        if not (np.isfinite(self.velocity_scale) and 0 < self.velocity_scale <= 1):
            raise ValueError(f"SafetyConfig.velocity_scale must be in (0, 1], got {self.velocity_scale}")
        if not (np.isfinite(self.position_margin) and self.position_margin >= 0):
            raise ValueError(f"SafetyConfig.position_margin must be >= 0 rad, got {self.position_margin}")
        if not (np.isfinite(self.timeout) and self.timeout >= 0):
            raise ValueError(f"SafetyConfig.timeout must be >= 0 s (0: off), got {self.timeout}")


@dataclass(frozen=True)
class SafetyOutput:
    """One command: positions (J,) rad, velocities (J,) rad/s (the step over dt; 0 when dt is 0),
    the state after this call, and what the filter did to the input in this call."""

    positions: np.ndarray
    velocities: np.ndarray
    state: str
    held: bool = False  # some target values were not finite: last good values held
    rate_limited: bool = False  # the velocity limit cut at least one joint's step


class CommandGuard(Protocol):
    """A last correction of each command (sim/collision_guard.py's CollisionGuard): the command to
    send instead of `candidate`, moving from `previous` within `dt` s at most `max_velocity` rad/s."""

    def project(
        self, previous: np.ndarray, candidate: np.ndarray, dt: float, max_velocity: np.ndarray
    ) -> np.ndarray: ...


def _smoothstep(w: float) -> float:
    w = min(max(w, 0.0), 1.0)
    return w * w * (3.0 - 2.0 * w)


class SafetyFilter:
    """Guards the outgoing joint stream of a robot profile (see the module docstring).

    initial: the robot's current joint positions (e.g. from /joint_states) if known; the filter
    starts there and eases to neutral until input arrives. Without it, the filter assumes the
    robot is at the neutral pose.
    guard: the self-collision guard (step 6 of the module docstring); None: no collision check.
    """

    def __init__(
        self,
        profile: Profile,
        config: SafetyConfig | None = None,
        initial: np.ndarray | None = None,
        guard: CommandGuard | None = None,
    ) -> None:
        if not profile.is_robot:
            raise ValueError(f"SafetyFilter needs a robot profile, {profile.name!r} is an avatar")
        self.profile = profile
        self.config = config or SafetyConfig()
        margin = self.config.position_margin
        lower, upper = profile.lower, profile.upper
        if np.any(upper - lower <= 2 * margin):
            raise ValueError(f"position_margin {margin} rad leaves no range for some joint of {profile.name}")
        self.lower, self.upper = lower + margin, upper - margin
        self.neutral = np.clip(profile.neutral, self.lower, self.upper)
        self.max_velocity = profile.velocity * self.config.velocity_scale
        self.guard = guard
        self.stats: dict[str, int] = dict.fromkeys(STAT_KEYS, 0)
        self.last_reason = ""
        self._last_now: float | None = None
        self._last_input: float | None = None
        self._target: np.ndarray | None = None
        self._blend: tuple[float, np.ndarray, float] | None = None  # (start, from, duration)
        start = self._as_positions(initial) if initial is not None else None
        if start is None:
            self._out = self.neutral.copy()
            self._state = NEUTRAL
        else:
            self._out = np.clip(np.where(np.isfinite(start), start, self.neutral), self.lower, self.upper)
            self._state = EASING
        self._ease_start: float | None = None  # None while easing: starts at the next update
        self._ease_from = self._out.copy()

    @property
    def state(self) -> str:
        return self._state

    def current(self) -> SafetyOutput:
        """The last command again, at rest, without advancing the filter's clock."""
        return SafetyOutput(self._out.copy(), np.zeros_like(self._out), self._state)

    @property
    def positions(self) -> np.ndarray:
        """The last commanded positions."""
        return self._out.copy()

    def _as_positions(self, value: object) -> np.ndarray | None:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        return arr if arr.shape == (len(self.neutral),) else None

    def _reject(self, key: str, reason: str) -> None:
        self.stats[key] += 1
        self.last_reason = reason

    def _accept_target(self, target: object) -> tuple[bool, bool]:
        """Validate and store a target; (counts as input, some values held)."""
        arr = self._as_positions(target)
        if arr is None:
            try:
                what = f"shape {np.shape(target)}"
            except ValueError:  # ragged
                what = "ragged"
            self._reject(
                "rejected_shape", f"target of {what} ({type(target).__name__}), not ({len(self.neutral)},)"
            )
            return False, False
        finite = np.isfinite(arr)
        if not finite.any():
            self._reject("rejected_nan", "target has no finite value")
            return False, False
        held = not finite.all()
        if held:
            self.stats["nan_held"] += 1
            self.last_reason = f"non-finite target for {int((~finite).sum())} joint(s): last good value held"
        previous = self._target if self._target is not None else self._out
        arr = np.where(finite, arr, previous)
        clipped = np.clip(arr, self.lower, self.upper)
        if np.any(clipped != arr):
            self.stats["clamped_target"] += 1
        self._target = clipped
        self.stats["inputs"] += 1
        return True, held

    def update(self, now: float, target: np.ndarray | None = None, new_segment: bool = False) -> SafetyOutput:
        """The command for time `now` (s), given the newest target (J,) if one arrived since the
        last call. `new_segment`: this target starts a new reaction segment (crossfade to it).
        Never raises on bad values; every output is finite and within limits.
        """
        self.stats["updates"] += 1
        cfg = self.config
        try:
            now = float(now)
        except (TypeError, ValueError):
            now = float("nan")
        if not np.isfinite(now):
            self._reject("bad_time", f"time stamp {now!r} is not a finite number: output held")
            return SafetyOutput(self._out.copy(), np.zeros_like(self._out), self._state)
        if self._last_now is None:
            dt = 0.0
        elif now <= self._last_now:
            if now < self._last_now:
                self._reject("bad_time", f"time went backwards ({now} < {self._last_now}): output held")
                now = self._last_now  # as if no time had passed
            dt = 0.0
        else:
            dt = min(now - self._last_now, cfg.control_period)
        if self._state == EASING and self._ease_start is None:
            self._start_ease(now)

        held = False
        if target is not None:
            alive, held = self._accept_target(target)
            if alive:
                self._last_input = now
                if self._state in (EASING, NEUTRAL):
                    self._state = RESUMING
                    self.stats["resumes"] += 1
                    self._blend = (now, self._out.copy(), cfg.resume_time)
                elif new_segment:
                    self.stats["blends"] += 1
                    self._blend = (now, self._out.copy(), cfg.blend_time)

        # Watchdog: silence longer than the timeout.
        if (
            self._state in (ACTIVE, RESUMING)
            and cfg.timeout > 0
            and self._last_input is not None
            and now - self._last_input > cfg.timeout
        ):
            self.stats["timeouts"] += 1
            self.last_reason = f"no input for {now - self._last_input:.3f} s (timeout {cfg.timeout} s)"
            self._start_ease(now)

        desired = self._desired(now)
        limit = self.max_velocity * dt
        step = np.clip(desired - self._out, -limit, limit)
        rate_limited = bool(np.any(np.abs(desired - self._out) > limit + 1e-12))
        if rate_limited and dt > 0:
            self.stats["rate_limited"] += 1
        new = np.clip(self._out + step, self.lower, self.upper)
        if self.guard is not None and np.all(np.isfinite(new)):
            guarded = np.clip(
                self.guard.project(self._out, new, dt, self.max_velocity), self.lower, self.upper
            )
            if np.any(guarded != new):
                self.stats["guarded"] += 1
            # the guard moves from the previous command within the velocity limit; the clip makes sure
            new = self._out + np.clip(guarded - self._out, -limit, limit)
        if not np.all(np.isfinite(new)):  # unreachable with finite targets: the last line of defence
            new = self._out.copy()
        velocities = (new - self._out) / dt if dt > 0 else np.zeros_like(new)
        if self.config.limit_safe_velocity:
            velocities = self._limit_safe(new, velocities)
        self._out = new
        if (
            self._state == EASING
            and now - self._ease_time_start(now) >= cfg.ease_time
            and np.all(np.abs(new - self.neutral) <= _NEUTRAL_TOL)
        ):
            self._state = NEUTRAL
        self._last_now = now
        return SafetyOutput(new.copy(), velocities, self._state, held=held, rate_limited=rate_limited)

    def _limit_safe(self, positions: np.ndarray, velocities: np.ndarray) -> np.ndarray:
        """The velocities to publish with `positions`: towards a joint limit, at most what keeps the
        robot's trajectory spline inside it.

        A joint_trajectory_controller joins the points with cubic Hermite splines (sim/trajectory.py);
        from a point p with velocity v towards a limit, to a held point, the spline swings past p by
        (4/27) v h (h: the time between points). Measured: a G1 shoulder stopped at the position
        clamp (0.02 rad inside its limit) at full speed swung 0.027 rad past the limit. So the
        velocity towards the nearer limit is capped at d 27 / (8 h), d the distance to the limit:
        the swing stays within half of d (the other half is the servo's)."""
        h = self.config.control_period
        room_up = self.profile.upper - positions
        room_down = positions - self.profile.lower
        cap_up = np.maximum(room_up, 0.0) * 27.0 / (8.0 * h)
        cap_down = np.maximum(room_down, 0.0) * 27.0 / (8.0 * h)
        return np.clip(velocities, -cap_down, cap_up)

    def _ease_time_start(self, now: float) -> float:
        return self._ease_start if self._ease_start is not None else now

    def _start_ease(self, now: float) -> None:
        self._state = EASING
        self._ease_start = now
        self._ease_from = self._out.copy()
        self._blend = None

    def _desired(self, now: float) -> np.ndarray:
        if self._state == NEUTRAL:
            return self.neutral
        if self._state == EASING:
            s = _smoothstep((now - self._ease_time_start(now)) / self.config.ease_time)
            return self._ease_from + s * (self.neutral - self._ease_from)
        target = self._target if self._target is not None else self._out
        if self._blend is None:
            return target
        start, origin, duration = self._blend
        w = (now - start) / duration
        if w >= 1.0:
            self._blend = None
            self._state = ACTIVE
            return target
        return origin + _smoothstep(w) * (target - origin)
