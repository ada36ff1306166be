"""The simulated robot's body for drawing: its collision capsules at given joints, placed in a scene.

`molam demo` shows the robot's body next to the person (ros/demo_report.py): the joints the sim
node executed (its JointState), through this model's forward kinematics, as the capsules the
simulator collides (sim/model.py: one per link, fitted to the URDF meshes), so what is drawn is
what was simulated, self-collisions included. The robot stands where the reaction put the reactor
(its pelvis and heading), so the person and the robot share one scene.

Frames: the model's world is the robot's (x forward, y left, z up, base at the standing height
over the floor at z = 0); a scene is molam's SMPL world (metres, Y up, a person facing +Z at
heading 0, `motion/canonical.py facing_angle`).
"""

from __future__ import annotations

import mujoco
import numpy as np

from molam_ros.runtime.profiles import Profile
from molam_ros.sim.model import RobotModel, build_model


class RobotBody:
    """Capsule segments of a profile's model at given joints (module docstring)."""

    def __init__(self, profile: Profile) -> None:
        self.rm: RobotModel = build_model(profile)
        m = self.rm.model
        self._data = mujoco.MjData(m)
        drawn = (m.geom_type == mujoco.mjtGeom.mjGEOM_CAPSULE) | (m.geom_type == mujoco.mjtGeom.mjGEOM_SPHERE)
        drawn &= m.geom_size[:, 0] > 0.015  # the small spheres that only carry a point mass are left out
        self.geoms = np.flatnonzero(drawn)
        self.radii = m.geom_size[self.geoms, 0].copy()
        self._half = np.where(
            m.geom_type[self.geoms] == mujoco.mjtGeom.mjGEOM_CAPSULE, m.geom_size[self.geoms, 1], 0.0
        )
        base = profile.kinematics.links[0].name
        self._base = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, base)

    def segments(self, q: np.ndarray) -> np.ndarray:
        """(N, 2, 3) capsule end points (m) in the robot's frame: x forward, y left, z up from the
        floor, the base's vertical axis through the origin."""
        m, d = self.rm.model, self._data
        d.qpos[self.rm.qpos_adr] = np.asarray(q, dtype=np.float64)
        mujoco.mj_kinematics(m, d)
        centre = d.geom_xpos[self.geoms].copy()
        axis = d.geom_xmat[self.geoms].reshape(-1, 3, 3)[:, :, 2]
        ends = np.stack([centre - axis * self._half[:, None], centre + axis * self._half[:, None]], axis=1)
        ends[..., :2] -= d.xpos[self._base, :2]
        return ends


def place(segments: np.ndarray, pelvis: np.ndarray, yaw: float) -> np.ndarray:
    """Robot-frame points (..., 3) into a scene: the robot's base under `pelvis` (SMPL position,
    Y up; its height is ignored, the robot stands on the floor), facing heading `yaw` (rad about
    +Y, 0 facing +Z)."""
    c, s = np.cos(yaw), np.sin(yaw)
    fwd, left, up = segments[..., 0], segments[..., 1], segments[..., 2]
    x = pelvis[0] + s * fwd + c * left
    z = pelvis[2] + c * fwd - s * left
    return np.stack([x, up, z], axis=-1)
