"""A MuJoCo model of a robot profile, built with MuJoCo's model editing API (MjSpec).

Built from the profile's `kinematics:` section (runtime/kinematics.py): one body per link at its
URDF joint origin, a hinge about the URDF axis with the profile's limits, the link's URDF mass
spread over its collision capsule (MuJoCo derives the inertia from the capsule: an approximation,
the URDF's inertia tensors are not copied), and a position servo per joint.

Why these modelling choices:
- The base is fixed at the standing height (no free joint): molam commands the upper body and
  holds the legs at the standing pose; balance is the robot's own controller's job, and a floating
  base would make every test about balance instead of about what we command.
- Gravity is compensated on every link (MuJoCo's body `gravcomp`), as the robot's low-level
  controller does; the servos then only fight inertia, so tracking error measures our trajectory
  (its accelerations), not a sagging arm.
- Each servo is a PD with velocity feed-forward, tau = kp (q_ref - q) + kv (qd_ref - qd), written as
  an affine MuJoCo actuator (ctrl = q_ref + kv/kp qd_ref) so that its damping is integrated
  implicitly (`implicitfast`): stiff gains stay stable at the 1 kHz step.
- Motor armature (rotor inertia seen at the joint) is not in the URDF; `SimConfig.armature` sets
  one value for every joint (Unitree's MJCF models use 0.01-0.1 kg m^2).
- Self-collision: every capsule collides with every other except within `exclude_tree_distance`
  links along the tree (neighbours overlap at the joints by construction), and welded links count
  as one. Floor and world are not modelled.

`mujoco` is an optional dependency (`pip install molam_ros[sim]`): this module imports it at the
top, and nothing in the default import paths imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import mujoco
import numpy as np

from molam_ros.runtime.kinematics import Kinematics, LinkSpec
from molam_ros.runtime.profiles import Profile


@dataclass(frozen=True, kw_only=True)
class SimConfig:
    """The simulated robot's settings (SI units).

    timestep: physics step; 0.001 s = 1 kHz, a position-controlled robot's servo rate.
    kp, kv: servo stiffness (N m/rad) and damping (N m s/rad), the same for every joint; with the
        armature they give a servo bandwidth of sqrt(kp / (armature + link inertia)).
    armature: rotor inertia at each joint (kg m^2), absent from URDFs.
    joint_damping: passive viscous damping per joint (N m s/rad).
    exclude_tree_distance: capsules of links this close along the tree never collide (2: parent,
        child and grandparent; needed where zero-length links sit between two real ones).
    collision_margin: distance (m) at which a pair is reported as touching.
    """

    timestep: float = 0.001
    kp: float = 400.0
    kv: float = 20.0
    armature: float = 0.02
    joint_damping: float = 0.1
    exclude_tree_distance: int = 2
    collision_margin: float = 0.0
    extra_exclude: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for name in ("timestep", "kp", "armature"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SimConfig.{name} must be > 0, got {getattr(self, name)}")
        if self.kv < 0 or self.joint_damping < 0 or self.exclude_tree_distance < 1:
            raise ValueError("SimConfig: kv, joint_damping >= 0 and exclude_tree_distance >= 1")


@dataclass
class RobotModel:
    """A compiled model and the index maps the simulator needs, in the profile's joint order."""

    model: mujoco.MjModel
    profile: Profile
    qpos_adr: np.ndarray  # (J,) qpos address of each profile joint
    dof_adr: np.ndarray  # (J,) qvel address of each profile joint
    actuators: np.ndarray  # (J,) actuator id of each profile joint
    collision_geoms: np.ndarray  # ids of the capsules that take part in self-collision
    geom_link: list[str]  # link name of every geom id


def _rpy_quat(rpy: tuple[float, float, float]) -> list[float]:
    """URDF rpy (fixed-axis roll, pitch, yaw) -> MuJoCo quaternion (w, x, y, z)."""
    q = np.zeros(4)
    mujoco.mju_euler2Quat(q, np.asarray(rpy, dtype=np.float64), "XYZ")
    return q.tolist()


def _tree_distance(kin: Kinematics) -> dict[tuple[str, str], int]:
    """Joints between every pair of links along the tree; a welded link counts as its parent."""
    parent = {link.name: link.parent for link in kin.links}
    moving = {link.name for link in kin.links if link.joint is not None or link.parent is None}

    def node(name: str) -> str:  # the rigid body a link belongs to
        while name not in moving:
            name = parent[name]
        return name

    def chain(name: str) -> list[str]:  # rigid bodies from this one up to the base
        out = [node(name)]
        while parent[out[-1]] is not None:
            out.append(node(parent[out[-1]]))
        return out

    chains = {link.name: chain(link.name) for link in kin.links}
    dist = {}
    for a, ca in chains.items():
        for b, cb in chains.items():
            common = next(x for x in ca if x in cb)
            dist[(a, b)] = ca.index(common) + cb.index(common)
    return dist


