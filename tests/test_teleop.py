"""Teleoperation (molam_ros/runtime/teleop.py, runtime/one_euro.py): the operator's pose drives the
robot frame by frame through the pose buffer, retargeting and safety filter; bad input on the
simulated robot (skipped without the optional MuJoCo extra)."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.synth import generate_clip
from molam_ros.motion.ik import inverse_kinematics
from molam_ros.motion.skeleton import JOINT_NAMES, bone_lengths
from molam_ros.runtime.one_euro import OneEuroConfig, OneEuroFilter, measure_lag_jitter
from molam_ros.runtime.profiles import load_profile
from molam_ros.runtime.retarget import Retargeter
from molam_ros.runtime.teleop import TeleopConfig, TeleopPipeline

T0 = 100.0


def _operator(seconds: float = 6.0) -> np.ndarray:
    clip = generate_clip(7, "wave", "friendly")
    return clip.positions[clip.meta["actor"], : int(seconds * 30)]


def _run(pipeline: TeleopPipeline, poses: np.ndarray, t0: float = T0) -> list:
    chunks = []
    for i, pose in enumerate(poses):
        stamp = t0 + i / 30.0
        pipeline.push_pose(stamp, pose, joint_names=JOINT_NAMES, now=stamp)
        chunks += pipeline.process(now=stamp)
    return chunks


def test_the_vectorised_filter_is_the_reference_one_euro_filter() -> None:
    ref = pytest.importorskip(
        "OneEuroFilter", reason="the reference filter is in the optional extra molam_ros[sim]"
    )
    cfg = OneEuroConfig(min_cutoff=0.8, beta=2.0, d_cutoff=1.5, rate=30.0)
    rng = np.random.default_rng(1)
    signal = np.cumsum(rng.normal(0, 0.02, (90, 4)), axis=0)
    stamps = T0 + np.cumsum(rng.uniform(0.02, 0.05, 90))  # irregular: the rate follows the stamps
    ours = OneEuroFilter(cfg)
    theirs = [ref.OneEuroFilter(30.0, mincutoff=0.8, beta=2.0, dcutoff=1.5) for _ in range(4)]
    for x, t in zip(signal, stamps, strict=True):
        assert np.allclose(
            ours(x, t), [f(float(v), float(t)) for f, v in zip(theirs, x, strict=True)], atol=1e-12
        )


def test_the_filter_trades_jitter_for_lag_as_configured() -> None:
    raw = measure_lag_jitter(OneEuroConfig(min_cutoff=1e6, beta=0.0))  # cutoff so high it passes all
    soft = measure_lag_jitter(OneEuroConfig(min_cutoff=0.5, beta=0.0))
    default = measure_lag_jitter(OneEuroConfig())
    assert raw["jitter"] == pytest.approx(0.01, rel=0.15) and raw["lag_ms"] < 5
    assert soft["jitter"] < 0.3 * raw["jitter"] and soft["lag_ms"] > 100  # smooth but late
    # The speed term (beta) is the point of the filter: far less lag than the same cutoff without it.
    assert default["lag_ms"] < 0.5 * measure_lag_jitter(OneEuroConfig(beta=0.0))["lag_ms"]
    assert default["jitter"] < 0.6 * raw["jitter"]


def test_teleoperation_needs_its_operator_and_a_robot() -> None:
    with pytest.raises(ValueError, match="person_id"):
        TeleopConfig(person_id="")
    with pytest.raises(ValueError, match="drives a robot"):
        TeleopPipeline(load_profile("avatar_smpl"), TeleopConfig(person_id="op"))


def test_frame_by_frame_from_the_robots_pose_into_the_operators() -> None:
    profile = load_profile("unitree_h1")
    pipe = TeleopPipeline(profile, TeleopConfig(person_id="op", filter=None))
    start = profile.neutral.copy()
    start[profile.joint_names.index("left_shoulder_pitch_joint")] = -0.8  # where the robot happens to be
    assert pipe.set_robot_state(start)
    poses = _operator()
    chunks = _run(pipe, poses)
    # One chunk per grid frame, each frame out as soon as it is in (reorder window 0).
    assert len(chunks) >= len(poses) - 1 and all(len(c.times) == 1 for c in chunks)
    first = chunks[0].joint_positions[0]
    step = profile.velocity * 0.5 / 30.0  # the safety filter's velocity limit per frame
    assert np.all(np.abs(first - start) <= step + 1e-9)  # blends in from the robot's pose: no jump
    # After the blend the robot is the retargeted operator (the same IK and retargeting, no model),
    # except where a fast wave meets the safety filter's velocity limit.
    lengths = bone_lengths(poses[0])
    errors = []
    for k in range(90, len(chunks)):
        quats = inverse_kinematics(poses[k], lengths)
        quats[0] = (1.0, 0.0, 0.0, 0.0)
        target = Retargeter(profile).robot(quats, reference=chunks[k - 1].joint_positions[0]).positions
        margin = TeleopConfig.safety.position_margin
        target = np.clip(target, profile.lower + margin, profile.upper - margin)
        errors.append(np.abs(chunks[k].joint_positions[0] - target))
    errors = np.stack(errors)
    assert np.median(errors) < 1e-6 and np.mean(errors < 1e-6) > 0.9, np.percentile(errors, [50, 90, 99])
    assert not pipe.set_robot_state(start)  # too late: the operator has the robot


def test_other_people_and_bad_frames_never_move_the_robot() -> None:
    profile = load_profile("unitree_g1")
    pipe = TeleopPipeline(profile, TeleopConfig(person_id="op"))
    chunks = _run(pipe, _operator(2.0))
    held = chunks[-1].joint_positions[0]
    bad = _operator(2.0)[-1].copy()
    bad[5] = np.nan  # a joint lost by the tracker
    assert pipe.push_pose(T0 + 2.0, bad, JOINT_NAMES, now=T0 + 2.0) == "rejected_nan"
    assert pipe.process(now=T0 + 2.0) == []
    out = pipe.idle(T0 + 2.1)
    assert out.state == "active" and np.allclose(out.positions, held)  # holds, then...
    late = [pipe.idle(T0 + 2.1 + k / 30) for k in range(1, 120)]
    assert late[-1].state in ("easing_to_neutral", "neutral")  # ...the watchdog eases to neutral
    moves = np.abs(np.diff(np.stack([held] + [o.positions for o in late]), axis=0))
    assert np.all(moves <= profile.velocity * 0.5 / 30 + 1e-9)


@pytest.mark.parametrize("name", ["unitree_g1", "unitree_h1"])
def test_bad_operator_input_on_the_simulated_robot_holds_or_eases_never_jumps(name: str) -> None:
    """Leaving the tracker's view, a jump, a reach beyond the workspace: on the simulated robot."""
    pytest.importorskip("mujoco", reason="MuJoCo is the optional extra molam_ros[sim]")
    from molam_ros.sim.execute import execute_stream
    from molam_ros.sim.robot import SimulatedRobot

    profile = load_profile(name)
    pipe = TeleopPipeline(profile, TeleopConfig(person_id="op"))
    ok = _operator(8.0)
    other = generate_clip(3, "handshake", "friendly").positions[0]
    frames: list[np.ndarray | None] = list(ok[:60])  # 2 s of the operator
    lost = ok[60:90].copy()
    lost[:, 20] = np.nan  # 1 s with the left wrist lost by the tracker (low confidence)
    frames += list(lost)
    frames += [None] * 30  # 1 s out of view: no frames at all
    frames += list(ok[120:150])
    frames += list(other[150:180] + [2.0, 0.0, 0.0])  # a jump: 2 m away, another pose
    reach = ok[180:240].copy()
    for s, e, w in ((16, 18, 20), (17, 19, 21)):  # arms stretched to three times their length
        reach[:, e] = reach[:, s] + 3 * (reach[:, e] - reach[:, s])
        reach[:, w] = reach[:, s] + 3 * (reach[:, w] - reach[:, s])
    frames += list(reach)
    commands = []
    for i, pose in enumerate(frames):
        stamp = T0 + i / 30.0
        if pose is not None:
            pipe.push_pose(stamp, pose, JOINT_NAMES, now=stamp)
        chunks = pipe.process(now=stamp)
        commands += [c.joint_positions[0] for c in chunks] if chunks else [pipe.idle(stamp).positions]
    q = np.stack(commands)
    step = profile.velocity * 0.5 / 30.0
    assert np.all(np.abs(np.diff(q, axis=0)) <= step + 1e-9)  # never a jump in what is commanded
    assert np.all(q >= profile.lower + 0.02 - 1e-9) and np.all(q <= profile.upper - 0.02 + 1e-9)
    assert pipe.buffer.stats["rejected_nan"] == 30
    report = execute_stream(SimulatedRobot(profile), q, np.gradient(q, 1 / 30, axis=0), stride=1)
    s = report.summary()
    # The jump is followed at the safety filter's velocity limit, which the servos track within 0.2 rad.
    assert s["limit_steps"] == 0 and s["tracking_error_max_rad"] < 0.2, s
    assert all(c.depth < 0.01 for c in report.collisions), report.collisions  # at most a graze


def test_the_node_builds_teleoperation_with_either_retargeting() -> None:
    from molam_ros.agent.reaction_setup import build_teleop_pipeline
    from molam_ros.ros.reaction_node import PARAMETERS

    p = {name: default for name, (default, _) in PARAMETERS.items()}
    p.update(mode="teleop", person_id="op", profile="unitree_h1")
    pipeline, engine = build_teleop_pipeline(p)
    assert pipeline.ik is None and "teleoperation" in engine and pipeline.config.person_id == "op"
    with pytest.raises(ValueError, match="teleop_retarget"):
        build_teleop_pipeline({**p, "teleop_retarget": "magic"})
    pytest.importorskip("mink", reason="IK retargeting is the optional extra molam_ros[sim]")
    pipeline, _ = build_teleop_pipeline({**p, "teleop_retarget": "ik"})
    chunks = _run(pipeline, _operator(1.0))
    assert pipeline.ik is not None and len(chunks) >= 29 and pipeline.ik.fallbacks == 0
