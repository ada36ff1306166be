"""sim_node: a simulated robot that executes the JointTrajectory stream we publish (MuJoCo, optional).

The node is thin: the robot, its servos, the trajectory interpolation and the measures are the
core's (molam_ros/sim/: a MuJoCo model built from the profile's kinematics, a fixed base, PD servos
at 1 kHz following the trajectory as joint_trajectory_controller would). It needs the optional
extra: `pip install molam_ros[sim]` (mujoco); without it the node exits at start with one line
saying so.

    sim_node --ros-args -p profile:=unitree_h1
    molam bringup --replay --sim        # with the rest of the node set

Subscriptions:
- `joint_trajectory_topic` [trajectory_msgs/JointTrajectory], reliable, keep last 10: the commands
  (reaction_node's output). The trajectory replaces the one being followed, from its
  `header.stamp` (zero: on arrival), as JTC does. Joints are matched by name; a message that lacks
  a profile joint or names an unknown one is dropped and counted.

Publications:
- `joint_states_topic` [sensor_msgs/JointState], reliable, keep last 10, at `publish_rate`: the
  simulated robot's measured positions (rad), velocities (rad/s) and servo torques (N m).
- `diagnostics_topic` [diagnostic_msgs/DiagnosticArray], every `diagnostics_period`: tracking error
  of the period (p50/p99/max, rad), self-collisions (events in all, in the period, the pairs
  touching now and the deepest overlap), steps at a joint limit, dropped messages. WARN while two
  links touch or when a collision happened in the period.

The physics runs in the publish timer, up to the node's clock, so simulated time follows the
clock (a slow machine makes the robot lag, never run ahead of the commands).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory

from molam_ros.ros.convert import diagnostic_array, stamp_seconds
from molam_ros.ros.spin import run_node
from molam_ros.runtime.profiles import load_profile

NODE_NAME = "sim_node"
RELIABLE_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)

# Every parameter: name -> (default, description, (min, max) for numbers). All read-only.
# config/sim_node.yaml lists the same defaults (a test keeps them equal).
PARAMETERS: dict[str, tuple[object, str, tuple[float, float] | None]] = {
    "profile": (
        "unitree_g1",
        "robot profile name (config/profiles) or YAML path; needs a kinematics: section",
        None,
    ),
    "joint_trajectory_topic": ("/molam/joint_trajectory", "in: trajectory_msgs/JointTrajectory", None),
    "joint_states_topic": (
        "/molam/sim/joint_states",
        "out: sensor_msgs/JointState, the simulated robot",
        None,
    ),
    "diagnostics_topic": ("/molam/sim/diagnostics", "out: diagnostic_msgs/DiagnosticArray", None),
    "publish_rate": (100.0, "Hz of JointState (and of physics catch-up)", (1.0, 1000.0)),
    "diagnostics_period": (1.0, "s between diagnostics messages", (0.05, 60.0)),
    "timestep": (0.001, "s per physics step (servo rate 1/timestep)", (0.0001, 0.002)),
    "kp": (400.0, "N m/rad, servo stiffness of every joint", (1.0, 10000.0)),
    "kv": (20.0, "N m s/rad, servo damping of every joint", (0.0, 1000.0)),
}


class SimNode(Node):
    """JointTrajectory in, the simulated robot's JointState and self-collision diagnostics out."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        for name, (default, description, bounds) in PARAMETERS.items():
            descriptor = ParameterDescriptor(description=description, read_only=True)
            if bounds is not None:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=bounds[0], to_value=bounds[1])
                ]
            self.declare_parameter(name, default, descriptor)
        p = {name: self.get_parameter(name).value for name in PARAMETERS}
        try:  # optional dependency: one clear line at start-up instead of a traceback
            from molam_ros.sim.model import SimConfig
            from molam_ros.sim.robot import SimulatedRobot
        except ImportError as e:
            raise RuntimeError(f"sim_node needs MuJoCo: pip install 'molam_ros[sim]' ({e})") from e
        profile = load_profile(p["profile"])
        config = SimConfig(timestep=float(p["timestep"]), kp=float(p["kp"]), kv=float(p["kv"]))
        self.robot: Any = SimulatedRobot(profile, config)
        self.names = profile.joint_names
        self.index = {n: i for i, n in enumerate(self.names)}
        self.t0 = self._now()
        self.counts = {"trajectories": 0, "dropped": 0, "self_collisions": 0, "limit_steps": 0}
        self.create_subscription(
            JointTrajectory, p["joint_trajectory_topic"], self._on_trajectory, RELIABLE_QOS
        )
        self.pub_state = self.create_publisher(JointState, p["joint_states_topic"], RELIABLE_QOS)
        self.pub_diag = self.create_publisher(DiagnosticArray, p["diagnostics_topic"], RELIABLE_QOS)
        self.create_timer(1.0 / float(p["publish_rate"]), self._tick)
        self.create_timer(float(p["diagnostics_period"]), self._diagnostics)
        self.get_logger().info(
            f"simulating {profile.name} ({len(self.names)} joints, servos at {1 / config.timestep:.0f} Hz), "
            f"following {p['joint_trajectory_topic']}"
        )

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        arrival = self._now() - self.t0
        names = list(msg.joint_names)
        if sorted(names) != sorted(self.names) or not msg.points:
            self.counts["dropped"] += 1
            self.get_logger().warn(
                f"trajectory dropped: joints {sorted(set(self.names) ^ set(names))[:4]} differ, "
                f"or no points ({len(msg.points)})",
                throttle_duration_sec=2.0,
            )
            return
        order = [names.index(n) for n in self.names]
        pos = np.array([[pt.positions[i] for i in order] for pt in msg.points])
        has_vel = all(len(pt.velocities) == len(names) for pt in msg.points)
        vel = np.array([[pt.velocities[i] for i in order] for pt in msg.points]) if has_vel else None
        times = np.array([stamp_seconds(pt.time_from_start) for pt in msg.points])
        stamp = stamp_seconds(msg.header.stamp)
        start = stamp - self.t0 if stamp > 0 else None  # a zero stamp: start on arrival
        self.robot.send_trajectory(arrival=arrival, start=start, times=times, positions=pos, velocities=vel)
        self.counts["trajectories"] += 1

    def _tick(self) -> None:
        now = self._now()
        self.robot.advance(now - self.t0)
        q, qd = self.robot.state()
        msg = JointState(name=list(self.names), position=q.tolist(), velocity=qd.tolist())
        msg.effort = self.robot.data.actuator_force[self.robot.rm.actuators].tolist()
        msg.header.stamp = self.get_clock().now().to_msg()
        self.pub_state.publish(msg)

    def _diagnostics(self) -> None:
        report = self.robot.report
        summary = report.summary()
        self.counts["self_collisions"] += len(report.collisions)
        self.counts["limit_steps"] += report.limit_steps
        touching = self.robot.touching
        values: dict[str, object] = {
            "sim_seconds": round(self.robot.time, 2),
            "trajectories": self.counts["trajectories"],
            "dropped": self.counts["dropped"],
            "tracking_error_p50_rad": round(summary["tracking_error_p50_rad"], 4),
            "tracking_error_p99_rad": round(summary["tracking_error_p99_rad"], 4),
            "tracking_error_max_rad": round(summary["tracking_error_max_rad"], 4),
            "self_collisions": self.counts["self_collisions"],
            "self_collisions_in_period": len(report.collisions),
            "touching": "; ".join(f"{a}|{b}" for a, b in touching),
            "max_overlap_m": round(max((c.depth for c in report.collisions), default=0.0), 4),
            "limit_steps": self.counts["limit_steps"],
        }
        level, message = "OK", "following"
        if touching or report.collisions:
            level, message = (
                "WARN",
                f"self-collision: {len(report.collisions)} in the period, {len(touching)} touching",
            )
        self.robot.reset_report()
        self.pub_diag.publish(diagnostic_array(NODE_NAME, level, message, values, stamp=self._now()))


def main(args: list[str] | None = None) -> None:
    run_node(SimNode, NODE_NAME, args=args)


if __name__ == "__main__":
    main()
