"""The live web view's core, without ROS: the JSON messages (molam_ros/web/frames.py) and the server
(molam_ros/web/server.py) that serves the page and streams them to WebSocket clients."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import numpy as np
import pytest
from websockets.sync.client import ClientConnection, connect

from molam_ros.motion.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS
from molam_ros.ros.convert import PERSON_COLOR, REACTOR_COLOR
from molam_ros.web.frames import (
    BODY_RGB,
    PoseThrottle,
    encode,
    hello_message,
    parse_client_message,
    pose_message,
    status_message,
    text_message,
    to_y_up,
)
from molam_ros.web.server import STATIC_DIR, WebViewServer

# --- messages ------------------------------------------------------------------------------


def test_hello_names_the_skeleton_and_the_rviz_colours() -> None:
    hello = hello_message()
    assert hello["joint_names"] == list(JOINT_NAMES)
    assert hello["bones"] == [[PARENTS[j], j] for j in range(1, 22)]
    assert BODY_RGB["person"] == PERSON_COLOR[:3] and BODY_RGB["reactor"] == REACTOR_COLOR[:3]
    assert hello["bodies"]["person"]["color"] == "#3399ff"
    assert hello["bodies"]["reactor"]["color"] == "#ff8c1a"


def test_full_pose_in_smpl_order_rounded() -> None:
    positions = np.arange(66, dtype=float).reshape(22, 3) / 7.0
    names = list(reversed(JOINT_NAMES))  # any order in, SMPL order out
    msg = pose_message("person", names, positions, 12.5)
    assert msg["type"] == "pose" and msg["body"] == "person" and msg["stamp"] == 12.5
    assert msg["joints"][JOINT_INDEX["right_wrist"]] == [round(v, 4) for v in positions[0]]
    assert msg["joints"][JOINT_INDEX["pelvis"]] == [round(v, 4) for v in positions[21]]
    assert len(encode(msg)) < 1000  # a frame of 22 joints stays under 1 kB


def test_sparse_nan_and_unknown_joints() -> None:
    """A VR user's head and hands: the rest is null; a lost controller (NaN) is null; a tracker's
    extra joints are left out."""
    names = ["head", "left_wrist", "right_wrist", "left_index1"]
    positions = [[0, 1.7, 0], [0.3, 1.0, 0.2], [np.nan, 1.0, 0.2], [0.35, 1.0, 0.2]]
    msg = pose_message("person", names, positions, 1.0)
    present = {JOINT_NAMES[i] for i, j in enumerate(msg["joints"]) if j is not None}
    assert present == {"head", "left_wrist"}
    json.loads(encode(msg))  # valid JSON (no NaN)


def test_z_up_is_turned_to_y_up_without_mirroring() -> None:
    # REP 103 (x forward, y left, z up) -> three.js (y up): up stays up, left stays left of forward.
    assert to_y_up(np.array([1.0, 2.0, 3.0]), "z").tolist() == [1.0, 3.0, -2.0]
    rotation = np.stack([to_y_up(e, "z") for e in np.eye(3)], axis=1)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    msg = pose_message("reactor", ["head"], [[0.5, 0.2, 1.6]], 0.0, up_axis="z")
    assert msg["joints"][JOINT_INDEX["head"]] == [0.5, 1.6, -0.2]
    with pytest.raises(ValueError, match="up_axis"):
        to_y_up(np.zeros(3), "x")


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("robot", ["head"], [[0, 0, 0]], 0.0), "body must be one of"),
        (("person", ["head", "neck"], [[0, 0, 0]], 0.0), "2 joint names but positions of shape"),
        (("person", ["head"], [[0, 0, 0]], float("nan")), "stamp must be finite"),
        (("person", ["head"], [[np.inf, 0, 0]], 0.0), "no finite SMPL joint"),
        (("person", ["finger"], [[0, 0, 0]], 0.0), "no finite SMPL joint"),
    ],
)
def test_pose_message_refuses_what_the_page_could_not_draw(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        pose_message(*args)


def test_text_status_and_encoding() -> None:
    assert text_message("reply", "hello", 5.0) == {
        "type": "text",
        "kind": "reply",
        "text": "hello",
        "time": 5.0,
    }
    with pytest.raises(ValueError, match="kind"):
        text_message("shout", "x", 0.0)
    status = status_message("WARN", "no input", {"watchdog": "neutral", "step_ms": 12.5})
    assert status["values"] == {"watchdog": "neutral", "step_ms": "12.5"}
    with pytest.raises(ValueError):
        encode({"x": float("nan")})


def test_client_messages_are_checked() -> None:
    assert (
        parse_client_message('{"type": "command", "text": " wave at them "}', max_length=50) == "wave at them"
    )
    for raw, match in [
        ("wave", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        ('{"type": "pose"}', "expected"),
        ("[1, 2]", "expected"),
        ('{"type": "command", "text": "   "}', "non-empty"),
        ('{"type": "command", "text": 3}', "non-empty"),
        ('{"type": "command", "text": "' + "a" * 51 + '"}', "longer than 50"),
    ]:
        with pytest.raises(ValueError, match=match):
            parse_client_message(raw, max_length=50)


def _passed(
    throttle: PoseThrottle, stamps: Iterator[float] | list[float], body: str = "person"
) -> list[float]:
    return [t for t in stamps if throttle.accept(body, t)]


def test_throttle_by_stamps() -> None:
    headset = [i / 90 for i in range(90)]  # 1 s of a 90 Hz headset
    assert len(_passed(PoseThrottle(30.0), headset)) == 30
    rng = np.random.default_rng(0)
    jittery = [i / 30 + rng.uniform(-0.004, 0.004) for i in range(30)]  # a 30 Hz tracker, +/- 4 ms
    assert len(_passed(PoseThrottle(30.0), jittery)) == 30
    burst = [1.0 + i / 30 for i in range(4)]  # a model step's four frames arrive at once
    assert _passed(PoseThrottle(30.0), burst) == burst
    throttle = PoseThrottle(30.0)
    assert _passed(throttle, [10.0, 10.01, 2.0, 2.01]) == [10.0, 2.0]  # a stamp going back starts over
    assert _passed(throttle, [2.04], body="reactor") == [2.04]  # each body has its own gate
    assert len(_passed(PoseThrottle(0.0), headset)) == 90
    with pytest.raises(ValueError):
        PoseThrottle(-1.0)


# --- the page's files ------------------------------------------------------------------------


def test_page_loads_only_its_own_files() -> None:
    """Robots run offline: every script the page loads is in static/, and no URL leaves the host."""
    html = (STATIC_DIR / "index.html").read_text()
    app = (STATIC_DIR / "app.js").read_text()
    importmap = json.loads(re.search(r'<script type="importmap">(.*?)</script>', html, re.S).group(1))
    targets = [*importmap["imports"].values(), *re.findall(r'src="([^"]+)"', html)]
    assert targets and all(t.startswith("./") for t in targets), targets
    for own in (html, app):
        assert not re.search(r"https?://", own.replace("http://localhost", ""))
    # The module build imports the core build; the addons import `three` (the import map).
    three = STATIC_DIR / "vendor/three"
    assert 'from"./three.core.min.js"' in (three / "three.module.min.js").read_text()
    for name in re.findall(r"from '(three/addons/[^']+)'", app):
        assert (three / "addons" / name.removeprefix("three/addons/")).is_file(), name
    assert "MIT License" in (three / "LICENSE").read_text()
    total = sum(f.stat().st_size for f in STATIC_DIR.rglob("*") if f.is_file())
    assert total < 2_000_000, total


# --- the server ------------------------------------------------------------------------------


@pytest.fixture
def server() -> Iterator[WebViewServer]:
    commands: list[str] = []
    srv = WebViewServer(port=0, on_command=commands.append, text_history=2)
    srv.commands = commands  # type: ignore[attr-defined]
    srv.start()
    yield srv
    srv.stop()


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def _raw_get(port: int, path: str) -> bytes:
    """An HTTP request exactly as written (urllib would normalise `..` away)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


