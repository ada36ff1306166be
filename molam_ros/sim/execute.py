"""Replaying a node's command stream on the simulated robot, message by message, as DDS would deliver it.

The reaction node (and teleoperation) publishes, every `stride` frames, a JointTrajectory of the
newest frames padded to `horizon` frames by holding the last one, stamped at publication and timed
one frame ahead (ros/convert.py `joint_trajectory`). `execute_stream` sends the same messages to a
`SimulatedRobot` at the same times, so a test or a benchmark measures what a robot would do with
exactly what the node publishes, without DDS in the loop (the sim node, ros/sim_node.py, is the
same robot behind a subscription).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # MuJoCo is an optional extra: the message timing above needs none of it
    from molam_ros.sim.robot import SimReport, SimulatedRobot


def trajectory_messages(
    positions: np.ndarray,
    velocities: np.ndarray,
    *,
    fps: float = 30.0,
    stride: int = 4,
    horizon: int = 15,
    t0: float = 0.0,
) -> list[tuple[float, np.ndarray, np.ndarray, np.ndarray]]:
    """(publish time, times from start, positions, velocities) of each message of a command stream.

    positions, velocities (T, J): one command per frame at `fps`; frame i is known at
    t0 + (i + 1) / fps, and published with the rest of its stride.
    """
    pos = np.asarray(positions, dtype=np.float64)
    vel = np.asarray(velocities, dtype=np.float64)
    out = []
    for start in range(0, len(pos) - stride + 1, stride):
        p, v = pos[start : start + stride], vel[start : start + stride]
        if len(p) < horizon:
            pad = horizon - len(p)
            p = np.concatenate([p, np.repeat(p[-1:], pad, axis=0)])
            v = np.concatenate([v, np.zeros((pad, v.shape[1]))])
        now = t0 + (start + stride) / fps
        out.append((now, (1 + np.arange(len(p))) / fps, p, v))
    return out


def execute_stream(
    robot: SimulatedRobot,
    positions: np.ndarray,
    velocities: np.ndarray,
    *,
    fps: float = 30.0,
    stride: int = 4,
    horizon: int = 15,
    settle: float = 0.5,
) -> SimReport:
    """Send a command stream's messages to `robot` at their times, then let it settle; its report."""
    t0 = robot.time
    for now, times, p, v in trajectory_messages(
        positions, velocities, fps=fps, stride=stride, horizon=horizon, t0=t0
    ):
        robot.send_trajectory(arrival=now, start=now, times=times, positions=p, velocities=v)
    robot.advance(robot.follower.end_time + settle)
    return robot.report
