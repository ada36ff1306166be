"""The simulated robot (molam_ros/sim/): models built from the profiles' URDF facts, trajectories
followed as joint_trajectory_controller would, self-collisions flagged, and the sim node over DDS.

Needs the optional extra (`pip install 'molam_ros[sim]'`, `MOLAM_SIM=1 bash scripts/setup.sh`);
without MuJoCo every test here is skipped with that reason.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

mujoco = pytest.importorskip(
    "mujoco", reason="MuJoCo is the optional extra molam_ros[sim] (MOLAM_SIM=1 bash scripts/setup.sh)"
)

from molam_ros.data.synth import generate_clip  # noqa: E402
from molam_ros.motion.features import positions_to_features  # noqa: E402
from molam_ros.motion.layout import features_to_local_quats  # noqa: E402
from molam_ros.runtime.profiles import load_profile  # noqa: E402
from molam_ros.runtime.retarget import Retargeter  # noqa: E402
from molam_ros.runtime.safety import SafetyFilter  # noqa: E402
from molam_ros.sim.execute import execute_stream  # noqa: E402
from molam_ros.sim.model import build_model  # noqa: E402
from molam_ros.sim.robot import SimulatedRobot  # noqa: E402

ROBOTS = ["unitree_g1", "unitree_h1"]


def _commands(profile, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the pipeline publishes for a motion: retargeted, then through the safety filter."""
    target = Retargeter(profile).robot(features_to_local_quats(positions_to_features(positions))).positions
    safety = SafetyFilter(profile)
    out = [safety.update(i / 30.0, t) for i, t in enumerate(target)]
    return np.stack([o.positions for o in out]), np.stack([o.velocities for o in out])


@pytest.mark.parametrize("name", ROBOTS)
def test_the_model_is_the_profiles_chain(name: str) -> None:
    profile = load_profile(name)
    rm = build_model(profile)
    m = rm.model
    assert m.nq == m.nu == profile.num_joints
    jid = [m.dof_jntid[a] for a in rm.dof_adr]
    assert np.allclose(m.jnt_range[jid], np.stack([profile.lower, profile.upper], 1))  # radians
    assert math.isclose(m.body_mass.sum(), sum(link.mass for link in profile.kinematics.links), rel_tol=1e-9)
    # A tilted URDF origin (rpy) arrives as the body's orientation: H1's and G1's shoulders roll.
    body = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "left_shoulder_pitch_link")
    roll = profile.kinematics.link("left_shoulder_pitch_link").rpy[0]
    assert np.allclose(m.body_quat[body][[0, 1]], [math.cos(roll / 2), math.sin(roll / 2)], atol=1e-3)
    robot = SimulatedRobot(profile)
    for pose in (np.zeros(profile.num_joints), profile.neutral):
        assert robot.colliding_pairs(pose) == {}, f"{name} collides with itself at rest"


@pytest.mark.parametrize("name", ROBOTS)
def test_a_deliberately_colliding_pose_is_flagged(name: str) -> None:
    profile = load_profile(name)
    robot = SimulatedRobot(profile)
    names = profile.joint_names
    pose = profile.neutral.copy()
    j = names.index("left_shoulder_roll_joint")
    pose[j] = profile.lower[j] + 0.05  # the left arm swung in towards the body (within its limits)...
    pose[names.index("left_elbow_joint")] = 1.5  # ...and the elbow bent into it
    pairs = robot.colliding_pairs(pose)
    body = {
        "torso_link",
        "pelvis",
        "left_hip_yaw_link",
        "right_shoulder_pitch_link",
        "right_shoulder_roll_link",
    }
    assert any(a in body or b in body for a, b in pairs) and max(pairs.values()) > 0.03, pairs
    assert all("left_" in a + b for a, b in pairs)  # only the moved arm is involved
    # Commanded there over a second, the simulated arm hits the body: events with time and depth;
    # the contact stops the arm (the capsules overlap by millimetres, not by the commanded amount).
    steps = np.linspace(profile.neutral, pose, 31)
    report = execute_stream(robot, steps, np.gradient(steps, 1 / 30, axis=0))
    assert report.collisions and all(0.0 < c.time < 1.6 and 0 < c.depth < 0.03 for c in report.collisions)
    arm = ("left_shoulder", "left_elbow", "left_wrist", "left_rubber_hand")
    assert all(any(link.startswith(arm) for link in c.links) for c in report.collisions)  # the moving arm
    assert robot.touching  # still pressed against the body at the end
    assert report.summary()["tracking_error_max_rad"] > 0.05  # the arm did not get where it was sent


