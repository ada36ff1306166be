"""`molam say`: one command out over DDS, the replies back (against a stand-in reaction node)."""

from __future__ import annotations

import threading
import uuid

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from molam_ros.ros.say import say

RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)


@pytest.mark.ros
def test_say_publishes_once_and_prints_the_reply() -> None:
    ns = f"/s{uuid.uuid4().hex[:6]}"
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"echo_{uuid.uuid4().hex[:6]}", context=context)
    heard: list[str] = []
    reply = node.create_publisher(String, f"{ns}/reply", RELIABLE)

    def on_command(msg: String) -> None:
        heard.append(msg.data)
        reply.publish(String(data=f"ok: reacting with: {msg.data}"))

    node.create_subscription(String, f"{ns}/command", on_command, RELIABLE)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        replies = say("wave at them", command_topic=f"{ns}/command", reply_topic=f"{ns}/reply", wait=10.0)
        assert heard == ["wave at them"]
        assert replies == ["ok: reacting with: wave at them"]
        with pytest.raises(TimeoutError, match="is the reaction node running"):
            say("x", command_topic=f"{ns}/nobody", reply_topic=f"{ns}/reply", discovery_timeout=0.5)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        spinner.join(timeout=2)
