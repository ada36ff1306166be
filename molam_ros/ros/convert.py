"""Messages <-> numpy at the ROS boundary, and builders for everything the nodes publish.

The core speaks numpy (metres, SMPL joint order, quaternions (w, x, y, z)); ROS messages carry
named joints and quaternions (x, y, z, w). Every conversion happens here, once, so no node
re-implements it and the order of quaternion components is flipped in exactly one place.

Two rules hold for every builder (`*_msg`, `joint_trajectory`, `joint_state`, `skeleton_markers`,
`diagnostic_array` with its `percentiles_ms`, `tf_message`):
- nothing invalid is ever published: NaN or infinite numbers raise ValueError before a message
  exists, so a bad model output stops in the node instead of reaching a robot's controller;
- lengths that must agree are checked, and the error says which two disagree and by how much.

Reading (`pose_from_msg`) is just as strict about lengths, and by default about finiteness: a
tracker that lost a joint should say so with a low confidence, not with NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from builtin_interfaces.msg import Duration, Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point, Quaternion, TransformStamped, Vector3
from molam_msgs.msg import PersonPose
from sensor_msgs.msg import JointState
from std_msgs.msg import ColorRGBA, Header
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import Marker, MarkerArray

from molam_ros.motion.skeleton import JOINT_NAMES, PARENTS

# (parent, child) joint pairs of the SMPL body: the 21 segments a skeleton marker draws.
SMPL_BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(1, len(PARENTS)))

# diagnostic_msgs/DiagnosticStatus levels by name; the message field is a byte.
DIAGNOSTIC_LEVELS: dict[str, int] = {"OK": 0, "WARN": 1, "ERROR": 2, "STALE": 3}

PERSON_COLOR = (0.2, 0.6, 1.0, 1.0)  # RGBA: the observed person, blue
REACTOR_COLOR = (1.0, 0.55, 0.1, 1.0)  # RGBA: the robot's / avatar's reaction, orange


# --- helpers ---------------------------------------------------------------------------------


def _require_finite(what: str, values: np.ndarray) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        first = np.argwhere(bad)[0].tolist()
        raise ValueError(f"{what}: {int(bad.sum())} NaN/infinite value(s), the first at index {first}")


def _as_array(what: str, values: object, shape: tuple[int | None, ...]) -> np.ndarray:
    """`values` as float64 of the given shape (None = any length), finite."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != len(shape) or any(s is not None and s != n for s, n in zip(shape, arr.shape, strict=True)):
        want = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{what}: expected shape {want}, got {arr.shape}")
    _require_finite(what, arr)
    return arr


