"""The streaming reaction pipeline without ROS: pose stream in, safe reactor commands out."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.completion.live import SparseCompleter
from molam_ros.completion.model import load_checkpoint
from molam_ros.data.synth import generate_clip
from molam_ros.motion import ego
from molam_ros.motion.canonical import canonical_transform, facing_angle
from molam_ros.motion.skeleton import JOINT_NAMES, bone_lengths
from molam_ros.paths import shipped_completion_dir
from molam_ros.runtime.pipeline import PipelineConfig, ReactionPipeline
from molam_ros.runtime.pose_buffer import PoseBufferConfig
from molam_ros.runtime.profiles import load_profile
from molam_ros.runtime.reactor_start import StartConfig, start_frames


@pytest.fixture(scope="module")
def parts(tiny_parts: tuple) -> tuple:
    return tiny_parts


@pytest.fixture(scope="module")
def actor() -> np.ndarray:
    clip = generate_clip(7, "wave", "friendly")
    return clip.positions[clip.meta["actor"], :120]  # 4 s of the partner, (120, 22, 3)


def _stream(pipeline: ReactionPipeline, positions: np.ndarray, t0: float = 100.0) -> list:
    chunks = []
    for i, pose in enumerate(positions):
        stamp = t0 + i / 30.0
        pipeline.push_pose(stamp, pose, joint_names=JOINT_NAMES, now=stamp)
        chunks += pipeline.process(now=stamp)
    return chunks


def test_a_stream_becomes_safe_robot_commands(parts: tuple, actor: np.ndarray) -> None:
    mlm, engine = parts
    profile = load_profile("unitree_g1")
    pipeline = ReactionPipeline(mlm, engine, profile)
    chunks = _stream(pipeline, actor)
    # The buffer holds back its reorder window (0.1 s = 3 frames): all but the last chunk or so.
    assert len(chunks) >= actor.shape[0] // 4 - 2
    dt = 1.0 / 30.0
    prev = None
    for c in chunks:
        assert c.joint_positions.shape == (4, profile.num_joints)
        assert np.isfinite(c.joint_positions).all() and np.isfinite(c.reactor).all()
        assert (c.joint_positions >= profile.lower - 1e-9).all() and (
            c.joint_positions <= profile.upper + 1e-9
        ).all()
        steps = np.diff(
            np.concatenate([c.joint_positions[:1] if prev is None else prev[-1:], c.joint_positions]), axis=0
        )
        assert (np.abs(steps) <= profile.velocity * dt + 1e-9).all()
        prev = c.joint_positions
        assert set(c.seconds) == {"features", "encode", "llm", "decode", "retarget"}
    assert np.all(np.diff(np.concatenate([c.times for c in chunks])) > 0)


def test_streamed_features_and_codes_equal_the_offline_ones(parts: tuple, actor: np.ndarray) -> None:
    """Causal features (fixed canonical frame and bone lengths) + the streaming encoder = one whole pass.

    The ego layout's relation block is the reactor where it stood at the end of the previous step
    (before the first: standing where it starts, runtime/reactor_start.py): the offline features
    take the whole-clip pass for everything else and that relation, and the whole-sequence encoder
    must give the streamed codes."""
    mlm, engine = parts
    assert engine.feature_dim == ego.EGO_DIM
    pipeline = ReactionPipeline(mlm, engine, load_profile("unitree_h1"))
    chunks = _stream(pipeline, actor)
    n = len(chunks) * 4
    transform = canonical_transform(actor[:1], floor_height=float(actor[0, :, 1].min()))
    canon = transform.apply(actor[None])[0]
    feats = ego.person_to_ego(canon[:n], lengths=bone_lengths(actor[0]))
    stand = start_frames(StartConfig(), canon[:4], transform)
    for k in range(len(chunks)):
        frames = canon[4 * k : 4 * k + 4]
        reactor = stand[-1:] if k == 0 else transform.apply(chunks[k - 1].reactor[-1:])  # (1, 22, 3)
        feats[4 * k : 4 * k + 4, ego.REL_POS.start :] = ego.relation(frames, np.repeat(reactor, 4, axis=0))
    offline = engine.encode(feats[None].astype(np.float32))[0]
    assert np.array_equal(np.stack([c.codes_a for c in chunks]), offline)


def test_bad_poses_are_counted_and_never_reach_the_output(parts: tuple, actor: np.ndarray) -> None:
    mlm, engine = parts
    profile = load_profile("unitree_h1")
    pipeline = ReactionPipeline(mlm, engine, profile)
    outcomes = []
    chunks = []
    for i, pose in enumerate(actor[:60]):
        stamp = 50.0 + i / 30.0
        bad = pose.copy()
        if i % 7 == 3:
            bad[5] = np.nan
        outcomes.append(pipeline.push_pose(stamp, bad, joint_names=JOINT_NAMES, now=stamp))
        if i % 11 == 5:
            outcomes.append(pipeline.push_pose(stamp, pose, joint_names=JOINT_NAMES, now=stamp))  # duplicate
            outcomes.append(pipeline.push_pose(stamp, pose[:20], joint_names=JOINT_NAMES[:20], now=stamp))
        chunks += pipeline.process(now=stamp)
    assert {"rejected_nan", "rejected_joints"} <= set(outcomes)
    assert chunks and all(np.isfinite(c.joint_positions).all() for c in chunks)


def test_a_gap_starts_a_new_segment_and_commands_change_the_prompt(parts: tuple, actor: np.ndarray) -> None:
    mlm, engine = parts
    pipeline = ReactionPipeline(mlm, engine, load_profile("unitree_g1"))
    _stream(pipeline, actor[:40], t0=0.0)
    assert pipeline.command("be more hesitant") is None
    assert "characters" in pipeline.command("x" * 5000)
    chunks = _stream(pipeline, actor[40:100], t0=10.0)  # 8 s of silence in between
    assert pipeline.stats["segments"] == 2 and chunks
    assert pipeline.reactor.instruction == "be more hesitant"


def test_avatar_output(parts: tuple, actor: np.ndarray) -> None:
    mlm, engine = parts
    profile = load_profile("avatar_smpl")
    chunks = _stream(ReactionPipeline(mlm, engine, profile, PipelineConfig()), actor[:40])
    assert chunks and chunks[0].avatar_rotations.shape[:2] == (4, 22) and chunks[0].joint_positions is None
    norms = np.linalg.norm(chunks[0].avatar_rotations, axis=-1)
    assert np.allclose(norms, 1.0, atol=1e-5) and np.isfinite(chunks[0].avatar_root).all()


def test_a_planned_motion_plays_through_the_safety_filter_then_the_reaction_returns(
    parts: tuple, actor: np.ndarray
) -> None:
    mlm, engine = parts
    profile = load_profile("unitree_g1")
    pipeline = ReactionPipeline(mlm, engine, profile)
    first = _stream(pipeline, actor[:40])
    plan = generate_clip(3, "handshake", "calm")
    # The planned motion in the pair's canonical frame (as the executor decodes it), 1 s long.
    t = canonical_transform(plan.positions[:, :1])
    seconds = pipeline.play(t.apply(plan.positions)[0, :31])
    assert seconds == pytest.approx(1.0) and pipeline.playing
    rest = _stream(pipeline, actor[40:], t0=100.0 + 40 / 30.0)
    planned = [c.planned for c in rest]
    assert planned[:7] == [True] * 7 and not any(planned[8:]) and not pipeline.playing
    for c in first + rest:  # the same limits whatever plays
        assert np.isfinite(c.joint_positions).all()
        assert (c.joint_positions >= profile.lower - 1e-9).all()
        assert (c.joint_positions <= profile.upper + 1e-9).all()
    with pytest.raises(ValueError, match="planned motion"):
        pipeline.play(np.full((10, 22, 3), np.nan))


def test_a_head_and_hands_stream_is_completed_then_reacted_to(parts: tuple, actor: np.ndarray) -> None:
    """Sparse poses (a headset and two controllers, Z up as REP 103) go through the completer and
    then the same path as full poses; a body tracker that lost joints is still refused."""
    mlm, engine = parts
    completer = SparseCompleter(load_checkpoint(shipped_completion_dir()))  # a random net makes 2 m bones
    config = PipelineConfig(buffer=PoseBufferConfig(z_up=True))
    pipeline = ReactionPipeline(mlm, engine, load_profile("unitree_h1"), config, completer=completer)
    names = ["head", "left_wrist", "right_wrist", "left_index1"]  # a hand joint outside SMPL: ignored
    idx = [15, 20, 21, 20]
    yaw = facing_angle(actor)
    chunks, outcomes = [], []
    for i, pose in enumerate(actor):
        stamp = 100.0 + i / 30.0
        zup = np.stack([pose[:, 0], -pose[:, 2], pose[:, 1]], axis=-1)[idx]  # Y up -> Z up
        head_q = yaw_zup(yaw[i] - np.pi / 2)  # the rest face points along +X in a Z-up world
        quats = np.repeat(head_q[None], len(names), axis=0)
        outcomes.append(pipeline.push_pose(stamp, zup, joint_names=names, now=stamp, orientations=quats))
        chunks += pipeline.process(now=stamp)
    assert set(outcomes) == {"accepted"} and completer.stats["yaw_from_hands"] == 0
    assert len(chunks) >= len(actor) // 4 - 2 and all(np.isfinite(c.joint_positions).all() for c in chunks)
    assert np.isfinite(chunks[-1].person).all() and chunks[-1].person.shape == (4, 22, 3)
    lost = pipeline.push_pose(200.0, actor[0][:20], joint_names=JOINT_NAMES[:20], now=200.0)
    assert lost == "rejected_joints"


def yaw_zup(angle: float) -> np.ndarray:
    """A turn about a Z-up world's up axis that matches a turn by `angle` about +Y in the Y-up world."""
    return np.array([np.cos(angle / 2), 0.0, 0.0, np.sin(angle / 2)])


