"""molam_msgs is built from msg/ and carries a person's pose across real DDS processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_person_pose_fields_match_the_msg_file() -> None:
    from molam_msgs.msg import PersonPose

    declared = []
    for line in (REPO / "msg/PersonPose.msg").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            declared.append(line.split()[1])
    assert declared == ["header", "person_id", "joint_names", "positions", "orientations", "confidence"]
    assert list(PersonPose.get_fields_and_field_types()) == declared


def test_person_pose_serialises() -> None:
    from geometry_msgs.msg import Point, Quaternion
    from molam_msgs.msg import PersonPose
    from rclpy.serialization import deserialize_message, serialize_message

    msg = PersonPose(person_id="p1", joint_names=["pelvis", "head"])
    msg.positions = [Point(x=0.1, y=0.9, z=-0.2), Point(x=0.1, y=1.6, z=-0.2)]
    msg.orientations = [Quaternion(w=1.0), Quaternion(w=1.0)]
    msg.confidence = [0.9, 0.5]
    back = deserialize_message(serialize_message(msg), PersonPose)
    assert back.person_id == "p1" and back.joint_names == ["pelvis", "head"]
    assert back.positions[1].y == pytest.approx(1.6)
    assert list(back.confidence) == pytest.approx([0.9, 0.5])


PUBLISHER = textwrap.dedent(
    """
    import sys, time, rclpy
    from geometry_msgs.msg import Point
    from molam_msgs.msg import PersonPose
    rclpy.init()
    node = rclpy.create_node("pose_pub_probe")
    pub = node.create_publisher(PersonPose, "/molam_test/pose", 10)
    deadline = time.monotonic() + 20
    k = 0
    while time.monotonic() < deadline:
        msg = PersonPose(person_id="probe", joint_names=["pelvis"], positions=[Point(x=float(k), y=0.9)])
        msg.header.stamp = node.get_clock().now().to_msg()
        pub.publish(msg)
        k += 1
        rclpy.spin_once(node, timeout_sec=0.05)
    """
)

SUBSCRIBER = textwrap.dedent(
    """
    import rclpy, time
    from molam_msgs.msg import PersonPose
    rclpy.init()
    node = rclpy.create_node("pose_sub_probe")
    got = []
    node.create_subscription(PersonPose, "/molam_test/pose", got.append, 10)
    deadline = time.monotonic() + 20
    while len(got) < 3 and time.monotonic() < deadline:
        rclpy.spin_once(node, timeout_sec=0.1)
    print("RECEIVED", len(got), got[-1].person_id if got else "", got[-1].positions[0].y if got else "")
    """
)


@pytest.mark.ros
def test_person_pose_crosses_processes_over_dds() -> None:
    pub = subprocess.Popen([sys.executable, "-c", PUBLISHER], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        start = time.monotonic()
        r = subprocess.run([sys.executable, "-c", SUBSCRIBER], capture_output=True, text=True, timeout=60)
        assert "RECEIVED 3 probe 0.9" in r.stdout, r.stdout + r.stderr
        assert time.monotonic() - start < 30
    finally:
        pub.terminate()
        pub.wait(timeout=10)
