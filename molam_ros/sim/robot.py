"""The simulated robot: a profile's MuJoCo model following our JointTrajectory stream.

    robot = SimulatedRobot(load_profile("unitree_g1"))
    robot.send_trajectory(arrival=t, start=t, times=..., positions=..., velocities=...)   # each message
    robot.advance(until=t + 0.1)                                                 # physics at 1 kHz
    robot.state(), robot.report()

Between messages the reference comes from `TrajectoryFollower` (JTC's interpolation,
sim/trajectory.py) and the servos of sim/model.py track it every physics step. What is measured,
every step (so a collision between two 30 Hz frames is not missed):
- tracking error: |q - q_ref| per joint (rad);
- self-collisions: capsule pairs closer than `SimConfig.collision_margin`, counted as events (a
  pair that starts touching) with their first time and depth, and as touching time;
- joint limits: steps where a joint sits at a limit (within 1e-3 rad), MuJoCo's limit constraint
  doing the work a hard stop would.

`colliding_pairs(q)` checks a pose kinematically (no dynamics): which capsule pairs overlap when
the joints are at q. That is the check a planner would make; the test of a deliberately colliding
pose uses it and the dynamic run both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from molam_ros.runtime.profiles import Profile
from molam_ros.sim.model import RobotModel, SimConfig, build_model
from molam_ros.sim.trajectory import TrajectoryFollower

LIMIT_TOL = 1e-3  # rad: this close to a limit counts as at it


@dataclass
class CollisionEvent:
    """Two links started touching at `time` (s); `depth` is the deepest overlap while they touched (m)."""

    time: float
    links: tuple[str, str]
    depth: float


@dataclass
class SimReport:
    """What the simulated robot did since it started (or since `reset_report`)."""

    seconds: float = 0.0
    steps: int = 0
    tracking_error: list[float] = field(default_factory=list)  # max over joints, one per step (rad)
    collisions: list[CollisionEvent] = field(default_factory=list)
    touching_steps: int = 0
    limit_steps: int = 0  # steps with some joint at a limit
    limit_joints: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, float]:
        """The figures as plain numbers (rad for tracking, per minute for collisions)."""
        err = np.asarray(self.tracking_error) if self.tracking_error else np.zeros(1)
        minutes = max(self.seconds / 60.0, 1e-9)
        return {
            "seconds": round(self.seconds, 3),
            "tracking_error_p50_rad": float(np.median(err)),
            "tracking_error_p99_rad": float(np.percentile(err, 99)),
            "tracking_error_max_rad": float(err.max()),
            "self_collisions": len(self.collisions),
            "self_collisions_per_min": len(self.collisions) / minutes,
            "limit_steps": self.limit_steps,
        }


class SimulatedRobot:
    """A fixed-base simulated robot that follows trajectories (module docstring)."""

    def __init__(
        self, profile: Profile, config: SimConfig | None = None, initial: np.ndarray | None = None
    ) -> None:
        self.config = config or SimConfig()
        self.rm: RobotModel = build_model(profile, self.config)
        self.profile = profile
        self.model = self.rm.model
        self.data = mujoco.MjData(self.model)
        q0 = profile.neutral if initial is None else np.asarray(initial, dtype=np.float64)
        self.data.qpos[self.rm.qpos_adr] = q0
        mujoco.mj_forward(self.model, self.data)
        self.follower = TrajectoryFollower(q0)
        self.time = 0.0
        self._ratio = np.full(profile.num_joints, self.config.kv / self.config.kp)
        self._lower, self._upper = profile.lower, profile.upper
        self._touching: dict[tuple[str, str], CollisionEvent] = {}
        self.report = SimReport()

    def reset_report(self) -> None:
        """Start a new report (a node's next diagnostics period); pairs still touching stay one event."""
        self.report = SimReport()

    @property
    def touching(self) -> list[tuple[str, str]]:
        """Link pairs touching now."""
        return sorted(self._touching)

    # --- input

    def send_trajectory(
        self,
        *,
        arrival: float,
        start: float | None,
        times: np.ndarray,
        positions: np.ndarray,
        velocities: np.ndarray | None = None,
    ) -> None:
        """A JointTrajectory's content (profile joint order), arriving at `arrival`, its points due at
        `start` + times (s; `start` None: on arrival, a zero header stamp)."""
        if arrival > self.time:
            self.advance(arrival)
        self.follower.set(arrival, start, times, positions, velocities)

    # --- physics

    def advance(self, until: float) -> None:
        """Step the physics up to time `until` (s), the servos tracking the reference."""
        m, d, rm = self.model, self.data, self.rm
        dt = m.opt.timestep
        while self.time + 0.5 * dt < until:
            q_ref, qd_ref = self.follower.sample(self.time + dt)
            d.ctrl[rm.actuators] = q_ref + self._ratio * qd_ref
            mujoco.mj_step(m, d)
            self.time += dt
            self._measure(q_ref)

    def _measure(self, q_ref: np.ndarray) -> None:
        d, rm, rep = self.data, self.rm, self.report
        q = d.qpos[rm.qpos_adr]
        rep.steps += 1
        rep.seconds += self.model.opt.timestep
        rep.tracking_error.append(float(np.abs(q - q_ref).max()))
        at = (q <= self._lower + LIMIT_TOL) | (q >= self._upper - LIMIT_TOL)
        if at.any():
            rep.limit_steps += 1
            rep.limit_joints.update(np.asarray(self.profile.joint_names)[at].tolist())
        now = self._pairs()
        if now:
            rep.touching_steps += 1
        for pair, depth in now.items():
            if pair in self._touching:
                self._touching[pair].depth = max(self._touching[pair].depth, depth)
            else:
                event = CollisionEvent(self.time, pair, depth)
                self._touching[pair] = event
                rep.collisions.append(event)
        for pair in list(self._touching):
            if pair not in now:
                del self._touching[pair]

    def _pairs(self, data: mujoco.MjData | None = None) -> dict[tuple[str, str], float]:
        """Touching link pairs -> overlap (m), from the contacts of `data` (default: the robot's)."""
        d = self.data if data is None else data
        out: dict[tuple[str, str], float] = {}
        if d.ncon == 0:  # the usual case, and reading the contact arrays costs more than the step
            return out
        contact = d.contact
        for g1, g2, dist in zip(contact.geom1, contact.geom2, contact.dist, strict=True):
            if dist < self.config.collision_margin:
                a, b = sorted((self.rm.geom_link[g1], self.rm.geom_link[g2]))
                out[(a, b)] = max(out.get((a, b), 0.0), float(-dist))
        return out

    # --- queries

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """Joint positions (rad) and velocities (rad/s), profile order."""
        return self.data.qpos[self.rm.qpos_adr].copy(), self.data.qvel[self.rm.dof_adr].copy()

    def colliding_pairs(self, q: np.ndarray) -> dict[tuple[str, str], float]:
        """Link pairs that overlap with the joints at q (kinematic check; the simulation is not moved)."""
        scratch = mujoco.MjData(self.model)
        scratch.qpos[self.rm.qpos_adr] = np.asarray(q, dtype=np.float64)
        mujoco.mj_forward(self.model, scratch)
        return self._pairs(scratch)

    def site_positions(self) -> dict[str, np.ndarray]:
        """World positions (m, z up) of the profile's sites (SMPL joint names), now."""
        return {
            mujoco.mj_id2name(self.model, mujoco.mjtObj.mjOBJ_SITE, i): self.data.site_xpos[i].copy()
            for i in range(self.model.nsite)
        }
