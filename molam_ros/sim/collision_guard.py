"""Self-collision guard: the last step of the safety filter keeps every command clear of the robot's body.

Why a guard after the safety filter and not only collision constraints in the IK: mink's IK
(sim/ik_retarget.py) returns a collision-free pose, but what is commanded is the safety filter's
output, and its velocity limit and crossfades move each joint independently towards the target (a
straight line in joint space). A straight line between two collision-free poses can cross the
body: measured, the simulated G1 put its hand into its hip 3.2 times a minute with IK (README,
"The simulated robot"). The axis decomposition, a reaction's retargeting and the ease to neutral
have no collision model at all. So the check belongs where every command passes, after the
velocity limit, and its correction must respect the velocity limit too.

`CollisionGuard.project(previous, candidate, dt, max_velocity)`, called by `SafetyFilter.update`
(runtime/safety.py, its `guard` argument) with the last command and the rate-limited new one:
1. the step previous -> candidate, extended by what the executed robot does after it (`lookahead`
   s more at the step's velocity: the servo's lag, the spline's swing), is checked at its end and
   at points along it (`sweep_step`), with MuJoCo's own collision filter (the pairs the simulated
   robot reports, sim/robot.py), keeping `clearance` metres; clear: the candidate is returned as is
   (the usual case, ~10 us a point);
2. otherwise a small QP (mink, as the IK) moves from `previous` as close as it can to the candidate
   (posture task) in substeps, under the same collision constraint (a pair may close at most
   dt / (dt + lookahead) of its gap in a frame: it slows down as it nears the clearance), the
   joint limits and the velocity limit for `dt`: the arm slides along the body instead of into it;
3. the QP's constraint is linearised and its substeps bend around the other link, while the robot
   goes in a straight line to the command, so the straight (extended) line to the QP's answer is
   swept again; where it comes closer than `accept` of the clearance (and closer than `previous`
   was), the command is the furthest substep of the QP's path whose straight line stays clear, or
   failing that the point along the first substep where it does, which at worst holds `previous`.
A pair that rests closer than `clearance` at the neutral pose (G1's upper arms hang 2.3 mm from its
torso) keeps half its resting distance instead, so resting is never a violation.
A previous command already in contact (a robot started in a bad pose) may only move apart: the
floor of 3 is then its own score.

MuJoCo is an optional extra (`pip install 'molam_ros[sim]'`); `runtime/` never imports this
module, the node builds it when the `collision_guard` parameter asks (agent/reaction_setup.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import mink
import mujoco
import numpy as np

from molam_ros.runtime.profiles import Profile
from molam_ros.sim.mink_limits import DisplacementCollisionLimit
from molam_ros.sim.model import RobotModel, build_model

_MINK_GAIN = 0.85  # mink's default share of a gap a solve may close (lookahead 0)


@dataclass(frozen=True, kw_only=True)
class CollisionGuardConfig:
    """Guard settings (metres, radians).

    clearance: distance kept between any two capsules that may collide in a command; the servo
        lags and the trajectory spline bends between 30 Hz points, so the executed robot needs a
        margin beyond the command's. Measured on the generator test clips: with 2 cm the simulated
        G1 (IK) and H1 (axis) still touched in 3 clips each, with 3 cm in none of those.
    detection_distance: pairs closer than this enter the QP (each substep moves a joint at most
        `sweep_step`, a few centimetres at the hand, so farther pairs cannot reach the clearance).
    iterations: QP solves per projected frame (each re-linearises the distances).
    sweep_step: rad, the most any joint moves between two points checked along a step (a G1
        shoulder may move 0.6 rad in one 30 Hz frame at half its velocity limit: checked only at
        its ends, a hand could pass through the hip between them).
    position_margin: kept from the joint limits (the safety filter's `position_margin`).
    rest_fraction: a pair closer than `clearance` at the neutral pose keeps this fraction of its
        distance there instead.
    accept: the QP's answer is taken when every pair keeps this fraction of its clearance (the QP
        linearises the distances; beyond that the line search decides).
    lookahead: s the executed robot may go on along a command's velocity after the command stops:
        the servo's tracking lag and the controller's spline swing past a point reached at speed
        (sim/trajectory.py). Each step is checked as if it went on for `lookahead` at its own
        velocity (previous + (1 + lookahead / dt) (candidate - previous)), so the distance a pair
        must keep grows with how fast it closes (clearance + closing speed x lookahead), and the
        QP closes at most dt / (dt + lookahead) of a pair's gap per frame: the arm slows down
        before it reaches the clearance instead of stopping there from full speed. 0: the command
        alone is checked (measured: a hug's hands and H1's elbows then touched in execution).
    """

    clearance: float = 0.03
    detection_distance: float = 0.09
    iterations: int = 2
    sweep_step: float = 0.05
    position_margin: float = 0.05
    rest_fraction: float = 0.5
    accept: float = 0.8
    lookahead: float = 0.05

    def __post_init__(self) -> None:
        if not (self.clearance >= 0 and self.detection_distance > self.clearance):
            raise ValueError("CollisionGuardConfig: 0 <= clearance < detection_distance")
        if not (0 < self.rest_fraction <= 1 and 0 < self.accept <= 1):
            raise ValueError("CollisionGuardConfig: rest_fraction and accept must be in (0, 1]")
        if self.iterations < 1 or not self.sweep_step > 0:
            raise ValueError("CollisionGuardConfig: iterations >= 1 and sweep_step > 0")
        if not (np.isfinite(self.lookahead) and self.lookahead >= 0):
            raise ValueError("CollisionGuardConfig: lookahead must be >= 0 s")


class CollisionGuard:
    """Projects commands out of self-collision (module docstring)."""

    def __init__(self, profile: Profile, config: CollisionGuardConfig | None = None) -> None:
        self.config = config or CollisionGuardConfig()
        self.profile = profile
        self.rm: RobotModel = build_model(profile)
        m = self.rm.model
        self._data = mujoco.MjData(m)
        self._pairs, self._required = self._filtered_pairs()
        # A private copy whose collision margin is the clearance: MuJoCo then reports every pair
        # closer than the clearance as a contact with its signed distance.
        self._check_model = build_model(profile).model
        self._check_model.geom_margin[self.rm.collision_geoms] = self.config.clearance
        self._check_data = mujoco.MjData(self._check_model)
        self.configuration = mink.Configuration(m)
        self.posture = mink.PostureTask(m, cost=1.0)
        # One limit per clearance (mink's limit has one minimum distance): the usual one, and each
        # pair that rests closer than that.
        groups: dict[float, list[tuple[list[int], list[int]]]] = {}
        for a, b in self._pairs:
            groups.setdefault(float(self._required[a, b]), []).append(([a], [b]))
        self._collision = [
            DisplacementCollisionLimit(
                mink.CollisionAvoidanceLimit(
                    m,
                    pairs,
                    minimum_distance_from_collisions=clearance,
                    collision_detection_distance=self.config.detection_distance,
                )
            )
            for clearance, pairs in groups.items()
        ]
        self._limits_fixed = [
            mink.ConfigurationLimit(m, min_distance_from_limits=self.config.position_margin)
        ]
        self._velocity: tuple[bytes, mink.VelocityLimit] | None = None
        self.stats: dict[str, int] = {"checked": 0, "projected": 0, "bisected": 0, "failed_qp": 0}

    def _filtered_pairs(self) -> tuple[list[tuple[int, int]], np.ndarray]:
        """Geom pairs MuJoCo's collision filter lets through (contype, excludes, parent-child): the
        pairs the simulated robot reports, found by colliding once with a huge margin; and the
        clearance each pair must keep: `clearance`, or less for a pair closer than that at the
        neutral pose (G1's upper arms hang 2.3 mm from its torso), `rest_fraction` of its distance
        there, so the pose the robot rests in is always allowed."""
        m = build_model(self.profile).model
        m.geom_margin[:] = 100.0
        d = mujoco.MjData(m)
        d.qpos[self.rm.qpos_adr] = self.profile.neutral
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        required = np.full((m.ngeom, m.ngeom), self.config.clearance)
        pairs = set()
        for g1, g2, dist in zip(d.contact.geom1, d.contact.geom2, d.contact.dist, strict=True):
            a, b = int(min(g1, g2)), int(max(g1, g2))
            pairs.add((a, b))
            need = min(self.config.clearance, max(self.config.rest_fraction * float(dist), 1e-4))
            required[a, b] = required[b, a] = min(required[a, b], need)
        return sorted(pairs), required

    @property
    def pairs(self) -> list[tuple[str, str]]:
        """Link pairs that are checked (names of the links their capsules belong to)."""
        return [(self.rm.geom_link[a], self.rm.geom_link[b]) for a, b in self._pairs]

    def score(self, q: np.ndarray) -> float:
        """How clear the joints at q keep the body: the smallest ratio of a pair's distance to the
        clearance it must keep, capped at 1 (1: clear; 0: touching; < 0: overlapping)."""
        m, d = self._check_model, self._check_data
        d.qpos[self.rm.qpos_adr] = q
        mujoco.mj_kinematics(m, d)
        mujoco.mj_collision(m, d)
        self.stats["checked"] += 1
        n = d.ncon
        if n == 0:
            return 1.0
        c = d.contact
        ratio = c.dist[:n] / self._required[c.geom1[:n], c.geom2[:n]]
        return float(min(1.0, ratio.min()))

    def contacts(self, q: np.ndarray) -> dict[tuple[str, str], float]:
        """Link pairs closer than their clearance at q -> distance (m): what the guard would act on."""
        self.score(q)
        d = self._check_data
        c = d.contact
        out: dict[tuple[str, str], float] = {}
        for g1, g2, dist in zip(c.geom1[: d.ncon], c.geom2[: d.ncon], c.dist[: d.ncon], strict=True):
            if dist < self._required[g1, g2]:
                key = tuple(sorted((self.rm.geom_link[g1], self.rm.geom_link[g2])))
                out[key] = min(out.get(key, np.inf), float(dist))
        return out

    def _velocity_limit(self, max_velocity: np.ndarray) -> mink.VelocityLimit:
        key = np.asarray(max_velocity, dtype=np.float64).tobytes()
        if self._velocity is None or self._velocity[0] != key:
            limits = dict(
                zip(self.profile.joint_names, np.asarray(max_velocity, dtype=np.float64), strict=True)
            )
            self._velocity = (key, mink.VelocityLimit(self.rm.model, limits))
        return self._velocity[1]

    def _samples(self, previous: np.ndarray, candidate: np.ndarray) -> int:
        """Points checked along previous -> candidate: no joint moves more than `sweep_step` between
        two, so a fast step cannot pass through a link between its two ends (tunnelling)."""
        return max(1, int(np.ceil(np.abs(candidate - previous).max() / self.config.sweep_step)))

    def sweep(self, previous: np.ndarray, candidate: np.ndarray, floor: float = 1.0) -> float:
        """The largest s in [0, 1] such that every checked point of previous + s' (candidate -
        previous), s' <= s, keeps `floor` (a score, see `score`); 0 when the first one does not."""
        n = self._samples(previous, candidate)
        for k in range(1, n + 1):
            if self.score(previous + (k / n) * (candidate - previous)) < floor:
                return (k - 1) / n
        return 1.0

    def project(
        self, previous: np.ndarray, candidate: np.ndarray, dt: float, max_velocity: np.ndarray
    ) -> np.ndarray:
        """The command to send instead of `candidate` (J,), moving from `previous` (J,) within `dt`
        seconds at most `max_velocity` (J,) rad/s per joint (module docstring)."""
        cfg = self.config
        candidate = np.asarray(candidate, dtype=np.float64)
        previous = np.asarray(previous, dtype=np.float64)
        reach = self._reach(dt)
        if self.sweep(previous, previous + reach * (candidate - previous)) >= 1.0:
            return candidate
        floor = min(cfg.accept, self.score(previous))  # never closer than the last command was
        if dt <= 0:  # no time to move: hold
            return previous
        self.stats["projected"] += 1
        path = self._solve(previous, candidate, dt, max_velocity)

        def clear(q: np.ndarray) -> float:
            # The command at a fraction s of previous -> q goes on to the point at the same
            # fraction of previous -> q's extension: the sweep of the extension is the line
            # search of the command.
            return self.sweep(previous, previous + reach * (q - previous), floor)

        if clear(path[-1]) >= 1.0:
            return path[-1]
        # The robot goes from the previous command to the new one in a straight line (in joint
        # space), while the QP's substeps bend around the other link: the straight line to the end
        # of a long bent path cuts the corner. Measured: G1's hands held 3 cm apart in a hug, the
        # operator's arms going down, every straight line to the QP's answer crossed the other
        # hand, and cutting it back to where it stayed clear held the hands there for the rest of
        # the clip. So the command is the furthest point of the path whose straight line is clear
        # (the first substep, one linearisation, nearly always is), and only if none is, the line
        # search along the first substep.
        self.stats["bisected"] += 1
        lo, hi = -1, len(path) - 1  # path[hi] is not clear; path[lo] is (lo = -1: none found yet)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if clear(path[mid]) >= 1.0:
                lo = mid
            else:
                hi = mid
        if lo >= 0:
            return path[lo]
        return previous + clear(path[0]) * (path[0] - previous)

    def _reach(self, dt: float) -> float:
        """How far a step of dt seconds is checked, in steps: 1 (the step) + the distance its
        velocity carries the executed robot in `lookahead` seconds (config docstring)."""
        return 1.0 + (self.config.lookahead / dt if dt > 0 else 0.0)

    def _solve(
        self, previous: np.ndarray, candidate: np.ndarray, dt: float, max_velocity: np.ndarray
    ) -> list[np.ndarray]:
        """The QP's path from `previous` towards `candidate`: the joints after each substep."""
        m, adr = self.rm.model, self.rm.qpos_adr
        q = np.zeros(m.nq)
        q[adr] = previous
        self.configuration.update(q)
        target = q.copy()
        target[adr] = candidate
        self.posture.set_target(target)
        limits = [*self._limits_fixed, self._velocity_limit(max_velocity), *self._collision]
        # The frame is split into substeps no longer than the sweep's, each re-linearising the
        # distances: one big step would let the linearised constraint pass through a thin link.
        n = max(self.config.iterations, self._samples(previous, candidate))
        # Each substep closes at most `gain` of a pair's gap, so that the frame closes at most
        # dt / (dt + lookahead) of it: the solution keeps clearance + closing speed x lookahead.
        keep = 1.0 - 1.0 / self._reach(dt)
        gain = 1.0 - keep ** (1.0 / n) if keep > 0 else _MINK_GAIN
        for limit in self._collision:
            limit.inner.gain = gain
        path = []
        try:
            for _ in range(n):
                step = dt / n
                vel = mink.solve_ik(
                    self.configuration, [self.posture], step, "daqp", damping=1e-6, limits=limits
                )
                self.configuration.integrate_inplace(vel, step)
                path.append(self.configuration.q[adr].copy())
        except mink.MinkError:
            self.stats["failed_qp"] += 1
        return path or [previous.copy()]
