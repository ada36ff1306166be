"""IK retargeting with mink on the profile's MuJoCo model: the robot's hands, elbows and head go where
the operator's are, scaled to the robot's links.

Why mink (differential IK as a small QP on a MuJoCo model): the model is already built from the
profile (sim/model.py), so IK needs no second robot description; joint limits are constraints of
the QP, not clamps after the fact; and each frame is a fixed number of QP solves (4: with 2, the
collision constraint let a fast G1 wave's hand into its hip) warm-started from the previous frame's
solution, so the cost is bounded and the motion continuous. Pinocchio or placo
would need the URDF and its meshes, which molam does not ship.

Targets, per frame, from the operator's SMPL joint positions (metres, Y up) in the body frame
(pelvis-relative, turned by the person's heading into x forward, y left, z up):
- elbow and wrist (the robot's `left_elbow`/`left_wrist` sites...): the robot's shoulder site plus
  the operator's upper arm and forearm directions times the robot's own segment lengths, so the
  arm's direction is copied and its length is the robot's (what `sim/bench.py arm_errors`
  measures);
- head: the robot's head site at rest, moved as the operator's head moves relative to an upright
  neck (a nod or a lean), unscaled;
- feet: not targeted: the profiles hold the legs at the standing pose (`upper_body_only`), here by
  a posture task with a stiff cost on the leg joints.
A posture task towards the neutral pose regularises the rest (wrist roll, redundant twists).
Self-collision is a constraint of the QP (mink's CollisionAvoidanceLimit): each forearm and upper
arm keeps `clearance` (3 cm, the guard's: sim/collision_guard.py) from the body and from the
other arm. Without it the IK puts a robot's hand where a human's is, and a robot's capsules are
fatter than a human's limbs: measured on the generator test clips, G1 collided hundreds of times
a minute (`molam bench sim`).

The axis decomposition (runtime/retarget.py) stays the default and the fallback: it needs no
optional dependency, and when the QP fails for a frame the previous solution is held.
"""

from __future__ import annotations

import mink
import mujoco
import numpy as np

from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.skeleton import JOINT_INDEX
from molam_ros.runtime.profiles import Profile
from molam_ros.sim.mink_limits import DisplacementCollisionLimit
from molam_ros.sim.model import build_model

ARM_SITES = (("left_shoulder", "left_elbow", "left_wrist"), ("right_shoulder", "right_elbow", "right_wrist"))


def body_frame(positions: np.ndarray) -> np.ndarray:
    """SMPL positions (..., 22, 3), Y up -> pelvis-relative, x forward, y left, z up, heading removed."""
    rel = positions - positions[..., :1, :]
    yaw = facing_angle(positions)[..., None]
    c, s = np.cos(yaw), np.sin(yaw)
    x, y, z = rel[..., 0], rel[..., 1], rel[..., 2]
    return np.stack([c * z + s * x, -s * z + c * x, y], axis=-1)