def _recv(ws: ClientConnection) -> dict:
    return json.loads(ws.recv(timeout=10))


def test_serves_the_page_and_nothing_outside_it(server: WebViewServer) -> None:
    status, kind, body = _get(server.url)
    assert status == 200 and kind.startswith("text/html") and b"molam live view" in body
    status, kind, body = _get(server.url + "app.js")
    assert (status, kind) == (200, "text/javascript") and body == (STATIC_DIR / "app.js").read_bytes()
    status, kind, _ = _get(server.url + "vendor/three/three.module.min.js")
    assert (status, kind) == (200, "text/javascript")
    assert _get(server.url + "nothing.js")[0] == 404
    for path in ("/../server.py", "/%2e%2e/frames.py", "/vendor/../../server.py", "//etc/passwd"):
        assert _raw_get(server.port, path).startswith(b"HTTP/1.1 404"), path
    assert (
        server.static_file("/../server.py") is None and server.static_file("/") == STATIC_DIR / "index.html"
    )


def test_streams_frames_and_gives_a_late_page_the_last_state(server: WebViewServer) -> None:
    person = pose_message("person", JOINT_NAMES, np.zeros((22, 3)), 1.0)
    for i in range(3):
        server.publish(text_message("command", f"c{i}", float(i)))
    server.publish(person)
    server.publish(status_message("OK", "reacting", {"watchdog": "tracking"}))
    time.sleep(0.2)
    with (
        connect(f"ws://127.0.0.1:{server.port}/ws") as ws,
        connect(f"ws://127.0.0.1:{server.port}/ws") as ws2,
    ):
        assert _recv(ws)["type"] == "hello"
        assert _recv(ws) == person
        assert _recv(ws)["message"] == "reacting"
        assert [_recv(ws)["text"] for _ in range(2)] == ["c1", "c2"]  # text_history=2: the newest two
        for _ in range(5):
            _recv(ws2)
        reactor = pose_message("reactor", ["head"], [[0.0, 1.7, 0.0]], 2.0)
        server.publish(reactor)
        assert _recv(ws) == reactor and _recv(ws2) == reactor  # every page gets every frame
        assert len(server.clients) == 2


