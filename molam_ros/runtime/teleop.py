"""Teleoperation: the operator's own pose drives the robot frame by frame (no ROS, no model).

    pipeline = TeleopPipeline(load_profile("unitree_g1"), TeleopConfig(person_id="operator"))
    pipeline.set_robot_state(q_measured)                   # optional: blend in from where the robot is
    pipeline.push_pose(stamp, positions, joint_names)      # every tracker frame
    for chunk in pipeline.process(now):                    # one chunk per 30 Hz grid frame
        publish(chunk.joint_positions, chunk.joint_velocities)

The same path as a reaction, minus the model: PoseBuffer (reorder, validate, resample onto the
30 Hz grid) -> One Euro filter on the joint positions (runtime/one_euro.py: tracker jitter) ->
inverse kinematics to local rotations (motion/ik.py, bone lengths fixed by the segment's first
frame, so a frame never depends on later ones) -> the profile's retargeting (runtime/retarget.py)
-> the SafetyFilter (limits, velocity limits, blending, watchdog). It yields `ReactionChunk`s, one
grid frame each, so the reaction node publishes them through the same outputs; the "reactor" of a
chunk is the operator's filtered pose (what the robot copies).

Why frame by frame and not every l = 4 frames: nothing waits for a tokenizer step, so the robot
follows the operator one grid frame after capture plus the reorder window. The window adapts to
the stream (runtime/reorder_window.py): between `reorder_window` (the floor, 0 by default: a
tracker's frames usually arrive in order over one link, and every frame of window is a frame of
latency) and `reorder_window_max`, as wide as the stream's measured reordering needs.

Enabling is explicit (the node's `mode` parameter) and bound to one person (`person_id`): the node
refuses teleoperation without one, so a passer-by can never drive the robot. Blending in: the
safety filter starts at the robot's measured pose (`set_robot_state`, from its JointState) or at
neutral, and crossfades into the operator's pose over `SafetyConfig.resume_time`. Bad input (the
operator leaving the tracker's view: missing or low-confidence joints, NaN; a jump; a reach
beyond the workspace) is handled by the layers that exist for it: the buffer rejects the frame
(the robot holds, then the watchdog eases it to neutral), the velocity limit turns a jump into a
ramp, the retargeter clamps to the joint limits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molam_ros.motion.ik import inverse_kinematics
from molam_ros.motion.skeleton import bone_lengths
from molam_ros.runtime.one_euro import OneEuroConfig, OneEuroFilter
from molam_ros.runtime.pipeline import ReactionChunk
from molam_ros.runtime.pose_buffer import PoseBuffer, PoseBufferConfig, PoseFrame
from molam_ros.runtime.profiles import Profile
from molam_ros.runtime.reorder_window import AdaptiveWindow, AdaptiveWindowConfig
from molam_ros.runtime.retarget import Retargeter
from molam_ros.runtime.safety import SafetyConfig, SafetyFilter

STAGES = ("filter", "ik", "retarget")


@dataclass(frozen=True, kw_only=True)
class TeleopConfig:
    """Teleoperation settings (the reaction node's `teleop_*` parameters map onto these).

    person_id: the operator; required (see the module docstring).
    reorder_window: s a grid frame waits at least for late tracker frames (the window's floor).
    reorder_window_max: s it may wait at most: the window adapts between the two to the stream's
        reordering (`reorder_quantile` of the recent frames slot in); equal to the floor: fixed.
    filter: the One Euro filter on joint positions; None turns it off.
    safety: the safety filter; resume_time is the blend-in from the robot's pose.
    """

    person_id: str
    reorder_window: float = 0.0
    reorder_window_max: float = 0.1
    reorder_quantile: float = 0.95
    filter: OneEuroConfig | None = field(default_factory=lambda: OneEuroConfig(min_cutoff=1.0, beta=1.0))
    safety: SafetyConfig = SafetyConfig(resume_time=1.0)

    def __post_init__(self) -> None:
        if not self.person_id:
            raise ValueError("teleoperation needs the operator's person_id: it follows no one else")
        self.window_config()  # checks the bounds

    def window_config(self) -> AdaptiveWindowConfig:
        """The adaptive reorder window's settings."""
        return AdaptiveWindowConfig(
            floor=self.reorder_window, cap=self.reorder_window_max, quantile=self.reorder_quantile
        )

    def make_buffer(self, z_up: bool = False) -> PoseBuffer:
        """The operator's pose buffer, with the adaptive window."""
        return PoseBuffer(
            PoseBufferConfig(reorder_window=self.reorder_window, z_up=z_up),
            window=AdaptiveWindow(self.window_config()),
        )


class _NoReactor:
    """Stands in for the reaction's model state where the node reads it (diagnostics)."""

    instruction = ""


class TeleopPipeline:
    """Operator pose stream -> robot commands, one grid frame at a time (module docstring)."""

    def __init__(
        self, profile: Profile, config: TeleopConfig, *, ik: Any | None = None, guard: Any | None = None
    ) -> None:
        """`ik`: a position-based retargeter with `robot(positions (22, 3)) -> joints (J,)` (the
        optional mink IK, sim/ik_retarget.py) used instead of IK to rotations + axis decomposition.
        `guard`: the safety filter's self-collision guard (sim/collision_guard.py), None: none."""
        if not profile.is_robot:
            raise ValueError(f"teleoperation drives a robot; {profile.name!r} is a {profile.kind} profile")
        self.profile = profile
        self.config = config
        self.buffer = config.make_buffer()
        self.last_reason = ""  # why the last pose was not accepted (the buffer's words)
        self.retargeter = Retargeter(profile)
        self.guard = guard
        self.safety = SafetyFilter(profile, config.safety, guard=guard)
        self.reactor = _NoReactor()
        self.playing = False
        self.stats: dict[str, float] = {"steps": 0, "overruns": 0, "segments": 0}
        self.last_seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._lock = threading.Lock()
        self._filter = OneEuroFilter(config.filter) if config.filter is not None else None
        self.ik = ik
        self._lengths: np.ndarray | None = None
        self._reference: np.ndarray | None = None

    def set_robot_state(self, positions: np.ndarray) -> bool:
        """The robot's measured joints (profile order), before the operator takes over: the blend
        starts there. Ignored (False) once frames are flowing or when not finite."""
        q = np.asarray(positions, dtype=np.float64)
        if self.stats["steps"] or q.shape != (self.profile.num_joints,) or not np.isfinite(q).all():
            return False
        self.safety = SafetyFilter(self.profile, self.config.safety, initial=q, guard=self.guard)
        return True

    def push_pose(
        self,
        stamp: float,
        positions: np.ndarray,
        joint_names: Sequence[str] | None = None,
        now: float | None = None,
        orientations: np.ndarray | None = None,
    ) -> str:
        """Offer one pose of the operator; "accepted" or why not (PoseBuffer outcomes).

        `orientations` is accepted for the node's one call shape and not used: teleoperation copies a
        full body, so a sparse VR pose is refused by the buffer rather than completed."""
        with self._lock:
            if joint_names is None:
                status = self.buffer.push(stamp, positions, now=now)
            else:
                status = self.buffer.push_named(stamp, joint_names, positions, now=now)
            self.last_reason = self.buffer.last_reason  # what the node logs on a drop
            return status

    def process(self, now: float | None = None) -> list[ReactionChunk]:
        """A chunk for every grid frame that is ready, oldest first."""
        with self._lock:
            frames = self.buffer.pop_ready()
        return [self._step(f) for f in frames]

    def idle(self, now: float):  # noqa: ANN201 - SafetyOutput
        """No new frame: the safety filter's command for `now` (hold, then the watchdog's ease)."""
        return self.safety.update(now, None)

    def _step(self, frame: PoseFrame) -> ReactionChunk:
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        pos = np.asarray(frame.positions, dtype=np.float64)
        if frame.segment_start:  # a gap: new bone lengths, the filter restarts (no smoothing across)
            self.stats["segments"] += 1
            self._lengths = bone_lengths(pos)
            if self._filter is not None:
                self._filter.reset()
        if self._lengths is None:
            self._lengths = bone_lengths(pos)
        smooth = self._filter(pos, frame.stamp) if self._filter is not None else pos
        seconds["filter"] = time.perf_counter() - t

        t = time.perf_counter()
        if self.ik is not None:  # positions straight to joints (mink IK on the robot's model)
            target = self.ik.robot(smooth)
            seconds["ik"] = time.perf_counter() - t
            t = time.perf_counter()
        else:
            quats = inverse_kinematics(smooth, self._lengths)
            quats[0] = (1.0, 0.0, 0.0, 0.0)  # the root's world rotation drives no robot joint
            seconds["ik"] = time.perf_counter() - t
            t = time.perf_counter()
            target = self.retargeter.robot(quats, reference=self._reference).positions
        cmd = self.safety.update(float(frame.stamp), target, new_segment=bool(frame.segment_start))
        self._reference = cmd.positions
        seconds["retarget"] = time.perf_counter() - t
        self.stats["steps"] += 1
        if sum(seconds.values()) > 1.0 / self.buffer.config.fps:
            self.stats["overruns"] += 1
        self.last_seconds = seconds
        return ReactionChunk(
            times=np.array([frame.stamp]),
            person=pos[None].astype(np.float32),
            reactor=smooth[None].astype(np.float32),
            codes_a=np.zeros(0, dtype=np.int64),
            codes_b=np.zeros(0, dtype=np.int64),
            joint_positions=cmd.positions[None],
            joint_velocities=cmd.velocities[None],
            seconds=seconds,
            safety_state=cmd.state,
        )