class IKRetargeter:
    """Operator positions -> robot joints by mink IK, warm-started (module docstring)."""

    def __init__(
        self, profile: Profile, *, iterations: int = 4, posture_cost: float = 1e-2, clearance: float = 0.03
    ) -> None:
        self.profile = profile
        self.rm = build_model(profile)
        m = self.rm.model
        self.config = mink.Configuration(m)
        self.iterations = iterations
        sites = {mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_SITE, i) for i in range(m.nsite)}
        self.arms = [a for a in ARM_SITES if set(a) <= sites]
        self.tasks: dict[str, mink.FrameTask] = {}
        for _, elbow, wrist in self.arms:
            for name, cost in ((elbow, 0.5), (wrist, 1.0)):
                self.tasks[name] = mink.FrameTask(name, "site", position_cost=cost, orientation_cost=0.0)
        if "head" in sites:
            self.tasks["head"] = mink.FrameTask("head", "site", position_cost=0.3, orientation_cost=0.0)
        cost = np.full(m.nv, posture_cost)
        cost[self.rm.dof_adr[profile.leg_mask]] = 1e3  # legs held at the standing pose
        self.posture = mink.PostureTask(m, cost=cost)
        q0 = np.zeros(m.nq)
        q0[self.rm.qpos_adr] = profile.neutral
        self.posture.set_target(q0)
        self.limits = [mink.ConfigurationLimit(m), *self._collision_limits(clearance)]
        self.config.update(q0)
        # Segment lengths and the head's rest offset, at the zero pose.
        rest = mujoco.MjData(m)
        mujoco.mj_kinematics(m, rest)
        pos = {n: rest.site_xpos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, n)].copy() for n in sites}
        self.lengths = {}
        for s, e, w in self.arms:
            self.lengths[(s, e)] = float(np.linalg.norm(pos[e] - pos[s]))
            self.lengths[(e, w)] = float(np.linalg.norm(pos[w] - pos[e]))
        self.head_rest = pos.get("head")
        self.fallbacks = 0

    def _collision_limits(self, clearance: float) -> list:
        """Arms (from the upper arm down) against the body and against each other."""
        m = self.rm.model
        names = [mujoco.mj_id2name(m, mujoco.mjtObj.mjOBJ_GEOM, int(g)) for g in self.rm.collision_geoms]
        names = [n for n in names if n]

        def arm(side: str) -> list[str]:
            parts = ("shoulder_yaw", "elbow", "wrist", "hand")
            return [n for n in names if n.startswith(f"{side}_") and any(k in n for k in parts)]

        left, right = arm("left"), arm("right")
        body = [n for n in names if n not in left + right and "shoulder" not in n]
        if not (left and right and body):
            return []
        pairs = [(left, body), (right, body), (left, right)]
        return [  # bound as a displacement: mink's own is 30x looser at dt = 1/30 (sim/mink_limits.py)
            DisplacementCollisionLimit(
                mink.CollisionAvoidanceLimit(
                    m, pairs, minimum_distance_from_collisions=clearance, collision_detection_distance=0.15
                )
            )
        ]

    def _site(self, name: str) -> np.ndarray:
        return self.config.get_transform_frame_to_world(name, "site").translation()

    def robot(self, positions: np.ndarray) -> np.ndarray:
        """Joint positions (J,) for one operator frame (22, 3): warm-started from the last call."""
        human = body_frame(np.asarray(positions, dtype=np.float64))
        base = self.config.data.xmat[1].reshape(3, 3)  # the base link's orientation (fixed)
        for s, e, w in self.arms:
            hs, he, hw = (human[JOINT_INDEX[j]] for j in (s, e, w))
            up = (he - hs) / max(np.linalg.norm(he - hs), 1e-6) * self.lengths[(s, e)]
            fore = (hw - he) / max(np.linalg.norm(hw - he), 1e-6) * self.lengths[(e, w)]
            shoulder = self._site(s)
            self.tasks[e].set_target(mink.SE3.from_translation(shoulder + base @ up))
            self.tasks[w].set_target(mink.SE3.from_translation(shoulder + base @ (up + fore)))
        if "head" in self.tasks:
            neck, head = human[JOINT_INDEX["neck"]], human[JOINT_INDEX["head"]]
            offset = head - neck - np.array([0.0, 0.0, np.linalg.norm(head - neck)])
            self.tasks["head"].set_target(mink.SE3.from_translation(self.head_rest + base @ offset))
        tasks = [*self.tasks.values(), self.posture]
        q = self.config.q.copy()
        try:
            for _ in range(self.iterations):
                vel = mink.solve_ik(self.config, tasks, 1.0 / 30.0, "daqp", damping=1e-3, limits=self.limits)
                self.config.integrate_inplace(vel, 1.0 / 30.0)
        except mink.MinkError:
            self.fallbacks += 1
            self.config.update(q)
        return self.config.q[self.rm.qpos_adr].copy()
