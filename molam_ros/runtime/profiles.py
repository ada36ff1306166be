"""Output profiles: what the reaction drives, a robot's joints or an avatar's skeleton (YAML).

A profile names the output skeleton and everything the runtime needs to command it safely:

- `kind: robot`: scalar joints in controller order. Each joint says which SMPL joint (or chain of
  SMPL joints, whose local rotations are composed) drives it and about which axis, its position
  limits (rad), velocity limit (rad/s) and neutral position. `retarget.py` turns SMPL local
  rotations into these joint positions, `safety.py` keeps the outgoing stream inside the limits.
- `kind: avatar`: the SMPL joints themselves, as rotations, plus the root translation (a VR avatar
  rig); no limits, only an optional renaming of the bones and a neutral pose.

Why the schema looks the way it does:
- Axes are named in SMPL body axes (x: the person's left, y: up, z: forward), in the robot's zero
  pose. A URDF axis converts by renaming (robot x forward -> z, robot y left -> x, robot z up -> y),
  the same on both sides of the body, so a profile can be checked against its URDF line by line.
- The robot's zero pose rarely matches SMPL's T-pose (Unitree arms hang down, forearms point
  forward). `zero_pose_deg` states it once, as SMPL local rotations; the retargeter conjugates each
  drive by it, so axes stay the URDF's and offsets stay 0 in the usual case.
- Joints driven by the same SMPL chain are decomposed in the order they are listed, which must be
  their kinematic order (parent side first, as in a URDF).
The full field reference, with an example, is `config/profiles/README.md`.

A robot profile may also carry its kinematic chain (`kinematics:`, runtime/kinematics.py): link
offsets, joint axes, masses and collision capsules from the URDF, for the simulated robot and IK.

`load_profile(name_or_path)` validates everything (unknown keys, limit order, velocity > 0,
neutral inside limits, SMPL names, chains, distinct axes per drive) and raises `ProfileError`
naming the file and the field, so a typo fails at start-up and never on the robot.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from molam_ros.motion.rotations import axis_angle_to_quat
from molam_ros.motion.skeleton import JOINT_INDEX, JOINT_NAMES, KINEMATIC_CHAINS, NUM_JOINTS, PARENTS
from molam_ros.runtime.kinematics import Kinematics, KinematicsError, kinematics_from_dict

KINDS = ("robot", "avatar")
AXES = ("x", "y", "z")
PROFILE_SUFFIXES = (".yaml", ".yml")
# Extra directories searched first by `load_profile` (os.pathsep-separated), e.g. a robot's own repo.
PROFILE_PATH_ENV = "MOLAM_PROFILE_PATH"

# SMPL joints of the legs: a robot joint driven by any of them is a leg joint, held at neutral when
# the profile is upper_body_only (the robot's balance controller owns the legs).
# KINEMATIC_CHAINS[0:2] are the right and left legs from the pelvis.
LEG_SMPL_JOINTS = frozenset(JOINT_NAMES[j] for chain in KINEMATIC_CHAINS[:2] for j in chain[1:])

_COMMON_KEYS = {"name", "kind", "description", "source", "joints"}
_TOP_KEYS = {
    "robot": _COMMON_KEYS | {"upper_body_only", "zero_pose_deg", "kinematics"},
    "avatar": _COMMON_KEYS | {"root_translation", "neutral_pose_deg", "neutral_root", "convention"},
}
_ROBOT_JOINT_KEYS = {"name", "smpl", "axis", "sign", "offset", "lower", "upper", "velocity", "neutral"}
_ROBOT_JOINT_REQUIRED = ("name", "smpl", "axis", "lower", "upper", "velocity")
_AVATAR_JOINT_KEYS = {"name", "smpl"}
# Axes an avatar's transforms are published in (runtime/rig.py): the core's (right-handed, Y up) or
# Unity's (left-handed, Y up, x mirrored).
AVATAR_CONVENTIONS = ("ros", "unity")


class ProfileError(ValueError):
    """A profile file or dict that does not follow the schema; the message names file and field."""


@dataclass(frozen=True)
class JointSpec:
    """One scalar robot joint.

    smpl: the SMPL joints whose composed local rotation drives this joint, parent first (usually
        one; e.g. (spine1, spine2, spine3) for a waist that stands in for the whole spine).
    axis: index 0/1/2 of the rotation axis (x/y/z, SMPL body axes in the robot's zero pose).
    sign, offset: joint position = sign * angle about +axis + offset (rad).
    lower, upper: position limits (rad); velocity: velocity limit (rad/s); neutral: rest position.
    """

    name: str
    smpl: tuple[str, ...]
    axis: int
    sign: float
    offset: float
    lower: float
    upper: float
    velocity: float
    neutral: float

    @property
    def is_leg(self) -> bool:
        return any(s in LEG_SMPL_JOINTS for s in self.smpl)


@dataclass(frozen=True, eq=False)
class Profile:
    """A validated output profile (see the module docstring; build with `load_profile`).

    For an avatar, `joints` is empty and `bones` maps output bone names to SMPL joints (all 22 in
    the shipped profile); for a robot, `bones` is empty.
    """

    name: str
    kind: str
    description: str = ""
    source: str = ""
    joints: tuple[JointSpec, ...] = ()
    upper_body_only: bool = False
    # (22, 4) SMPL local rotations (w, x, y, z) at which every robot joint reads 0 (robot), or the
    # neutral pose the avatar falls back to (avatar). Identity where not given.
    zero_pose: np.ndarray = field(default_factory=lambda: _identity_pose())
    bones: tuple[tuple[str, str], ...] = ()  # avatar: (output name, SMPL joint name), output order
    root_translation: bool = True  # avatar: publish the pelvis translation
    neutral_root: tuple[float, float, float] = (0.0, 0.0, 0.0)  # avatar fallback root position, m
    kinematics: Kinematics | None = None  # robot: the URDF's chain, when the profile gives it
    convention: str = "ros"  # avatar: axes of its published transforms (AVATAR_CONVENTIONS)
    path: Path | None = None

    @property
    def is_robot(self) -> bool:
        return self.kind == "robot"

    @property
    def joint_names(self) -> list[str]:
        """Output names in controller order: robot joints, or avatar bones."""
        return [j.name for j in self.joints] if self.is_robot else [b for b, _ in self.bones]

    @property
    def num_joints(self) -> int:
        return len(self.joints) if self.is_robot else len(self.bones)

    def _column(self, attr: str) -> np.ndarray:
        return np.array([getattr(j, attr) for j in self.joints], dtype=np.float64)

    @property
    def lower(self) -> np.ndarray:
        return self._column("lower")

    @property
    def upper(self) -> np.ndarray:
        return self._column("upper")

    @property
    def velocity(self) -> np.ndarray:
        return self._column("velocity")

    @property
    def neutral(self) -> np.ndarray:
        return self._column("neutral")

    @property
    def leg_mask(self) -> np.ndarray:
        return np.array([j.is_leg for j in self.joints], dtype=bool)


def _identity_pose() -> np.ndarray:
    q = np.zeros((NUM_JOINTS, 4))
    q[:, 0] = 1.0
    return q


# --------------------------------------------------------------------------------------------
# Finding profiles


def profile_dirs() -> list[Path]:
    """Directories searched for `<name>.yaml`, first match wins.

    `$MOLAM_PROFILE_PATH` entries, then `config/profiles` of the source checkout (editable
    installs and tests), then `share/molam_ros/config/profiles` of an install (setup.py puts the
    shipped profiles there; colcon's install tree and a pip install into a venv both have one).
    """
    dirs: list[Path] = [Path(p) for p in os.environ.get(PROFILE_PATH_ENV, "").split(os.pathsep) if p]
    here = Path(__file__).resolve()
    dirs.append(here.parents[2] / "config" / "profiles")
    share = Path("share") / "molam_ros" / "config" / "profiles"
    dirs.extend(parent / share for parent in here.parents)
    dirs.append(Path(sys.prefix) / share)
    seen: list[Path] = []
    for d in dirs:
        if d not in seen and d.is_dir():
            seen.append(d)
    return seen


def available_profiles() -> list[str]:
    """Names of the profiles found in `profile_dirs()`, sorted."""
    names = {p.stem for d in profile_dirs() for p in d.iterdir() if p.suffix in PROFILE_SUFFIXES}
    return sorted(names)


def _resolve(name_or_path: str | Path) -> Path:
    p = Path(name_or_path).expanduser()
    if p.suffix in PROFILE_SUFFIXES or p.parent != Path("."):
        if not p.is_file():
            raise ProfileError(f"{p}: no such profile file")
        return p
    for d in profile_dirs():
        for suffix in PROFILE_SUFFIXES:
            candidate = d / f"{name_or_path}{suffix}"
            if candidate.is_file():
                return candidate
    raise ProfileError(
        f"unknown profile {str(name_or_path)!r}: available {available_profiles()} "
        f"(searched {[str(d) for d in profile_dirs()]}; add directories with ${PROFILE_PATH_ENV})"
    )


def load_profile(name_or_path: str | Path) -> Profile:
    """Load and validate a profile by name (`unitree_h1`) or by path (`./my_robot.yaml`)."""
    path = _resolve(name_or_path)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}") from e
    return profile_from_dict(data, where=str(path), path=path)


# --------------------------------------------------------------------------------------------
# Validation


def _fail(where: str, fieldname: str, msg: str) -> ProfileError:
    return ProfileError(f"{where}: {fieldname}: {msg}")


def _number(where: str, fieldname: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(where, fieldname, f"must be a number, got {value!r}")
    if not math.isfinite(value):
        raise _fail(where, fieldname, f"must be finite, got {value!r}")
    return float(value)


def _string(where: str, fieldname: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(where, fieldname, f"must be a non-empty string, got {value!r}")
    return value


def _check_keys(where: str, fieldname: str, data: Mapping, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _fail(where, fieldname, f"unknown key(s) {unknown}; allowed: {sorted(allowed)}")


def _smpl_name(where: str, fieldname: str, value: Any) -> str:
    if value not in JOINT_INDEX:
        raise _fail(where, fieldname, f"{value!r} is not an SMPL joint; valid: {list(JOINT_NAMES)}")
    return value


def _pose(where: str, fieldname: str, data: Any) -> np.ndarray:
    """{smpl_joint: [rx, ry, rz] rotation vector in degrees} -> (22, 4) local quaternions."""
    pose = _identity_pose()
    if data is None:
        return pose
    if not isinstance(data, Mapping):
        raise _fail(where, fieldname, "must map SMPL joint names to [rx, ry, rz] degrees")
    for joint, vec in data.items():
        f = f"{fieldname}.{joint}"
        _smpl_name(where, f, joint)
        if not isinstance(vec, Sequence) or isinstance(vec, str) or len(vec) != 3:
            raise _fail(where, f, f"must be a rotation vector [rx, ry, rz] in degrees, got {vec!r}")
        rv = np.radians([_number(where, f"{f}[{i}]", v) for i, v in enumerate(vec)])
        pose[JOINT_INDEX[joint]] = axis_angle_to_quat(rv)
    return pose


def _chain(where: str, fieldname: str, value: Any) -> tuple[str, ...]:
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not names:
        raise _fail(where, fieldname, f"must be an SMPL joint name or a list of them, got {value!r}")
    chain = tuple(_smpl_name(where, fieldname, n) for n in names)
    if "pelvis" in chain:
        raise _fail(where, fieldname, "pelvis is the root: its rotation is the body's world orientation")
    for parent, child in zip(chain, chain[1:], strict=False):
        if PARENTS[JOINT_INDEX[child]] != JOINT_INDEX[parent]:
            raise _fail(
                where, fieldname, f"{list(chain)} is not a parent-to-child chain ({parent} -> {child})"
            )
    return chain


def _robot_joint(where: str, i: int, data: Any) -> JointSpec:
    label = f"joints[{i}]"
    if not isinstance(data, Mapping):
        raise _fail(where, label, f"must be a mapping, got {data!r}")
    if isinstance(data.get("name"), str):
        label = f"joints[{i}] ({data['name']})"
    _check_keys(where, label, data, _ROBOT_JOINT_KEYS)
    for key in _ROBOT_JOINT_REQUIRED:
        if key not in data:
            raise _fail(where, f"{label}.{key}", "is required")
    name = _string(where, f"{label}.name", data["name"])
    axis = data["axis"]
    if axis not in AXES:
        raise _fail(where, f"{label}.axis", f"must be one of {list(AXES)}, got {axis!r}")
    sign = _number(where, f"{label}.sign", data.get("sign", 1))
    if sign not in (1.0, -1.0):
        raise _fail(where, f"{label}.sign", f"must be 1 or -1, got {data.get('sign')!r}")
    lower = _number(where, f"{label}.lower", data["lower"])
    upper = _number(where, f"{label}.upper", data["upper"])
    if not lower < upper:
        raise _fail(where, f"{label}.lower", f"must be < upper ({lower} >= {upper})")
    velocity = _number(where, f"{label}.velocity", data["velocity"])
    if not velocity > 0:
        raise _fail(where, f"{label}.velocity", f"must be > 0 rad/s, got {velocity}")
    neutral = _number(where, f"{label}.neutral", data.get("neutral", 0.0))
    if not lower <= neutral <= upper:
        raise _fail(where, f"{label}.neutral", f"{neutral} is outside the limits [{lower}, {upper}]")
    return JointSpec(
        name=name,
        smpl=_chain(where, f"{label}.smpl", data["smpl"]),
        axis=AXES.index(axis),
        sign=sign,
        offset=_number(where, f"{label}.offset", data.get("offset", 0.0)),
        lower=lower,
        upper=upper,
        velocity=velocity,
        neutral=neutral,
    )


def _check_drives(where: str, joints: Sequence[JointSpec]) -> None:
    """Joints sharing a chain form one drive: at most 3, distinct axes; chains may not overlap."""
    drives: dict[tuple[str, ...], list[JointSpec]] = {}
    for j in joints:
        drives.setdefault(j.smpl, []).append(j)
    owner: dict[str, tuple[str, ...]] = {}
    for chain, members in drives.items():
        names = [m.name for m in members]
        if len(members) > 3:
            raise _fail(where, f"joints {names}.smpl", f"at most 3 joints can share the drive {list(chain)}")
        axes = [m.axis for m in members]
        if len(set(axes)) != len(axes):
            raise _fail(
                where, f"joints {names}.axis", f"joints sharing the drive {list(chain)} need distinct axes"
            )
        for s in chain:
            if s in owner and owner[s] != chain:
                raise _fail(
                    where, f"joints {names}.smpl", f"{s} is already part of the drive {list(owner[s])}"
                )
            owner[s] = chain


def profile_from_dict(data: Any, where: str = "<dict>", path: Path | None = None) -> Profile:
    """Validate a parsed profile (the YAML's top-level mapping); `where` prefixes every error."""
    if not isinstance(data, Mapping):
        raise _fail(where, "<top level>", "must be a mapping")
    kind = data.get("kind")
    if kind not in KINDS:
        raise _fail(where, "kind", f"must be one of {list(KINDS)}, got {kind!r}")
    _check_keys(where, "<top level>", data, _TOP_KEYS[kind])
    name = _string(where, "name", data.get("name"))
    description = str(data.get("description", ""))
    source = str(data.get("source", ""))
    joints_data = data.get("joints")
    if kind == "robot":
        if not isinstance(joints_data, Sequence) or isinstance(joints_data, str) or not joints_data:
            raise _fail(where, "joints", "a robot profile needs a non-empty list of joints")
        joints = tuple(_robot_joint(where, i, j) for i, j in enumerate(joints_data))
        names = [j.name for j in joints]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise _fail(where, "joints", f"duplicate joint names {dupes}")
        _check_drives(where, joints)
        upper_body_only = data.get("upper_body_only", False)
        if not isinstance(upper_body_only, bool):
            raise _fail(where, "upper_body_only", f"must be true or false, got {upper_body_only!r}")
        kinematics = None
        if data.get("kinematics") is not None:
            try:
                kinematics = kinematics_from_dict(data["kinematics"], where, names, JOINT_NAMES)
            except KinematicsError as e:
                raise ProfileError(str(e)) from e
        return Profile(
            name=name,
            kind=kind,
            description=description,
            source=source,
            joints=joints,
            upper_body_only=upper_body_only,
            zero_pose=_pose(where, "zero_pose_deg", data.get("zero_pose_deg")),
            kinematics=kinematics,
            path=path,
        )
    return _avatar(where, data, name, description, source, joints_data, path)


def _avatar(
    where: str, data: Mapping, name: str, description: str, source: str, joints_data: Any, path: Path | None
) -> Profile:
    if joints_data is None:
        bones = tuple((n, n) for n in JOINT_NAMES)
    else:
        if not isinstance(joints_data, Sequence) or isinstance(joints_data, str) or not joints_data:
            raise _fail(where, "joints", "must be a non-empty list of {name, smpl} (or left out: all 22)")
        out = []
        for i, b in enumerate(joints_data):
            if not isinstance(b, Mapping):
                raise _fail(where, f"joints[{i}]", f"must be a mapping, got {b!r}")
            _check_keys(where, f"joints[{i}]", b, _AVATAR_JOINT_KEYS)
            smpl = _smpl_name(where, f"joints[{i}].smpl", b.get("smpl"))
            out.append((_string(where, f"joints[{i}].name", b.get("name", smpl)), smpl))
        bones = tuple(out)
        for label, values in (("name", [b[0] for b in bones]), ("smpl", [b[1] for b in bones])):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise _fail(where, f"joints[].{label}", f"duplicates {dupes}")
    root_translation = data.get("root_translation", True)
    if not isinstance(root_translation, bool):
        raise _fail(where, "root_translation", f"must be true or false, got {root_translation!r}")
    root = data.get("neutral_root", [0.0, 0.0, 0.0])
    if not isinstance(root, Sequence) or isinstance(root, str) or len(root) != 3:
        raise _fail(where, "neutral_root", f"must be [x, y, z] metres, got {root!r}")
    x, y, z = (_number(where, f"neutral_root[{i}]", v) for i, v in enumerate(root))
    convention = data.get("convention", "ros")
    if convention not in AVATAR_CONVENTIONS:
        raise _fail(where, "convention", f"must be one of {list(AVATAR_CONVENTIONS)}, got {convention!r}")
    return Profile(
        name=name,
        kind="avatar",
        description=description,
        source=source,
        zero_pose=_pose(where, "neutral_pose_deg", data.get("neutral_pose_deg")),
        bones=bones,
        root_translation=root_translation,
        neutral_root=(x, y, z),
        convention=convention,
        path=path,
    )
