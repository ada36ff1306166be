"""molam_ros.ros.convert: PersonPose <-> numpy and the builders of everything the nodes publish.

No processes here: conversions are checked on messages, and each built message is put through
rclpy's serialisation, which is what publishing does.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from molam_msgs.msg import PersonPose
from rclpy.serialization import deserialize_message, serialize_message

from molam_ros.motion.skeleton import JOINT_NAMES, PARENTS
from molam_ros.ros import convert
from molam_ros.ros.convert import (
    SMPL_BONES,
    diagnostic_array,
    joint_state,
    joint_trajectory,
    pose_from_msg,
    pose_to_msg,
    skeleton_markers,
    stamp_seconds,
    tf_message,
    time_msg,
)

RNG = np.random.default_rng(0)


def _pose(n: int = 22) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    positions = RNG.normal(size=(n, 3))
    quats = RNG.normal(size=(n, 4))
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    return positions, quats, RNG.uniform(0, 1, size=n)


def _roundtrip(msg: object) -> object:
    return deserialize_message(serialize_message(msg), type(msg))


# --- PersonPose ------------------------------------------------------------------------------


def test_pose_round_trip_keeps_everything_and_flips_quaternion_order() -> None:
    positions, quats, conf = _pose()
    msg = pose_to_msg(
        positions, orientations=quats, confidence=conf, stamp=12.25, frame_id="world", person_id="p7"
    )
    # Inside (w, x, y, z), on the wire (x, y, z, w).
    q0 = msg.orientations[0]
    assert (q0.x, q0.y, q0.z, q0.w) == pytest.approx((quats[0, 1], quats[0, 2], quats[0, 3], quats[0, 0]))
    frame = pose_from_msg(_roundtrip(msg))
    assert frame.joint_names == JOINT_NAMES
    np.testing.assert_allclose(frame.positions, positions)
    np.testing.assert_allclose(frame.orientations, quats)
    np.testing.assert_allclose(frame.confidence, conf, atol=1e-7)  # float32 on the wire
    assert frame.stamp == pytest.approx(12.25) and frame.frame_id == "world" and frame.person_id == "p7"


def test_pose_without_optional_arrays() -> None:
    positions, _, _ = _pose()
    frame = pose_from_msg(pose_to_msg(positions, stamp=1.0, frame_id="", person_id="a"))
    assert frame.orientations is None and frame.confidence is None


@pytest.mark.parametrize(
    ("field", "count", "expected"),
    [
        ("positions", 21, "22 joint_names but 21 positions"),
        ("orientations", 3, "22 joint_names but 3 orientations (expected 22 or none)"),
        ("confidence", 23, "22 joint_names but 23 confidence values (expected 22 or none)"),
    ],
)
def test_pose_from_msg_names_the_lengths_that_disagree(field: str, count: int, expected: str) -> None:
    positions, quats, conf = _pose()
    msg = pose_to_msg(positions, orientations=quats, confidence=conf, stamp=0.0, frame_id="", person_id="p1")
    setattr(
        msg, field, list(getattr(msg, field))[:count] if count < 22 else list(getattr(msg, field)) + [0.5]
    )
    with pytest.raises(ValueError, match="PersonPose from 'p1'") as e:
        pose_from_msg(msg)
    assert expected in str(e.value)


def test_pose_from_msg_refuses_repeated_names_and_nan() -> None:
    positions, _, _ = _pose()
    msg = pose_to_msg(positions, stamp=0.0, frame_id="", person_id="p")
    msg.joint_names[3] = "pelvis"
    with pytest.raises(ValueError, match=r"repeated: \['pelvis'\]"):
        pose_from_msg(msg)
    msg = pose_to_msg(positions, stamp=0.0, frame_id="", person_id="p")
    msg.positions[5].y = float("nan")
    with pytest.raises(
        ValueError, match=r"positions: 1 NaN/infinite value\(s\), the first at index \[5, 1\]"
    ):
        pose_from_msg(msg)
    assert np.isnan(pose_from_msg(msg, allow_nonfinite=True).positions[5, 1])


def test_pose_to_msg_checks_its_inputs() -> None:
    positions, quats, conf = _pose()
    with pytest.raises(ValueError, match="22 joint_names but 21 positions"):
        pose_to_msg(positions[:21], stamp=0.0, frame_id="", person_id="")
    with pytest.raises(ValueError, match=r"expected shape \(N, 3\)"):
        pose_to_msg(positions[:, :2], stamp=0.0, frame_id="", person_id="")
    with pytest.raises(ValueError, match="22 joint_names but 21 orientations"):
        pose_to_msg(positions, orientations=quats[:21], stamp=0.0, frame_id="", person_id="")
    with pytest.raises(ValueError, match=r"confidence must lie in \[0, 1\]"):
        pose_to_msg(positions, confidence=conf + 1, stamp=0.0, frame_id="", person_id="")
    with pytest.raises(ValueError, match="stamp must be"):
        pose_to_msg(positions, stamp=-1.0, frame_id="", person_id="")


def test_smpl_positions_reorders_by_name_and_names_missing_joints() -> None:
    positions, _, _ = _pose()
    order = RNG.permutation(22)
    names = [JOINT_NAMES[i] for i in order] + ["nose"]
    msg = pose_to_msg(
        np.vstack([positions[order], [[9, 9, 9]]]), joint_names=names, stamp=0.0, frame_id="", person_id="t"
    )
    np.testing.assert_allclose(pose_from_msg(msg).smpl_positions(), positions)
    short = pose_to_msg(positions[1:], joint_names=JOINT_NAMES[1:], stamp=0.0, frame_id="", person_id="t")
    with pytest.raises(ValueError, match=r"lacks SMPL joint\(s\) \['pelvis'\]"):
        pose_from_msg(short).smpl_positions()


def test_time_conversions_are_exact() -> None:
    t = time_msg(1.5)
    assert (t.sec, t.nanosec) == (1, 500_000_000)
    assert stamp_seconds(time_msg(1_700_000_000.123456789)) == pytest.approx(
        1_700_000_000.123456789, abs=1e-6
    )
    with pytest.raises(ValueError):
        time_msg(float("inf"))


# --- builders refuse what must never be published --------------------------------------------

BAD = [float("nan"), float("inf"), -float("inf")]


@pytest.mark.parametrize("bad", BAD)
@pytest.mark.parametrize(
    "build",
    [
        lambda x: pose_to_msg(x, stamp=0.0, frame_id="", person_id=""),
        lambda x: pose_to_msg(
            x[:, :3], orientations=np.c_[x, x[:, :1]], stamp=0.0, frame_id="", person_id=""
        ),
        lambda x: joint_trajectory([f"j{i}" for i in range(3)], x[:4], dt=0.1, stamp=0.0),
        lambda x: joint_trajectory(
            [f"j{i}" for i in range(3)], np.zeros((4, 3)), velocities=x[:4], dt=0.1, stamp=0.0
        ),
        lambda x: joint_state(["a", "b", "c"], x[0], stamp=0.0),
        lambda x: joint_state(["a", "b", "c"], np.zeros(3), x[0], stamp=0.0),
        lambda x: skeleton_markers(x, None, stamp=0.0, frame_id="world"),
        lambda x: skeleton_markers(None, x, stamp=0.0, frame_id="world"),
        lambda x: diagnostic_array("molam", "OK", "", {"latency_ms": float(x[0, 0])}, stamp=0.0),
    ],
    ids=["pose", "orientation", "traj-pos", "traj-vel", "js-pos", "js-vel", "person", "reactor", "diag"],
)
def test_builders_refuse_nan_and_inf(build: Callable[[np.ndarray], object], bad: float) -> None:
    x = np.ones((22, 3))
    x[0, 0] = bad
    with pytest.raises(ValueError, match="NaN/infinite|is (nan|inf|-inf)"):
        build(x)


# --- joint commands --------------------------------------------------------------------------


def test_joint_trajectory_timing_and_finite_difference_velocities() -> None:
    names = ["hip", "knee"]
    dt = 1 / 30
    t = np.arange(5) * dt
    positions = np.stack([0.5 * t, -2.0 * t], axis=1)  # constant velocities 0.5 and -2 rad/s
    traj = _roundtrip(joint_trajectory(names, positions, dt=dt, stamp=100.0, frame_id="base"))
    assert traj.joint_names == names and traj.header.frame_id == "base"
    assert stamp_seconds(traj.header.stamp) == pytest.approx(100.0)
    # First point one dt ahead of the stamp (still in the future on arrival), then every dt.
    times = [stamp_seconds(p.time_from_start) for p in traj.points]
    np.testing.assert_allclose(times, dt * np.arange(1, 6), atol=1e-9)
    for p, q in zip(traj.points, positions, strict=True):
        np.testing.assert_allclose(p.positions, q)
        np.testing.assert_allclose(p.velocities, [0.5, -2.0], atol=1e-9)
    explicit = joint_trajectory(
        names, positions, dt=dt, stamp=0.0, velocities=np.ones((5, 2)), first_point_time=0.0
    )
    assert list(explicit.points[2].velocities) == [1.0, 1.0]
    assert stamp_seconds(explicit.points[0].time_from_start) == 0.0
    single = joint_trajectory(names, positions[:1], dt=dt, stamp=0.0)
    assert list(single.points[0].velocities) == [0.0, 0.0]


def test_joint_trajectory_checks_shapes_and_timing() -> None:
    with pytest.raises(ValueError, match=r"trajectory positions: expected shape \(N, 2\), got \(4, 3\)"):
        joint_trajectory(["a", "b"], np.zeros((4, 3)), dt=0.1, stamp=0.0)
    with pytest.raises(ValueError, match=r"trajectory velocities: expected shape \(4, 2\), got \(3, 2\)"):
        joint_trajectory(["a", "b"], np.zeros((4, 2)), velocities=np.zeros((3, 2)), dt=0.1, stamp=0.0)
    with pytest.raises(ValueError, match="dt must be"):
        joint_trajectory(["a", "b"], np.zeros((4, 2)), dt=0.0, stamp=0.0)
    with pytest.raises(ValueError, match="no points"):
        joint_trajectory(["a", "b"], np.zeros((0, 2)), dt=0.1, stamp=0.0)


def test_joint_state() -> None:
    msg = _roundtrip(joint_state(["a", "b"], [0.1, 0.2], [1.0, -1.0], stamp=3.0))
    assert msg.name == ["a", "b"] and list(msg.position) == [0.1, 0.2] and list(msg.velocity) == [1.0, -1.0]
    assert list(joint_state(["a"], [0.0], stamp=0.0).velocity) == []
    with pytest.raises(ValueError, match=r"expected shape \(2\), got \(3,\)"):
        joint_state(["a", "b"], [0.1, 0.2, 0.3], stamp=0.0)


# --- visualisation and diagnostics -----------------------------------------------------------


def test_skeleton_markers_draw_every_smpl_bone_for_both_people() -> None:
    person, reactor = RNG.normal(size=(22, 3)), RNG.normal(size=(22, 3))
    arr = _roundtrip(skeleton_markers(person, reactor, stamp=5.0, frame_id="map"))
    assert [m.ns for m in arr.markers] == ["molam/person", "molam/reactor"]
    assert len(SMPL_BONES) == 21 and {c for _, c in SMPL_BONES} == set(range(1, 22))
    for m, joints, color in zip(
        arr.markers, (person, reactor), (convert.PERSON_COLOR, convert.REACTOR_COLOR), strict=True
    ):
        assert m.type == m.LINE_LIST and m.action == m.ADD and m.header.frame_id == "map"
        assert len(m.points) == 42 and m.scale.x > 0
        assert (m.color.r, m.color.g, m.color.b, m.color.a) == pytest.approx(color)
        # Segment k joins parent and child of bone k.
        j = 7
        a, b = m.points[2 * (j - 1)], m.points[2 * (j - 1) + 1]
        np.testing.assert_allclose([a.x, a.y, a.z], joints[PARENTS[j]])
        np.testing.assert_allclose([b.x, b.y, b.z], joints[j])
    gone = skeleton_markers(person, None, stamp=5.0, frame_id="map")
    assert gone.markers[1].action == gone.markers[1].DELETE and gone.markers[1].ns == "molam/reactor"
    with pytest.raises(ValueError, match=r"expected shape \(22, 3\)"):
        skeleton_markers(person[:20], None, stamp=0.0, frame_id="map")


def test_diagnostic_array_levels_and_values() -> None:
    arr = _roundtrip(
        diagnostic_array(
            "molam/reaction",
            "warn",
            "falling behind",
            {"lag_s": 0.123456789, "ok": False, "steps": 12},
            stamp=1.0,
        )
    )
    status = arr.status[0]
    assert status.level == b"\x01" and status.name == "molam/reaction" and status.message == "falling behind"
    assert {kv.key: kv.value for kv in status.values} == {"lag_s": "0.123457", "ok": "false", "steps": "12"}
    assert diagnostic_array("x", 2, "", {}, stamp=0.0).status[0].level == b"\x02"
    with pytest.raises(ValueError, match="unknown diagnostic level 'BAD'"):
        diagnostic_array("x", "BAD", "", {}, stamp=0.0)
    with pytest.raises(ValueError, match="0..3"):
        diagnostic_array("x", 7, "", {}, stamp=0.0)


def test_person_pose_is_the_generated_type() -> None:
    assert isinstance(pose_to_msg(np.zeros((22, 3)), stamp=0.0, frame_id="", person_id=""), PersonPose)


def test_tf_message_of_a_bone_tree() -> None:
    from molam_ros.runtime.profiles import load_profile
    from molam_ros.runtime.rig import bone_transforms

    quats = np.tile([1.0, 0.0, 0.0, 0.0], (22, 1))
    quats[18] = [np.sqrt(0.5), 0.0, -np.sqrt(0.5), 0.0]  # left elbow, -90 degrees about +Y
    tree = bone_transforms(load_profile("avatar_vrm"), quats, np.array([1.0, 0.95, 2.0]), world="map")
    msg = tf_message(tree, stamp=12.5, world_frame="map", prefix="bob/")
    by_child = {t.child_frame_id: t for t in msg.transforms}
    assert len(by_child) == 22 and by_child["bob/hips"].header.frame_id == "map"
    assert by_child["bob/leftLowerArm"].header.frame_id == "bob/leftUpperArm"
    r = by_child["bob/leftLowerArm"].transform.rotation  # ROS order (x, y, z, w)
    assert (r.x, r.y, r.z, r.w) == pytest.approx((0.0, -np.sqrt(0.5), 0.0, np.sqrt(0.5)))
    t = by_child["bob/hips"].transform.translation
    assert (t.x, t.y, t.z) == (1.0, 0.95, 2.0) and stamp_seconds(msg.transforms[0].header.stamp) == 12.5
    bad = [type(tree[0])("map", "hips", np.array([np.nan, 0, 0]), tree[0].rotation)]
    with pytest.raises(ValueError, match="NaN"):
        tf_message(bad, stamp=1.0, world_frame="map")
