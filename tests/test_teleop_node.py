"""reaction_node in teleoperation mode over real DDS: replay node (the operator) -> reaction node
(`mode: teleop`, no model anywhere) -> this test, as separate processes; an intruder's poses and a
text command must not move the robot."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from molam_msgs.msg import PersonPose
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from molam_ros.data.synth import generate_clip
from molam_ros.ros.convert import pose_to_msg
from molam_ros.runtime.profiles import load_profile
from tests.test_reaction_node import RELIABLE, SENSOR, _Probe, _start, _stop


def test_teleop_without_an_operator_is_one_clear_line() -> None:
    proc = _start("molam_ros.ros.reaction_node", {"mode": "teleop"})
    out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 2 and "needs person_id" in out and "Traceback" not in out


@pytest.mark.slow
@pytest.mark.ros
def test_the_operator_drives_the_robot_over_dds_and_no_one_else_does() -> None:
    ns = f"/t{uuid.uuid4().hex[:6]}"
    profile = load_profile("unitree_h1")
    node = _start(
        "molam_ros.ros.reaction_node",
        {
            "mode": "teleop",
            "person_id": "operator",
            "profile": "unitree_h1",
            "model_dir": "/nonexistent",  # teleoperation loads no model
            "person_pose_topic": f"{ns}/pose",
            "command_topic": f"{ns}/command",
            "joint_trajectory_topic": f"{ns}/traj",
            "reply_topic": f"{ns}/reply",
            "diagnostics_topic": f"{ns}/diag",
            "joint_states_topic": f"{ns}/js",
            "markers_topic": f"{ns}/markers",
            "diagnostics_period": 0.5,
            "pose_max_age": 1.0,
        },
    )
    replay = _start(
        "molam_ros.ros.pose_replay_node", {"topic": f"{ns}/pose", "loop": True, "person_id": "operator"}
    )
    probe = _Probe()
    trajs: list[JointTrajectory] = []
    replies: list[str] = []
    diags: list[DiagnosticArray] = []
    probe.node.create_subscription(JointTrajectory, f"{ns}/traj", trajs.append, RELIABLE)
    probe.node.create_subscription(String, f"{ns}/reply", lambda m: replies.append(m.data), RELIABLE)
    probe.node.create_subscription(DiagnosticArray, f"{ns}/diag", diags.append, RELIABLE)
    command = probe.node.create_publisher(String, f"{ns}/command", RELIABLE)
    intruder = probe.node.create_publisher(PersonPose, f"{ns}/pose", SENSOR)
    try:
        probe.spin(120.0, until=lambda: len(trajs) >= 30)  # start-up: seconds, more on a busy machine
        assert len(trajs) >= 30, _stop(node)
        clip = generate_clip(3, "handshake", "friendly")
        for k in range(30):  # someone else in view: counted and dropped
            now = probe.node.get_clock().now().nanoseconds * 1e-9
            intruder.publish(
                pose_to_msg(clip.positions[0, k], stamp=now, frame_id="world", person_id="intruder")
            )
            probe.spin(0.02)
        command.publish(String(data="wave at them"))
        probe.spin(
            20.0, until=lambda: bool(replies) and len(diags) > 2 and _value(diags[-1], "dropped_other_person")
        )
        assert replies and "teleoperation" in replies[0]
        values = {kv.key: kv.value for kv in diags[-1].status[0].values}
        assert values["mode"] == "teleop" and "teleoperation" in values["engine"], values
        assert int(values["dropped_other_person"]) > 0 and float(values["capture_latency_ms_p50"]) > 0
        assert int(values["steps"]) >= 10  # one step per frame
        pos = np.array([p.positions for t in trajs for p in t.points])
        assert trajs[-1].joint_names == profile.joint_names
        assert np.all(pos >= profile.lower - 1e-9) and np.all(pos <= profile.upper + 1e-9)
        assert np.ptp(pos, axis=0).max() > 0.05  # the robot moves with its operator
    finally:
        probe.close()
        _stop(replay)
        _stop(node)


def _value(msg: DiagnosticArray, key: str) -> str:
    return next((kv.value for kv in msg.status[0].values if kv.key == key), "")


def test_bench_teleop_is_wired_to_the_node_set() -> None:
    from molam_ros.bringup import default_bringup_yaml, describe_nodes

    specs = describe_nodes(default_bringup_yaml(), {"mode": "teleop", "person_id": "op", "replay": True})
    reaction = next(s for s in specs if s.name == "reaction_node")
    replay = next(s for s in specs if s.name == "pose_replay_node")
    assert ("mode", "teleop") in reaction.parameters.items() and reaction.parameters["person_id"] == "op"
    assert replay.parameters["person_id"] == "op"
