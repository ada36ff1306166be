"""pose_replay_node: plays a recorded motion as a live molam_msgs/PersonPose stream, at its real rate.

Why: the reaction node needs a person to react to. This node stands in for a body tracker, so the
whole runtime can be developed, demonstrated, recorded and evaluated without a camera, and the
same recording gives the same input every time.

Try it:

    python -m molam_ros.ros.pose_replay_node --ros-args -p loop:=true          # a procedural clip
    pose_replay_node --ros-args -p dataset:=out/demo/data -p clip_id:=ID -p publish_reference:=true
    pose_replay_node --ros-args -p bag:=my_recording -p rate_scale:=0.5

Sources (one at a time; none given plays a procedural clip from the shipped generator):
- a molam dataset clip: `dataset` + `clip_id`; `person_index` -1 plays the clip's actor
  (`meta["actor"]`), 0 or 1 a given person;
- a motion file: `motion_file`, an .npz with `positions` (P, T, 22, 3) (or (T, 22, 3)) and `fps`;
- an MCAP bag of PersonPose messages (a rosbag2 directory or one .mcap file, as
  `molam_ros.ros.record` or `ros2 bag record -s mcap` write): `bag` (+ `bag_topic` when it holds
  several PersonPose topics), replayed with its original timing.

Publishers (sensor-data QoS: best effort, keep last 5; change it with the standard
`qos_overrides.<topic>.publisher.*` parameters):
- `topic` [molam_msgs/msg/PersonPose]: the replayed person (default `/molam/person_pose`);
- `reference_topic` [molam_msgs/msg/PersonPose]: with `publish_reference`, the clip's OTHER person
  at the same instants (default `/molam/reference_reaction`): the recorded reaction, for demos and
  for scoring what the reaction node produces.

`tracked_joints` plays a motion as a sparse tracker would send it (a VR headset and controllers:
`head,left_wrist,right_wrist`): only those joints, each with the body's heading as its orientation
(a headset that looks where the torso faces; the reaction node takes the head's yaw from it). Bags
are played as recorded.

Stamps are live: each frame is stamped with its due time on this node's clock (start time + frame
time / rate_scale), which is "now" when it is published, give or take timer jitter, and keeps the
spacing exact even when a callback runs late. Positions are published as recorded (molam clips:
metres, Y up, in `frame_id`). All parameters are read-only (see config/README.md for the table).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from builtin_interfaces.msg import Time as TimeMsg
from molam_msgs.msg import PersonPose
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions
from rclpy.time import Time

from molam_ros.data.clip import MotionClip
from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.rotations import yaw_quat
from molam_ros.motion.skeleton import JOINT_INDEX
from molam_ros.ros.convert import pose_to_msg
from molam_ros.ros.spin import run_node

NODE_NAME = "pose_replay_node"

# Incoming poses are sensor data: a late pose is worth less than the next one, so best effort with
# a short queue (the reaction node subscribes the same way).
SENSOR_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)

# Every parameter: name -> (default, description, (min, max) for numbers). All are read-only: a
# replay is configured once, at start. config/pose_replay_node.yaml lists the same defaults.
PARAMETERS: dict[str, tuple[object, str, tuple[float, float] | None]] = {
    "dataset": ("", "molam dataset directory to play a clip of (with clip_id)", None),
    "clip_id": ("", "clip id in `dataset`", None),
    "motion_file": ("", "motion .npz with positions (P, T, 22, 3) and fps", None),
    "bag": ("", "MCAP bag of PersonPose messages: rosbag2 directory or .mcap file", None),
    "bag_topic": ("", "PersonPose topic of the bag to play; empty: its only PersonPose topic", None),
    "synth_seed": (0, "no source given: seed of the procedural clip", None),
    "synth_interaction": ("", "no source given: interaction of the procedural clip; empty: random", None),
    "person_index": (-1, "person of the clip to play; -1: the clip's actor (meta actor, else 0)", (-1, 15)),
    "topic": ("/molam/person_pose", "topic the person's poses are published on", None),
    "publish_reference": (False, "also publish the clip's other person on `reference_topic`", None),
    "reference_topic": ("/molam/reference_reaction", "topic of the clip's other person", None),
    "frame_id": ("", "header.frame_id; empty: 'world' for motions, as recorded for bags", None),
    "person_id": ("", "person_id of the messages; empty: person_<index>, as recorded for bags", None),
    "rate_scale": (1.0, "playback speed factor (2.0: twice as fast)", (0.01, 100.0)),
    "loop": (False, "start over after the last frame, continuing the clock without a gap", None),
    "start_delay": (0.0, "seconds to wait before the first frame", (0.0, 3600.0)),
    "wait_for_subscribers": (
        0,
        "start once this many subscribers are matched on `topic`; 0: at once",
        (0, 100),
    ),
    "exit_when_done": (False, "shut the node down after the last frame (no loop)", None),
    "tracked_joints": (
        "",
        "comma-separated joints to publish, e.g. head,left_wrist,right_wrist (a VR user); empty: all",
        None,
    ),
}


@dataclass
class Recording:
    """What is played: frame times and either positions (motion sources) or messages (bags).

    times: (F,) seconds from the first frame, non-decreasing; frames: (F, 22, 3) positions or F
    PersonPose messages; reference: (F, 22, 3) of the other person, when the source has one.
    """

    description: str
    times: np.ndarray
    frames: np.ndarray | list[PersonPose]
    reference: np.ndarray | None = None
    person_id: str = "person"
    reference_person_id: str = "reference"
    frame_id: str = "world"

    def __len__(self) -> int:
        return len(self.times)

    @property
    def frame_period(self) -> float:
        """Typical seconds between frames (the median gap; 1/30 for a single frame)."""
        gaps = np.diff(self.times)
        gaps = gaps[gaps > 0]
        return float(np.median(gaps)) if len(gaps) else 1.0 / 30.0

    @property
    def duration(self) -> float:
        """Seconds of one pass, including the last frame's own period (so loops keep the rhythm)."""
        return float(self.times[-1]) + self.frame_period


