"""The avatar's counterpart of the robot safety filter: no pop, no freeze, an idle pose when the
person is gone.

An avatar cannot hurt anyone, but a VR scene shows every glitch: a bone that flips in one frame, a
body that freezes mid-gesture when the tracked partner walks out, a snap when a new reaction
replaces the running one. `AvatarSafety` is the same state machine as runtime/safety.py
(`SafetyFilter`), driven only by the time stamps it is given, on bone rotations and the root:

    active             following the reaction (crossfading when a new segment takes over)
    easing_to_neutral  no reaction frame for longer than `timeout`: ease to the idle pose
    neutral            holding the idle pose, waiting
    resuming           frames are back: crossfade from where the avatar is to the live stream

Every `update(now, rotations, root)` applies: the input guard (a frame with a non-finite or zero
quaternion, or a non-finite root, is not input and trips the watchdog like silence); the watchdog
and transitions; blending, a smoothstep crossfade (slerp per bone, linear for the root) from the
output at the switch over `blend_time` (new segment), `resume_time` (after a silence) or
`ease_time` (to idle); and a speed limit, each bone turning at most `max_bone_speed` rad/s and the
root moving at most `max_root_speed` m/s, over at most `control_period` per call.

The idle pose is the profile's neutral pose (config/profiles/avatar_smpl.yaml: standing, arms
relaxed) where the avatar stands: the root keeps its x and z and eases to the neutral height, the
pelvis keeps its heading (an idle avatar does not turn to face +Z).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molam_ros.motion.rotations import quat_mul, quat_normalize, quat_rotate, quat_slerp, yaw_quat
from molam_ros.motion.skeleton import JOINT_INDEX
from molam_ros.runtime.profiles import Profile
from molam_ros.runtime.safety import ACTIVE, EASING, NEUTRAL, RESUMING, SafetyConfig

_MIN_NORM = 1e-6


@dataclass(frozen=True)
class AvatarLimits:
    """Speed limits of the avatar (rad/s per bone, m/s of the root): far above a person's (a fast
    punch turns the elbow at ~15 rad/s), they only stop a glitch from reaching the scene in one frame."""

    max_bone_speed: float = 20.0
    max_root_speed: float = 6.0


@dataclass(frozen=True)
class AvatarCommand:
    """One avatar frame: rotations (B, 4) (w, x, y, z) in the profile's bone order, root (3,), the
    state after this call, and whether the speed limit cut it."""

    rotations: np.ndarray
    root: np.ndarray
    state: str
    rate_limited: bool = False


def _smoothstep(w: float) -> float:
    w = min(max(w, 0.0), 1.0)
    return w * w * (3.0 - 2.0 * w)


def _angle(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(B,) rotation angle between unit quaternions a and b (B, 4)."""
    dot = np.abs(np.sum(a * b, axis=-1))
    return 2.0 * np.arccos(np.clip(dot, 0.0, 1.0))