def time_msg(seconds: float) -> Time:
    """A builtin_interfaces/Time from seconds (negative times are refused: stamps are absolute)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"stamp must be a finite, non-negative number of seconds, got {seconds}")
    ns = int(round(seconds * 1e9))
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def duration_msg(seconds: float) -> Duration:
    """A builtin_interfaces/Duration from seconds (non-negative: time_from_start never goes back)."""
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"duration must be a finite, non-negative number of seconds, got {seconds}")
    ns = int(round(seconds * 1e9))
    return Duration(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def stamp_seconds(stamp: Time | Duration) -> float:
    """Seconds of a Time or Duration message."""
    return stamp.sec + stamp.nanosec * 1e-9


def _stamp(stamp: float | Time) -> Time:
    return stamp if isinstance(stamp, Time) else time_msg(float(stamp))


def _header(stamp: float | Time, frame_id: str) -> Header:
    return Header(stamp=_stamp(stamp), frame_id=frame_id)


# --- PersonPose ------------------------------------------------------------------------------


@dataclass(frozen=True)
class PoseFrame:
    """One PersonPose as numpy, in the core's conventions.

    positions: (N, 3) metres in `frame_id`; orientations: (N, 4) global (w, x, y, z) or None when
    the message had none; confidence: (N,) in [0, 1] or None; stamp: capture time in seconds.
    """

    joint_names: tuple[str, ...]
    positions: np.ndarray
    orientations: np.ndarray | None
    confidence: np.ndarray | None
    stamp: float
    frame_id: str
    person_id: str

    def smpl_positions(self) -> np.ndarray:
        """(22, 3) positions in SMPL joint order; ValueError naming any SMPL joint that is missing.

        Extra joints (a tracker with hands or a face) are ignored.
        """
        index = {name: i for i, name in enumerate(self.joint_names)}
        missing = [name for name in JOINT_NAMES if name not in index]
        if missing:
            raise ValueError(f"PersonPose from {self.person_id!r} lacks SMPL joint(s) {missing}")
        return self.positions[[index[name] for name in JOINT_NAMES]]


def pose_from_msg(msg: PersonPose, *, allow_nonfinite: bool = False) -> PoseFrame:
    """A PoseFrame from a message; ValueError when its arrays disagree in length.

    Optional arrays (orientations, confidence) are either empty or one per joint name; anything
    else is refused rather than guessed at.
    """
    who = f"PersonPose from {msg.person_id!r}"
    n = len(msg.joint_names)
    if len(msg.positions) != n:
        raise ValueError(f"{who}: {n} joint_names but {len(msg.positions)} positions")
    if len(msg.orientations) not in (0, n):
        raise ValueError(
            f"{who}: {n} joint_names but {len(msg.orientations)} orientations (expected {n} or none)"
        )
    if len(msg.confidence) not in (0, n):
        raise ValueError(
            f"{who}: {n} joint_names but {len(msg.confidence)} confidence values (expected {n} or none)"
        )
    if len(set(msg.joint_names)) != n:
        dupes = sorted({j for j in msg.joint_names if list(msg.joint_names).count(j) > 1})
        raise ValueError(f"{who}: joint names repeated: {dupes}")
    positions = np.array([(p.x, p.y, p.z) for p in msg.positions], dtype=np.float64).reshape(n, 3)
    orientations = None
    if len(msg.orientations):
        # ROS (x, y, z, w) -> core (w, x, y, z)
        orientations = np.array([(q.w, q.x, q.y, q.z) for q in msg.orientations], dtype=np.float64)
    confidence = np.asarray(msg.confidence, dtype=np.float64) if len(msg.confidence) else None
    if not allow_nonfinite:
        _require_finite(f"{who}: positions", positions)
        if orientations is not None:
            _require_finite(f"{who}: orientations", orientations)
        if confidence is not None:
            _require_finite(f"{who}: confidence", confidence)
    return PoseFrame(
        joint_names=tuple(msg.joint_names),
        positions=positions,
        orientations=orientations,
        confidence=confidence,
        stamp=stamp_seconds(msg.header.stamp),
        frame_id=msg.header.frame_id,
        person_id=msg.person_id,
    )


def pose_to_msg(
    positions: np.ndarray,
    *,
    stamp: float | Time,
    frame_id: str,
    person_id: str,
    joint_names: Sequence[str] = JOINT_NAMES,
    orientations: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
) -> PersonPose:
    """A PersonPose from (N, 3) positions, optional (N, 4) (w, x, y, z) orientations and (N,) confidence.

    N defaults to the SMPL 22 joints (`joint_names`). Confidence must lie in [0, 1].
    """
    n = len(joint_names)
    pos = _as_array("positions", positions, (None, 3))
    if len(pos) != n:
        raise ValueError(f"{n} joint_names but {len(pos)} positions")
    msg = PersonPose(header=_header(stamp, frame_id), person_id=person_id, joint_names=list(joint_names))
    msg.positions = [Point(x=x, y=y, z=z) for x, y, z in pos.tolist()]
    if orientations is not None:
        quat = _as_array("orientations", orientations, (None, 4))
        if len(quat) != n:
            raise ValueError(f"{n} joint_names but {len(quat)} orientations")
        # core (w, x, y, z) -> ROS (x, y, z, w)
        msg.orientations = [Quaternion(x=x, y=y, z=z, w=w) for w, x, y, z in quat.tolist()]
    if confidence is not None:
        conf = _as_array("confidence", confidence, (None,))
        if len(conf) != n:
            raise ValueError(f"{n} joint_names but {len(conf)} confidence values")
        if conf.min(initial=0.0) < 0.0 or conf.max(initial=0.0) > 1.0:
            raise ValueError(f"confidence must lie in [0, 1], got [{conf.min()}, {conf.max()}]")
        msg.confidence = conf.tolist()
    return msg


# --- joint commands --------------------------------------------------------------------------


def joint_trajectory(
    joint_names: Sequence[str],
    positions: np.ndarray,
    *,
    dt: float,
    stamp: float | Time,
    velocities: np.ndarray | None = None,
    first_point_time: float | None = None,
    frame_id: str = "",
) -> JointTrajectory:
    """A short-horizon JointTrajectory for joint_trajectory_controller's topic interface.

    positions, velocities: (H, J), radians (or metres) and per second; point k is due at
    `first_point_time + k * dt` after `stamp`. Velocities left out are estimated by finite
    differences, because a controller given positions only interpolates linearly and the velocity
    jumps at every point (JTC's docs call that discouraged); with them it uses cubic splines.

    Timing, as the controller reads it: `time_from_start` counts from `header.stamp`, and a zero
    stamp means "start on arrival". Streaming short trajectories, we stamp them with the time the
    plan was made (now), so transport latency does not shift the plan; the first point defaults to
    one `dt` ahead, not 0, so that it is still in the future when it arrives (a point already in
    the past is dropped) and the controller blends from where the joints are into the new plan.
    """
    names = list(joint_names)
    if not math.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a positive number of seconds, got {dt}")
    first = dt if first_point_time is None else first_point_time
    if not math.isfinite(first) or first < 0:
        raise ValueError(f"first_point_time must be >= 0 seconds, got {first}")
    pos = _as_array("trajectory positions", positions, (None, len(names)))
    if len(pos) == 0:
        raise ValueError("trajectory positions: no points")
    if velocities is None:
        vel = np.gradient(pos, dt, axis=0) if len(pos) > 1 else np.zeros_like(pos)
    else:
        vel = _as_array("trajectory velocities", velocities, pos.shape)
    traj = JointTrajectory(header=_header(stamp, frame_id), joint_names=names)
    traj.points = [
        JointTrajectoryPoint(positions=p, velocities=v, time_from_start=duration_msg(first + k * dt))
        for k, (p, v) in enumerate(zip(pos.tolist(), vel.tolist(), strict=True))
    ]
    return traj


def joint_state(
    joint_names: Sequence[str],
    positions: np.ndarray,
    velocities: np.ndarray | None = None,
    *,
    stamp: float | Time,
) -> JointState:
    """A JointState: (J,) positions and optional (J,) velocities, named by `joint_names`."""
    names = list(joint_names)
    msg = JointState(header=_header(stamp, ""), name=names)
    msg.position = _as_array("joint_state positions", positions, (len(names),)).tolist()
    if velocities is not None:
        msg.velocity = _as_array("joint_state velocities", velocities, (len(names),)).tolist()
    return msg


# --- the avatar's skeleton as TF ---------------------------------------------------------------


def tf_message(
    transforms: Sequence[object], *, stamp: float | Time, world_frame: str, prefix: str = ""
) -> TFMessage:
    """A tf2_msgs/TFMessage of a bone tree (runtime/rig.py `BoneTransform`s: parent, child,
    translation (3,), rotation (4,) (w, x, y, z)), one TransformStamped per bone, all at `stamp`.

    Bone frames are named `prefix + bone` (several avatars, or a robot, share one TF tree); the
    parent named `world_frame` (the root bone's) is left as it is.
    """

    def name(frame: str) -> str:
        return frame if frame == world_frame else prefix + frame

    msgs = []
    for tf in transforms:
        t = _as_array(f"{tf.child} translation", tf.translation, (3,))
        q = _as_array(f"{tf.child} rotation", tf.rotation, (4,))
        msg = TransformStamped(header=_header(stamp, name(tf.parent)), child_frame_id=name(tf.child))
        msg.transform.translation = Vector3(x=t[0], y=t[1], z=t[2])
        msg.transform.rotation = Quaternion(x=q[1], y=q[2], z=q[3], w=q[0])  # core (w, x, y, z) -> ROS
        msgs.append(msg)
    return TFMessage(transforms=msgs)


# --- visualisation and diagnostics -----------------------------------------------------------


def _skeleton_marker(
    joints: np.ndarray | None,
    *,
    ns: str,
    color: Sequence[float],
    header: Header,
    line_width: float,
    lifetime: float,
) -> Marker:
    marker = Marker(header=header, ns=ns, id=0, type=Marker.LINE_LIST)
    if joints is None:
        marker.action = Marker.DELETE  # clears a skeleton drawn earlier instead of freezing it
        return marker
    pos = _as_array(f"{ns} joints", joints, (len(PARENTS), 3))
    marker.action = Marker.ADD
    marker.pose.orientation.w = 1.0
    marker.scale.x = line_width
    marker.color = ColorRGBA(r=color[0], g=color[1], b=color[2], a=color[3])
    marker.lifetime = duration_msg(lifetime)
    marker.points = [Point(x=x, y=y, z=z) for bone in SMPL_BONES for x, y, z in pos[list(bone)].tolist()]
    return marker


def skeleton_markers(
    person: np.ndarray | None,
    reactor: np.ndarray | None,
    *,
    stamp: float | Time,
    frame_id: str,
    ns: str = "molam",
    line_width: float = 0.03,
    lifetime: float = 0.5,
    person_color: Sequence[float] = PERSON_COLOR,
    reactor_color: Sequence[float] = REACTOR_COLOR,
) -> MarkerArray:
    """Two SMPL stick figures for RViz: the observed person and the reaction, (22, 3) each.

    One LINE_LIST marker per skeleton (namespaces `<ns>/person` and `<ns>/reactor`, id 0), a
    segment per SMPL bone, positions taken as they are in `frame_id` (convert Y-up data first if
    the fixed frame is Z-up). A skeleton given as None is sent as DELETE so a stale figure does
    not linger; `lifetime` (seconds, 0 = forever) removes figures when publishing stops.
    """
    if not math.isfinite(line_width) or line_width <= 0:
        raise ValueError(f"line_width must be > 0 metres, got {line_width}")
    header = _header(stamp, frame_id)
    markers = [
        _skeleton_marker(
            joints, ns=f"{ns}/{role}", color=color, header=header, line_width=line_width, lifetime=lifetime
        )
        for role, joints, color in (("person", person, person_color), ("reactor", reactor, reactor_color))
    ]
    return MarkerArray(markers=markers)


def _format_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            raise ValueError(f"diagnostic value {key!r} is {value}")
        return f"{float(value):.6g}"
    return str(value)


def percentiles_ms(name: str, seconds: Iterable[float]) -> dict[str, float]:
    """{name_p50, name_p99}: the median and 99th percentile of `seconds`, in milliseconds, for a
    diagnostics message (empty when there are none)."""
    arr = np.asarray(list(seconds), dtype=float) * 1e3
    if arr.size == 0:
        return {}
    return {
        f"{name}_p50": round(float(np.median(arr)), 1),
        f"{name}_p99": round(float(np.percentile(arr, 99)), 1),
    }


def diagnostic_array(
    name: str,
    level: str | int,
    message: str,
    values: Mapping[str, object],
    *,
    stamp: float | Time,
    hardware_id: str = "",
) -> DiagnosticArray:
    """A DiagnosticArray with one status: `level` is OK, WARN, ERROR or STALE (or 0..3).

    Values become key/value strings (floats with 6 significant digits, booleans as true/false);
    a NaN or infinite float is refused like everywhere else.
    """
    if isinstance(level, str):
        if level.upper() not in DIAGNOSTIC_LEVELS:
            raise ValueError(f"unknown diagnostic level {level!r}; expected one of {list(DIAGNOSTIC_LEVELS)}")
        code = DIAGNOSTIC_LEVELS[level.upper()]
    else:
        code = int(level)
        if code not in DIAGNOSTIC_LEVELS.values():
            raise ValueError(f"diagnostic level must be 0..3, got {level}")
    status = DiagnosticStatus(level=bytes([code]), name=name, message=message, hardware_id=hardware_id)
    status.values = [KeyValue(key=str(k), value=_format_value(str(k), v)) for k, v in values.items()]
    return DiagnosticArray(header=_header(stamp, ""), status=[status])