def test_commands_from_the_page(server: WebViewServer) -> None:
    with connect(f"ws://127.0.0.1:{server.port}/ws") as ws:
        _recv(ws)  # hello
        ws.send(json.dumps({"type": "command", "text": "wave at them"}))
        ws.send("not json")
        error = _recv(ws)
        assert error["type"] == "error" and "not JSON" in error["text"]
        ws.send(json.dumps({"type": "command", "text": "x" * 501}))
        assert "longer than 500" in _recv(ws)["text"]
    assert server.commands == ["wave at them"]  # type: ignore[attr-defined]
    assert server.counts["commands"] == 1 and server.counts["refused"] == 2


def test_a_view_without_commands_says_so() -> None:
    srv = WebViewServer(port=0, on_command=None)
    srv.start()
    try:
        with connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
            _recv(ws)
            ws.send(json.dumps({"type": "command", "text": "wave"}))
            assert _recv(ws) == {"type": "error", "text": "this view does not take commands"}
    finally:
        srv.stop()


def test_a_slow_page_misses_frames_instead_of_holding_memory() -> None:
    srv = WebViewServer(port=0, max_buffer_bytes=-1)  # every page counts as slow
    srv.start()
    try:
        with connect(f"ws://127.0.0.1:{srv.port}/ws") as ws:
            assert _recv(ws)["type"] == "hello"
            srv.publish(text_message("reply", "hi", 0.0))
            with pytest.raises(TimeoutError):
                ws.recv(timeout=0.5)
        assert srv.counts["skipped_slow"] == 1
    finally:
        srv.stop()


def test_a_taken_port_fails_at_start(server: WebViewServer) -> None:
    with pytest.raises(OSError):
        WebViewServer(port=server.port).start()
    with pytest.raises(ValueError, match="port"):
        WebViewServer(port=70000)


def test_publish_before_start_and_after_stop_is_harmless() -> None:
    srv = WebViewServer(port=0)
    srv.publish(text_message("reply", "early", 0.0))
    srv.start()
    srv.stop()
    srv.publish(text_message("reply", "late", 0.0))
    srv.stop()