@pytest.mark.parametrize("name", ["unitree_h1", "avatar_smpl"])
def test_the_watchdog_is_quiet_between_chunks_and_eases_when_they_stop(
    parts: tuple, actor: np.ndarray, name: str
) -> None:
    """As the node does: idle() after every pose that completes no step. While chunks keep coming
    it says nothing (so the filter's clock never runs ahead of the next chunk's frames, which would
    then be held as from the past); once they stop, robot and avatar ease to their idle pose."""
    mlm, engine = parts
    pipeline = ReactionPipeline(mlm, engine, load_profile(name))
    guard = pipeline.safety if pipeline.safety is not None else pipeline.avatar_safety
    said, chunks = [], []
    for i, pose in enumerate(actor[:90]):
        stamp = 100.0 + i / 30.0
        now = stamp + 0.02  # the node's clock: the pose arrived 20 ms after its capture
        pipeline.push_pose(stamp, pose, joint_names=JOINT_NAMES, now=now)
        new = pipeline.process(now=now)
        chunks += new
        if not new:
            said.append(pipeline.idle(now))
    assert len(chunks) >= 20 and guard.stats["bad_time"] == 0
    after_first = said[said.index(None) :] if None in said else []
    assert after_first and all(c is None for c in after_first)  # the stream runs: nothing to add
    assert {c.safety_state for c in chunks[3:]} == {"active"}
    states = []
    for k in range(1, 150):  # the partner is gone for 5 s
        cmd = pipeline.idle(now + k / 30.0)
        states.append(None if cmd is None else cmd.state)
    assert "easing_to_neutral" in states and states[-1] == "neutral" and guard.stats["bad_time"] == 0


def test_what_is_happening_is_answered_by_the_describer(parts: tuple, actor: np.ndarray) -> None:
    """With a describer (llm/describer.py), motion-to-text questions read both people's recent codes
    through it; "why" questions still go to the LLM."""
    mlm, engine = parts
    seen: list[np.ndarray] = []

    def describer(codes: np.ndarray) -> str:
        seen.append(codes)
        return "Person A waves at person B."

    pipeline = ReactionPipeline(mlm, engine, load_profile("unitree_g1"), describer=describer)
    assert pipeline.answer("what is he doing?") == "I have not seen anyone move yet."
    _stream(pipeline, actor[:40])
    assert pipeline.answer("what is he doing?") == "Person A waves at person B."
    recent = pipeline.recent_motion()
    assert len(seen) == 1 and np.array_equal(seen[0], np.stack(recent)) and seen[0].shape[0] == 2
    assert isinstance(pipeline.answer("why?", max_tokens=4, task="reasoning"), str) and len(seen) == 1
