"""The real single-person motion-capture clips that ship inside `pybullet`, on the SMPL skeleton.

`pybullet_data/data/motions/humanoid3d_*.txt` and `walker/*.txt` are DeepMimic (Peng et al., 2018)
clips: JSON {"Loop": "wrap"|"none", "Frames": [[...44 numbers...], ...]}. Each frame is

    [0] dt (seconds this frame lasts; 0 on the last frame), [1:4] root position (metres),
    [4:8] root rotation, then local joint rotations: [8:12] chest, [12:16] neck, [16:20] right hip,
    [20] right knee (angle), [21:25] right ankle, [25:29] right shoulder, [29] right elbow (angle),
    [30:34] left hip, [34] left knee, [35:39] left ankle, [39:43] left shoulder, [43] left elbow,

quaternions (w, x, y, z), as `pybullet_envs/deep_mimic/env/humanoid_pose_interpolator.py` reads
them. The world is Y up, the character faces +X and its right side is +Z. The skeleton is
`pybullet_data/humanoid/humanoid.urdf` loaded with globalScaling=0.25 (as DeepMimic's
`humanoid_stable_pd.py` does): every joint frame is aligned with the world in the rest pose, which
stands upright with the arms hanging down; knees and elbows are hinges about the local Z axis.

Mapping onto SMPL (Y up, facing +Z, left = +X, T-pose rest):
1. a rotation G of -90 degrees about Y turns DeepMimic axes into ours (+X forward -> +Z, right +Z ->
   -X); DeepMimic rotations R become G R G^T, positions G p.
2. each SMPL joint j takes the world rotation of a DeepMimic joint times a constant rest-pose
   correction C_j, chosen so that the SMPL rest bone to j's child points where the DeepMimic bone
   points in DeepMimic's rest (for example arms: T-pose +/-X -> hanging down). Locals follow as
   local(j) = C_parent^-1 local_dm(j) C_j. Torso joints, whose several children have no single
   DeepMimic direction, keep C = I: spine1..3 share the chest rotation in three equal parts, the
   collars and head add none, the neck takes DeepMimic's neck.
3. positions come from forward kinematics with SMPL offsets whose lengths are DeepMimic's
   (thigh, shin, upper arm, forearm) or SMPL's scaled to DeepMimic's pelvis-to-neck length
   (torso, hips, collars, head, feet), so every bone keeps one length over the clip.
4. frames are resampled from their own dt to 30 fps (slerp of local rotations, linear root), and
   the clip is put on the floor: its lowest joint over the whole clip at y=0 (HumanML3D's rule,
   which also holds for clips that lie or crawl on the ground).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from functools import lru_cache
from pathlib import Path

import numpy as np

from molam_ros.data._files import floor_offset
from molam_ros.data.clip import TARGET_FPS, MotionClip
from molam_ros.data.errors import DatasetFormatError
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.rotations import (
    axis_angle_to_quat,
    quat_between,
    quat_conjugate,
    quat_mul,
    quat_normalize,
    quat_rotate,
    quat_slerp,
    quat_to_axis_angle,
)
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS, REST_OFFSETS

FRAME_WIDTH = 44
URDF_SCALE = 0.25  # DeepMimic loads humanoid.urdf with globalScaling=0.25
# Frame columns of each DeepMimic joint: (first column, number of values; 1 = hinge angle about Z).
DM_COLUMNS: dict[str, tuple[int, int]] = {
    "chest": (8, 4),
    "neck": (12, 4),
    "right_hip": (16, 4),
    "right_knee": (20, 1),
    "right_ankle": (21, 4),
    "right_shoulder": (25, 4),
    "right_elbow": (29, 1),
    "left_hip": (30, 4),
    "left_knee": (34, 1),
    "left_ankle": (35, 4),
    "left_shoulder": (39, 4),
    "left_elbow": (43, 1),
}
# DeepMimic (X forward, Y up, Z right) -> SMPL axes (Z forward, Y up, X left): -90 degrees about Y.
G_QUAT = np.array([np.cos(-np.pi / 4), 0.0, np.sin(-np.pi / 4), 0.0])

# Captions from file names (the clips carry no text of their own).
CAPTIONS: dict[str, list[str]] = {
    "backflip": ["a person does a backflip", "someone jumps and flips backwards, landing on their feet"],
    "cartwheel": ["a person does a cartwheel", "someone turns a cartwheel sideways"],
    "crawl": ["a person crawls forward on hands and knees", "someone crawls on the floor"],
    "dance_a": ["a person dances", "someone dances in place, moving arms and hips"],
    "dance_b": ["a person dances energetically", "someone dances, swinging their arms"],
    "getup_facedown": ["a person lying face down gets up", "someone gets up from lying on their stomach"],
    "getup_faceup": ["a person lying on their back gets up", "someone gets up from lying on their back"],
    "jump": ["a person jumps forward", "someone jumps forward with both feet"],
    "kick": ["a person kicks", "someone kicks forward with one leg"],
    "punch": ["a person punches", "someone throws punches"],
    "roll": ["a person rolls forward", "someone does a forward roll on the ground"],
    "run": ["a person runs forward", "someone runs"],
    "spin": ["a person does an acrobatic spin", "someone spins around with the body tilted sideways"],
    "spinkick": ["a person does a spinning kick", "someone spins and kicks"],
    "walk": ["a person walks forward", "someone walks straight ahead"],
    "walk_forward": ["a person walks forward", "someone walks straight ahead"],
    "turn_left": ["a person walks and turns left", "someone walks forward, turning to the left"],
    "turn_right": ["a person walks and turns right", "someone walks forward, turning to the right"],
}


def motions_dir() -> Path:
    """pybullet_data's motion folder (imported lazily: pybullet is only needed for these clips)."""
    import pybullet_data

    return Path(pybullet_data.getDataPath()) / "data" / "motions"


