"""`molam sim bench`: what the simulated robot does with our commands, teleoperation and reaction.

Per robot profile and clip (generator test clips, real pybullet clips):
- teleoperation: the clip's actor as the operator, with simulated tracker noise (Gaussian, `noise`
  m per coordinate and frame), streamed frame by frame through TeleopPipeline, once raw and once
  with the One Euro filter, and filtered with mink IK instead of the axis decomposition
  (`teleop_ik`, sim/ik_retarget.py); published as the node does (one message per frame);
- reaction: the clip's recorded reactor (what a perfect model would answer) through the
  pipeline's retargeting and safety filter, published every l = 4 frames (clips with one person:
  skipped);
and for each stream:
- smoothness of the commands: mean |acceleration| (rad/s^2) and |jerk| (rad/s^3) over joints;
- on the simulated robot: tracking error (p99, max, rad), self-collision events per minute,
  steps at a joint limit;
- arm fidelity (teleoperation): hand (wrist) and elbow position error, mm: the robot's forward
  kinematics against the operator's arm scaled to the robot's segment lengths, both from the
  robot's shoulder site, in the body frame (`arm_errors`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import mujoco
import numpy as np

from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.features import positions_to_features
from molam_ros.motion.layout import features_to_local_quats
from molam_ros.motion.skeleton import JOINT_INDEX, JOINT_NAMES
from molam_ros.runtime.profiles import Profile
from molam_ros.runtime.retarget import Retargeter
from molam_ros.runtime.safety import SafetyConfig, SafetyFilter
from molam_ros.runtime.teleop import TeleopConfig, TeleopPipeline
from molam_ros.sim.collision_guard import CollisionGuard, CollisionGuardConfig
from molam_ros.sim.execute import execute_stream
from molam_ros.sim.ik_retarget import IKRetargeter
from molam_ros.sim.robot import SimulatedRobot

FPS = 30.0
ARMS = (
    ("left", "left_shoulder", "left_elbow", "left_wrist"),
    ("right", "right_shoulder", "right_elbow", "right_wrist"),
)


@dataclass
class StreamFigures:
    """One command stream's figures (module docstring)."""

    seconds: float
    acc: float
    jerk: float
    tracking_p99: float
    tracking_max: float
    collisions: int
    limit_steps: int
    hand_mm: float = float("nan")
    elbow_mm: float = float("nan")
    pairs: tuple[tuple[str, str], ...] = ()  # the link pairs of the collision events
    limit_joints: tuple[str, ...] = ()  # joints the simulated robot held at a limit


def smoothness(q: np.ndarray, fps: float = FPS) -> tuple[float, float]:
    """Mean |acceleration| and |jerk| of a (T, J) joint stream (finite differences)."""
    acc = np.diff(q, n=2, axis=0) * fps**2
    jerk = np.diff(q, n=3, axis=0) * fps**3
    return float(np.abs(acc).mean()), float(np.abs(jerk).mean())


