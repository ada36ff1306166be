"""The simulated robot's trajectory interpolation follows joint_trajectory_controller's rules
(molam_ros/sim/trajectory.py): no MuJoCo needed."""

from __future__ import annotations

import numpy as np

from molam_ros.sim.execute import trajectory_messages
from molam_ros.sim.trajectory import TrajectoryFollower, hermite


def test_hermite_meets_both_ends_in_position_and_velocity() -> None:
    p0, v0, p1, v1 = np.array([0.0, 1.0]), np.array([1.0, 0.0]), np.array([1.0, -1.0]), np.array([0.0, 2.0])
    for t, (p, v) in ((2.0, (p0, v0)), (2.5, (p1, v1))):
        pos, vel = hermite(t, 2.0, 2.5, p0, v0, p1, v1)
        assert np.allclose(pos, p) and np.allclose(vel, v)
    # The velocity is the derivative of the position.
    eps = 1e-6
    a, _ = hermite(2.2 - eps, 2.0, 2.5, p0, v0, p1, v1)
    b, _ = hermite(2.2 + eps, 2.0, 2.5, p0, v0, p1, v1)
    assert np.allclose((b - a) / (2 * eps), hermite(2.2, 2.0, 2.5, p0, v0, p1, v1)[1], atol=1e-5)


def test_points_with_velocities_are_splined_without_them_linear_then_held() -> None:
    f = TrajectoryFollower(np.zeros(1))
    f.set(0.0, 0.0, np.array([1.0, 2.0]), np.array([[1.0], [3.0]]), None)
    assert np.allclose(f.sample(0.5)[0], [0.5]) and np.allclose(f.sample(1.5), ([2.0], [2.0]))
    assert np.allclose(f.sample(5.0), ([3.0], [0.0]))  # after the last point: held, velocity 0
    f.set(5.0, None, np.array([1.0]), np.array([[4.0]]), np.array([[0.0]]))  # start None: on arrival
    pos, vel = f.sample(5.5)
    assert np.allclose(pos, [3.5]) and vel[0] > 0  # Hermite from (3, 0) to (4, 0): 3.5 at half time


def test_a_new_trajectory_starts_from_the_current_reference_with_no_jump() -> None:
    f = TrajectoryFollower(np.zeros(2))
    f.set(
        0.0, 0.0, np.arange(1, 11) * 0.1, np.linspace(0.1, 1.0, 10)[:, None] * [1.0, -1.0], np.ones((10, 2))
    )
    before = f.sample(0.35)
    # Arrives at 0.35, stamped at 0.3: its first point (0.3) is already due and dropped, as JTC does.
    f.set(0.35, 0.3, np.array([0.0, 0.1, 0.2]), np.full((3, 2), 2.0), np.zeros((3, 2)))
    after = f.sample(0.35)
    assert np.allclose(before[0], after[0]) and np.allclose(before[1], after[1])
    assert np.allclose(f.sample(0.5)[0], [2.0, 2.0])
    # A trajectory whose points are all past is ignored: the current one goes on.
    f.set(1.0, 0.1, np.array([0.1, 0.2]), np.zeros((2, 2)), None)
    assert np.allclose(f.sample(1.0)[0], [2.0, 2.0]) and f.received == 2


def test_messages_are_the_nodes_stride_padded_to_the_horizon() -> None:
    pos = np.arange(12, dtype=float)[:, None]
    msgs = trajectory_messages(pos, np.ones_like(pos), stride=4, horizon=6, t0=10.0)
    assert [round(m[0], 6) for m in msgs] == [round(10 + k / 30, 6) for k in (4, 8, 12)]
    now, times, p, v = msgs[1]
    assert np.allclose(times, np.arange(1, 7) / 30) and p[:, 0].tolist() == [4, 5, 6, 7, 7, 7]
    assert v[:, 0].tolist() == [1, 1, 1, 1, 0, 0]
