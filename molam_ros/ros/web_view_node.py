"""web_view_node: the person, the avatar (or robot), the commands and replies, live in a browser.

A bridge from the ROS topics to a small three.js page (molam_ros/web/static) over a WebSocket,
served by the node itself on one port (molam_ros/web/server.py):

    web_view_node --ros-args -p port:=8765        # then open http://localhost:8765/
    molam bringup --replay --web                  # with the rest of the node set
    ros2 launch molam_ros reaction.launch.py replay:=true web:=true

The node is thin: it converts messages into the JSON of molam_ros/web/frames.py and hands them
to the server, which runs on a thread of its own and never makes a callback wait for a browser.

Subscriptions:
- `person_pose_topic` [molam_msgs/PersonPose], sensor-data QoS (best effort, keep last 5): the
  person, as tracked (a VR user's head and hands show as those joints only); the first
  `person_id` heard, or `person_id`, as the reaction node does; joints below `min_confidence`
  are left out.
- `reactor_pose_topic` [molam_msgs/PersonPose], best effort, keep last 30: the reaction's 22
  joints at every 30 Hz frame, stamped with the partner frame it answers (the reaction node
  publishes it for robots and avatars alike), so the page plays both bodies on one time line.
- `command_topic`, `reply_topic` [std_msgs/String], reliable, keep last 10: the text shown.
- `diagnostics_topic` [diagnostic_msgs/DiagnosticArray], reliable, keep last 1: the reaction
  node's status line (level, message, watchdog state); empty: off.

Publications:
- `command_topic` [std_msgs/String], reliable, keep last 10 (with `accept_commands`): what is
  typed into the page, exactly as `molam say` sends it; the reaction node's guard judges it.

Both bodies are sent at most at about `max_pose_rate` frames per second each (judged by stamps).
Bound to `host` 127.0.0.1 by default: the page can command the robot, so serving it to a network
(`host: 0.0.0.0`) is an explicit choice. All parameters are read-only (config/web_view_node.yaml,
config/README.md).
"""

from __future__ import annotations

import time

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from molam_msgs.msg import PersonPose
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String

from molam_ros.ros.convert import DIAGNOSTIC_LEVELS, pose_from_msg
from molam_ros.ros.spin import run_node
from molam_ros.web.frames import (
    PERSON,
    REACTOR,
    UP_AXES,
    PoseThrottle,
    pose_message,
    status_message,
    text_message,
)
from molam_ros.web.server import WebViewServer

NODE_NAME = "web_view_node"
# A viewer never slows a publisher down: poses best effort (a lost frame is replaced 33 ms later);
# text reliable (a lost reply would be lost for good); diagnostics: only the newest matters.
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
FRAMES_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=30, reliability=ReliabilityPolicy.BEST_EFFORT)
TEXT_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
STATUS_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)
LEVEL_NAMES = {v: k for k, v in DIAGNOSTIC_LEVELS.items()}

# Every parameter: name -> (default, description, (min, max) for numbers). All read-only;
# config/web_view_node.yaml lists the same defaults (a test keeps them equal).
PARAMETERS: dict[str, tuple[object, str, tuple[float, float] | None]] = {
    "host": (
        "127.0.0.1",
        "address the page is served on; 0.0.0.0: every interface (a headset on the LAN)",
        None,
    ),
    "port": (8765, "TCP port of the page and its WebSocket (/ws); 0: any free port (logged)", (0, 65535)),
    "person_pose_topic": ("/molam/person_pose", "in: molam_msgs/PersonPose, the person", None),
    "reactor_pose_topic": ("/molam/reactor_pose", "in: molam_msgs/PersonPose, the reaction", None),
    "command_topic": ("/molam/command", "in and out: std_msgs/String, text commands", None),
    "reply_topic": ("/molam/reply", "in: std_msgs/String, the reaction node's replies", None),
    "diagnostics_topic": ("/molam/diagnostics", "in: diagnostic_msgs/DiagnosticArray; empty: off", None),
    "person_id": ("", "show this person; empty: the first one heard (as the reaction node)", None),
    "pose_up_axis": ("y", "up axis of the poses: y (molam clips, SMPL) or z (REP 103)", None),
    "min_confidence": (0.3, "joints below this confidence are not drawn", (0.0, 1.0)),
    "max_pose_rate": (30.0, "Hz; at most about this many frames per body to the page; 0: all", (0.0, 1000.0)),
    "accept_commands": (True, "the page may send text commands (published on command_topic)", None),
    "max_command_length": (500, "characters; longer commands from the page are refused", (1, 100000)),
    "text_history": (50, "commands and replies a newly opened page is shown", (0, 10000)),
}


