"""pose_replay_node and the MCAP recorder, over real DDS between separate processes.

The node runs as its own process (`python -m molam_ros.ros.pose_replay_node --ros-args ...`), as
bring-up starts it; the test listens in this process on its own rclpy context. Data is made here:
a procedural clip, a dataset written from it, a motion .npz and a bag recorded from the node.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import rclpy
from molam_msgs.msg import PersonPose
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import write_dataset
from molam_ros.data.synth import generate_clip
from molam_ros.ros.convert import pose_from_msg, stamp_seconds
from molam_ros.ros.pose_replay_node import load_motion_file, recording_from_clip
from molam_ros.ros.record import _msg_dependencies, ensure_type, read_messages

FPS = 30.0


class Listener:
    """PersonPose messages of some topics, with their receive times, on a private rclpy context."""

    def __init__(self, topics: Sequence[str]) -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(f"listener_{uuid.uuid4().hex[:8]}", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST, depth=200, reliability=ReliabilityPolicy.BEST_EFFORT
        )
        self.got: dict[str, list[tuple[float, PersonPose]]] = {t: [] for t in topics}
        for topic in topics:
            self.node.create_subscription(
                PersonPose, topic, lambda m, t=topic: self.got[t].append((time.monotonic(), m)), qos
            )

    def spin_until(self, done: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.02)
        return done()

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)


def start_replay(*params: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "molam_ros.ros.pose_replay_node", "--ros-args"]
    for p in params:
        args += ["-p", p]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 15.0) -> str:
    """Output of a process, after it ended on its own (or was stopped with SIGTERM)."""
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
    return out


def short_clip(seed: int, frames: int) -> MotionClip:
    clip = generate_clip(seed)
    return MotionClip(
        name=f"short_{seed}", positions=clip.positions[:, :frames], fps=clip.fps, meta=clip.meta
    )


def _positions(msg: object) -> np.ndarray:
    """(N, 3) positions of an rclpy or a rosbags PersonPose."""
    return np.array([[p.x, p.y, p.z] for p in msg.positions])


def frame_index(positions: np.ndarray, frames: np.ndarray) -> int:
    """Which frame of (T, 22, 3) `frames` these (22, 3) positions are (exactly one must match)."""
    hits = np.flatnonzero(np.abs(frames - positions).max(axis=(1, 2)) < 1e-5)
    assert len(hits) >= 1, "published positions match no frame of the source"
    return int(hits[0])


# --- sources, without ROS --------------------------------------------------------------------


def test_clip_source_plays_the_actor_and_keeps_the_other_person_as_reference() -> None:
    seed = next(s for s in range(50) if generate_clip(s).meta["actor"] == 1)
    clip = generate_clip(seed)
    rec = recording_from_clip(clip, -1, "clip")
    np.testing.assert_array_equal(rec.frames, clip.positions[1])
    np.testing.assert_array_equal(rec.reference, clip.positions[0])
    assert "person 1 (actor)" in rec.description and rec.person_id == "person_1"
    assert rec.frame_period == pytest.approx(1 / FPS) and rec.duration == pytest.approx(clip.num_frames / FPS)
    assert recording_from_clip(clip, 0, "clip").reference_person_id == "person_1"
    solo = MotionClip(name="solo", positions=clip.positions[:1])
    assert recording_from_clip(solo, -1, "solo").reference is None
    with pytest.raises(ValueError, match="person_index 2 but the clip has 1 person"):
        recording_from_clip(solo, 2, "solo")


def test_motion_file_needs_positions_and_fps(tmp_path: Path) -> None:
    np.savez(tmp_path / "nofps.npz", positions=np.zeros((1, 5, 22, 3)))
    with pytest.raises(ValueError, match="no 'fps'"):
        load_motion_file(tmp_path / "nofps.npz")
    np.savez(tmp_path / "bad.npz", positions=np.zeros((5, 21, 3)), fps=30)
    with pytest.raises(ValueError, match=r"\(P, T, 22, 3\)"):
        load_motion_file(tmp_path / "bad.npz")
    np.savez(tmp_path / "one.npz", positions=np.ones((5, 22, 3)), fps=20)
    clip = load_motion_file(tmp_path / "one.npz")
    assert clip.num_people == 1 and clip.fps == 20


def test_message_definitions_come_from_the_share_directory() -> None:
    from rosbags.typesys import Stores, get_typestore

    text = (Path(__file__).resolve().parents[1] / "msg/PersonPose.msg").read_text()
    assert _msg_dependencies(text, "molam_msgs") == [
        "std_msgs/msg/Header",
        "geometry_msgs/msg/Point",
        "geometry_msgs/msg/Quaternion",
    ]
    assert _msg_dependencies("int8 A=1\nPoint p  # x\nfloat64[3] v\nstring<=5 s\n", "pkg") == [
        "pkg/msg/Point"
    ]
    store = get_typestore(Stores.ROS2_KILTED)
    ensure_type(store, "molam_msgs/msg/PersonPose")
    assert "molam_msgs/msg/PersonPose" in store.types
    with pytest.raises(LookupError, match="no_such_pkg"):
        ensure_type(store, "no_such_pkg/msg/Thing")


def test_bad_source_is_one_clear_line() -> None:
    cases = [
        (["dataset:=/somewhere"], "needs both `dataset` and `clip_id`"),
        (["motion_file:=/no/such.npz"], "does not exist"),
        (["motion_file:=/a.npz", "bag:=/b"], "give one source"),
        (["rate_scale:=0.0"], "rate_scale out of range"),
    ]
    for params, expected in cases:
        proc = start_replay(*params)
        out = finish(proc)
        assert proc.returncode == 2 and expected in out and "Traceback" not in out, out


# --- live replay -----------------------------------------------------------------------------


@pytest.mark.ros
def test_dataset_clip_replays_at_its_real_rate_with_the_other_person_as_reference(tmp_path: Path) -> None:
    clip = short_clip(seed=4, frames=60)  # 2 s at 30 fps
    write_dataset(tmp_path / "data", [clip], progress=False)
    actor, other = clip.meta["actor"], 1 - clip.meta["actor"]
    topics = ("/molam_test/replay_pose", "/molam_test/replay_ref")
    listener = Listener(topics)
    proc = start_replay(
        f"dataset:={tmp_path / 'data'}",
        f"clip_id:={clip.name}",
        f"topic:={topics[0]}",
        "publish_reference:=true",
        f"reference_topic:={topics[1]}",
        "wait_for_subscribers:=1",
        "exit_when_done:=true",
        "frame_id:=map",
    )
    try:
        listener.spin_until(lambda: proc.poll() is not None, timeout=20)
        listener.spin_until(lambda: False, timeout=0.2)  # the last messages in flight
    finally:
        out = finish(proc)
        listener.close()
    assert proc.returncode == 0, out
    assert f"playing dataset clip {clip.name}" in out and "60 frames at 30.0 fps, 2.00 s" in out, out
    assert "finished: published 60 frames" in out, out

    poses, refs = listener.got[topics[0]], listener.got[topics[1]]
    assert len(poses) >= 57 and len(refs) >= 57, (len(poses), len(refs))  # best effort: allow a drop
    frames = [pose_from_msg(m) for _, m in poses]
    assert {f.person_id for f in frames} == {f"person_{actor}"} and {f.frame_id for f in frames} == {"map"}
    # Stamps are the frames' due times: exactly 1/30 s apart (a multiple, if one was dropped).
    stamps = np.array([f.stamp for f in frames])
    k = np.array([frame_index(f.positions, clip.positions[actor]) for f in frames])
    np.testing.assert_allclose(np.diff(stamps), np.diff(k) / FPS, atol=2e-6)
    assert k[0] <= 2 and k[-1] >= 57
    # ... and they are live: they arrived when they were due, at the clip's real rate.
    received = np.array([t for t, _ in poses])
    span = received[-1] - received[0]
    assert abs(span - (k[-1] - k[0]) / FPS) < 0.3, span
    assert max(abs(stamp_seconds(m.header.stamp) - time.time()) for _, m in poses[-1:]) < 5
    # The reference is the other person at the same instants.
    by_stamp = {stamp_seconds(m.header.stamp): pose_from_msg(m) for _, m in refs}
    for f, i in zip(frames, k, strict=True):
        if f.stamp in by_stamp:
            np.testing.assert_allclose(by_stamp[f.stamp].positions, clip.positions[other][i], atol=1e-6)
            assert by_stamp[f.stamp].person_id == f"person_{other}"


@pytest.mark.ros
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stops_cleanly_on_signals(sig: signal.Signals) -> None:
    topic = f"/molam_test/signal_{sig.name.lower()}"
    listener = Listener([topic])
    proc = start_replay(f"topic:={topic}", "loop:=true")
    try:
        assert listener.spin_until(lambda: len(listener.got[topic]) >= 3, timeout=20), "no poses arrived"
        proc.send_signal(sig)
        out = finish(proc, timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        listener.close()
    assert proc.returncode == 0 and "Traceback" not in out, out
    assert "playing procedural clip" in out


@pytest.mark.ros
@pytest.mark.slow
def test_record_read_back_and_replay_a_bag(tmp_path: Path) -> None:
    from rosbags.highlevel import AnyReader

    clip = short_clip(seed=2, frames=45)
    np.savez(tmp_path / "motion.npz", positions=clip.positions[:1], fps=clip.fps)
    source = clip.positions[0]

    # 1. Record the node's stream with the recorder (a separate process, raw subscription).
    bag = tmp_path / "bag"
    proc = start_replay(
        f"motion_file:={tmp_path / 'motion.npz'}",
        "topic:=/molam_test/rec",
        "wait_for_subscribers:=1",
        "exit_when_done:=true",
    )
    rec = subprocess.run(
        [
            sys.executable,
            "-m",
            "molam_ros.ros.record",
            str(bag),
            "--topic",
            "/molam_test/rec",
            "--count",
            "45",
            "--duration",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = finish(proc)
    assert rec.returncode == 0, rec.stdout + rec.stderr
    assert proc.returncode == 0, out

    # 2. Read it back with an independent reader (rosbags), from the definitions in the bag.
    with AnyReader([bag]) as reader:
        (conn,) = reader.connections
        assert (conn.topic, conn.msgtype) == ("/molam_test/rec", "molam_msgs/msg/PersonPose")
        msgs = [(t, reader.deserialize(raw, conn.msgtype)) for _, t, raw in reader.messages()]
    assert len(msgs) >= 42, len(msgs)
    first = msgs[0][1]
    assert list(first.joint_names)[:2] == ["pelvis", "left_hip"] and first.person_id == "person_0"
    recorded = {frame_index(_positions(m), source): t * 1e-9 for t, m in msgs}  # source frame -> time
    topic, ours = read_messages(bag, PersonPose)
    assert topic == "/molam_test/rec" and len(ours) == len(msgs)

    # 3. Replay the bag: same messages, re-stamped live, with the recorded timing.
    listener = Listener(["/molam_test/replayed"])
    proc = start_replay(
        f"bag:={bag}",
        "topic:=/molam_test/replayed",
        "wait_for_subscribers:=1",
        "exit_when_done:=true",
        "person_id:=again",
    )
    try:
        listener.spin_until(lambda: proc.poll() is not None, timeout=20)
        listener.spin_until(lambda: False, timeout=0.2)
    finally:
        out = finish(proc)
        listener.close()
    assert proc.returncode == 0, out
    assert f"playing bag {bag} (/molam_test/rec): {len(msgs)} frames" in out, out
    got = [pose_from_msg(m) for _, m in listener.got["/molam_test/replayed"]]
    assert len(got) >= len(msgs) - 3 and {g.person_id for g in got} == {"again"}
    # Replayed stamps keep the recorded gaps between the same frames.
    k = [frame_index(g.positions, source) for g in got]
    stamps = np.array([g.stamp for g in got])
    np.testing.assert_allclose(stamps - stamps[0], [recorded[i] - recorded[k[0]] for i in k], atol=1e-6)
