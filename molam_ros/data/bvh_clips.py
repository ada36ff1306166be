"""Real recorded motion capture in BVH files that ship in registry packages, on the SMPL skeleton.

It is over 500 lines because it holds one job end to end that no maintained package covers (see
below): a vectorised BVH parser and its forward kinematics, the axis and unit detection, and the
joint-by-joint mapping onto SMPL; splitting them would only spread one format's rules over files.

Where the clips come from (checked 2026-12; nothing is downloaded at run time):

- Debian's `assimp-testmodels` (5.2.5~ds0-1, `apt-get install assimp-testmodels`) installs
  /usr/share/assimp/models/BVH/ with three optical captures of one person:
  `01_01.bvh` (CMU subject 1 trial 1, playground: hops forward, turns, 2752 frames at 120 fps),
  `01_03.bvh` (CMU 1/3, playground: climbs a ladder, hangs on a bar, 4511 frames at 120 fps) and
  `Boxing_Toes.bvh` (a boxer warming up, punching, being hit, going down; 3069 frames at 100 fps).
  The CMU files are Bruce Hahne's BVH conversion of the CMU Graphics Lab Motion Capture Database;
  their terms are in `01_nn.bvh.source.txt` beside them ("CMU places no restrictions on the use
  of the original dataset, and I (Bruce) place no additional restrictions ..."; "free for use in
  research and commercial projects worldwide", acknowledgement requested:
  "The data used in this project was obtained from mocap.cs.cmu.edu. The database was created with
  funding from NSF EIA-0196217."). Boxing_Toes has no source note of its own; Debian's
  /usr/share/doc/assimp-testmodels/copyright covers it with the package's BSD-3-Clause.
- More folders can be named in the environment variable MOLAM_BVH_DIRS (os.pathsep-separated).

No PyPI wheel was found that installs real BVH captures (bvhtoolbox's sdist has two test files, but
its wheel installs none), so this module parses BVH itself: `bvhio` would add pinned PyGLM and
spatial-transform dependencies and builds a Python object per joint and frame, and `bvh` (0.3)
only tokenises the text, without forward kinematics. The parser here is vectorised over frames.

Mapping onto SMPL (metres, Y up, facing +Z, left = +X, floor at y=0, 30 fps):
1. forward kinematics of the BVH skeleton (rest pose = all channels zero; a joint's rotation is
   the product of its rotation channels in the order listed) gives world positions and rotations.
2. the file's axes are found from its rest pose, not assumed: up = head minus ankles, left = left
   hip minus right hip, each snapped to the nearest axis (so Z-up files work), forward = left x up.
3. units: the rest height (lowest to highest rest joint, End Sites included) is tried in metres,
   centimetres, millimetres, inches and CMU's ASF unit (inches / 0.45); the scale that makes it
   closest to 1.7 m within 1.2-2.2 m wins (`scale=` overrides).
4. each SMPL joint is a point rigidly fixed in one BVH joint's frame: limbs by name (LeftUpLeg /
   LeftHip -> left_hip, LeftLeg / LeftKnee -> left_knee, LeftFoot / LeftAnkle -> left_ankle,
   LeftToeBase / LeftToes -> left_foot, LeftArm -> left_shoulder with LeftShoulder the collar, or
   LeftShoulder -> left_shoulder with LeftCollar the collar, LeftForeArm / LeftElbow -> elbow,
   LeftHand / LeftWrist -> wrist); spine1..3 at SMPL's proportions (0.24, 0.50, 0.60) of the rest
   path from the root to the neck joint; a collar halfway along the source's clavicle bone. A
   skeleton without toes gets its foot at the ankle's End Site, or else at SMPL's ankle-to-foot
   offset scaled to the leg, fixed in the ankle's frame (the ankle's rotation still moves it).
5. a reference T-pose glued in front of the capture as frame 0 (the cgspeed CMU files have one)
   is dropped (`_reference_first_frame`); positions are resampled to 30 fps
   (`molam_ros.motion.resample`, linear) and put on the floor: the lowest joint over the whole
   clip at y=0 (HumanML3D's rule, as in `pybullet_clips`).
   They are the source's own points, not refitted: because every SMPL joint is fixed in a source
   bone, the limb bones keep their length exactly (up to linear resampling of rotating bones);
   only SMPL's torso-internal links (spine2 to spine3, spine3 to neck and collars), which span
   two source joints, vary: standard deviation at most 1.1 cm, extremes 4 cm (Boxing_Toes'
   collars) on the shipped files. Refitting onto a rigid SMPL-shaped skeleton by inverse
   kinematics was tried and moved the joints by about 5 cm on average (SMPL's hip/spine and
   neck/collar rest layout is not the source's), so it is not done; `local_quats` is left None
   for callers to derive by IK.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from molam_ros.data._files import floor_offset
from molam_ros.data.clip import TARGET_FPS, MotionClip
from molam_ros.data.errors import DatasetFormatError
from molam_ros.motion.resample import resample_positions
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS, REST_OFFSETS

ASSIMP_BVH_DIR = Path("/usr/share/assimp/models/BVH")
ASSIMP_DOC = Path("/usr/share/doc/assimp-testmodels")
ENV_DIRS = "MOLAM_BVH_DIRS"
CMU_TERMS = (
    "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu), BVH conversion by B. Hahne: "
    "free for research and commercial use, no restrictions; terms in 01_nn.bvh.source.txt"
)
ASSIMP_TERMS = "BSD-3-Clause (assimp test model; see /usr/share/doc/assimp-testmodels/copyright)"

# Candidate unit scales to metres: metres, centimetres, millimetres, inches, CMU ASF units.
UNIT_SCALES = (1.0, 0.01, 0.001, 0.0254, 0.0254 / 0.45)
TARGET_HEIGHT = 1.7  # metres, what a rest skeleton's height is compared with to pick its units
HEIGHT_RANGE = (1.2, 2.2)
# SMPL spine joints as fractions of the rest path from pelvis to neck.
_SMPL_SPINE = np.cumsum(np.linalg.norm(REST_OFFSETS[[3, 6, 9, 12]], axis=-1))
SPINE_FRACTIONS = tuple(float(f) for f in _SMPL_SPINE[:3] / _SMPL_SPINE[3])

# Names of BVH joints for each SMPL joint, most specific first ("{s}" is Left or Right, "{c}" L/R).
# Names are compared without case, "_", "-", spaces and a "prefix:" such as "mixamorig:".
LIMB_NAMES: dict[str, tuple[str, ...]] = {
    "hip": ("{s}UpLeg", "{s}Hip", "{s}Thigh", "{s}UpperLeg", "{c}Hip", "{c}Thigh"),
    "knee": ("{s}Leg", "{s}Knee", "{s}Shin", "{s}LowLeg", "{s}LowerLeg", "{c}Knee", "{c}Shin"),
    "ankle": ("{s}Foot", "{s}Ankle", "{c}Ankle", "{c}Foot"),
    "foot": ("{s}ToeBase", "{s}Toes", "{s}Toe", "{c}ToeBase", "{c}Toe", "{c}Toes"),
    "shoulder": ("{s}Arm", "{s}UpArm", "{s}UpperArm", "{s}Shoulder", "{c}Shoulder", "{c}UpArm"),
    "elbow": ("{s}ForeArm", "{s}Elbow", "{s}LowArm", "{s}LowerArm", "{c}Elbow", "{c}ForeArm"),
    "wrist": ("{s}Hand", "{s}Wrist", "{c}Hand", "{c}Wrist"),
    "collar": ("{s}Collar", "{s}Clavicle", "{c}Collar", "{c}Clavicle"),
}
NECK_NAMES = ("Neck1", "Neck", "UpperNeck", "LowerNeck")
HEAD_NAMES = ("Head",)

# Captions of the known files (the files carry no text of their own).
CAPTIONS: dict[str, list[str]] = {
    "01_01": [
        "a person hops forward three times, turns around and hops back",
        "someone jumps forward with both feet several times, turning around between the jumps",
    ],
    "01_03": [
        "a person climbs a step ladder and hangs from a bar",
        "someone climbs up, hangs on a bar, climbs down and does it again",
    ],
    "Boxing_Toes": [
        "a boxer warms up, throws punches, gets hit and falls down",
        "someone boxes, punching and dodging, then is knocked to the ground",
    ],
}


@dataclass(frozen=True)
class ClipInfo:
    """One shipped BVH file: where it is, where it came from and how long it is."""

    name: str
    source_package: str  # the package that installs it, e.g. "assimp-testmodels==5.2.5~ds0-1 (Debian)"
    path: Path
    licence: str
    fps: float  # the file's own frame rate
    frames: int  # the file's own frame count

    @property
    def seconds(self) -> float:
        return (self.frames - 1) / self.fps

    @property
    def source(self) -> str:
        return self.source_package


@dataclass
class BvhSkeleton:
    """A parsed BVH: joints in file order (End Sites included as channel-less joints)."""

    names: list[str]
    parents: np.ndarray  # (J,) int, -1 for the root
    offsets: np.ndarray  # (J, 3) rest offsets from the parent, file units
    channels: list[list[str]]  # per joint, e.g. ["Xposition", ..., "Zrotation"]
    end_site: np.ndarray  # (J,) bool
    frame_time: float
    motion: np.ndarray  # (T, C) channel values in file order

    @property
    def fps(self) -> float:
        return snap_fps(self.frame_time)

    def index(self, name: str) -> int:
        return self.names.index(name)


# ---------------------------------------------------------------------------------------------
# Parsing and forward kinematics


def snap_fps(frame_time: float) -> float:
    """Frames per second from a BVH Frame Time, snapped to a whole number within 0.01 %.

    Files round the frame time (CMU's ".0083333" is 1/120 s); without snapping, a clip of exactly
    N seconds would come out 1/30 s short of N * 30 + 1 frames.
    """
    fps = 1.0 / frame_time
    whole = round(fps)
    return float(whole) if whole > 0 and abs(fps - whole) <= 1e-4 * fps else fps


def parse_bvh(text: str, path: str | Path = "<string>") -> BvhSkeleton:
    """Parse BVH text into a skeleton and its motion table."""
    tokens = text.split()
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_site: list[bool] = []
    stack: list[int] = []
    i = 0

    def need(n: int) -> list[str]:
        if i + n > len(tokens):
            raise DatasetFormatError(path, "file ends inside the HIERARCHY section")
        return tokens[i : i + n]

    if not tokens or tokens[0].upper() != "HIERARCHY":
        raise DatasetFormatError(path, "not a BVH file (no HIERARCHY header)")
    i = 1
    pending: int | None = None  # joint whose "{" is expected next
    while i < len(tokens) and tokens[i].upper() != "MOTION":
        tok = tokens[i]
        key = tok.upper()
        if key in ("ROOT", "JOINT"):
            name = need(2)[1]
            if key == "ROOT" and names:
                raise DatasetFormatError(path, "more than one ROOT (only one skeleton is supported)")
            names.append(name)
            parents.append(stack[-1] if stack else -1)
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            end_site.append(False)
            pending = len(names) - 1
            i += 2
        elif key == "END":
            if not stack:
                raise DatasetFormatError(path, "End Site outside any joint")
            names.append(f"{names[stack[-1]]}_End")
            parents.append(stack[-1])
            offsets.append([0.0, 0.0, 0.0])
            channels.append([])
            end_site.append(True)
            pending = len(names) - 1
            i += 2
        elif tok == "{":
            if pending is None:
                raise DatasetFormatError(path, f"unexpected '{{' at token {i}")
            stack.append(pending)
            pending = None
            i += 1
        elif tok == "}":
            if not stack:
                raise DatasetFormatError(path, "unbalanced '}' in HIERARCHY")
            stack.pop()
            i += 1
        elif key == "OFFSET":
            try:
                offsets[stack[-1]] = [float(v) for v in need(4)[1:]]
            except (ValueError, IndexError) as exc:
                raise DatasetFormatError(path, f"bad OFFSET at token {i} ({exc})") from exc
            i += 4
        elif key == "CHANNELS":
            try:
                n = int(need(2)[1])
            except ValueError as exc:
                raise DatasetFormatError(path, f"bad CHANNELS count at token {i}") from exc
            if not stack:
                raise DatasetFormatError(path, "CHANNELS outside any joint")
            channels[stack[-1]] = need(2 + n)[2:]
            i += 2 + n
        else:
            raise DatasetFormatError(path, f"unexpected token {tok!r} in HIERARCHY")
    if stack or not names:
        raise DatasetFormatError(path, "HIERARCHY is empty or its braces do not balance")
    for chans in channels:
        for c in chans:
            if c[1:].lower() not in ("position", "rotation") or c[0].upper() not in "XYZ":
                raise DatasetFormatError(path, f"unknown channel {c!r}")
    # MOTION / Frames: n / Frame Time: dt / numbers
    try:
        m = tokens.index("MOTION", i)
        if tokens[m + 1] != "Frames:" or tokens[m + 3] != "Frame" or tokens[m + 4] != "Time:":
            raise ValueError("expected 'Frames: N' and 'Frame Time: dt'")
        num_frames = int(tokens[m + 2])
        frame_time = float(tokens[m + 5])
        values = np.array(tokens[m + 6 :], dtype=np.float64)
    except (ValueError, IndexError) as exc:
        raise DatasetFormatError(path, f"bad MOTION header or values ({exc})") from exc
    width = sum(len(c) for c in channels)
    if num_frames < 1 or not (np.isfinite(frame_time) and frame_time > 0):
        raise DatasetFormatError(path, f"bad frame count {num_frames} or frame time {frame_time}")
    if values.size < num_frames * width:
        raise DatasetFormatError(path, f"expected {num_frames} x {width} motion values, got {values.size}")
    # Some exporters leave a trailing partial line; keep exactly the announced frames.
    motion = values[: num_frames * width].reshape(num_frames, width)
    if not np.all(np.isfinite(motion)):
        raise DatasetFormatError(path, "motion contains NaN or infinite values")
    return BvhSkeleton(
        names=names,
        parents=np.array(parents, dtype=np.int64),
        offsets=np.array(offsets, dtype=np.float64),
        channels=channels,
        end_site=np.array(end_site, dtype=bool),
        frame_time=frame_time,
        motion=motion,
    )


def _axis_rotation(axis: str, degrees: np.ndarray) -> np.ndarray:
    """Rotation matrices (T, 3, 3) about X, Y or Z by angles in degrees."""
    a = np.radians(degrees)
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    if axis == "X":
        rows = [[o, z, z], [z, c, -s], [z, s, c]]
    elif axis == "Y":
        rows = [[c, z, s], [z, o, z], [-s, z, c]]
    else:
        rows = [[c, -s, z], [s, c, z], [z, z, o]]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def bvh_forward_kinematics(skel: BvhSkeleton) -> tuple[np.ndarray, np.ndarray]:
    """World positions (T, J, 3) and world rotation matrices (T, J, 3, 3), file units and axes.

    A joint's local transform is translation (its OFFSET, replaced by position channels where it
    has them) times its rotation channels multiplied in the listed order (so "Zrotation Yrotation
    Xrotation" is Rz Ry Rx); its world transform is its parent's times that.
    """
    t = skel.motion.shape[0]
    nj = len(skel.names)
    pos = np.zeros((t, nj, 3))
    rot = np.zeros((t, nj, 3, 3))
    col = 0
    for j in range(nj):
        local_t = np.broadcast_to(skel.offsets[j], (t, 3)).copy()
        local_r = np.broadcast_to(np.eye(3), (t, 3, 3)).copy()
        for ch in skel.channels[j]:
            axis, kind = ch[0].upper(), ch[1:].lower()
            v = skel.motion[:, col]
            col += 1
            if kind == "position":
                local_t[:, "XYZ".index(axis)] = v
            else:
                local_r = local_r @ _axis_rotation(axis, v)
        p = skel.parents[j]
        if p < 0:
            pos[:, j] = local_t
            rot[:, j] = local_r
        else:
            pos[:, j] = pos[:, p] + np.einsum("tij,tj->ti", rot[:, p], local_t)
            rot[:, j] = rot[:, p] @ local_r
    return pos, rot


def rest_positions(skel: BvhSkeleton) -> np.ndarray:
    """Rest-pose (all channels zero) joint positions (J, 3) relative to the root, file units."""
    out = np.zeros((len(skel.names), 3))
    for j, p in enumerate(skel.parents):
        if p >= 0:
            out[j] = out[p] + skel.offsets[j]
    return out


# ---------------------------------------------------------------------------------------------
# Joint mapping


def _norm(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name.split(":")[-1]).lower()


def _find(skel: BvhSkeleton, candidates: tuple[str, ...], side: str | None = None) -> int | None:
    lookup = {_norm(n): j for j, n in enumerate(skel.names) if not skel.end_site[j]}
    for cand in candidates:
        if side is not None:
            cand = cand.format(s=side.capitalize(), c=side[0].upper())
        j = lookup.get(_norm(cand))
        if j is not None:
            return j
    return None


@dataclass(frozen=True)
class Attachment:
    """An SMPL joint as the point `local` (file units) fixed in BVH joint `joint`'s frame."""

    joint: int
    local: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _first_child(skel: BvhSkeleton, j: int) -> int | None:
    kids = [k for k in range(len(skel.names)) if skel.parents[k] == j]
    return kids[0] if kids else None


def _point_on_chain(skel: BvhSkeleton, chain: list[int], fraction: float) -> Attachment:
    """The point at `fraction` of the rest path length along chain (root first), on its bone."""
    lengths = np.array([np.linalg.norm(skel.offsets[c]) for c in chain[1:]])
    target = fraction * lengths.sum()
    done = 0.0
    for k, seg in enumerate(lengths):
        if seg > 0 and done + seg >= target - 1e-9:
            u = (target - done) / seg
            return Attachment(chain[k], tuple(float(x) for x in u * skel.offsets[chain[k + 1]]))
        done += seg
    return Attachment(chain[-1])


def _chain_to(skel: BvhSkeleton, j: int) -> list[int]:
    chain = [j]
    while skel.parents[chain[-1]] >= 0:
        chain.append(int(skel.parents[chain[-1]]))
    return chain[::-1]


def source_axes(skel: BvhSkeleton, joints: dict[str, int]) -> np.ndarray:
    """The rotation (3, 3) from the file's axes to ours (left +X, up +Y, forward +Z)."""
    rest = rest_positions(skel)

    def snap(v: np.ndarray, what: str) -> np.ndarray:
        if np.linalg.norm(v) < 1e-9:
            raise DatasetFormatError("<skeleton>", f"cannot tell the {what} axis from the rest pose")
        out = np.zeros(3)
        k = int(np.argmax(np.abs(v)))
        out[k] = np.sign(v[k])
        return out

    ankles = 0.5 * (rest[joints["left_ankle"]] + rest[joints["right_ankle"]])
    up = snap(rest[joints["head"]] - ankles, "up")
    left = snap(rest[joints["left_hip"]] - rest[joints["right_hip"]], "left")
    if abs(up @ left) > 0.5:
        raise DatasetFormatError("<skeleton>", "rest pose's up and left axes coincide")
    return np.stack([left, up, np.cross(left, up)])


def map_to_smpl(skel: BvhSkeleton) -> dict[str, Attachment]:
    """Where each of the 22 SMPL joints sits on the BVH skeleton (see the module docstring)."""
    path = "<skeleton>"
    att: dict[str, Attachment] = {"pelvis": Attachment(0)}
    found: dict[str, int] = {}
    for side in ("left", "right"):
        for part in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist"):
            names = LIMB_NAMES[part]
            if part == "shoulder" and _find(skel, ("{s}Arm", "{s}UpArm", "{s}UpperArm"), side) is None:
                names = tuple(n for n in names if "Arm" not in n)
            j = _find(skel, names, side)
            if j is None:
                raise DatasetFormatError(path, f"no BVH joint for {side}_{part} (tried {names})")
            found[f"{side}_{part}"] = j
            att[f"{side}_{part}"] = Attachment(j)
    head = _find(skel, HEAD_NAMES)
    neck = _find(skel, NECK_NAMES)
    if head is None:
        raise DatasetFormatError(path, "no Head joint")
    found["head"] = head
    if neck is None:
        neck = int(skel.parents[head])
    att["head"] = Attachment(head)
    att["neck"] = Attachment(neck)
    chain = _chain_to(skel, neck)
    for k, name in enumerate(("spine1", "spine2", "spine3")):
        att[name] = _point_on_chain(skel, chain, SPINE_FRACTIONS[k])
    axes = source_axes(skel, found)
    height = float(np.ptp((rest_positions(skel) @ axes.T)[:, 1]))  # file units
    for side in ("left", "right"):
        shoulder = found[f"{side}_shoulder"]
        # A named collar (LeftCollar), else the upper arm's parent (CMU/mixamo LeftShoulder).
        collar = _find(skel, LIMB_NAMES["collar"], side)
        if collar is None or collar not in _chain_to(skel, shoulder)[:-1]:
            collar = int(skel.parents[shoulder])
        # Halfway along the clavicle: the bone from the collar joint towards the shoulder.
        chain = _chain_to(skel, shoulder)
        seg = chain[chain.index(collar) :]
        att[f"{side}_collar"] = _point_on_chain(skel, seg, 0.5)
        # Toes, or the ankle's End Site, or SMPL's ankle-to-foot offset scaled to the body.
        ankle = found[f"{side}_ankle"]
        toe = _find(skel, LIMB_NAMES["foot"], side)
        if toe is None:
            child = _first_child(skel, ankle)
            if child is not None and np.linalg.norm(skel.offsets[child]) > 0:
                toe = child
        if toe is not None:
            att[f"{side}_foot"] = Attachment(toe)
        else:
            # SMPL's offset is for a body of about TARGET_HEIGHT metres; `height` is file units.
            off = axes.T @ REST_OFFSETS[JOINT_INDEX[f"{side}_foot"]] * (height / TARGET_HEIGHT)
            att[f"{side}_foot"] = Attachment(ankle, tuple(float(x) for x in off))
    return att


def unit_scale(skel: BvhSkeleton, axes: np.ndarray) -> float:
    """Metres per file unit, from the rest skeleton's height (see UNIT_SCALES)."""
    rest = rest_positions(skel) @ axes.T
    height = float(np.ptp(rest[:, 1]))
    best = None
    for s in UNIT_SCALES:
        h = height * s
        if HEIGHT_RANGE[0] <= h <= HEIGHT_RANGE[1]:
            err = abs(np.log(h / TARGET_HEIGHT))
            if best is None or err < best[0]:
                best = (err, s)
    if best is None:
        raise DatasetFormatError(
            "<skeleton>", f"rest height {height:g} units is no person's height in m, cm, mm or inches"
        )
    return best[1]


def smpl_positions(skel: BvhSkeleton, scale: float | None = None) -> tuple[np.ndarray, dict]:
    """The 22 SMPL joints (T, 22, 3) in metres and our axes, at the file's own frame rate."""
    att = map_to_smpl(skel)
    found = {k: a.joint for k, a in att.items()}
    axes = source_axes(skel, found)
    scale = unit_scale(skel, axes) if scale is None else float(scale)
    pos, rot = bvh_forward_kinematics(skel)
    out = np.empty((pos.shape[0], NUM_JOINTS, 3))
    for name, a in att.items():
        j = JOINT_INDEX[name]
        out[:, j] = pos[:, a.joint] + rot[:, a.joint] @ np.asarray(a.local)
    out = (out @ axes.T) * scale
    info = {
        "unit_scale": scale,
        "axes": axes,
        "joints": {k: skel.names[a.joint] for k, a in att.items()},
        "rest_height_m": float(np.ptp((rest_positions(skel) @ axes.T)[:, 1]) * scale),
    }
    return out, info


# ---------------------------------------------------------------------------------------------
# Files and clips


def _reference_first_frame(pos: np.ndarray) -> bool:
    """Whether frame 0 is a reference pose glued in front of the capture, not part of it.

    The cgspeed CMU conversions start with one T-pose frame (all joint rotations zero) followed by
    the capture: the body then jumps 0.6-1 m in 1/120 s. Frame 0 counts as such when its pose
    (relative to the root) is over 20 cm and ten times further from frame 1 than the following
    frames are from each other.
    """
    if pos.shape[0] < 4:
        return False
    rel = pos[:4] - pos[:4, :1]
    step = np.linalg.norm(np.diff(rel, axis=0), axis=-1).max(axis=-1)  # (3,)
    return bool(step[0] > 0.2 and step[0] > 10.0 * max(step[1], step[2], 1e-3))


def bvh_dirs() -> list[Path]:
    """Folders searched for BVH files that exist on this machine."""
    dirs = [Path(p) for p in os.environ.get(ENV_DIRS, "").split(os.pathsep) if p]
    dirs.append(ASSIMP_BVH_DIR)
    return [d for d in dirs if d.is_dir()]


@lru_cache(maxsize=1)
def _assimp_package() -> str:
    """'assimp-testmodels==VERSION (Debian)', the version read from the package's changelog."""
    import gzip

    version = "unknown"
    try:
        with gzip.open(ASSIMP_DOC / "changelog.Debian.gz", "rt", encoding="utf-8") as f:
            m = re.match(r"\S+ \(([^)]+)\)", f.readline())
        version = m.group(1) if m else version
    except OSError:
        pass
    return f"assimp-testmodels=={version} (Debian)"


def _source_of(path: Path) -> tuple[str, str]:
    if path.parent == ASSIMP_BVH_DIR:
        licence = CMU_TERMS if re.fullmatch(r"\d\d_\d\d", path.stem) else ASSIMP_TERMS
        return _assimp_package(), licence
    return f"{ENV_DIRS}:{path.parent}", "see the folder's own licence"


def _clip_paths() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in bvh_dirs():
        for p in sorted(d.glob("*.bvh")):
            out.setdefault(p.stem, p)
    return out


@lru_cache(maxsize=32)
def _header(path: Path) -> tuple[float, int]:
    """(fps, frames) from a BVH's MOTION header without parsing the whole file."""
    with path.open("r", encoding="utf-8", errors="replace") as f:
        text = f.read()
    m = re.search(r"MOTION\s+Frames:\s*(\d+)\s+Frame Time:\s*([0-9.eE+-]+)", text)
    if m is None:
        raise DatasetFormatError(path, "no MOTION header")
    return snap_fps(float(m.group(2))), int(m.group(1))


def list_clips() -> list[ClipInfo]:
    """Every shipped BVH file found on this machine, with its source, licence, rate and length."""
    out = []
    for name, path in sorted(_clip_paths().items()):
        fps, frames = _header(path)
        source, licence = _source_of(path)
        out.append(ClipInfo(name, source, path, licence, fps, frames))
    return out


def list_bvh_clips() -> list[str]:
    """Names of the shipped BVH clips, e.g. '01_01', 'Boxing_Toes'."""
    return sorted(_clip_paths())


def load_bvh_file(
    path: str | Path, name: str | None = None, fps: float = TARGET_FPS, scale: float | None = None
) -> MotionClip:
    """One BVH file -> a rigid SMPL-skeleton MotionClip at `fps` (module docstring, steps 1-5)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise DatasetFormatError(path, f"cannot read BVH ({exc})") from exc
    skel = parse_bvh(text, path)
    if skel.motion.shape[0] < 2:
        raise DatasetFormatError(path, "fewer than two frames")
    try:
        raw, info = smpl_positions(skel, scale)
    except DatasetFormatError as exc:
        raise DatasetFormatError(path, exc.problem) from exc
    dropped = _reference_first_frame(raw)
    pos = resample_positions(raw[int(dropped) :], skel.fps, fps)
    pos[..., 1] -= floor_offset(pos)
    name = name or path.stem
    source, licence = _source_of(path)
    meta = {
        "source": source,
        "file": str(path),
        "licence": licence,
        "source_fps": skel.fps,
        "source_frames": int(skel.motion.shape[0]),
        "first_frame_dropped": dropped,
        "unit_scale": info["unit_scale"],
        "joint_map": info["joints"],
        "rest_height_m": info["rest_height_m"],
    }
    texts = list(CAPTIONS.get(name, [f"a person performs {name.replace('_', ' ')}"]))
    return MotionClip(name, pos[None], fps=fps, texts=texts, meta=meta)


def load_bvh_clip(name: str, fps: float = TARGET_FPS) -> MotionClip:
    """A shipped clip by the name `list_bvh_clips` gives."""
    paths = _clip_paths()
    if name not in paths:
        raise KeyError(f"no BVH clip {name!r}; available: {sorted(paths)}")
    return load_bvh_file(paths[name], name=name, fps=fps)


def load_clip(name: str) -> np.ndarray:
    """A shipped clip's joint positions, (T, 22, 3) float32 at 30 fps, metres, floor at y=0."""
    return load_bvh_clip(name).positions[0]


def clip_windows(clip: MotionClip, seconds: float = 8.0, min_seconds: float = 4.0) -> list[MotionClip]:
    """Cut a long clip into consecutive pieces of `seconds` (the last kept if >= `min_seconds`).

    Each piece keeps the clip's floor (y=0 is the whole recording's lowest joint) and its captions;
    captions describe the whole recording, so a piece may show only part of what they say.
    """
    n = int(round(seconds * clip.fps))
    if n < 2:
        raise ValueError(f"window of {seconds} s is under two frames at {clip.fps} fps")
    out = []
    for k, start in enumerate(range(0, clip.num_frames, n)):
        stop = min(start + n, clip.num_frames)
        if (stop - start) / clip.fps < min_seconds:
            break
        meta = dict(clip.meta, window=(start, stop))
        quats = None if clip.local_quats is None else clip.local_quats[:, start:stop]
        out.append(
            MotionClip(
                f"{clip.name}_w{k:02d}",
                clip.positions[:, start:stop],
                fps=clip.fps,
                texts=list(clip.texts),
                meta=meta,
                local_quats=quats,
            )
        )
    return out