def build_spec(profile: Profile, config: SimConfig | None = None) -> mujoco.MjSpec:
    """The MjSpec of `profile` (module docstring); compile with `.compile()`."""
    cfg = config or SimConfig()
    kin = profile.kinematics
    if not profile.is_robot or kin is None:
        raise ValueError(f"profile {profile.name!r} has no kinematics: section (config/profiles/README.md)")
    joints = {j.name: j for j in profile.joints}
    spec = mujoco.MjSpec()
    spec.modelname = profile.name
    spec.option.timestep = cfg.timestep
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.compiler.degree = False  # joint ranges in radians, as the profile gives them
    spec.compiler.inertiafromgeom = mujoco.mjtInertiaFromGeom.mjINERTIAFROMGEOM_TRUE
    bodies: dict[str, mujoco.MjsBody] = {}
    for link in kin.links:
        if link.parent is None:
            body = spec.worldbody.add_body(name=link.name, pos=[0.0, 0.0, kin.base_height])
        else:
            body = bodies[link.parent].add_body(name=link.name, pos=list(link.pos), quat=_rpy_quat(link.rpy))
        body.gravcomp = 1.0
        bodies[link.name] = body
        _add_geom(body, link)
        if link.joint is not None:
            j = joints[link.joint]
            body.add_joint(
                name=link.joint,
                type=mujoco.mjtJoint.mjJNT_HINGE,
                axis=list(link.axis),
                range=[j.lower, j.upper],
                limited=mujoco.mjtLimited.mjLIMITED_TRUE,
                armature=cfg.armature,
                damping=cfg.joint_damping,
            )
    for j in profile.joints:
        act = spec.add_actuator(name=j.name, target=j.name, trntype=mujoco.mjtTrn.mjTRN_JOINT)
        act.gaintype = mujoco.mjtGain.mjGAIN_FIXED
        act.gainprm[0] = cfg.kp
        act.biastype = mujoco.mjtBias.mjBIAS_AFFINE
        act.biasprm[0:3] = [0.0, -cfg.kp, -cfg.kv]
        act.ctrllimited = mujoco.mjtLimited.mjLIMITED_FALSE
    dist = _tree_distance(kin)
    names = [link.name for link in kin.links]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if (
                dist[(a, b)] <= cfg.exclude_tree_distance
                or (a, b) in cfg.extra_exclude
                or (b, a) in cfg.extra_exclude
            ):
                spec.add_exclude(bodyname1=a, bodyname2=b)
    for smpl, link, pos in kin.sites:
        bodies[link].add_site(name=smpl, pos=list(pos), size=[0.01, 0, 0])
    return spec


def _add_geom(body: mujoco.MjsBody, link: LinkSpec) -> None:
    if link.capsule is None:  # a point mass would have no inertia: a small sphere carries the mass
        body.add_geom(
            type=mujoco.mjtGeom.mjGEOM_SPHERE, size=[0.01, 0, 0], mass=link.mass, contype=0, conaffinity=0
        )
        return
    c = link.capsule
    a, b = np.asarray(c[:3]), np.asarray(c[3:6])
    if np.linalg.norm(b - a) < 1e-6:  # a capsule of zero length is a sphere
        geom = body.add_geom(type=mujoco.mjtGeom.mjGEOM_SPHERE, pos=list(a), size=[c[6], 0, 0])
    else:
        geom = body.add_geom(type=mujoco.mjtGeom.mjGEOM_CAPSULE, fromto=list(c[:6]), size=[c[6], 0, 0])
    geom.name = link.name
    geom.mass = link.mass
    geom.contype = geom.conaffinity = 1 if link.collide else 0


def build_model(profile: Profile, config: SimConfig | None = None) -> RobotModel:
    """Compile the model and map the profile's joints onto it."""
    model = build_spec(profile, config).compile()
    names = profile.joint_names
    jid = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, n) for n in names]
    aid = [mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_ACTUATOR, n) for n in names]
    geom_link = [
        mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_BODY, int(model.geom_bodyid[g]))
        for g in range(model.ngeom)
    ]
    return RobotModel(
        model=model,
        profile=profile,
        qpos_adr=np.array([model.jnt_qposadr[j] for j in jid]),
        dof_adr=np.array([model.jnt_dofadr[j] for j in jid]),
        actuators=np.array(aid),
        collision_geoms=np.flatnonzero(model.geom_contype > 0),
        geom_link=geom_link,
    )
