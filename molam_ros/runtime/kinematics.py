"""A robot profile's kinematic chain: link offsets, joint axes, masses and collision capsules.

The `kinematics:` section of a robot profile (config/profiles/README.md) is what a simulator or an
IK solver needs and the axis-decomposition retargeter does not: where each link sits on its parent
and which way its joint turns, copied from the robot's published URDF (cited in the section's
`source`, as the profile cites the joints' limits), plus one collision capsule per link fitted to
the URDF's meshes (`scripts/fit_capsules.py` prints the section from a URDF checkout).

Why a section of the profile and not the URDF itself: the URDFs reference meshes of many MB and
live in the vendors' repositories; the chain is a few dozen numbers, and keeping it next to the
joint limits means one file says everything molam knows about a robot and is validated in one go.

All numbers are in the URDF's frame convention (REP 103: x forward, y left, z up, metres, radians),
unlike the profile's joint axes, which are renamed into SMPL body axes: this section is copied
from the URDF line by line and must stay checkable against it.

Validation fails with the file and field named (`ProfileError`), as for the rest of the profile:
every link's parent comes before it, every profile joint moves exactly one link, axes are unit
vectors, masses and capsule radii positive.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

_KEYS = {"source", "base_height", "links", "sites"}
_LINK_KEYS = {"name", "parent", "joint", "axis", "pos", "rpy", "mass", "capsule", "collide"}
_SITE_KEYS = {"link", "pos"}


class KinematicsError(ValueError):
    """A `kinematics:` section that does not follow the schema (profiles.py wraps it)."""


@dataclass(frozen=True)
class LinkSpec:
    """One rigid link.

    parent: the link it hangs on (None for the base); joint: the profile joint that moves it about
    `axis` (None: welded to its parent, e.g. a head or a hand). pos, rpy: the joint origin in the
    parent's frame (URDF `<origin>`). capsule: (x1, y1, z1, x2, y2, z2, radius) in this link's
    frame, or None; collide: False for small parts that sit inside their neighbours' capsules
    (they still carry their mass).
    """

    name: str
    parent: str | None
    joint: str | None
    axis: tuple[float, float, float]
    pos: tuple[float, float, float]
    rpy: tuple[float, float, float]
    mass: float
    capsule: tuple[float, ...] | None
    collide: bool = True


@dataclass(frozen=True)
class Kinematics:
    """The chain of a robot profile: links parent first, the base's standing height, named sites.

    sites: SMPL joint name -> (link, point in the link's frame): where a human joint lands on the
    robot (wrists on the hands, elbows, ankles, the head), for IK and for fidelity measures.
    """

    source: str
    base_height: float
    links: tuple[LinkSpec, ...]
    sites: tuple[tuple[str, str, tuple[float, float, float]], ...] = ()

    def link(self, name: str) -> LinkSpec:
        return next(link for link in self.links if link.name == name)


def _fail(where: str, field: str, msg: str) -> KinematicsError:
    return KinematicsError(f"{where}: kinematics.{field}: {msg}")


def _vector(where: str, field: str, value: Any, n: int = 3) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != n:
        raise _fail(where, field, f"must be a list of {n} numbers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise _fail(where, field, f"must hold finite numbers, got {value!r}")
        out.append(float(v))
    return tuple(out)


def _link(where: str, i: int, data: Any, known: set[str], joints: set[str]) -> LinkSpec:
    label = f"links[{i}]"
    if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
        raise _fail(where, label, f"must be a mapping with a name, got {data!r}")
    label = f"links[{i}] ({data['name']})"
    unknown = sorted(set(data) - _LINK_KEYS)
    if unknown:
        raise _fail(where, label, f"unknown key(s) {unknown}; allowed: {sorted(_LINK_KEYS)}")
    if data["name"] in known:
        raise _fail(where, label, "duplicate link name")
    parent = data.get("parent")
    if (parent is None) != (i == 0):
        raise _fail(where, f"{label}.parent", "the first link is the base (no parent), every other needs one")
    if parent is not None and parent not in known:
        raise _fail(where, f"{label}.parent", f"{parent!r} is not a link listed before it")
    joint = data.get("joint")
    if joint is not None and joint not in joints:
        raise _fail(where, f"{label}.joint", f"{joint!r} is not a joint of the profile")
    axis = _vector(where, f"{label}.axis", data.get("axis", [0, 0, 1]))
    if abs(math.hypot(*axis) - 1.0) > 1e-6:
        raise _fail(where, f"{label}.axis", f"must be a unit vector, got {list(axis)}")
    mass = data.get("mass")
    if isinstance(mass, bool) or not isinstance(mass, (int, float)) or not mass > 0:
        raise _fail(where, f"{label}.mass", f"must be > 0 kg, got {mass!r}")
    capsule = None
    if data.get("capsule") is not None:
        capsule = _vector(where, f"{label}.capsule", data["capsule"], 7)
        if not capsule[6] > 0:
            raise _fail(where, f"{label}.capsule", f"radius must be > 0 m, got {capsule[6]}")
    collide = data.get("collide", True)
    if not isinstance(collide, bool):
        raise _fail(where, f"{label}.collide", f"must be true or false, got {collide!r}")
    return LinkSpec(
        name=data["name"],
        parent=parent,
        joint=joint,
        axis=axis,  # type: ignore[arg-type]
        pos=_vector(where, f"{label}.pos", data.get("pos", [0, 0, 0])),  # type: ignore[arg-type]
        rpy=_vector(where, f"{label}.rpy", data.get("rpy", [0, 0, 0])),  # type: ignore[arg-type]
        mass=float(mass),
        capsule=capsule,
        collide=collide,
    )


def kinematics_from_dict(
    data: Any, where: str, joint_names: Sequence[str], smpl_names: Sequence[str]
) -> Kinematics:
    """Validate a parsed `kinematics:` section against the profile's joints (module docstring)."""
    if not isinstance(data, Mapping):
        raise _fail(where, "<section>", "must be a mapping")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise _fail(where, "<section>", f"unknown key(s) {unknown}; allowed: {sorted(_KEYS)}")
    height = data.get("base_height")
    if isinstance(height, bool) or not isinstance(height, (int, float)) or not height > 0:
        raise _fail(where, "base_height", f"must be > 0 m (the base's height when standing), got {height!r}")
    raw = data.get("links")
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise _fail(where, "links", "must be a non-empty list")
    links: list[LinkSpec] = []
    known: set[str] = set()
    for i, item in enumerate(raw):
        links.append(_link(where, i, item, known, set(joint_names)))
        known.add(links[-1].name)
    moved = [link.joint for link in links if link.joint is not None]
    missing = sorted(set(joint_names) - set(moved))
    twice = sorted({j for j in moved if moved.count(j) > 1})
    if missing or twice:
        raise _fail(
            where, "links", f"every profile joint must move one link: missing {missing}, twice {twice}"
        )
    sites = []
    for smpl, site in (data.get("sites") or {}).items():
        if smpl not in smpl_names:
            raise _fail(where, f"sites.{smpl}", "is not an SMPL joint name")
        if not isinstance(site, Mapping) or set(site) - _SITE_KEYS or site.get("link") not in known:
            raise _fail(where, f"sites.{smpl}", f"must be {{link: <a link>, pos: [x, y, z]}}, got {site!r}")
        sites.append((smpl, site["link"], _vector(where, f"sites.{smpl}.pos", site.get("pos", [0, 0, 0]))))
    return Kinematics(
        source=str(data.get("source", "")),
        base_height=float(height),
        links=tuple(links),
        sites=tuple(sites),  # type: ignore[arg-type]
    )
