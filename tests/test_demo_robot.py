"""The demo's robot panel (ros/demo_report.py robot_body, sim/body.py): the simulated robot's
executed joints drawn as its capsules, standing where the reactor stands, next to the person.
Skipped without the optional MuJoCo extra."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mujoco", reason="MuJoCo is the optional extra molam_ros[sim]")

from molam_ros.data.synth import generate_clip  # noqa: E402
from molam_ros.motion.canonical import facing_angle  # noqa: E402
from molam_ros.ros.demo_report import Recording, render_runs, robot_body  # noqa: E402
from molam_ros.runtime.profiles import load_profile  # noqa: E402
from molam_ros.sim.body import RobotBody, place  # noqa: E402


def _recording(profile, frames: int = 24) -> Recording:  # noqa: ANN001
    clip = generate_clip(7, "wave", "friendly")
    actor = clip.meta["actor"]
    q = np.repeat(profile.neutral[None], frames, 0)
    q[:, profile.joint_names.index("right_shoulder_roll_joint")] = np.linspace(0, -1.2, frames)  # arm out
    q[:4] = np.nan  # the sim had not started for the first frames
    return Recording(
        times=np.arange(frames) / 30.0,
        person=clip.positions[actor, :frames],
        reactor=clip.positions[1 - actor, :frames],
        reference=None,
        joints=None,
        said=[],
        replies=[],
        counts={},
        sim=(q, list(profile.joint_names)),
    )


@pytest.mark.parametrize("name", ["unitree_g1", "unitree_h1"])
def test_the_robot_stands_where_the_reactor_stands_facing_the_same_way(name: str) -> None:
    profile = load_profile(name)
    rec = _recording(profile)
    segments, radii = robot_body(rec, profile)
    assert segments.shape[0] == len(rec.times) and segments.shape[1:] == (len(radii), 2, 3)
    height = profile.kinematics.base_height
    for t in (0, len(rec.times) - 1):
        ends = segments[t].reshape(-1, 3)
        pelvis = rec.reactor[t, 0]
        centre = ends[:, [0, 2]].mean(axis=0)
        assert np.linalg.norm(centre - pelvis[[0, 2]]) < 0.25  # under the reactor's pelvis
        assert ends[:, 1].min() < 0.1 and 1.0 < ends[:, 1].max() < 1.9 and height > 0.5  # on the floor
    # Its forward is the reactor's: a point 1 m ahead of the robot lands 1 m along the heading.
    yaw = float(facing_angle(rec.reactor)[0])
    ahead = place(np.array([[1.0, 0.0, 0.0]]), rec.reactor[0, 0], yaw)[0]
    assert np.allclose(ahead[[0, 2]] - rec.reactor[0, 0, [0, 2]], [np.sin(yaw), np.cos(yaw)], atol=1e-9)
    # The executed joints move the body: the raised arm's capsules move, the first frames (no sim
    # state yet) show the neutral pose.
    body = RobotBody(profile)
    assert np.allclose(segments[0], place(body.segments(profile.neutral), rec.reactor[0, 0], yaw))
    moved = np.abs(segments[-1] - place(body.segments(profile.neutral), rec.reactor[-1, 0], 0.0)).max()
    assert moved > 0.1


def test_the_demo_render_has_a_robot_panel_only_where_the_sim_ran(tmp_path: Path) -> None:
    profile = load_profile("unitree_g1")
    rec = _recording(profile, frames=8)
    written = render_runs([("Be friendly.", rec)], tmp_path, "test", profile)
    from PIL import Image

    gif = Image.open(written[0])
    width_with = gif.size[0]
    no_sim = Recording(**{**rec.__dict__, "sim": None})
    written = render_runs([("Be friendly.", no_sim)], tmp_path, "test", profile)
    assert Image.open(written[0]).size[0] < width_with  # one panel fewer
