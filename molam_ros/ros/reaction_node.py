"""reaction_node: a person's pose stream and text commands in, the reactor's motion out.

The node is thin: it converts messages, holds parameters and QoS, and calls the core
`ReactionPipeline` (molam_ros/runtime/pipeline.py), which does everything that thinks.

    reaction_node --ros-args --params-file config/reaction_node.yaml -p profile:=unitree_h1

Subscriptions:
- `person_pose_topic` [molam_msgs/PersonPose], sensor-data QoS (best effort, keep last 5): the
  person; poses of another `person_id` (when set), too old on arrival, malformed, NaN or with the
  wrong joints are dropped, counted and reported in diagnostics; the node keeps running.
- `command_topic` [std_msgs/String], reliable: a text command. Every command takes one path
  (agent/commands.py `CommandRouter`): the request guard and the one classifier of
  agent/intent.py, acknowledged on the reply topic at once. Refused requests (attacks, longer than
  `max_command_length`), text that is not English words and small talk get a reply and change
  nothing. A question ("what is he doing?") is answered on the reply topic from the last
  `answer_steps` steps of both people's motion, on a worker thread while the reaction goes on. A
  plan (several actions, a duration, an edit: "walk up, then wave", "dance for ten seconds") goes to
  the coordinator (molam_ros/agent; `plans`), also on the worker: its plan runs on the model, the
  reply says what it does, and the robot's part of the motion plays through the same retargeting
  and safety filter, the live reaction taking over again at its end. A single action ("wave at
  them", "do a cartwheel") becomes the reaction's instruction (an empty command clears it). The
  model only ever sees text the guard has passed.

Publications (reliable, keep last 10):
- `joint_trajectory_topic` [trajectory_msgs/JointTrajectory]: robot profiles; every step (l = 4
  frames, 133 ms) a short trajectory of the next frames with positions and velocities, stamped now
  and timed from now, for joint_trajectory_controller's topic interface. When the stream stops the
  safety filter's watchdog eases to the profile's neutral pose, published the same way.
- `joint_states_topic` [sensor_msgs/JointState]: robots: the last commanded joints (positions and
  velocities). Avatars: every frame of the reaction at 30 Hz, the bone rotations as (x, y, z, w)
  quaternion components named `<bone>.qx` ... and the root as `root.x` ... (Y up; in the profile's
  `convention`: Unity's axes for avatar_unity_humanoid), each message stamped with its display time (the
  capture stamp of the partner frame it answers plus `avatar_display_delay`, so stamps are evenly spaced
  and a client can interpolate) and released a frame before it; when the stream stops the same watchdog
  as the robots' eases the avatar to its idle pose (runtime/avatar_safety.py), published the same way.
- `tf_topic` [tf2_msgs/TFMessage], reliable, keep last 100 (avatars): the avatar's bones as a
  transform tree with every frame (runtime/rig.py): `output_frame_id` -> `<tf_prefix><root bone>`
  -> ... each bone's frame in its parent's, named as the profile names the bones, stamped like
  the JointState; always ROS's right-handed axes in the input's world (`pose_up_axis`), whatever
  the profile's `convention` (which applies to the JointState).
- `reply_topic` [std_msgs/String]: replies to commands.
- `markers_topic` [visualization_msgs/MarkerArray]: both skeletons, for RViz.
- `reactor_pose_topic` [molam_msgs/PersonPose], reliable, keep last 30: the reactor's 22 joint
  positions at every 30 Hz frame (person_id `reactor`, stamped with the partner frame it answers,
  in the input's up axis): the input's own format, for a VR avatar driven by positions, for
  recording, and for a second molam node.
- `diagnostics_topic` [diagnostic_msgs/DiagnosticArray]: input rate, dropped poses by reason,
  step latency per stage, real-time factor, engine in use, watchdog state, and the latency of what
  is published (p50/p99): `latency_ms` from the arrival of the pose that released a step to its
  trajectory, `capture_latency_ms` from the capture stamp of the step's last frame (this one also
  holds the pose buffer's reorder window and the transport).

Teleoperation (`mode: teleop`, explicit; robot profiles): no model is loaded; the operator named
by `person_id` (required) drives the robot frame by frame through the same pose buffer,
retargeting, safety filter and outputs (runtime/teleop.py), blending in from the robot's measured
pose when `robot_joint_states_topic` [sensor_msgs/JointState] is given (else from neutral). Text
commands get a reply saying teleoperation takes none.

Nothing published is NaN or beyond a joint limit: the safety filter clamps and rate-limits, and
the message builders refuse non-finite values (a step that would produce one is dropped, counted
and logged).
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from molam_msgs.msg import PersonPose
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory
from visualization_msgs.msg import MarkerArray

from molam_ros.agent.commands import PLAN, QUESTION, CommandWorker, question_task
from molam_ros.agent.reaction_setup import (
    build_coordinator_for,
    build_pipeline,
    build_teleop_pipeline,
    make_router,
)
from molam_ros.ros.avatar_output import AvatarOutput
from molam_ros.ros.convert import (
    diagnostic_array,
    joint_state,
    joint_trajectory,
    percentiles_ms,
    pose_from_msg,
    pose_to_msg,
    skeleton_markers,
)
from molam_ros.ros.spin import run_node

NODE_NAME = "reaction_node"
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
FRAMES_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=30, reliability=ReliabilityPolicy.RELIABLE)
FPS = 30.0

# Every parameter: name -> (default, description). config/reaction_node.yaml lists the same defaults
# (a test keeps them equal). All are read at start-up.
PARAMETERS: dict[str, tuple[object, str]] = {
    "person_pose_topic": ("/molam/person_pose", "in: molam_msgs/PersonPose"),
    "command_topic": ("/molam/command", "in: std_msgs/String"),
    "joint_trajectory_topic": ("/molam/joint_trajectory", "out: trajectory_msgs/JointTrajectory"),
    "joint_states_topic": ("/molam/joint_states", "out: sensor_msgs/JointState"),
    "reply_topic": ("/molam/reply", "out: std_msgs/String"),
    "markers_topic": ("/molam/markers", "out: visualization_msgs/MarkerArray"),
    "reactor_pose_topic": ("/molam/reactor_pose", "out: molam_msgs/PersonPose, the reactor, every frame"),
    "diagnostics_topic": ("/molam/diagnostics", "out: diagnostic_msgs/DiagnosticArray"),
    "model_dir": ("", "root of tokenizer/, export/, llm/; empty: $MOLAM_CACHE or ~/.cache/molam"),
    "tokenizer_dir": ("", "tokenizer checkpoint; empty: <model_dir>/tokenizer/small"),
    "export_dir": ("", "ONNX/TensorRT export; empty: <model_dir>/export/small"),
    "llm_dir": ("", "LLM checkpoint; empty: <model_dir>/llm/stage3, else <model_dir>/llm/stage2"),
    "reactor": ("llm_reactor", "who writes the live reaction: llm_reactor | small | llm (the full LLM)"),
    "reactor_dir": ("", "small or LLM reactor; empty: the cache's reactor/small, else the shipped one"),
    "describer_dir": ("", "answers what is happening; empty: the shipped describer; none: the LLM"),
    "t2m_actor_dir": ("", "motion of plans' generate steps; empty: the shipped actor generator; none: LLM"),
    "profile": ("unitree_g1", "output profile name (config/profiles) or YAML path"),
    "engine": ("onnxruntime", "tokenizer engine: torch | onnxruntime | tensorrt (with fallback)"),
    "device": ("cpu", "cpu | cuda | cuda:N"),
    "llm_quantization": ("int8", "cpu: int8 (dynamic, 2.6x faster step) | none"),
    "torch_threads": (1, "torch threads of the node (0: torch's default); 1 leaves a core to DDS"),
    "person_id": ("", "follow this person; empty: the first one heard"),
    "pose_up_axis": ("y", "up axis of incoming positions: y (SMPL, molam clips) or z (REP 103)"),
    "pose_max_age": (0.25, "s; a pose older than this on arrival is dropped"),
    "min_confidence": (0.3, "joints below this confidence count as missing"),
    "completion_dir": (
        "",
        "sparse poses (head + hands) completed by this model; empty: the shipped one; none: off",
    ),
    "floor_height": (0.0, "m; height of the floor in the input world (sparse poses: heights are from it)"),
    "start_position": ("front", "where the robot stands as a person comes: front | x,y,z (m) | none"),
    "start_distance": (1.8, "m: with start_position front, how far in front of the person the robot stands"),
    "instruction": ("", "initial instruction; empty: react freely"),
    "window_steps": (24, "model steps kept in the KV cache (x 4 frames)"),
    "keep_steps": (16, "steps kept when the oldest are evicted"),
    "temperature": (0.0, "0: greedy"),
    "top_k": (0, "0: no top-k cut"),
    "seed": (0, "sampling seed"),
    "output_frame_id": ("world", "frame of markers and trajectories"),
    "trajectory_horizon": (0.5, "s of motion in each JointTrajectory (the last chunk held to fill it)"),
    "publish_joint_states": (True, "publish JointState"),
    "publish_markers": (True, "publish MarkerArray"),
    "watchdog_timeout": (0.5, "s without a pose -> ease to neutral"),
    "tf_topic": ("/tf", "out: tf2_msgs/TFMessage, the avatar's bones (avatars); empty: off"),
    "tf_prefix": ("avatar/", "avatars: bone frames are <tf_prefix><bone name of the profile>"),
    "avatar_display_delay": (0.4, "s; avatar frames are stamped for display this long after their capture"),
    "neutral_ease_time": (1.5, "s to ease to neutral"),
    "max_command_length": (500, "characters; longer commands are refused"),
    "plans": (True, "commands that chain actions go to the coordinator and play through the safety layer"),
    "coordinator_config": ("", "coordinator YAML; empty: the packaged config/coordinator.yaml"),
    "answer_steps": (24, "questions are answered about the last N steps (x 4 frames) of motion"),
    "answer_max_tokens": (48, "longest text answer, in tokens"),
    "diagnostics_period": (1.0, "s between diagnostics messages"),
    "mode": ("reaction", "reaction | teleop: the operator person_id drives the robot, no model"),
    "robot_joint_states_topic": ("", "in (teleop): the robot's JointState, blended in from; empty: neutral"),
    "teleop_reorder_window": (0.0, "s (teleop): a frame waits at least this long for late tracker frames"),
    "teleop_reorder_window_max": (0.1, "s (teleop): ... and at most this long, adapting to the stream"),
    "teleop_reorder_quantile": (0.95, "teleop: fraction of recent late frames the window lets slot in"),
    "teleop_filter_min_cutoff": (1.0, "Hz (teleop): One Euro filter cutoff at rest; 0: no filter"),
    "teleop_filter_beta": (1.0, "1/m (teleop): One Euro filter speed coefficient"),
    "teleop_blend_time": (1.0, "s (teleop): crossfade from the robot's pose to the operator's"),
    "teleop_retarget": ("axis", "teleop: axis (decomposition) | ik (mink on the MuJoCo model, extra [sim])"),
    "collision_guard": ("auto", "robots: self-collision guard, auto | on | off (extra [sim])"),
    "collision_clearance": (0.03, "m the guard keeps between the robot's own links"),
    "collision_lookahead": (0.05, "s the guard looks ahead along each step (servo lag, spline swing)"),
}
MODES = ("reaction", "teleop")


class ReactionNode(Node):
    """Pose stream + commands -> trajectories, joint states, replies, markers, diagnostics."""

    def __init__(self, pipeline: Any | None = None, engine_name: str = "") -> None:
        super().__init__(NODE_NAME)
        for name, (default, description) in PARAMETERS.items():
            self.declare_parameter(
                name, default, ParameterDescriptor(description=description, read_only=True)
            )
        self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        if self.p["mode"] not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.p['mode']!r}")
        self.teleop = self.p["mode"] == "teleop"
        if pipeline is None:
            pipeline, engine_name = (build_teleop_pipeline if self.teleop else build_pipeline)(self.p)
        self.pipeline = pipeline
        self.engine_name = engine_name
        self.profile = pipeline.profile
        self.names = list(self.profile.joint_names) if self.profile.is_robot else []
        p = self.p
        # Input and the step are in separate callback groups, so a multi-threaded executor could run
        # them at once (the pipeline's buffer is locked); main() uses one thread, see there.
        inputs, steps = MutuallyExclusiveCallbackGroup(), MutuallyExclusiveCallbackGroup()
        self.create_subscription(
            PersonPose, p["person_pose_topic"], self._on_pose, SENSOR_QOS, callback_group=inputs
        )
        self.create_subscription(
            String, p["command_topic"], self._on_command, RELIABLE_QOS, callback_group=inputs
        )
        self.pub_traj = self.create_publisher(JointTrajectory, p["joint_trajectory_topic"], RELIABLE_QOS)
        self.pub_state = self.create_publisher(JointState, p["joint_states_topic"], RELIABLE_QOS)
        self.pub_reply = self.create_publisher(String, p["reply_topic"], RELIABLE_QOS)
        self.pub_markers = self.create_publisher(MarkerArray, p["markers_topic"], RELIABLE_QOS)
        self.pub_reactor = None
        if p["reactor_pose_topic"]:
            self.pub_reactor = self.create_publisher(PersonPose, p["reactor_pose_topic"], FRAMES_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, p["diagnostics_topic"], RELIABLE_QOS)
        if self.teleop and p["robot_joint_states_topic"]:
            self.create_subscription(
                JointState,
                p["robot_joint_states_topic"],
                self._on_robot_state,
                RELIABLE_QOS,
                callback_group=inputs,
            )
        self.create_timer(1.0 / FPS, self._tick, callback_group=steps)
        self.create_timer(float(p["diagnostics_period"]), self._diagnostics, callback_group=inputs)
        self.counts: dict[str, int] = {"poses": 0, "published": 0, "invalid_output": 0, "commands": 0}
        self.drops: dict[str, int] = {}
        self.arrivals: deque[float] = deque(maxlen=90)
        self.step_seconds: deque[float] = deque(maxlen=60)
        # Latency of what is published: from the pose that released a chunk (the first pose past its
        # last frame plus the buffer's reorder window) arriving, and from that frame's capture stamp.
        self.accepted: deque[tuple[float, float]] = deque(maxlen=600)  # (stamp, arrival)
        self.latency_processing: deque[float] = deque(maxlen=900)
        self.latency_capture: deque[float] = deque(maxlen=900)
        self.avatar = None
        if not self.profile.is_robot:
            publish_state = self.pub_state.publish if p["publish_joint_states"] else None
            self.avatar = AvatarOutput(self, self.profile, p, publish_state, self._drop)
        self.follow = p["person_id"]
        self.last_reason = ""
        handlers = {QUESTION: self._answer}
        if p["plans"]:
            handlers[PLAN] = self._plan
        self.worker = CommandWorker(handlers, self._reply)
        self.coordinator: Any = None  # made on the first plan (worker thread)
        self.router = make_router(self.pipeline, self.worker, self._reply, p)
        if self.teleop:
            self.get_logger().info(
                f"teleoperation: {self.follow!r} drives {self.profile.name}; no model loaded"
            )
        self.get_logger().info(
            f"reacting as {self.profile.name} ({self.profile.kind}, {len(self.names) or 22} joints), "
            f"engine {engine_name}, listening on {p['person_pose_topic']} and {p['command_topic']}; "
            f"the robot starts at start_position {p['start_position']!r} ({p['start_distance']} m if front)"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _drop(self, reason: str, detail: str) -> None:
        self.drops[reason] = self.drops.get(reason, 0) + 1
        self.last_reason = f"{reason}: {detail}"
        self.get_logger().warn(self.last_reason, throttle_duration_sec=2.0)

    # --- input

    def _on_pose(self, msg: PersonPose) -> None:
        now = self._now()
        try:
            pose = pose_from_msg(msg, allow_nonfinite=True)  # NaN is the buffer's to count
        except ValueError as e:
            self._drop("malformed", str(e))
            return
        if not self.follow:
            self.follow = pose.person_id
        if pose.person_id != self.follow:
            self._drop("other_person", pose.person_id)
            return
        if now - pose.stamp > float(self.p["pose_max_age"]):
            self._drop("too_old", f"{now - pose.stamp:.2f} s old on arrival")
            return
        positions = pose.positions
        if pose.confidence is not None:
            positions = positions.copy()
            positions[pose.confidence < float(self.p["min_confidence"])] = np.nan
        status = self.pipeline.push_pose(
            pose.stamp, positions, joint_names=pose.joint_names, now=now, orientations=pose.orientations
        )
        self.counts["poses"] += 1
        if status == "accepted":
            self.arrivals.append(now)
            self.accepted.append((pose.stamp, now))
            # Step at once when this pose completes one, rather than at the next timer tick (the
            # timer, 30 Hz, still runs the watchdog and catches anything left): half a tick less
            # latency on average.
            self._tick()
        else:
            self._drop(status.removeprefix("dropped_"), self.pipeline.last_reason)

    def _on_robot_state(self, msg: JointState) -> None:
        """Teleoperation: the robot's measured joints, so the blend-in starts where it is."""
        got = dict(zip(msg.name, msg.position, strict=False))
        if all(n in got for n in self.names):
            self.pipeline.set_robot_state(np.array([got[n] for n in self.names]))

    def _on_command(self, msg: String) -> None:
        """Every command takes the one path: guard, classifier, then reply / instruction / worker."""
        self.counts["commands"] += 1
        if self.teleop:
            self._reply("teleoperation: the robot copies its operator and takes no commands")
            return
        intent = self.router.handle(msg.data)
        if intent is not None:
            self.get_logger().info(
                f"command {intent.text[:80]!r}: {intent.kind} ({self.router.last_seconds * 1000:.1f} ms)"
            )

    def _answer(self, question: str) -> str:
        """Worker thread: the model's text answer to a question about the recent motion."""
        question = question.strip()
        answer = self.pipeline.answer(
            question,
            steps=int(self.p["answer_steps"]),
            max_tokens=int(self.p["answer_max_tokens"]),
            task=question_task(question),
        )
        self.get_logger().info(f"answer ({self.worker.last_seconds:.1f} s after start): {answer[:120]!r}")
        return answer

    def _plan(self, request: str) -> str:
        """Worker thread: plan and run a request with the coordinator, then play the robot's part."""
        from molam_ros.agent.coordinator import robot_person

        if self.coordinator is None:
            p = self.p
            self.coordinator = build_coordinator_for(self.pipeline, p["coordinator_config"] or None, params=p)
        turn = self.coordinator.handle(request)
        motion = turn.motion
        if turn.plan is None or motion is None or motion.positions is None:
            return turn.reply
        who = robot_person(turn.plan)
        seconds = self.pipeline.play(motion.positions[min(who, len(motion.positions) - 1)])
        self.get_logger().info(
            f"plan {' -> '.join(turn.plan.kinds())} ready in {turn.seconds:.1f} s: playing {seconds:.1f} s"
        )
        return f"{turn.reply} (playing {seconds:.1f} s of motion)"

    def _reply(self, text: str) -> None:
        self.pub_reply.publish(String(data=text))

    def destroy_node(self) -> None:
        if hasattr(self, "worker"):  # not when start-up failed before it was made
            self.worker.stop(timeout=1.0)
        super().destroy_node()

    # --- output

    def _tick(self) -> None:
        now = self._now()
        t0 = time.perf_counter()
        try:
            chunks = self.pipeline.process(now)
        except Exception as e:  # noqa: BLE001 - a failed step must not stop the node
            self._drop("step_failed", f"{type(e).__name__}: {e}")
            return
        if chunks:
            self.step_seconds.append((time.perf_counter() - t0) / len(chunks))
            for chunk in chunks:
                self._publish_chunk(chunk, now)
                self._measure(chunk, self._now())
        else:
            cmd = self.pipeline.idle(now)
            if cmd is not None and cmd.state != "active":
                if self.profile.is_robot:
                    self._publish_joints(cmd.positions[None], cmd.velocities[None], now)
                else:
                    self.avatar.push_idle(cmd, self.pipeline.stream_time(now))
        if self.avatar is not None:
            self.avatar.release(self._now())

    def _measure(self, chunk: Any, published: float) -> None:
        last = float(chunk.times[-1])
        self.latency_capture.append(published - last)
        release = last + self.pipeline.buffer.reorder_window
        arrival = next((a for s, a in self.accepted if s >= release - 1e-6), None)
        if arrival is not None:
            self.latency_processing.append(published - arrival)

    def _publish_joints(self, positions: np.ndarray, velocities: np.ndarray, now: float) -> None:
        dt = 1.0 / FPS
        horizon = max(1, int(round(float(self.p["trajectory_horizon"]) * FPS)))
        if len(positions) < horizon:  # hold the last point (zero velocity) to fill the horizon
            pad = horizon - len(positions)
            positions = np.concatenate([positions, np.repeat(positions[-1:], pad, axis=0)])
            velocities = np.concatenate([velocities, np.zeros((pad, velocities.shape[1]))])
        try:
            traj = joint_trajectory(
                self.names,
                positions,
                dt=dt,
                stamp=now,
                velocities=velocities,
                frame_id=self.p["output_frame_id"],
            )
            state = joint_state(self.names, positions[0], velocities[0], stamp=now)
        except ValueError as e:  # non-finite: never published
            self.counts["invalid_output"] += 1
            self._drop("invalid_output", str(e))
            return
        self.pub_traj.publish(traj)
        if self.p["publish_joint_states"]:
            self.pub_state.publish(state)
        self.counts["published"] += 1

    def _publish_chunk(self, chunk: Any, now: float) -> None:
        if chunk.joint_positions is not None:
            self._publish_joints(chunk.joint_positions, chunk.joint_velocities, now)
        else:  # every frame of the step, released at 30 Hz by display time (ros/avatar_output.py)
            self.avatar.push_chunk(chunk)
        if self.pub_reactor is not None:
            self._publish_reactor(chunk)
        if self.p["publish_markers"]:
            try:
                markers = skeleton_markers(
                    chunk.person[-1], chunk.reactor[-1], stamp=now, frame_id=self.p["output_frame_id"]
                )
                self.pub_markers.publish(markers)
            except ValueError as e:
                self._drop("invalid_output", str(e))

    def _publish_reactor(self, chunk: Any) -> None:
        reactor = chunk.reactor
        if self.p["pose_up_axis"] == "z":  # back into the input's world: (x, y, z) -> (x, -z, y)
            reactor = np.stack([reactor[..., 0], -reactor[..., 2], reactor[..., 1]], axis=-1)
        try:
            msgs = [
                pose_to_msg(frame, stamp=float(t), frame_id=self.p["output_frame_id"], person_id="reactor")
                for frame, t in zip(reactor, chunk.times, strict=True)
            ]
        except ValueError as e:
            self._drop("invalid_output", str(e))
            return
        for msg in msgs:
            self.pub_reactor.publish(msg)

    def _diagnostics(self) -> None:
        now = self._now()
        rate = 0.0
        if len(self.arrivals) > 1 and self.arrivals[-1] > self.arrivals[0]:
            rate = (len(self.arrivals) - 1) / (self.arrivals[-1] - self.arrivals[0])
        step = float(np.median(self.step_seconds)) if self.step_seconds else 0.0
        frames = 1.0 if self.teleop else 4.0  # grid frames per step
        stats = self.pipeline.stats
        guard = self.pipeline.safety if self.pipeline.safety is not None else self.pipeline.avatar_safety
        state = guard.state
        completer = getattr(self.pipeline, "completer", None)  # teleoperation completes nothing
        values: dict[str, object] = {
            "input_rate_hz": round(rate, 1),
            "poses": self.counts["poses"],
            "published": self.counts["published"] + (self.avatar.published if self.avatar is not None else 0),
            "steps": int(stats["steps"]),
            "overruns": int(stats["overruns"]),
            "step_ms": round(step * 1e3, 1),
            "real_time_factor": round((frames / FPS) / step, 2) if step > 0 else 0.0,
            "mode": self.p["mode"],
            "engine": self.engine_name,
            "watchdog": state,
            "instruction": self.pipeline.reactor.instruction or "",
            "commands_pending": self.worker.pending,
            "answers": self.worker.done,
            "playing_plan": self.pipeline.playing,
            **(completer.diagnostics() if completer is not None else {"sparse_completion": False}),
            **(self.avatar.diagnostics() if self.avatar is not None else {}),
            **{f"dropped_{k}": v for k, v in sorted(self.drops.items())},
            **percentiles_ms("latency_ms", self.latency_processing),
            **percentiles_ms("capture_latency_ms", self.latency_capture),
            **{f"stage_ms_{k}": round(v * 1e3, 1) for k, v in self.pipeline.last_seconds.items()},
            "reorder_window_ms": round(self.pipeline.buffer.reorder_window * 1e3, 1),
            "collision_guarded": int(guard.stats.get("guarded", 0)),  # commands the guard moved (robots)
        }
        level = "OK"
        message = "reacting"
        if state in ("easing_to_neutral", "neutral"):
            level, message = "WARN", f"no input: {state}"
        if step > frames / FPS:
            level, message = "WARN", f"falling behind: {step * 1e3:.0f} ms per step"
        if self.last_reason and level == "OK" and self.drops:
            message = f"reacting; last drop {self.last_reason}"
        self.pub_diag.publish(diagnostic_array(NODE_NAME, level, message, values, stamp=now))


def main(args: list[str] | None = None) -> None:
    # One thread: measured with `molam bench reaction`, two executor threads (input beside the step)
    # made a step 4x slower on 2 cores (the GIL and the executor's own Python), RTF 1.06 -> 0.25.
    run_node(ReactionNode, NODE_NAME, args=args, threads=1)


if __name__ == "__main__":
    main()
