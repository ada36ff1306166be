"""`molam say TEXT`: send a text command to a running reaction node and print its replies.

The stand-in for `ros2 topic pub --once /molam/command std_msgs/msg/String "{data: 'TEXT'}"` plus
`ros2 topic echo /molam/reply` where the ros2 command line is not installed (docs/environment.md). It
waits for the node's command subscription (so the message is not lost to discovery), publishes
once on a reliable topic, and prints every reply heard for `--wait` seconds.
"""

from __future__ import annotations

import argparse
import time
import uuid

DEFAULT_COMMAND_TOPIC = "/molam/command"
DEFAULT_REPLY_TOPIC = "/molam/reply"


def say(
    text: str,
    *,
    command_topic: str = DEFAULT_COMMAND_TOPIC,
    reply_topic: str = DEFAULT_REPLY_TOPIC,
    wait: float = 20.0,
    discovery_timeout: float = 10.0,
) -> list[str]:
    """Publish `text` once and return the replies heard within `wait` seconds (stops at the first
    reply that is not an acknowledgement when it is a question)."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"molam_say_{uuid.uuid4().hex[:6]}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    replies: list[str] = []
    try:
        node.create_subscription(String, reply_topic, lambda m: replies.append(m.data), qos)
        pub = node.create_publisher(String, command_topic, qos)
        end = time.monotonic() + discovery_timeout
        while pub.get_subscription_count() == 0:
            if time.monotonic() > end:
                raise TimeoutError(f"no node subscribes to {command_topic} (is the reaction node running?)")
            executor.spin_once(timeout_sec=0.05)
        executor.spin_once(timeout_sec=0.2)  # let the reply subscription match too
        pub.publish(String(data=text))
        end = time.monotonic() + wait
        while time.monotonic() < end and not replies:
            executor.spin_once(timeout_sec=0.05)
        linger = time.monotonic() + 0.5  # a second reply right behind the first
        while time.monotonic() < linger:
            executor.spin_once(timeout_sec=0.05)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return replies


def add_command(groups: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    p = groups.add_parser(
        "say",
        help="send a text command to the running reaction node and print its reply",
        formatter_class=fmt,
        epilog="On a ROS 2 install the same: ros2 topic pub --once /molam/command std_msgs/msg/String "
        "\"{data: 'wave at them'}\"",
    )
    p.add_argument("text", help="an instruction ('wave at them'), a question ('what is he doing?'), or ''")
    p.add_argument("--command-topic", default=DEFAULT_COMMAND_TOPIC)
    p.add_argument("--reply-topic", default=DEFAULT_REPLY_TOPIC)
    p.add_argument("--wait", type=float, default=20.0, help="seconds to wait for a reply")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    try:
        replies = say(
            args.text, command_topic=args.command_topic, reply_topic=args.reply_topic, wait=args.wait
        )
    except TimeoutError as e:
        print(f"molam say: {e}")
        return 1
    for r in replies:
        print(r)
    if not replies:
        print(f"molam say: no reply within {args.wait:g} s")
        return 1
    return 0