@pytest.mark.parametrize("name", ROBOTS)
def test_a_reactors_stream_is_executed_closely_and_without_collisions(name: str) -> None:
    """The recorded reactor of generator clips, as the pipeline would publish it for a perfect model."""
    profile = load_profile(name)
    for seed, kind in ((7, "wave"), (3, "handshake")):
        clip = generate_clip(seed, kind, "friendly")
        reactor = clip.positions[1 - clip.meta["actor"], :240]
        robot = SimulatedRobot(profile)
        report = execute_stream(robot, *_commands(profile, reactor))
        s = report.summary()
        assert s["seconds"] > 8.0
        assert s["tracking_error_p99_rad"] < 0.06 and s["tracking_error_max_rad"] < 0.1, s
        assert s["limit_steps"] == 0, kind
        # Self-collisions are measured (`molam sim bench`), not asserted here: the axis decomposition
        # can swing G1's upper arm onto its torso by a millimetre in a handshake (README figures).
        assert all(c.depth < 0.01 for c in report.collisions), report.collisions
        q, _ = robot.state()
        assert np.all(q >= profile.lower - 1e-3) and np.all(q <= profile.upper + 1e-3)


@pytest.mark.slow
def test_the_reaction_pipelines_stream_is_executed(tiny_llm_env: dict[str, Path]) -> None:
    """The live pipeline (tiny untrained models: arbitrary but safe motion) drives the simulated G1."""
    from molam_ros.llm.depth_head import DepthHeadConfig
    from molam_ros.llm.model import MotionLM
    from molam_ros.llm.vocab import MotionVocab
    from molam_ros.motion.skeleton import JOINT_NAMES
    from molam_ros.runtime.pipeline import ReactionPipeline
    from molam_ros.tokenizer.engines import TorchEngine

    engine = TorchEngine(tiny_llm_env["tokenizer"])
    vocab = MotionVocab(codebook_size=engine.model.config.codebook_size, depth=engine.depths)
    mlm = MotionLM.create(tiny_llm_env["backbone"], vocab, DepthHeadConfig(width=16, layers=1)).eval()
    profile = load_profile("unitree_g1")
    pipeline = ReactionPipeline(mlm, engine, profile)
    clip = generate_clip(7, "wave", "friendly")
    chunks = []
    for i, pose in enumerate(clip.positions[clip.meta["actor"], :150]):
        pipeline.push_pose(100 + i / 30, pose, joint_names=JOINT_NAMES, now=100 + i / 30)
        chunks += pipeline.process(now=100 + i / 30)
    assert len(chunks) >= 30
    positions = np.concatenate([c.joint_positions for c in chunks])
    velocities = np.concatenate([c.joint_velocities for c in chunks])
    report = execute_stream(SimulatedRobot(profile), positions, velocities)
    s = report.summary()
    assert s["tracking_error_p99_rad"] < 0.06 and s["tracking_error_max_rad"] < 0.1, s
    assert s["limit_steps"] == 0


def test_sim_node_parameters_match_the_params_file() -> None:
    import yaml

    from molam_ros.ros.sim_node import PARAMETERS

    params = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "sim_node.yaml").read_text())
    assert params["/**"]["ros__parameters"] == {k: v[0] for k, v in PARAMETERS.items()}