def teleop_commands(
    profile: Profile,
    operator: np.ndarray,
    filtered: bool,
    ik: bool = False,
    guard: bool = False,
    *,
    with_velocities: bool = False,
    safety: SafetyConfig | None = None,
    guard_config: CollisionGuardConfig | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(T, J) commanded joints of a teleoperation stream of the operator's (T, 22, 3) positions;
    `ik`: retargeted by mink IK (sim/ik_retarget.py) instead of the axis decomposition; `guard`: the
    safety filter's self-collision guard (sim/collision_guard.py) on. `with_velocities`: also the
    (T, J) velocities the node publishes with them (the safety filter's)."""
    safety = safety or TeleopConfig.safety
    config = TeleopConfig(person_id="op", safety=safety)
    if not filtered:
        config = TeleopConfig(person_id="op", filter=None, safety=safety)
    pipe = TeleopPipeline(
        profile,
        config,
        ik=IKRetargeter(profile) if ik else None,
        guard=CollisionGuard(profile, guard_config) if guard else None,
    )
    out, vel = [], []
    for i, pose in enumerate(operator):
        stamp = 100.0 + i / FPS
        pipe.push_pose(stamp, pose, JOINT_NAMES, now=stamp)
        for c in pipe.process(now=stamp):
            out.append(c.joint_positions[0])
            vel.append(c.joint_velocities[0])
    return (np.stack(out), np.stack(vel)) if with_velocities else np.stack(out)


def reaction_commands(
    profile: Profile,
    reactor: np.ndarray,
    guard: bool = False,
    *,
    with_velocities: bool = False,
    safety: SafetyConfig | None = None,
    guard_config: CollisionGuardConfig | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """(T, J) commanded joints for a reactor's (T, 22, 3) motion: retargeting + safety, as the
    pipeline (`with_velocities`: and the velocities it publishes)."""
    target = Retargeter(profile).robot(features_to_local_quats(positions_to_features(reactor))).positions
    filt = SafetyFilter(profile, safety, guard=CollisionGuard(profile, guard_config) if guard else None)
    out = [filt.update(i / FPS, t) for i, t in enumerate(target)]
    q = np.stack([o.positions for o in out])
    return (q, np.stack([o.velocities for o in out])) if with_velocities else q


def _body_frame(positions: np.ndarray) -> np.ndarray:
    """SMPL positions (T, 22, 3), Y up, relative to the pelvis, turned into the robot's body axes
    (x forward, y left, z up) by the person's facing angle."""
    rel = positions - positions[:, :1]
    yaw = facing_angle(positions)  # about +Y, 0 when facing +Z
    c, s = np.cos(yaw)[:, None], np.sin(yaw)[:, None]
    x, y, z = rel[..., 0], rel[..., 1], rel[..., 2]
    fwd = c * z + s * x  # undo the heading: the person faces +Z
    left = -s * z + c * x
    return np.stack([fwd, left, y], axis=-1)


def arm_errors(robot: SimulatedRobot, q: np.ndarray, operator: np.ndarray) -> tuple[float, float]:
    """Mean hand and elbow position errors (mm) of joint stream q (T, J) against the operator."""
    m, rm = robot.model, robot.rm
    data = mujoco.MjData(m)
    site = {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_SITE, i): i for i in range(m.nsite)}
    base = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, robot.profile.kinematics.links[0].name)
    data.qpos[:] = 0.0
    mujoco.mj_kinematics(m, data)
    lengths = {}
    for _, s, e, w in ARMS:
        lengths[s] = np.linalg.norm(data.site_xpos[site[e]] - data.site_xpos[site[s]])
        lengths[e] = np.linalg.norm(data.site_xpos[site[w]] - data.site_xpos[site[e]])
    human = _body_frame(operator)
    n = min(len(q), len(human))
    hand, elbow = [], []
    for t in range(n):
        data.qpos[rm.qpos_adr] = q[t]
        mujoco.mj_kinematics(m, data)
        rot = data.xmat[base].reshape(3, 3)
        for _, s, e, w in ARMS:
            hs, he, hw = (human[t, JOINT_INDEX[j]] for j in (s, e, w))
            upper = (he - hs) / np.linalg.norm(he - hs) * lengths[s]
            fore = (hw - he) / np.linalg.norm(hw - he) * lengths[e]
            shoulder = data.site_xpos[site[s]]
            r_elbow = rot.T @ (data.site_xpos[site[e]] - shoulder)
            r_wrist = rot.T @ (data.site_xpos[site[w]] - shoulder)
            elbow.append(np.linalg.norm(r_elbow - upper))
            hand.append(np.linalg.norm(r_wrist - upper - fore))
    return float(np.mean(hand) * 1000), float(np.mean(elbow) * 1000)


def run_stream(
    profile: Profile,
    q: np.ndarray,
    stride: int,
    operator: np.ndarray | None = None,
    velocities: np.ndarray | None = None,
) -> StreamFigures:
    """Execute a command stream on a fresh simulated robot and measure it; `velocities`: those
    published with the positions (the safety filter's), None: central differences of q."""
    robot = SimulatedRobot(profile, initial=q[0])
    vel = np.gradient(q, 1 / FPS, axis=0) if velocities is None else velocities
    report = execute_stream(robot, q, vel, stride=stride, horizon=max(stride, 15))
    s = report.summary()
    acc, jerk = smoothness(q)
    fig = StreamFigures(
        seconds=len(q) / FPS,
        acc=acc,
        jerk=jerk,
        tracking_p99=s["tracking_error_p99_rad"],
        tracking_max=s["tracking_error_max_rad"],
        collisions=s["self_collisions"],
        limit_steps=s["limit_steps"],
        pairs=tuple(e.links for e in report.collisions),
        limit_joints=tuple(sorted(report.limit_joints)),
    )
    if operator is not None:
        fig.hand_mm, fig.elbow_mm = arm_errors(robot, q, operator)
    return fig


STREAMS = ("teleop_raw", "teleop_filtered", "teleop_ik", "reaction")


def bench(
    profile: Profile,
    clips: Iterable[tuple[str, np.ndarray, np.ndarray | None]],
    noise: float = 0.01,
    guards: tuple[bool, ...] = (False,),
    published: bool = False,
    streams: tuple[str, ...] = STREAMS,
    on_figures: Callable[[str, str, StreamFigures], None] | None = None,
    position_margin: float | None = None,
    guard_config: CollisionGuardConfig | None = None,
) -> dict[str, list]:
    """Figures per stream kind (`streams` of STREAMS; "+guard" appended with the self-collision
    guard on) over (id, operator, reactor or None) clips; fidelity is measured against the operator
    without the tracker noise. `guards`: run every stream without (False) and/or with (True) the
    guard. `published`: the robot gets the velocities the node publishes (the safety filter's,
    capped near the limits) instead of central differences of the positions. `on_figures(clip id,
    stream, figures)`: called as each is measured (a long run's progress, kept if it is stopped).
    `position_margin`: the safety filter's (rad; None: its default), `guard_config`: the guard's
    settings (None: its defaults)."""
    out: dict[str, list] = {k + ("+guard" if g else ""): [] for g in guards for k in STREAMS if k in streams}
    rng = np.random.default_rng(0)
    safety_teleop, safety_reaction = TeleopConfig.safety, SafetyConfig()
    if position_margin is not None:
        safety_teleop = replace(safety_teleop, position_margin=position_margin)
        safety_reaction = replace(safety_reaction, position_margin=position_margin)
    teleop = (("teleop_raw", False, False), ("teleop_filtered", True, False), ("teleop_ik", True, True))
    for cid, operator, reactor in clips:
        tracked = operator + rng.normal(0.0, noise, operator.shape) if noise > 0 else operator
        for guard in guards:
            tag = "+guard" if guard else ""
            measured = []
            for kind, filtered, ik in teleop:
                if kind in streams:
                    q, v = teleop_commands(
                        profile,
                        tracked,
                        filtered,
                        ik,
                        guard,
                        with_velocities=True,
                        safety=safety_teleop,
                        guard_config=guard_config,
                    )
                    v = v if published else None
                    measured.append(
                        (kind, run_stream(profile, q, 1, operator=operator[-len(q) :], velocities=v))
                    )
            if reactor is not None and "reaction" in streams:
                q, v = reaction_commands(
                    profile,
                    reactor,
                    guard,
                    with_velocities=True,
                    safety=safety_reaction,
                    guard_config=guard_config,
                )
                measured.append(("reaction", run_stream(profile, q, 4, velocities=v if published else None)))
            for kind, fig in measured:
                out[kind + tag].append(fig)
                if on_figures is not None:
                    on_figures(cid, kind + tag, fig)
    return out


def summarize(figures: list[StreamFigures]) -> dict[str, float]:
    """Totals over clips: means of the per-clip means, worst tracking, collisions per minute."""
    if not figures:
        return {}
    minutes = sum(f.seconds for f in figures) / 60.0
    return {
        "clips": len(figures),
        "minutes": minutes,
        "acc": float(np.mean([f.acc for f in figures])),
        "jerk": float(np.mean([f.jerk for f in figures])),
        "tracking_p99": float(np.max([f.tracking_p99 for f in figures])),
        "tracking_max": float(np.max([f.tracking_max for f in figures])),
        "collisions_per_min": sum(f.collisions for f in figures) / minutes,
        "limit_steps": int(sum(f.limit_steps for f in figures)),
        "hand_mm": float(np.mean([f.hand_mm for f in figures])),
        "elbow_mm": float(np.mean([f.elbow_mm for f in figures])),
        "pairs": dict(Counter("/".join(p) for f in figures for p in f.pairs).most_common(4)),
        "limit_joints": dict(Counter(j for f in figures for j in f.limit_joints).most_common(4)),
    }