def _clip_paths() -> dict[str, Path]:
    root = motions_dir()
    paths = {p.stem: p for p in sorted(root.glob("humanoid3d_*.txt"))}
    paths.update({f"walker_{p.stem}": p for p in sorted((root / "walker").glob("*.txt"))})
    return paths


def list_pybullet_clips() -> list[str]:
    """Names of the shipped human clips, e.g. 'humanoid3d_walk', 'walker_turn_left0'."""
    return sorted(_clip_paths())


def _caption_key(name: str) -> str:
    stem = name.removeprefix("humanoid3d_").removeprefix("walker_").lstrip("0123456789")
    return stem.rstrip("0123456789")


@lru_cache(maxsize=1)
def urdf_offsets() -> dict[str, np.ndarray]:
    """Joint origins of humanoid.urdf in metres (DeepMimic axes), keyed by joint (= child link) name."""
    import pybullet_data

    path = Path(pybullet_data.getDataPath()) / "humanoid" / "humanoid.urdf"
    try:
        # The shipped file ends with a stray NUL byte, which XML parsers reject.
        root = ET.fromstring(path.read_text(encoding="utf-8").replace("\x00", ""))
    except (OSError, UnicodeDecodeError, ET.ParseError) as exc:
        raise DatasetFormatError(path, f"cannot parse URDF ({exc})") from exc
    out = {}
    for joint in root.iter("joint"):
        origin = joint.find("origin")
        xyz = origin.get("xyz", "0 0 0") if origin is not None else "0 0 0"
        out[joint.get("name")] = np.array([float(v) for v in xyz.split()]) * URDF_SCALE
    return out


def _conj_g(q: np.ndarray) -> np.ndarray:
    """A DeepMimic-axes rotation re-expressed in SMPL axes: g q g^-1."""
    return quat_mul(quat_mul(G_QUAT, q), quat_conjugate(G_QUAT))


def _hinge(angle: np.ndarray) -> np.ndarray:
    """Rotation about the joint's local Z axis (DeepMimic knees and elbows)."""
    half = 0.5 * angle
    z = np.zeros_like(half)
    return np.stack([np.cos(half), z, z, np.sin(half)], axis=-1)


def _pow(q: np.ndarray, t: float) -> np.ndarray:
    """q to the power t (same axis, angle times t)."""
    return axis_angle_to_quat(quat_to_axis_angle(q) * t)