class AvatarSafety:
    """Guards the avatar's outgoing frames (module docstring)."""

    def __init__(
        self, profile: Profile, config: SafetyConfig | None = None, limits: AvatarLimits | None = None
    ) -> None:
        if profile.is_robot:
            raise ValueError(f"AvatarSafety needs an avatar profile, {profile.name!r} is a robot")
        self.config = config or SafetyConfig()
        self.limits = limits or AvatarLimits()
        index = [JOINT_INDEX[smpl] for _, smpl in profile.bones]
        self.neutral = quat_normalize(np.asarray(profile.zero_pose, dtype=np.float64))[index]
        self.root_bone = next((b for b, (_, smpl) in enumerate(profile.bones) if smpl == "pelvis"), None)
        self.neutral_root = np.asarray(profile.neutral_root, dtype=np.float64)
        self.stats: dict[str, int] = dict.fromkeys(
            ("updates", "inputs", "rejected", "timeouts", "resumes", "blends", "bad_time"), 0
        )
        self._out_rot = self.neutral.copy()
        self._out_root = self.neutral_root.copy()
        self._state = NEUTRAL
        self._target: tuple[np.ndarray, np.ndarray] | None = None
        self._blend: tuple[float, np.ndarray, np.ndarray, float] | None = None  # start, rot, root, duration
        self._ease: tuple[float, np.ndarray, np.ndarray] | None = None  # start, rot, root
        self._last_now: float | None = None
        self._last_input: float | None = None

    @property
    def state(self) -> str:
        return self._state

    def current(self) -> AvatarCommand:
        """The last frame again, without advancing the filter's clock."""
        return AvatarCommand(self._out_rot.copy(), self._out_root.copy(), self._state)

    def idle_pose(self) -> tuple[np.ndarray, np.ndarray]:
        """The idle pose where the avatar stands now: neutral bones, the pelvis keeping its heading."""
        rot = self.neutral.copy()
        if self.root_bone is not None:
            forward = quat_rotate(self._out_rot[self.root_bone], np.array([0.0, 0.0, 1.0]))
            rot[self.root_bone] = quat_mul(
                yaw_quat(np.arctan2(forward[0], forward[2])), self.neutral[self.root_bone]
            )
        root = np.array([self._out_root[0], self.neutral_root[1], self._out_root[2]])
        return rot, root

    def _valid(
        self, rotations: np.ndarray | None, root: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray] | None:
        if rotations is None:
            return None
        rot = np.asarray(rotations, dtype=np.float64)
        r = np.asarray(root if root is not None else self._out_root, dtype=np.float64)
        norms = np.linalg.norm(rot, axis=-1) if rot.shape == self.neutral.shape else None
        if norms is None or r.shape != (3,) or not (np.all(np.isfinite(rot)) and np.all(np.isfinite(r))):
            self.stats["rejected"] += 1
            return None
        if np.any(norms < _MIN_NORM):
            self.stats["rejected"] += 1
            return None
        return rot / norms[:, None], r

    def update(
        self,
        now: float,
        rotations: np.ndarray | None = None,
        root: np.ndarray | None = None,
        new_segment: bool = False,
    ) -> AvatarCommand:
        """The frame for time `now` (s), given the newest reaction frame if one came since the last
        call; `new_segment`: it starts a new reaction (crossfade). Never raises on bad values."""
        self.stats["updates"] += 1
        cfg = self.config
        if not np.isfinite(now) or (self._last_now is not None and now < self._last_now):
            self.stats["bad_time"] += 1
            return AvatarCommand(self._out_rot.copy(), self._out_root.copy(), self._state)
        dt = 0.0 if self._last_now is None else min(now - self._last_now, cfg.control_period)
        frame = self._valid(rotations, root)
        if frame is not None:
            self.stats["inputs"] += 1
            self._target = frame
            self._last_input = now
            if self._state in (EASING, NEUTRAL):
                self._state = RESUMING
                self.stats["resumes"] += 1
                self._blend = (now, self._out_rot.copy(), self._out_root.copy(), cfg.resume_time)
                self._ease = None
            elif new_segment:
                self.stats["blends"] += 1
                self._blend = (now, self._out_rot.copy(), self._out_root.copy(), cfg.blend_time)
        if (
            self._state in (ACTIVE, RESUMING)
            and cfg.timeout > 0
            and self._last_input is not None
            and now - self._last_input > cfg.timeout
        ):
            self.stats["timeouts"] += 1
            self._state = EASING
            self._ease = (now, self._out_rot.copy(), self._out_root.copy())
            self._blend = None
        rot, r = self._desired(now)
        limited = False
        if self._last_now is not None:
            turn = _angle(self._out_rot, rot)
            limit = self.limits.max_bone_speed * dt
            frac = np.where(turn > limit, limit / np.maximum(turn, 1e-12), 1.0)
            limited = bool(np.any(frac < 1.0))
            rot = quat_slerp(self._out_rot, rot, frac)
            step = r - self._out_root
            dist = float(np.linalg.norm(step))
            if dist > self.limits.max_root_speed * dt:
                limited = True
                r = self._out_root + step * (self.limits.max_root_speed * dt / dist)
        self._out_rot, self._out_root = rot, r
        if (
            self._state == EASING
            and self._ease is not None
            and now - self._ease[0] >= cfg.ease_time
            and not limited
        ):
            self._state = NEUTRAL
        self._last_now = now
        return AvatarCommand(rot.copy(), r.copy(), self._state, rate_limited=limited)

    def _desired(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        if self._state in (EASING, NEUTRAL):
            idle_rot, idle_root = self.idle_pose() if self._ease is None else self._idle_from_ease()
            if self._state == NEUTRAL or self._ease is None:
                return idle_rot, idle_root
            start, rot0, root0 = self._ease
            s = _smoothstep((now - start) / self.config.ease_time)
            return quat_slerp(rot0, idle_rot, s), root0 + s * (idle_root - root0)
        target_rot, target_root = (
            self._target if self._target is not None else (self._out_rot, self._out_root)
        )
        if self._blend is None:
            return target_rot, target_root
        start, rot0, root0, duration = self._blend
        w = (now - start) / duration
        if w >= 1.0:
            self._blend = None
            self._state = ACTIVE
            return target_rot, target_root
        s = _smoothstep(w)
        return quat_slerp(rot0, target_rot, s), root0 + s * (target_root - root0)

    def _idle_from_ease(self) -> tuple[np.ndarray, np.ndarray]:
        """The idle pose where the avatar stood when the ease began (fixed during the ease)."""
        _, rot0, root0 = self._ease
        saved = self._out_rot, self._out_root
        self._out_rot, self._out_root = rot0, root0
        try:
            return self.idle_pose()
        finally:
            self._out_rot, self._out_root = saved