@pytest.mark.slow
@pytest.mark.ros
def test_sim_node_follows_a_trajectory_and_reports_a_collision_over_dds() -> None:
    import signal
    import subprocess
    import sys
    import time
    import uuid

    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import JointState
    from trajectory_msgs.msg import JointTrajectory

    from molam_ros.ros.convert import joint_trajectory

    ns = f"/s{uuid.uuid4().hex[:6]}"
    profile = load_profile("unitree_h1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "molam_ros.ros.sim_node", "--ros-args", "-p", "profile:=unitree_h1",
         "-p", f"joint_trajectory_topic:={ns}/traj", "-p", f"joint_states_topic:={ns}/js",
         "-p", f"diagnostics_topic:={ns}/diag", "-p", "diagnostics_period:=0.3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"probe_{uuid.uuid4().hex[:6]}", context=context)
    states: list[JointState] = []
    diags: list[DiagnosticArray] = []
    node.create_subscription(JointState, f"{ns}/js", states.append, qos)
    node.create_subscription(DiagnosticArray, f"{ns}/diag", diags.append, qos)
    pub = node.create_publisher(JointTrajectory, f"{ns}/traj", qos)
    executor = rclpy.executors.SingleThreadedExecutor(context=context)
    executor.add_node(node)

    def spin(seconds: float, until=lambda: False) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end and not until():
            executor.spin_once(timeout_sec=0.02)

    def value(msg: DiagnosticArray, key: str) -> str:
        return next(kv.value for kv in msg.status[0].values if kv.key == key)

    try:
        spin(90.0, until=lambda: len(states) >= 5)  # start-up: seconds, more on a busy machine
        assert states, proc.stdout.read() if proc.poll() is not None else "no JointState"
        spin(30.0, until=lambda: pub.get_subscription_count() > 0)  # else the first message is lost
        names = profile.joint_names
        goal = profile.neutral.copy()
        goal[names.index("left_shoulder_pitch_joint")] = -1.0  # arm raised forward: no contact
        now = node.get_clock().now().nanoseconds * 1e-9
        path = np.linspace(profile.neutral, goal, 30)
        pub.publish(joint_trajectory(names, path, dt=1 / 30, stamp=now))
        j = names.index("left_shoulder_pitch_joint")
        spin(30.0, until=lambda: abs(states[-1].position[j] + 1.0) < 0.01)
        assert abs(states[-1].position[j] + 1.0) < 0.01, states[-1].position[j]
        # Now into the body: the diagnostics report the collision.
        bad = profile.neutral.copy()
        bad[names.index("left_shoulder_roll_joint")] = (
            profile.lower[names.index("left_shoulder_roll_joint")] + 0.05
        )
        bad[names.index("left_elbow_joint")] = 1.5
        now = node.get_clock().now().nanoseconds * 1e-9
        pub.publish(joint_trajectory(names, np.linspace(goal, bad, 30), dt=1 / 30, stamp=now))
        spin(30.0, until=lambda: bool(diags) and int(value(diags[-1], "self_collisions")) > 0)
        assert int(value(diags[-1], "self_collisions")) > 0 and diags[-1].status[0].level != b"\x00"
        assert "left_elbow_link" in value(diags[-1], "touching") or value(diags[-1], "touching")
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


@pytest.mark.parametrize("name", ROBOTS)
def test_ik_places_hands_and_elbows_far_better_than_the_axis_decomposition(name: str) -> None:
    pytest.importorskip("mink", reason="mink is the optional extra molam_ros[sim]")
    import time

    from molam_ros.sim.bench import arm_errors, teleop_commands
    from molam_ros.sim.ik_retarget import IKRetargeter

    profile = load_profile(name)
    clip = generate_clip(3, "handshake", "friendly")
    operator = clip.positions[clip.meta["actor"], :150]
    ik = IKRetargeter(profile)
    start = time.process_time()
    q_ik = np.stack([ik.robot(pose) for pose in operator])
    per_frame = (time.process_time() - start) / len(operator)
    q_axis = teleop_commands(profile, operator, filtered=False)
    robot = SimulatedRobot(profile)
    hand_ik, elbow_ik = arm_errors(robot, q_ik, operator)
    hand_axis, elbow_axis = arm_errors(robot, q_axis, operator[-len(q_axis) :])
    assert hand_ik * 2 < hand_axis and elbow_ik * 2 < elbow_axis, (hand_ik, hand_axis, elbow_ik, elbow_axis)
    assert per_frame < 0.005 and ik.fallbacks == 0  # the bar: 5 ms a frame (CPU time)
    assert np.all(q_ik >= profile.lower - 1e-6) and np.all(q_ik <= profile.upper + 1e-6)
    legs = profile.leg_mask
    assert np.abs(q_ik[:, legs] - profile.neutral[legs]).max() < 0.01  # legs held standing
    # Warm-started: consecutive frames stay close (no branch flips).
    assert np.abs(np.diff(q_ik, axis=0)).max() < 0.3
    # Self-collision is a constraint of the IK: the solution keeps the arms off the body.
    assert all(robot.colliding_pairs(q) == {} for q in q_ik)