@lru_cache(maxsize=1)
def smpl_skeleton() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """SMPL offsets with DeepMimic proportions (22, 3) and the rest corrections C_j (SMPL axes)."""
    dm = {k: quat_rotate(G_QUAT, v) for k, v in urdf_offsets().items()}  # SMPL axes
    j = JOINT_INDEX
    lengths = np.linalg.norm(REST_OFFSETS, axis=-1)
    torso_smpl = np.linalg.norm(REST_OFFSETS[[j["spine1"], j["spine2"], j["spine3"], j["neck"]]].sum(0))
    torso_dm = np.linalg.norm(dm["chest"] + dm["neck"])
    scale = np.full(NUM_JOINTS, torso_dm / torso_smpl)
    for side in ("left", "right"):
        for limb in ("knee", "ankle", "elbow", "wrist"):  # thigh, shin, upper arm, forearm
            k = j[f"{side}_{limb}"]
            scale[k] = np.linalg.norm(dm[f"{side}_{limb}"]) / lengths[k]
        leg_dm = np.linalg.norm(dm[f"{side}_knee"]) + np.linalg.norm(dm[f"{side}_ankle"])
        leg_smpl = lengths[j[f"{side}_knee"]] + lengths[j[f"{side}_ankle"]]
        scale[j[f"{side}_foot"]] = leg_dm / leg_smpl
    offsets = REST_OFFSETS * scale[:, None]
    # Rest corrections: the SMPL bone from j to its child onto DeepMimic's rest bone direction.
    corr: dict[str, np.ndarray] = {}
    for side in ("left", "right"):
        for joint, child in (("hip", "knee"), ("knee", "ankle"), ("shoulder", "elbow"), ("elbow", "wrist")):
            corr[f"{side}_{joint}"] = quat_between(REST_OFFSETS[j[f"{side}_{child}"]], dm[f"{side}_{child}"])
    return offsets, corr


