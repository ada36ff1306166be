"""web_view_node over real DDS: this test publishes poses, text and diagnostics as the replay and
reaction nodes would, the node (a separate process) forwards them to a WebSocket client here as the
page's JSON, and a command sent from that client comes back on the command topic."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
import rclpy
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from molam_msgs.msg import PersonPose
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from std_msgs.msg import String
from websockets.sync.client import connect

from molam_ros.motion.skeleton import JOINT_INDEX, JOINT_NAMES
from molam_ros.ros.convert import diagnostic_array, pose_to_msg
from molam_ros.ros.web_view_node import PARAMETERS

REPO = Path(__file__).resolve().parents[1]
RELIABLE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
SENSOR = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


def test_parameters_match_the_params_file() -> None:
    params = yaml.safe_load((REPO / "config" / "web_view_node.yaml").read_text())
    declared = params["/**"]["ros__parameters"]
    assert declared == {name: default for name, (default, _, _) in PARAMETERS.items()}


class _Node:
    """The node as a process; its log lines are collected on a thread, so its URL can be read."""

    def __init__(self, params: dict[str, object]) -> None:
        args = [sys.executable, "-m", "molam_ros.ros.web_view_node", "--ros-args"]
        for k, v in params.items():
            args += ["-p", f"{k}:={str(v).lower() if isinstance(v, bool) else v}"]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            self.lines.put(line)

    def url(self, timeout: float = 60.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            if "live view at " in line:
                return line.split("live view at ", 1)[1].split()[0]
        raise RuntimeError("web_view_node did not start:\n" + "".join(self.log))

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return "".join(self.log)


@pytest.mark.slow
@pytest.mark.ros
def test_bridge_forwards_poses_text_and_status_and_takes_commands() -> None:
    ns = f"/w{uuid.uuid4().hex[:6]}"
    node = _Node(
        {
            "port": 0,
            "person_pose_topic": f"{ns}/pose",
            "reactor_pose_topic": f"{ns}/reactor",
            "command_topic": f"{ns}/command",
            "reply_topic": f"{ns}/reply",
            "diagnostics_topic": f"{ns}/diag",
            "pose_up_axis": "z",  # REP 103 input: the page gets Y up
            "max_pose_rate": 0.0,
        }
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    probe = rclpy.create_node(f"probe_{uuid.uuid4().hex[:6]}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(probe)
    heard: list[str] = []
    got: list[dict] = []
    try:
        url = node.url()
        pub_person = probe.create_publisher(PersonPose, f"{ns}/pose", SENSOR)
        pub_reactor = probe.create_publisher(PersonPose, f"{ns}/reactor", RELIABLE)
        pub_reply = probe.create_publisher(String, f"{ns}/reply", RELIABLE)
        pub_diag = probe.create_publisher(DiagnosticArray, f"{ns}/diag", RELIABLE)
        probe.create_subscription(String, f"{ns}/command", lambda m: heard.append(m.data), RELIABLE)

        def spin(seconds: float, until=lambda: False) -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not until():
                executor.spin_once(timeout_sec=0.02)

        # Wait until the node's subscriptions are matched, so nothing is lost to discovery.
        spin(
            30,
            lambda: all(p.get_subscription_count() for p in (pub_person, pub_reactor, pub_reply, pub_diag)),
        )
        ws_url = url.replace("http://", "ws://") + "ws"
        with connect(ws_url) as ws:
            reader = threading.Thread(target=lambda: _collect(ws, got), daemon=True)
            reader.start()
            person = np.tile([1.0, 0.5, 0.9], (22, 1))  # Z up: 0.9 m high, 0.5 m to the left
            person[JOINT_INDEX["head"]] = [1.0, 0.5, 1.7]
            now = time.time()
            sparse = ["head", "left_wrist", "right_wrist"]
            for i in range(10):
                stamp = now + i / 30
                pub_person.publish(pose_to_msg(person, stamp=stamp, frame_id="world", person_id="alice"))
                if i >= 3:  # another person on the topic is not shown: the view follows the first heard
                    pub_person.publish(
                        pose_to_msg(
                            person[:3] + 5.0,
                            stamp=stamp,
                            frame_id="world",
                            person_id="bob",
                            joint_names=sparse,
                        )
                    )
                pub_reactor.publish(
                    pose_to_msg(person - [2.0, 0, 0], stamp=stamp, frame_id="world", person_id="reactor")
                )
                spin(1 / 30)
                if i == 2:  # bob comes only once alice was heard: best-effort samples can be lost
                    # under load, and "the first heard" must be alice for the check below to mean it
                    spin(20, lambda: any(m["type"] == "pose" and m["body"] == "person" for m in got))
            pub_reply.publish(String(data="Waving at them."))
            pub_diag.publish(
                diagnostic_array(
                    "reaction_node", "WARN", "no input: neutral", {"watchdog": "neutral"}, stamp=now
                )
            )
            ws.send(json.dumps({"type": "command", "text": "wave at them"}))
            spin(
                10,
                lambda: (
                    heard
                    and sum(m["type"] == "text" for m in got) >= 2
                    and any(m["type"] == "status" for m in got)
                ),
            )
    finally:
        executor.shutdown()
        probe.destroy_node()
        rclpy.shutdown(context=context)
        log = node.stop()

    assert heard == ["wave at them"], log  # the page's command, published as `molam say` does
    poses = [m for m in got if m["type"] == "pose"]
    people = [m for m in poses if m["body"] == "person"]
    reactors = [m for m in poses if m["body"] == "reactor"]
    assert len(people) >= 5 and len(reactors) >= 5, (len(people), len(reactors), log)
    for m in people:  # alice only, in Y-up axes: (x, y, z) -> (x, z, -y)
        assert m["joints"][JOINT_INDEX["head"]] == [1.0, 1.7, -0.5]
        assert m["joints"][JOINT_INDEX["pelvis"]] == [1.0, 0.9, -0.5]
    assert all(m["joints"][JOINT_INDEX["head"]] == [-1.0, 1.7, -0.5] for m in reactors)
    assert [m["stamp"] for m in reactors] == sorted(m["stamp"] for m in reactors)
    texts = [(m["kind"], m["text"]) for m in got if m["type"] == "text"]
    # The page's own command comes back through the topic, so the page shows what the robot heard.
    assert ("reply", "Waving at them.") in texts and ("command", "wave at them") in texts, texts
    status = next(m for m in got if m["type"] == "status")
    assert status["level"] == "WARN" and status["values"]["watchdog"] == "neutral"
    assert got[0]["type"] == "hello" and len(JOINT_NAMES) == len(got[0]["joint_names"])


def _collect(ws, out: list[dict]) -> None:
    try:
        for raw in ws:
            out.append(json.loads(raw))
    except Exception:  # the connection closes at the end of the test
        pass


@pytest.mark.slow
@pytest.mark.ros
def test_a_taken_port_is_one_clear_line() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        node = _Node({"port": s.getsockname()[1]})
        node.proc.wait(timeout=60)
        log = node.stop()
    assert node.proc.returncode == 2, log
    assert "cannot serve the web view on 127.0.0.1" in log and "Traceback" not in log, log