class WebViewNode(Node):
    """Pose, reactor, text and diagnostics topics -> JSON frames -> every open page."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        for name, (default, description, bounds) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=description, read_only=True)
            if bounds is not None and isinstance(default, int) and not isinstance(default, bool):
                descriptor.integer_range = [IntegerRange(from_value=int(bounds[0]), to_value=int(bounds[1]))]
            elif bounds is not None:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=bounds[0], to_value=bounds[1])
                ]
            self.declare_parameter(name, default, descriptor)
        p = self.p = {name: self.get_parameter(name).value for name in PARAMETERS}
        if p["pose_up_axis"] not in UP_AXES:
            raise ValueError(f"pose_up_axis must be one of {list(UP_AXES)}, got {p['pose_up_axis']!r}")
        self.follow = p["person_id"]
        self.throttle = PoseThrottle(float(p["max_pose_rate"]))
        self.counts = {"person": 0, "reactor": 0, "dropped": 0, "texts": 0}
        self.pub_command = None
        if p["accept_commands"]:
            self.pub_command = self.create_publisher(String, p["command_topic"], TEXT_QOS)
        self.server = WebViewServer(
            host=p["host"],
            port=int(p["port"]),
            on_command=self._send_command if self.pub_command is not None else None,
            text_history=int(p["text_history"]),
            max_command_length=int(p["max_command_length"]),
        )
        try:
            self.server.start()
        except OSError as e:  # the port is taken: one line at start-up (run_node), not a traceback
            raise RuntimeError(f"cannot serve the web view on {p['host']}:{p['port']}: {e}") from e
        self.create_subscription(PersonPose, p["person_pose_topic"], self._on_person, SENSOR_QOS)
        self.create_subscription(PersonPose, p["reactor_pose_topic"], self._on_reactor, FRAMES_QOS)
        self.create_subscription(String, p["command_topic"], self._on_command, TEXT_QOS)
        self.create_subscription(String, p["reply_topic"], self._on_reply, TEXT_QOS)
        if p["diagnostics_topic"]:
            self.create_subscription(
                DiagnosticArray, p["diagnostics_topic"], self._on_diagnostics, STATUS_QOS
            )
        self.get_logger().info(
            f"live view at {self.server.url} (person {p['person_pose_topic']}, "
            f"reaction {p['reactor_pose_topic']}, commands {'on' if self.pub_command else 'off'})"
        )

    def _forward_pose(self, body: str, msg: PersonPose) -> None:
        try:
            pose = pose_from_msg(msg, allow_nonfinite=True)
            if not self.throttle.accept(body, pose.stamp):
                return
            positions = pose.positions
            if pose.confidence is not None:
                positions = np.where(
                    (pose.confidence < float(self.p["min_confidence"]))[:, None], np.nan, positions
                )
            message = pose_message(
                body, pose.joint_names, positions, pose.stamp, up_axis=self.p["pose_up_axis"]
            )
        except ValueError as e:
            self.counts["dropped"] += 1
            self.get_logger().debug(f"{body} pose not shown: {e}")
            return
        self.counts[body] += 1
        self.server.publish(message)

    def _on_person(self, msg: PersonPose) -> None:
        if not self.follow:
            self.follow = msg.person_id
        if msg.person_id == self.follow:
            self._forward_pose(PERSON, msg)

    def _on_reactor(self, msg: PersonPose) -> None:
        self._forward_pose(REACTOR, msg)

    def _on_command(self, msg: String) -> None:
        self.counts["texts"] += 1
        self.server.publish(text_message("command", msg.data, time.time()))

    def _on_reply(self, msg: String) -> None:
        self.counts["texts"] += 1
        self.server.publish(text_message("reply", msg.data, time.time()))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        if not msg.status:
            return
        status = msg.status[0]
        level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
        values = {kv.key: kv.value for kv in status.values}
        self.server.publish(status_message(LEVEL_NAMES.get(level, str(level)), status.message, values))

    def _send_command(self, text: str) -> None:
        """A command typed into the page (server thread): published as `molam say` would; it comes
        back through `_on_command`, so the page shows what the reaction node heard."""
        self.pub_command.publish(String(data=text))

    def destroy_node(self) -> None:
        self.server.stop()
        super().destroy_node()


def main(args: list[str] | None = None) -> None:
    run_node(WebViewNode, NODE_NAME, args=args)


if __name__ == "__main__":
    main()