def dm_frames_to_smpl(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeepMimic frames (T, 44) -> SMPL local quaternions (T, 22, 4) and root positions (T, 3)."""
    _, corr = smpl_skeleton()
    t = frames.shape[0]
    root_pos = quat_rotate(G_QUAT, frames[:, 1:4])
    dm = {"root": _conj_g(quat_normalize(frames[:, 4:8]))}
    for name, (col, width) in DM_COLUMNS.items():
        q = _hinge(frames[:, col]) if width == 1 else quat_normalize(frames[:, col : col + 4])
        dm[name] = _conj_g(q)
    ident = np.tile([1.0, 0.0, 0.0, 0.0], (t, 1))
    local = np.tile(ident[:, None], (1, NUM_JOINTS, 1))
    j = JOINT_INDEX
    local[:, j["pelvis"]] = dm["root"]
    third = _pow(dm["chest"], 1.0 / 3.0)
    for s in ("spine1", "spine2", "spine3"):
        local[:, j[s]] = third
    local[:, j["neck"]] = dm["neck"]
    for side in ("left", "right"):
        c_hip, c_knee = corr[f"{side}_hip"], corr[f"{side}_knee"]
        c_sh, c_el = corr[f"{side}_shoulder"], corr[f"{side}_elbow"]
        local[:, j[f"{side}_hip"]] = quat_mul(dm[f"{side}_hip"], c_hip)
        local[:, j[f"{side}_knee"]] = quat_mul(quat_mul(quat_conjugate(c_hip), dm[f"{side}_knee"]), c_knee)
        local[:, j[f"{side}_ankle"]] = quat_mul(quat_conjugate(c_knee), dm[f"{side}_ankle"])
        local[:, j[f"{side}_shoulder"]] = quat_mul(dm[f"{side}_shoulder"], c_sh)
        local[:, j[f"{side}_elbow"]] = quat_mul(quat_mul(quat_conjugate(c_sh), dm[f"{side}_elbow"]), c_el)
    return quat_normalize(local), root_pos


def _frame_times(dt: np.ndarray, path: Path) -> np.ndarray:
    """Start time of each frame from the per-frame durations (the last frame's dt is unused)."""
    if np.any(dt[:-1] <= 0):
        bad = int(np.argmax(dt[:-1] <= 0))
        raise DatasetFormatError(path, f"frame {bad} has non-positive duration {dt[bad]}")
    return np.concatenate([[0.0], np.cumsum(dt[:-1])])


def _resample(times: np.ndarray, local: np.ndarray, root: np.ndarray, fps: float):
    """Slerp local rotations and lerp root positions at k / fps inside [0, times[-1]]."""
    out_t = np.arange(int(np.floor(times[-1] * fps + 1e-6)) + 1) / fps
    i0 = np.clip(np.searchsorted(times, out_t, side="right") - 1, 0, len(times) - 1)
    i1 = np.minimum(i0 + 1, len(times) - 1)
    span = np.maximum(times[i1] - times[i0], 1e-12)
    w = np.where(i1 > i0, (out_t - times[i0]) / span, 0.0)
    q = quat_slerp(local[i0], local[i1], np.broadcast_to(w[:, None], (len(w), local.shape[1])))
    r = root[i0] * (1 - w[:, None]) + root[i1] * w[:, None]
    return q, r


def load_deepmimic_file(path: str | Path, name: str | None = None, fps: float = TARGET_FPS) -> MotionClip:
    """One DeepMimic humanoid motion file -> a rigid SMPL-skeleton MotionClip at `fps`."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetFormatError(path, f"cannot read DeepMimic motion JSON ({exc})") from exc
    if not isinstance(data, dict) or "Frames" not in data:
        raise DatasetFormatError(path, "no 'Frames' list")
    try:
        frames = np.asarray(data["Frames"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DatasetFormatError(path, f"'Frames' is not a rectangular table of numbers ({exc})") from exc
    if frames.ndim != 2 or frames.shape[1] != FRAME_WIDTH or frames.shape[0] < 2:
        raise DatasetFormatError(path, f"expected (T>=2, {FRAME_WIDTH}) frames, got shape {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise DatasetFormatError(path, "frames contain NaN or infinite values")
    times = _frame_times(frames[:, 0], path)
    local, root = dm_frames_to_smpl(frames)
    local, root = _resample(times, local, root, fps)
    offsets, _ = smpl_skeleton()
    pos, _ = forward_kinematics(local, root, offsets)
    lift = floor_offset(pos)
    pos[..., 1] -= lift
    name = name or path.stem
    meta = {
        "source": "pybullet",
        "file": str(path),
        "loop": data.get("Loop", "none"),
        "source_fps": float(1.0 / np.median(frames[:-1, 0])),
        "rest_offsets": offsets.astype(np.float32),
    }
    key = _caption_key(name)
    texts = list(CAPTIONS.get(key, [f"a person performs {key.replace('_', ' ')}"]))
    return MotionClip(name, pos[None], fps=fps, texts=texts, meta=meta, local_quats=local[None])


def load_pybullet_clip(name: str, fps: float = TARGET_FPS) -> MotionClip:
    """A shipped clip by the name `list_pybullet_clips` gives."""
    paths = _clip_paths()
    if name not in paths:
        raise KeyError(f"no pybullet clip {name!r}; available: {sorted(paths)}")
    return load_deepmimic_file(paths[name], name=name, fps=fps)


def save_skeleton_png(clip: MotionClip, path: str | Path, num_frames: int = 5, person: int = 0) -> Path:
    """Draw a few frames of a clip as stick figures, a sanity check of the axis and joint mapping.

    Top row: side view (forward +Z to the right, up +Y). Bottom row: front view, seen from in front
    of the person (their left, +X, appears on the viewer's right). Left-side bones red, right-side
    blue, spine and head black; the floor y=0 is a grey line.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pos = clip.positions[person]
    idx = np.linspace(0, clip.num_frames - 1, num_frames).round().astype(int)
    names = {i: n for n, i in JOINT_INDEX.items()}
    fig, axes = plt.subplots(2, num_frames, figsize=(2.6 * num_frames, 6), squeeze=False)
    for k, f in enumerate(idx):
        p = pos[f]
        for row, (h, label) in enumerate(((2, "z forward"), (0, "x (person's left)"))):
            ax = axes[row, k]
            centre = p[0, h]
            for jnt in range(1, NUM_JOINTS):
                par = PARENTS[jnt]
                n = names[jnt]
                color = "r" if n.startswith("left") else "b" if n.startswith("right") else "k"
                ax.plot([p[par, h] - centre, p[jnt, h] - centre], [p[par, 1], p[jnt, 1]], color=color, lw=2)
            ax.axhline(0.0, color="0.6", lw=1)
            ax.set_xlim(-1.0, 1.0)
            ax.set_ylim(-0.1, 2.0)
            ax.set_aspect("equal")
            ax.set_xlabel(label)
            if row == 0:
                ax.set_title(f"{clip.name}\nt={f / clip.fps:.2f}s", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
