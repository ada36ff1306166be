"""Following a stream of short JointTrajectory messages as joint_trajectory_controller does.

ros2_controllers' joint_trajectory_controller (JTC), on its topic interface, with its default
spline interpolation, which is what a position-controlled humanoid runs:
- a new trajectory replaces the one being followed (no queueing); its start time is
  `header.stamp`, or its arrival when the stamp is zero; each point is due at start +
  `time_from_start`;
- from the moment it arrives, the reference goes from the state the controller was commanding
  then (its last reference, position and velocity: the "open loop" choice, so tracking error is
  not fed back into the plan) to the first point, then from point to point;
- between two points: a cubic Hermite spline when both carry velocities, linear otherwise (JTC
  also does quintic with accelerations; molam never sends accelerations);
- after the last point: the last position held, velocity 0.

`TrajectoryFollower.sample(t)` gives the reference (position, velocity) at any time, so the
simulated servos (sim/robot.py) can run at their own rate (1 kHz) between the 7.5 Hz messages.
No ROS and no MuJoCo here: the sim node hands over plain arrays.
"""

from __future__ import annotations

import numpy as np


def hermite(
    t: float, t0: float, t1: float, p0: np.ndarray, v0: np.ndarray, p1: np.ndarray, v1: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cubic Hermite spline from (p0, v0) at t0 to (p1, v1) at t1, at time t: (position, velocity)."""
    h = t1 - t0
    if h <= 0:
        return p1.copy(), v1.copy()
    s = min(max((t - t0) / h, 0.0), 1.0)
    s2, s3 = s * s, s * s * s
    pos = (
        (2 * s3 - 3 * s2 + 1) * p0 + (s3 - 2 * s2 + s) * h * v0 + (-2 * s3 + 3 * s2) * p1 + (s3 - s2) * h * v1
    )
    vel = (
        ((6 * s2 - 6 * s) * p0 + (-6 * s2 + 6 * s) * p1) / h
        + (3 * s2 - 4 * s + 1) * v0
        + (3 * s2 - 2 * s) * v1
    )
    return pos, vel


class TrajectoryFollower:
    """The reference of a JTC following the trajectories given to `set` (module docstring)."""

    def __init__(self, initial: np.ndarray) -> None:
        q = np.asarray(initial, dtype=np.float64)
        self._times = np.zeros(1)
        self._pos = q[None].copy()
        self._vel = np.zeros_like(self._pos)
        self._spline = True
        self.received = 0

    def set(
        self,
        arrival: float,
        start: float | None,
        times: np.ndarray,
        positions: np.ndarray,
        velocities: np.ndarray | None,
    ) -> None:
        """A new trajectory: point k due at `start + times[k]` (s); `start` None means its arrival.

        Points due before the arrival are dropped (JTC does the same); with none left the
        trajectory is ignored and the current one goes on.
        """
        pos = np.asarray(positions, dtype=np.float64)
        vel = None if velocities is None else np.asarray(velocities, dtype=np.float64)
        due = (arrival if start is None else start) + np.asarray(times, dtype=np.float64)
        keep = due > arrival
        if not keep.any():
            return
        q0, v0 = self.sample(arrival)
        self._times = np.concatenate([[arrival], due[keep]])
        self._pos = np.concatenate([q0[None], pos[keep]])
        self._spline = vel is not None
        self._vel = np.concatenate([v0[None], vel[keep] if vel is not None else np.zeros_like(pos[keep])])
        self.received += 1

    @property
    def end_time(self) -> float:
        return float(self._times[-1])

    def sample(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """(position, velocity) of the reference at time t."""
        times = self._times
        if t >= times[-1] or len(times) == 1:
            return self._pos[-1].copy(), np.zeros(self._pos.shape[1])
        if t <= times[0]:
            return self._pos[0].copy(), self._vel[0].copy()
        k = int(np.searchsorted(times, t, side="right")) - 1
        t0, t1 = times[k], times[k + 1]
        if self._spline:
            return hermite(t, t0, t1, self._pos[k], self._vel[k], self._pos[k + 1], self._vel[k + 1])
        s = (t - t0) / (t1 - t0)
        return self._pos[k] + s * (self._pos[k + 1] - self._pos[k]), (self._pos[k + 1] - self._pos[k]) / (
            t1 - t0
        )