# --- sources ---------------------------------------------------------------------------------


def recording_from_clip(clip: MotionClip, person_index: int, source: str) -> Recording:
    """One person of a clip (-1: its actor), with the other person as the reference when there is one."""
    if person_index < 0:
        person_index = int(clip.meta.get("actor", 0))
    if person_index >= clip.num_people:
        raise ValueError(
            f"{source}: person_index {person_index} but the clip has {clip.num_people} person(s)"
        )
    other = 1 - person_index if clip.num_people == 2 else None
    role = {clip.meta.get("actor"): " (actor)", clip.meta.get("reactor"): " (reactor)"}.get(person_index, "")
    return Recording(
        description=f"{source}, person {person_index}{role}",
        times=np.arange(clip.num_frames) / clip.fps,
        frames=clip.positions[person_index],
        reference=None if other is None else clip.positions[other],
        person_id=f"person_{person_index}",
        reference_person_id=f"person_{other}",
    )


def load_motion_file(path: Path) -> MotionClip:
    """A motion .npz (`positions` (P, T, 22, 3) or (T, 22, 3), `fps`) as a clip."""
    if not path.is_file():
        raise FileNotFoundError(f"motion_file {path} does not exist")
    with np.load(path, allow_pickle=False) as z:
        if "positions" not in z:
            raise ValueError(f"motion_file {path}: no 'positions' array (found {sorted(z.files)})")
        if "fps" not in z:
            raise ValueError(f"motion_file {path}: no 'fps' (frames per second) entry")
        return MotionClip(name=path.stem, positions=z["positions"], fps=float(z["fps"]))


