"""The streaming reaction pipeline: a person's pose stream in, the reactor's motion out (no ROS).

    pipeline = ReactionPipeline(mlm, engine, load_profile("unitree_g1"))
    pipeline.push_pose(stamp, joint_names, positions)     # as often as the tracker publishes
    for chunk in pipeline.process(now):                   # every l = 4 grid frames, one chunk
        publish(chunk.joint_positions, chunk.joint_velocities, chunk.times)

One step, every l frames of the partner (docs/architecture.md, "The flow of one reaction"):

1. PoseBuffer: reorder, drop stale or duplicate stamps, validate, resample onto the 30 Hz grid.
2. Features of person a in the tokenizer's layout (motion/layout.py). The canonical frame is fixed
   by the first frame of a stream segment (the partner at the origin facing +Z, the floor at the
   lowest joint then), bone lengths by that frame, so features are causal; IK gives the rotations
   when only positions came. With the default ego layout the features are relative to the person
   (bounded however far they walk), and their partner is the reactor where it last stood (at a
   segment's first step: standing where the robot is, runtime/reactor_start.py).
3. Streaming encoder step (the tokenizer engine: torch, onnxruntime or TensorRT) -> a's D codes.
4. StreamingReactor step (KV cache, bounded context) -> the reactor's D codes (the first: the standing one).
5. Streaming decoder step -> the reactor's l frames of features; ego: placed by their relation to
   the person's actual frames (intergen: positions in the partner's canonical frame), then back to
   world positions; rotations from the features' 6D block. LivePlacement keeps the
   reactor at a plausible distance from the person and facing them (runtime/placement.py).
6. Retargeting to the output profile (robot joints within limits, or the avatar's bones), then the
   SafetyFilter for robots (no NaN, limits, velocity limits, blending, watchdog) or AvatarSafety
   for avatars (the same watchdog, easing to an idle pose and blending, on bone rotations).

A gap in the pose stream (PoseFrame.segment_start) starts a new segment: new canonical frame, new
tokenizer states, a new interaction in the reactor; the safety filter blends into it. Every stage's
time is measured, so diagnostics can say where a step's time goes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molam_ros.completion.live import SparseCompleter, sparse_input
from molam_ros.llm.streaming import StreamingConfig, StreamingReactor
from molam_ros.motion import ego
from molam_ros.motion.canonical import canonical_transform, facing_angle
from molam_ros.motion.features import features_to_positions, positions_to_features
from molam_ros.motion.layout import features_to_local_quats, layout_of
from molam_ros.motion.skeleton import JOINT_NAMES, bone_lengths
from molam_ros.motion.sparse import TRACKED
from molam_ros.runtime.avatar_safety import AvatarSafety
from molam_ros.runtime.placement import LivePlacement, PlacementConfig
from molam_ros.runtime.pose_buffer import PoseBuffer, PoseBufferConfig, PoseFrame
from molam_ros.runtime.profiles import Profile
from molam_ros.runtime.reactor_start import StartConfig, start_codes, start_frames
from molam_ros.runtime.retarget import Retargeter
from molam_ros.runtime.safety import SafetyConfig, SafetyFilter

STAGES = ("features", "encode", "llm", "decode", "retarget")
LAG_MARGIN = 0.1  # s: how much the stream's lag may grow before the watchdog's time overtakes it


def is_sparse(joint_names: Sequence[str]) -> bool:
    """Whether a pose's names are a sparse tracker's: the head, and of the SMPL joints only the
    tracked points of motion/sparse.py (hands, pelvis, ankles, feet); other names are ignored."""
    smpl = set(joint_names) & set(JOINT_NAMES)
    return "head" in smpl and smpl <= set(TRACKED)


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    """Settings of the streaming pipeline (the reaction node's parameters map onto these)."""

    buffer: PoseBufferConfig = PoseBufferConfig()
    streaming: StreamingConfig = StreamingConfig()
    safety: SafetyConfig = SafetyConfig()
    placement: PlacementConfig | None = PlacementConfig()  # None: the reactor stands where decoded
    instruction: str | None = None  # the reaction's standing instruction ("be friendly")
    step_budget: float = 4.0 / 30.0  # seconds a step may take before it counts as an overrun
    anchor_pull: float = 0.04  # ego placement smoothing per frame (ego.follow_anchor; 1: none)
    # where the reactor stands when a segment starts, its first step (runtime/reactor_start.py);
    # None: no first step, the reactor places itself from nothing (what training never showed it)
    start: StartConfig | None = StartConfig()


@dataclass
class ReactionChunk:
    """The reactor's next l frames (30 Hz), produced from the partner's last l frames.

    times (l,): grid stamps of the partner frames they answer (s); person / reactor (l, 22, 3): world
    positions; joint_positions / joint_velocities (l, J): the profile's commands (robots, after the
    safety filter) or None; avatar_rotations (l, B, 4) and avatar_root (l, 3) for avatar profiles.
    """

    times: np.ndarray
    person: np.ndarray
    reactor: np.ndarray
    codes_a: np.ndarray
    codes_b: np.ndarray
    joint_positions: np.ndarray | None = None
    joint_velocities: np.ndarray | None = None
    avatar_rotations: np.ndarray | None = None
    avatar_root: np.ndarray | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    safety_state: str = ""
    planned: bool = False  # the reactor played a planned motion (ReactionPipeline.play) this chunk


class ReactionPipeline:
    """Pose stream -> reactor motion, one step every l frames (module docstring)."""

    def __init__(
        self,
        mlm: Any,
        engine: Any,
        profile: Profile,
        config: PipelineConfig | None = None,
        *,
        text_mlm: Any | None = None,
        reactor: Any | None = None,
        completer: SparseCompleter | None = None,
        guard: Any | None = None,
        describer: Callable[[np.ndarray], str] | None = None,
    ) -> None:
        """`mlm`: the LLM (None with a `reactor` and no LLM: text it would answer says so);
        `text_mlm`: the model that writes text answers, when the step's `mlm` is quantized (int8
        streams well but writes poor text, llm/quantize.py); default `mlm`. `reactor`: what writes the
        reaction step by step instead of the LLM (the small reactor, llm/small_reactor.py); the LLM
        still answers text. `completer`: completes sparse poses (a VR headset and controllers) to the
        full body; without one they are refused. `guard`: the robot safety filter's self-collision
        guard (sim/collision_guard.py); None: none. `describer`: (2, L, D) codes -> caption, what
        answers "what is happening" instead of the LLM (llm/describer.py); None: the LLM."""
        self.mlm = mlm
        self.text_mlm = text_mlm if text_mlm is not None else mlm
        self.describer = describer
        self.engine = engine
        self.stride = int(engine.stride)
        self.layout = layout_of(int(engine.feature_dim))
        if mlm is None and reactor is None:
            raise ValueError("a pipeline needs a reactor or the LLM to write the reaction")
        if mlm is not None and engine.depths != mlm.vocab.depth:
            raise ValueError(
                f"the tokenizer has D={engine.depths} codes per step but the LLM's vocabulary "
                f"D={mlm.vocab.depth}: they were not trained together"
            )
        self.profile = profile
        self.config = config or PipelineConfig()
        self.buffer = PoseBuffer(self.config.buffer)
        self.completer = completer
        self.last_reason = ""  # why the last pose was not accepted (the buffer's or the completer's)
        if reactor is None:
            reactor = StreamingReactor(mlm, self.config.streaming, instruction=self.config.instruction)
        else:
            depth = int(reactor.net.config.depth) if hasattr(reactor, "net") else engine.depths
            if depth != engine.depths:
                raise ValueError(
                    f"the reactor writes D={depth} codes per step, the tokenizer D={engine.depths}"
                )
            reactor.set_instruction(self.config.instruction)
        self.reactor = reactor
        # A reactor measured with its own placement smoothing keeps it (llm/small_reactor.py).
        self._pull = getattr(reactor, "anchor_pull", None) or self.config.anchor_pull
        self.retargeter = Retargeter(profile)
        self.safety = SafetyFilter(profile, self.config.safety, guard=guard) if profile.is_robot else None
        self.avatar_safety = None if profile.is_robot else AvatarSafety(profile, self.config.safety)
        # The stream's clock: how far the newest chunk's last frame lagged its processing, and that
        # frame's stamp; a chunk is due within a step and a bit (idle() says nothing before that).
        self._lag: float | None = None
        self._last_frame_time: float | None = None
        self._due = self.stride / self.config.buffer.fps + 0.05
        self.placement = LivePlacement(self.config.placement) if self.config.placement is not None else None
        self.stats: dict[str, float] = {"steps": 0, "overruns": 0, "segments": 0}
        self._lock = threading.Lock()  # guards the pose buffer and the pending instruction
        self._pending_instruction: tuple[str | None] | None = None
        self.last_seconds: dict[str, float] = dict.fromkeys(STAGES, 0.0)
        self._reference: np.ndarray | None = None
        self._playback: tuple[np.ndarray, np.ndarray] | None = None  # (T, 22, 3) canonical, (T, 22, 4)
        self._played = 0
        self._reset_segment()

    # --- state

    def _reset_segment(self) -> None:
        self._frames: list[PoseFrame] = []
        self._transform = None
        self._lengths: np.ndarray | None = None
        self._prev_canon: np.ndarray | None = None  # the partner's last canonical frame (velocities)
        self._last_reactor: np.ndarray | None = None  # the reactor's last canonical frame (ego relation)
        self._anchor: tuple[float, np.ndarray] | None = None  # the reactor's last decoded (yaw, root)
        self._canon: np.ndarray | None = None  # the partner's canonical frames of the current step
        self._start: np.ndarray | None = None  # the reactor standing where it starts, until its first step
        self._enc_state = self.engine.init_encoder_state(1)
        self._dec_state = self.engine.init_decoder_state(1)
        self.reactor.reset()
        if getattr(self, "placement", None) is not None:
            self.placement.reset()

    # --- input

    def push_pose(
        self,
        stamp: float,
        positions: np.ndarray,
        joint_names: Sequence[str] | None = None,
        now: float | None = None,
        orientations: np.ndarray | None = None,
    ) -> str:
        """Offer one pose of the person; returns "accepted" or why not (PoseBuffer outcomes).

        A pose that names every SMPL joint goes to the buffer as it is. A sparse one (`is_sparse`: a
        VR headset and controllers, head and both hands at least) is completed to the full body
        first by the completer (completion/live.py), with the head's yaw from `orientations` (N, 4)
        global (w, x, y, z) where the tracker sent them. Anything else (a body tracker that lost a
        joint) is refused as before: it should send the joint with a low confidence instead.
        Thread-safe against `process`: a node may take poses on one thread while a step runs on
        another, so input is never queued behind a step.
        """
        with self._lock:
            if joint_names is None:
                status = self.buffer.push(stamp, positions, now=now)
            elif self.completer is not None and is_sparse(joint_names):
                return self._push_sparse(stamp, positions, joint_names, now, orientations)
            else:
                status = self.buffer.push_named(stamp, joint_names, positions, now=now)
            self.last_reason = self.buffer.last_reason
            return status

    def _push_sparse(
        self,
        stamp: float,
        positions: np.ndarray,
        joint_names: Sequence[str],
        now: float | None,
        orientations: np.ndarray | None,
    ) -> str:
        """A sparse pose completed, then pushed like a full one (the buffer checks it the same way)."""
        try:
            points, forward = sparse_input(positions, joint_names, orientations, z_up=self.config.buffer.z_up)
        except ValueError as e:
            self.last_reason = str(e)
            return "rejected_shape"
        body, status = self.completer.complete(stamp, points, forward)
        if body is None:
            self.last_reason = self.completer.last_reason
            return status
        status = self.buffer.push(stamp, body, now=now, y_up=True)
        self.last_reason = self.buffer.last_reason
        return status

    def command(self, text: str | None) -> str | None:
        """A text command for the reaction; returns None when taken, else why it was refused.

        Checked at once (length, control or motion tokens); it takes effect before the next step,
        so a step running on another thread is never changed halfway.
        """
        try:
            self.reactor.check_instruction(text)
        except ValueError as e:
            return str(e)
        with self._lock:
            self._pending_instruction = (text,)
        return None

    def recent_motion(self, steps: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        """Both people's codes of the last `steps` steps (all the reactor keeps when None), or None.

        A snapshot: safe to call from another thread while steps run (the history deque is only
        appended to, and copied here in one go).
        """
        history = list(self.reactor.history)
        if steps is not None:
            history = history[-steps:]
        if not history:
            return None
        return np.stack([a for a, _ in history]), np.stack([b for _, b in history])

    def answer(
        self, question: str, steps: int | None = None, max_tokens: int = 64, *, task: str = "motion_to_text"
    ) -> str:
        """A text answer about the last seconds of the interaction: `task` "motion_to_text" (what is
        happening) or "reasoning" (why, what next), as the caller's classifier decided
        (agent/commands.py `question_task`).

        Runs a full text generation (a second or more on a CPU): call it off the step thread
        (agent/commands.py CommandWorker).
        """
        from molam_ros.llm.generate import Generator, SamplingConfig
        from molam_ros.llm.prompts import MotionCodes

        recent = self.recent_motion(steps)
        if recent is None:
            return "I have not seen anyone move yet."
        if task == "motion_to_text" and self.describer is not None:
            return self.describer(np.stack(recent)) or "I cannot tell."
        if self.text_mlm is None:
            return "I need the full motion-language model to answer that, and I run without it (make llm)."
        generator = Generator(self.text_mlm, sampling=SamplingConfig(max_text_tokens=max_tokens))
        result = generator.run(
            task, text=question if task == "reasoning" else None, motion=MotionCodes(a=recent[0], b=recent[1])
        )
        return result.text or "I cannot tell."

    def play(self, positions: np.ndarray) -> float:
        """Play a planned motion of the reactor, (T, 22, 3) in the pair's canonical frame, instead of
        the live reaction from the next step on; returns its length in seconds.

        It goes out through the same retargeting and safety filter as the live reaction (limits,
        velocity limits, blending in and back out), one chunk per l partner frames, so it is paced
        by the partner's stream. The live reaction keeps running underneath (its context stays
        current) and takes over again when the motion ends. Thread-safe (the coordinator's worker
        calls it).
        """
        pos = np.asarray(positions, dtype=np.float64)
        if pos.ndim != 3 or pos.shape[1:] != (22, 3) or len(pos) < 2 or not np.isfinite(pos).all():
            raise ValueError(f"a planned motion must be finite (T >= 2, 22, 3) positions, got {pos.shape}")
        quats = features_to_local_quats(positions_to_features(pos))
        with self._lock:
            self._playback, self._played = (pos[1:], quats), 0
        return (len(pos) - 1) / self.config.buffer.fps

    @property
    def playing(self) -> bool:
        return self._playback is not None

    def _take_playback(self, n: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The next n frames of the planned motion (the last one held at its end), or None."""
        with self._lock:
            if self._playback is None:
                return None
            pos, quats = self._playback
            idx = np.minimum(np.arange(self._played, self._played + n), len(pos) - 1)
            self._played += n
            if self._played >= len(pos):
                self._playback = None
            return pos[idx], quats[idx]

    # --- the step

    def process(self, now: float | None = None) -> list[ReactionChunk]:
        """Run every step whose l partner frames are ready; the reactor's chunks, oldest first."""
        chunks = []
        with self._lock:
            frames = self.buffer.pop_ready()
            pending, self._pending_instruction = self._pending_instruction, None
        if pending is not None:
            self.reactor.set_instruction(pending[0])
        for frame in frames:
            if frame.segment_start and (self._frames or self._transform is not None):
                self._reset_segment()
            if frame.segment_start:
                self.stats["segments"] += 1
            self._frames.append(frame)
            if len(self._frames) == self.stride:
                chunks.append(self._step(self._frames))
                self._frames = []
        if chunks:
            self._last_frame_time = float(chunks[-1].times[-1])
            if now is not None:
                self._lag = max(0.0, float(now) - self._last_frame_time)
        return chunks

    def stream_time(self, now: float) -> float:
        """`now` (the node's clock) on the stream's time base, the capture stamps of the frames:
        now minus how far the newest chunk's last frame lagged its processing, and a margin for that
        lag to grow (LAG_MARGIN). The safety filters run on one time base, so a watchdog update
        never lies ahead of the frames of the next chunk (they would be held as from the past)."""
        return now if self._lag is None else now - self._lag - LAG_MARGIN

    def idle(self, now: float) -> Any:
        """No new chunk at `now` (the node's clock): the watchdog's command, or None while the next
        chunk is still due (the stream is running; nothing new to say).

        Robots: the SafetyFilter's output (easing to neutral once the stream has been silent for
        its timeout); avatars: the AvatarSafety frame, on `stream_time(now)`.
        """
        guard = self.safety if self.safety is not None else self.avatar_safety
        if self._last_frame_time is None:  # no chunk yet: hold (where the guard starts) until one comes
            return guard.current()
        t = self.stream_time(now)
        if t < self._last_frame_time + self._due:
            return None
        return guard.update(t, None)

    def _features(self, frames: list[PoseFrame]) -> tuple[np.ndarray, np.ndarray]:
        """(l, F) features of the partner's frames and their (l, 22, 3) world positions."""
        world = np.stack([f.positions for f in frames]).astype(np.float64)
        if self._transform is None:  # the segment's canonical frame and bone lengths, fixed now
            self._transform = canonical_transform(world[:1], floor_height=float(world[0, :, 1].min()))
            self._lengths = bone_lengths(world[0])
        canon = self._transform.apply(world[None])[0]
        if self._prev_canon is None and self.config.start is not None:  # the segment's first step
            self._start = start_frames(
                self.config.start, canon, self._transform, z_up=self.config.buffer.z_up
            )
            self._last_reactor = self._start[-1]  # the person's first codes see the reactor where it stands
        window = canon if self._prev_canon is None else np.concatenate([self._prev_canon[None], canon])
        if self.layout.name == "ego":
            # The partner of the person is the reactor, where it last stood: its frames for this
            # step are generated after the person's codes, as in training's a-then-b order.
            other = None if self._last_reactor is None else np.broadcast_to(self._last_reactor, window.shape)
            feats = ego.person_to_ego(window, other, lengths=self._lengths)[-len(frames) :]
        else:
            feats = positions_to_features(window, lengths=self._lengths)[-len(frames) :]
        self._prev_canon = canon[-1]
        self._canon = canon
        return feats.astype(np.float32), world

    def _step(self, frames: list[PoseFrame]) -> ReactionChunk:
        seconds: dict[str, float] = {}
        t = time.perf_counter()
        feats, world = self._features(frames)
        seconds["features"] = time.perf_counter() - t

        t = time.perf_counter()
        codes_a, self._enc_state = self.engine.encode_step(feats[None], self._enc_state)
        seconds["encode"] = time.perf_counter() - t

        t = time.perf_counter()
        given = None
        if self._start is not None:  # the standing step (runtime/reactor_start.py), placed where it stands
            given, self._anchor = start_codes(
                self.engine, self._start, self._canon, ego_layout=self.layout.name == "ego"
            )
            self._start = None
        codes_b = self.reactor.step(codes_a[0, 0], given)
        seconds["llm"] = time.perf_counter() - t

        t = time.perf_counter()
        out, self._dec_state = self.engine.decode_step(codes_b[None, None].astype(np.int64), self._dec_state)
        if self.layout.name == "ego":  # placed by its relation to the person's actual frames
            yaw_b, root_b = ego.follow_anchor(
                out[0],
                facing_angle(self._canon),
                self._canon[:, 0],
                pull=self.config.anchor_pull,
                prev=self._anchor,
            )
            self._anchor = (float(yaw_b[-1]), root_b[-1])
            canon_b = ego.body_from_root(out[0], yaw_b, root_b)
        else:
            canon_b = features_to_positions(out[0])
        quats = features_to_local_quats(out[0])
        planned = self._take_playback(len(frames))
        if planned is not None:  # a planned motion plays instead (the model's step still ran)
            canon_b, quats = planned
        reactor = self._transform.invert(canon_b[None])[0]
        if self.placement is not None:  # distance and facing kept plausible, rate-limited
            reactor = self.placement.apply(world, reactor)
        self._last_reactor = self._transform.apply(reactor[-1])  # where it stands: the person's partner
        seconds["decode"] = time.perf_counter() - t

        t = time.perf_counter()
        times = np.array([f.stamp for f in frames])
        chunk = ReactionChunk(
            times=times,
            person=world.astype(np.float32),
            reactor=reactor.astype(np.float32),
            codes_a=codes_a[0, 0],
            codes_b=codes_b,
            seconds=seconds,
            planned=planned is not None,
        )
        if self.safety is not None:
            target = self.retargeter.robot(quats, reference=self._reference).positions
            positions, velocities = [], []
            for k, stamp in enumerate(times):
                cmd = self.safety.update(
                    float(stamp), target[k], new_segment=bool(k == 0 and frames[0].segment_start)
                )
                positions.append(cmd.positions)
                velocities.append(cmd.velocities)
            chunk.joint_positions, chunk.joint_velocities = np.stack(positions), np.stack(velocities)
            chunk.safety_state = self.safety.state
            self._reference = chunk.joint_positions[-1]
        else:
            # Features store no root rotation: the avatar's root turns with the reactor's facing.
            yaw = facing_angle(reactor)
            root_q = np.stack([np.cos(yaw / 2), np.zeros_like(yaw), np.sin(yaw / 2), np.zeros_like(yaw)], -1)
            quats = quats.copy()
            quats[:, 0] = root_q
            avatar = self.retargeter.avatar(quats, root=reactor[:, 0])
            rotations, roots = [], []
            for k, stamp in enumerate(times):  # a frame the retargeter had to replace is no input
                cmd = self.avatar_safety.update(
                    float(stamp),
                    None if avatar.fallback[k] else avatar.rotations[k],
                    avatar.root[k],
                    new_segment=bool(k == 0 and frames[0].segment_start),
                )
                rotations.append(cmd.rotations)
                roots.append(cmd.root)
            chunk.avatar_rotations, chunk.avatar_root = np.stack(rotations), np.stack(roots)
            chunk.safety_state = self.avatar_safety.state
        seconds["retarget"] = time.perf_counter() - t
        total = sum(seconds.values())
        self.stats["steps"] += 1
        if total > self.config.step_budget:
            self.stats["overruns"] += 1
        self.last_seconds = seconds
        return chunk
