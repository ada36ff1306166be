"""Where the live reactor starts: a body standing where the robot is, given as its first step."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.interhuman import zup_to_yup
from molam_ros.data.standing import facing_towards, standing_frames
from molam_ros.data.synth import generate_clip
from molam_ros.motion import ego
from molam_ros.motion.canonical import canonical_transform, facing_angle
from molam_ros.motion.skeleton import JOINT_INDEX as J
from molam_ros.motion.skeleton import JOINT_NAMES, bone_lengths
from molam_ros.runtime.pipeline import PipelineConfig, ReactionPipeline
from molam_ros.runtime.profiles import load_profile
from molam_ros.runtime.reactor_start import StartConfig, parse_start, start_codes, start_frames
from molam_ros.tokenizer.engines import TorchEngine


def test_a_standing_body_stands_still_where_and_as_it_is_told() -> None:
    body = standing_frames((1.0, -2.0), np.pi / 2, 4)
    assert body.shape == (4, 22, 3) and np.allclose(body, body[:1])
    assert np.allclose(body[0, 0, [0, 2]], [1.0, -2.0])
    assert abs(ego.wrap_angle(facing_angle(body[:1])[0] - np.pi / 2)) < np.radians(3)
    assert abs(body[0, :, 1].min()) < 0.02  # on the floor
    for w, s in (("left_wrist", "left_shoulder"), ("right_wrist", "right_shoulder")):
        assert body[0, J[w], 1] < body[0, J[s], 1] - 0.3  # arms down, not a T-pose
    for bad in (dict(root_xz=(np.nan, 0.0), yaw=0.0, frames=4), dict(root_xz=(0, 0), yaw=0.0, frames=0)):
        with pytest.raises(ValueError):
            standing_frames(**bad)
    with pytest.raises(ValueError, match="height"):
        standing_frames((0, 0), 0.0, 4, height=4.0)
    assert facing_towards(np.zeros(2), np.array([1.0, 0.0])) == pytest.approx(np.pi / 2)


@pytest.fixture(scope="module")
def person() -> np.ndarray:
    clip = generate_clip(11, "handshake", "calm")
    return clip.positions[clip.meta["actor"], :80]


def test_the_robot_starts_in_front_of_the_person_or_where_it_is(person: np.ndarray) -> None:
    transform = canonical_transform(person[:1], floor_height=float(person[0, :, 1].min()))
    canon = transform.apply(person[:4])
    stand = start_frames(StartConfig(distance=2.0), canon, transform)
    them = canon[0, 0, [0, 2]]
    me = stand[0, 0, [0, 2]]
    assert np.linalg.norm(me - them) == pytest.approx(2.0, abs=1e-6)
    yaw_p = facing_angle(canon[:1])[0]  # in front of the person: along their facing
    assert np.allclose((me - them) / 2.0, [np.sin(yaw_p), np.cos(yaw_p)], atol=1e-6)
    assert abs(ego.wrap_angle(facing_angle(stand[:1])[0] - facing_towards(me, them))) < np.radians(3)
    # A tracker on a Z-up robot: the robot is at the origin of the pose stream's frame.
    stand = start_frames(StartConfig(position=(0.5, 0.25, 0.0)), canon, transform, z_up=True)
    where = transform.apply(zup_to_yup(np.array([0.5, 0.25, 0.0])))
    assert np.allclose(stand[0, 0, [0, 2]], where[[0, 2]])


def test_the_node_parameter_reads_front_a_place_or_none() -> None:
    assert parse_start("front", 2.5) == StartConfig(distance=2.5)
    assert parse_start("0, 0, 0").position == (0.0, 0.0, 0.0)
    assert parse_start("1.5 -2 0").position == (1.5, -2.0, 0.0)
    assert parse_start("none") is None
    for bad in ("behind", "1,2", "a,b,c", "nan,0,0"):
        with pytest.raises(ValueError):
            parse_start(bad)
    with pytest.raises(ValueError, match="distance"):
        parse_start("front", 50.0)


@pytest.fixture(scope="module")
def parts(tiny_parts: tuple) -> tuple:
    return tiny_parts


def _stream(pipeline: ReactionPipeline, positions: np.ndarray) -> list:
    chunks = []
    for i, pose in enumerate(positions):
        stamp = 20.0 + i / 30.0
        pipeline.push_pose(stamp, pose, joint_names=JOINT_NAMES, now=stamp)
        chunks += pipeline.process(now=stamp)
    return chunks


def _offline_codes(engine: TorchEngine, person: np.ndarray, first_partner: np.ndarray | None, n: int):
    """The person's codes of the first step, encoded offline with the given partner (None: solo)."""
    transform = canonical_transform(person[:1], floor_height=float(person[0, :, 1].min()))
    canon = transform.apply(person[:4])
    feats = ego.person_to_ego(canon, lengths=bone_lengths(person[0]))
    partner = None if first_partner is None else np.repeat(first_partner[None], 4, axis=0)
    feats[:, ego.REL_POS.start :] = ego.relation(canon, partner)
    return engine.encode(feats[None].astype(np.float32))[0][0], canon, transform


def test_the_pipeline_gives_the_reactor_its_standing_step(parts: tuple, person: np.ndarray) -> None:
    mlm, engine = parts
    pipeline = ReactionPipeline(mlm, engine, load_profile("unitree_g1"))
    chunks = _stream(pipeline, person[:40])
    transform = canonical_transform(person[:1], floor_height=float(person[0, :, 1].min()))
    canon = transform.apply(person[:4])
    stand = start_frames(StartConfig(), canon, transform)
    want, (yaw, root) = start_codes(engine, stand, canon)
    first_a, first_b = pipeline.reactor.history[0]
    assert np.array_equal(first_b, want)  # the reactor's first step is the standing one, given
    # ... and the person's first codes saw the robot standing there as their partner
    assert np.array_equal(first_a, _offline_codes(engine, person, stand[-1], 4)[0])
    assert np.array_equal(chunks[0].codes_a, first_a)
    assert np.isfinite(yaw) and np.allclose(root[[0, 2]], stand[-1, 0, [0, 2]])


def test_without_a_start_the_first_step_is_the_reactors_own(parts: tuple, person: np.ndarray) -> None:
    mlm, engine = parts
    pipeline = ReactionPipeline(mlm, engine, load_profile("unitree_g1"), PipelineConfig(start=None))
    _stream(pipeline, person[:40])
    first_a, _ = pipeline.reactor.history[0]
    assert np.array_equal(first_a, _offline_codes(engine, person, None, 4)[0])  # no partner yet