def recording_from_bag(path: Path, topic: str) -> Recording:
    """PersonPose messages of a bag with their receive times (so the original timing replays)."""
    from molam_ros.ros.record import read_messages

    topic, messages = read_messages(path, PersonPose, topic or None)
    if not messages:
        raise ValueError(f"bag {path}: no PersonPose messages on {topic}")
    t0 = messages[0][0]
    return Recording(
        description=f"bag {path} ({topic})",
        times=np.array([(t - t0) * 1e-9 for t, _ in messages]),
        frames=[m for _, m in messages],
        person_id="",  # keep each message's own
        frame_id="",
    )


# --- the node --------------------------------------------------------------------------------


class PoseReplayNode(Node):
    """Publishes a Recording at its own rate (times `rate_scale`), optionally looping.

    qos: profile of both publishers (main passes SENSOR_QOS); it can be overridden per topic
    through `qos_overrides.*` parameters.
    """

    def __init__(self, qos: QoSProfile = SENSOR_QOS) -> None:
        super().__init__(NODE_NAME)
        self._declare_parameters()
        get = self.get_parameter
        self._rate = get("rate_scale").value
        self._loop = get("loop").value
        self._start_delay = get("start_delay").value
        self._min_subscribers = get("wait_for_subscribers").value
        self.exit_when_done = get("exit_when_done").value
        self.recording = self._load_recording()
        rec = self.recording
        self._frame_id = get("frame_id").value or rec.frame_id
        self._person_id = get("person_id").value or rec.person_id
        self._reference_person_id = rec.reference_person_id
        self._tracked = self._tracked_joints(get("tracked_joints").value)

        overrides = QoSOverridingOptions.with_default_policies()
        topic = get("topic").value
        self._pub = self.create_publisher(PersonPose, topic, qos, qos_overriding_options=overrides)
        self._ref_pub = None
        if get("publish_reference").value:
            if rec.reference is None:
                self.get_logger().warning(f"publish_reference: {rec.description} has no other person")
            else:
                self._ref_pub = self.create_publisher(
                    PersonPose, get("reference_topic").value, qos, qos_overriding_options=overrides
                )
        self.get_logger().info(
            f"playing {rec.description}: {len(rec)} frames at {1.0 / rec.frame_period:.1f} fps, "
            f"{rec.duration:.2f} s, rate x{self._rate:g}, loop {'on' if self._loop else 'off'} -> {topic}"
            + (f", other person -> {self._ref_pub.topic_name}" if self._ref_pub else "")
        )

        self.finished = False
        self.published = 0
        self._next = 0  # index of the next frame to publish
        self._pass_offset = 0.0  # recording seconds of the passes already played (loop)
        self._created = self.get_clock().now()
        self._t0 = None  # clock time of frame 0, set when playback starts
        # Twice the frame rate, so a frame goes out at most half a period late.
        period = min(max(0.5 * rec.frame_period / self._rate, 0.001), 0.05)
        self._timer = self.create_timer(period, self._tick)

    def _declare_parameters(self) -> None:
        for name, (default, description, bounds) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=description, read_only=True)
            if bounds and isinstance(default, int):
                descriptor.integer_range = [IntegerRange(from_value=bounds[0], to_value=bounds[1], step=1)]
            elif bounds:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=bounds[0], to_value=bounds[1])
                ]
            self.declare_parameter(name, default, descriptor)

    def _tracked_joints(self, spec: str) -> tuple[list[str], np.ndarray, np.ndarray] | None:
        """(names, their SMPL indices, (F, 4) heading quaternions) of `tracked_joints`, or None (all)."""
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            return None
        unknown = [n for n in names if n not in JOINT_INDEX]
        if unknown:
            raise ValueError(f"tracked_joints: unknown SMPL joints {unknown}")
        if isinstance(self.recording.frames, list):
            raise ValueError("tracked_joints applies to motions, not bags (they play as recorded)")
        yaw = facing_angle(np.asarray(self.recording.frames, dtype=np.float64))
        return names, np.array([JOINT_INDEX[n] for n in names]), yaw_quat(yaw)

    def _load_recording(self) -> Recording:
        """The one source the parameters name; ValueError when they name none or several."""
        p = {name: self.get_parameter(name).value for name in ("dataset", "clip_id", "motion_file", "bag")}
        chosen = [k for k in ("dataset", "motion_file", "bag") if p[k]]
        if len(chosen) > 1:
            raise ValueError(f"give one source, not {chosen}")
        if bool(p["dataset"]) != bool(p["clip_id"]):
            raise ValueError("a dataset clip needs both `dataset` and `clip_id`")
        person = self.get_parameter("person_index").value
        if p["bag"]:
            return recording_from_bag(Path(p["bag"]), self.get_parameter("bag_topic").value)
        if p["motion_file"]:
            path = Path(p["motion_file"])
            return recording_from_clip(load_motion_file(path), person, f"motion file {path}")
        if p["dataset"]:
            from molam_ros.data.dataset import MotionDataset

            clip = MotionDataset(p["dataset"]).load(p["clip_id"])
            return recording_from_clip(clip, person, f"dataset clip {p['clip_id']} ({p['dataset']})")
        from molam_ros.data.synth import generate_clip

        interaction = self.get_parameter("synth_interaction").value or None
        clip = generate_clip(self.get_parameter("synth_seed").value, interaction)
        return recording_from_clip(clip, person, f"procedural clip {clip.name}")

    def _tick(self) -> None:
        if self.finished:
            return
        now = self.get_clock().now()
        if self._t0 is None:
            if (now - self._created).nanoseconds < self._start_delay * 1e9:
                return
            if self._pub.get_subscription_count() < self._min_subscribers:
                return
            self._t0 = now
        rec = self.recording
        elapsed = (now - self._t0).nanoseconds * 1e-9 * self._rate  # recording seconds played
        # Publish every frame that is due (several after a late callback: a replay drops nothing).
        while True:
            if self._next == len(rec):
                if not self._loop:
                    self._finish(now)
                    return
                self._next = 0
                self._pass_offset += rec.duration
            t = float(rec.times[self._next]) + self._pass_offset
            if t > elapsed:
                return
            stamp = (self._t0 + Duration(nanoseconds=int(round(t / self._rate * 1e9)))).to_msg()
            self._publish(self._next, stamp)
            self._next += 1

    def _publish(self, k: int, stamp: TimeMsg) -> None:
        rec = self.recording
        if isinstance(rec.frames, list):  # bag: the recorded message, re-stamped
            msg = rec.frames[k]
            msg.header.stamp = stamp
            msg.header.frame_id = self._frame_id or msg.header.frame_id
            msg.person_id = self._person_id or msg.person_id
        elif self._tracked is not None:
            names, index, quats = self._tracked
            msg = pose_to_msg(
                rec.frames[k][index],
                stamp=stamp,
                frame_id=self._frame_id,
                person_id=self._person_id,
                joint_names=names,
                orientations=np.repeat(quats[k][None], len(names), axis=0),
            )
        else:
            msg = pose_to_msg(rec.frames[k], stamp=stamp, frame_id=self._frame_id, person_id=self._person_id)
        self._pub.publish(msg)
        if self._ref_pub is not None:
            ref = pose_to_msg(
                rec.reference[k], stamp=stamp, frame_id=self._frame_id, person_id=self._reference_person_id
            )
            self._ref_pub.publish(ref)
        self.published += 1

    def _finish(self, now: Time) -> None:
        self.finished = True
        self._timer.cancel()
        seconds = (now - self._t0).nanoseconds * 1e-9
        self.get_logger().info(f"finished: published {self.published} frames in {seconds:.2f} s")


def main(args: list[str] | None = None) -> None:
    run_node(
        lambda: PoseReplayNode(SENSOR_QOS),
        NODE_NAME,
        done=lambda n: n.finished and n.exit_when_done,
        args=args,
    )


if __name__ == "__main__":
    main()
