"""BVH parsing, forward kinematics and the mapping of real BVH captures onto the SMPL skeleton."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pytest

from molam_ros.data.bvh_clips import (
    ClipInfo,
    bvh_forward_kinematics,
    clip_windows,
    list_bvh_clips,
    list_clips,
    load_bvh_clip,
    load_bvh_file,
    load_clip,
    parse_bvh,
)
from molam_ros.data.clip import MotionClip
from molam_ros.data.errors import DatasetFormatError
from molam_ros.motion.skeleton import JOINT_INDEX, PARENTS

J = JOINT_INDEX

# --- parser and forward kinematics on a three-joint file with a known answer -----------------

TINY = """HIERARCHY
ROOT Root
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Arm
  {
    OFFSET 0 10 0
    CHANNELS 2 Zrotation Xrotation
    End Site
    {
      OFFSET 0 5 0
    }
  }
}
MOTION
Frames: 2
Frame Time: 0.5
1 2 3 90 0 0 90 0
0 0 0 0 0 0 90 90
"""


def test_parse_tiny_bvh() -> None:
    skel = parse_bvh(TINY)
    assert skel.names == ["Root", "Arm", "Arm_End"]
    assert skel.parents.tolist() == [-1, 0, 1]
    assert skel.end_site.tolist() == [False, False, True]
    assert skel.fps == 2.0 and skel.motion.shape == (2, 8)
    np.testing.assert_allclose(skel.offsets[2], [0, 5, 0])


def test_forward_kinematics_known_answer() -> None:
    pos, rot = bvh_forward_kinematics(parse_bvh(TINY))
    # Frame 0: root at (1,2,3) turned 90 deg about Z; Arm = root + Rz90 (0,10,0) = (-9, 2, 3);
    # Arm turns another 90 deg about Z, so its End Site = Arm + Rz180 (0,5,0) = (-9, -3, 3).
    np.testing.assert_allclose(pos[0], [[1, 2, 3], [-9, 2, 3], [-9, -3, 3]], atol=1e-9)
    # Frame 1: Arm's channels are "Zrotation Xrotation" = Rz(90) Rx(90), in that order:
    # Rx90 (0,5,0) = (0,0,5), then Rz90 leaves it (0,0,5). The other order would give (-5,0,0).
    np.testing.assert_allclose(pos[1, 2] - pos[1, 1], [0, 0, 5], atol=1e-9)
    np.testing.assert_allclose(rot[1, 0], np.eye(3), atol=1e-12)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("hello", "no HIERARCHY"),
        (TINY.replace("Frames: 2", "Frames: 3"), "motion values"),
        (TINY.replace("  }\n}\nMOTION", "  }\nMOTION"), "braces"),
        (TINY.replace("Zrotation Xrotation\n", "Zrotation Wrotation\n"), "unknown channel"),
    ],
)
def test_parse_rejects_broken_files(text: str, problem: str) -> None:
    with pytest.raises(DatasetFormatError, match=problem):
        parse_bvh(text)


# --- a whole body written by the test: axes, units and joint mapping ---------------------------

# A T-pose body in metres, our axes (left +X, up +Y, forward +Z): (name, parent, offset).
BODY = [
    ("Hips", None, (0.0, 0.0, 0.0)),
    ("LeftUpLeg", "Hips", (0.1, -0.05, 0.0)),
    ("LeftLeg", "LeftUpLeg", (0.0, -0.40, 0.0)),
    ("LeftFoot", "LeftLeg", (0.0, -0.42, 0.0)),
    ("LeftToeBase", "LeftFoot", (0.0, -0.05, 0.12)),
    ("RightUpLeg", "Hips", (-0.1, -0.05, 0.0)),
    ("RightLeg", "RightUpLeg", (0.0, -0.40, 0.0)),
    ("RightFoot", "RightLeg", (0.0, -0.42, 0.0)),
    ("RightToeBase", "RightFoot", (0.0, -0.05, 0.12)),
    ("Spine", "Hips", (0.0, 0.12, 0.0)),
    ("Spine1", "Spine", (0.0, 0.20, 0.0)),
    ("Neck", "Spine1", (0.0, 0.20, 0.0)),
    ("Head", "Neck", (0.0, 0.10, 0.0)),
    ("LeftShoulder", "Spine1", (0.05, 0.15, 0.0)),
    ("LeftArm", "LeftShoulder", (0.12, 0.0, 0.0)),
    ("LeftForeArm", "LeftArm", (0.28, 0.0, 0.0)),
    ("LeftHand", "LeftForeArm", (0.25, 0.0, 0.0)),
    ("RightShoulder", "Spine1", (-0.05, 0.15, 0.0)),
    ("RightArm", "RightShoulder", (-0.12, 0.0, 0.0)),
    ("RightForeArm", "RightArm", (-0.28, 0.0, 0.0)),
    ("RightHand", "RightForeArm", (-0.25, 0.0, 0.0)),
]
ENDS = {"Head": (0.0, 0.15, 0.0), "LeftHand": (0.1, 0.0, 0.0), "RightHand": (-0.1, 0.0, 0.0)}
# Our axes -> a Z-up file's axes (left +X, up +Z, forward -Y): a proper rotation.
Z_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def write_body_bvh(
    path: Path,
    frames: list[dict[str, float]],
    unit: float = 0.01,
    axes: np.ndarray | None = None,
    drop: tuple[str, ...] = (),
    bare: tuple[str, ...] = (),
    fps: float = 60.0,
) -> Path:
    """BODY as a BVH in file units (metres / unit) and file axes; frames give root x/y/z (file
    units, file axes) and 'Joint.Xrotation'-style channel values in degrees (0 if absent).
    Joints in `drop` are left out; a joint without children gets an End Site unless in `bare`."""
    axes = np.eye(3) if axes is None else axes
    body = [b for b in BODY if b[0] not in drop]
    kids: dict[str | None, list[str]] = {}
    for name, parent, _ in body:
        kids.setdefault(parent, []).append(name)
    offset = {name: axes @ np.array(off) / unit for name, _, off in body}
    order: list[str] = []
    lines = ["HIERARCHY"]

    def fmt(v: np.ndarray) -> str:
        return " ".join(f"{x:.6f}" for x in v)

    def emit(name: str, depth: int) -> None:
        pad = "  " * depth
        lines.append(f"{pad}{'ROOT' if depth == 0 else 'JOINT'} {name}")
        lines.append(pad + "{")
        lines.append(f"{pad}  OFFSET {fmt(offset[name])}")
        chans = "Xposition Yposition Zposition " if depth == 0 else ""
        lines.append(f"{pad}  CHANNELS {6 if depth == 0 else 3} {chans}Zrotation Xrotation Yrotation")
        order.append(name)
        for child in kids.get(name, []):
            emit(child, depth + 1)
        if name in ENDS or (not kids.get(name) and name not in bare):
            end = axes @ np.array(ENDS.get(name, (0.0, -0.05, 0.0))) / unit
            lines.extend([f"{pad}  End Site", pad + "  {", f"{pad}    OFFSET {fmt(end)}", pad + "  }"])
        lines.append(pad + "}")

    emit("Hips", 0)
    lines += ["MOTION", f"Frames: {len(frames)}", f"Frame Time: {1.0 / fps:.8f}"]
    for fr in frames:
        row = [fr.get("x", 0.0), fr.get("y", 0.0), fr.get("z", 0.0)]
        for name in order:
            row += [fr.get(f"{name}.{axis}rotation", 0.0) for axis in "ZXY"]
        lines.append(" ".join(f"{v:.6f}" for v in row))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def still(n: int = 3, **channels: float) -> list[dict[str, float]]:
    return [dict(channels) for _ in range(n)]


def test_rest_pose_maps_onto_smpl_axes_and_floor(tmp_path: Path) -> None:
    clip = load_bvh_file(write_body_bvh(tmp_path / "t.bvh", still()))
    assert isinstance(clip, MotionClip) and clip.fps == 30
    assert clip.meta["unit_scale"] == pytest.approx(0.01)
    pos = clip.positions[0].astype(np.float64)
    assert pos.shape == (2, 22, 3)  # 3 frames at 60 fps = 1/30 s -> 2 frames at 30 fps
    p = pos[0]
    # The toes are the lowest joints: on the floor; the pelvis is the leg's height above it.
    assert p[:, 1].min() == pytest.approx(0.0, abs=1e-6)
    assert p[J["pelvis"], 1] == pytest.approx(0.05 + 0.40 + 0.42 + 0.05, abs=1e-5)
    np.testing.assert_allclose(p[J["left_hip"]] - p[J["pelvis"]], [0.1, -0.05, 0.0], atol=1e-5)
    np.testing.assert_allclose(p[J["left_foot"]] - p[J["left_ankle"]], [0.0, -0.05, 0.12], atol=1e-5)
    np.testing.assert_allclose(p[J["right_wrist"]] - p[J["right_elbow"]], [-0.25, 0.0, 0.0], atol=1e-5)
    np.testing.assert_allclose(p[J["head"]] - p[J["neck"]], [0.0, 0.10, 0.0], atol=1e-5)
    # Collars halfway along the clavicle; spine joints on the pelvis-to-neck path, in order.
    # Spine1 0.32 m up, LeftShoulder (clavicle) +(0.05, 0.15), LeftArm +0.12 in x: halfway is
    # (0.11, 0.47) from the pelvis.
    np.testing.assert_allclose(p[J["left_collar"]] - p[J["pelvis"]], [0.11, 0.47, 0.0], atol=1e-5)
    heights = p[[J["pelvis"], J["spine1"], J["spine2"], J["spine3"], J["neck"]], 1]
    assert np.all(np.diff(heights) > 0)


@pytest.mark.parametrize(
    "unit, axes, scale",
    [(0.01, None, 0.01), (1.0, None, 1.0), (0.0254, Z_UP, 0.0254), (0.001, Z_UP, 0.001)],
)
def test_units_and_z_up_files(tmp_path: Path, unit: float, axes: np.ndarray | None, scale: float) -> None:
    # Bend the left knee 90 degrees about the file's X axis (the person's left-right axis):
    # the shin then points backwards, -Z in our axes, whatever the file's up axis and units.
    bend = still(**{"LeftLeg.Xrotation": 90.0})
    clip = load_bvh_file(write_body_bvh(tmp_path / "b.bvh", bend, unit=unit, axes=axes))
    assert clip.meta["unit_scale"] == pytest.approx(scale)
    p = clip.positions[0, 0].astype(np.float64)
    np.testing.assert_allclose(p[J["left_ankle"]] - p[J["left_knee"]], [0.0, 0.0, -0.42], atol=1e-5)
    np.testing.assert_allclose(p[J["right_ankle"]] - p[J["right_knee"]], [0.0, -0.42, 0.0], atol=1e-5)
    assert p[J["head"], 1] > p[J["pelvis"], 1] + 0.3


def test_resampled_to_30fps_with_root_motion(tmp_path: Path) -> None:
    # 121 frames at 120 fps walking the root 1 cm per frame forward (+Z): 1 s -> 31 frames.
    frames = [{"z": float(k)} for k in range(121)]
    clip = load_bvh_file(write_body_bvh(tmp_path / "w.bvh", frames, fps=120.0), fps=30.0)
    pos = clip.positions[0]
    assert pos.shape == (31, 22, 3)
    np.testing.assert_allclose(np.diff(pos[:, J["pelvis"], 2]), 0.04, atol=1e-5)
    assert clip.meta["source_fps"] == pytest.approx(120.0, rel=1e-5)


def test_missing_toes_use_the_ankle_end_site(tmp_path: Path) -> None:
    path = write_body_bvh(tmp_path / "e.bvh", still(), drop=("LeftToeBase", "RightToeBase"))
    p = load_bvh_file(path).positions[0, 0].astype(np.float64)
    np.testing.assert_allclose(p[J["left_foot"]] - p[J["left_ankle"]], [0.0, -0.05, 0.0], atol=1e-5)


def test_missing_toes_and_end_site_place_the_foot_in_front_of_the_ankle(tmp_path: Path) -> None:
    toes = ("LeftToeBase", "RightToeBase")
    path = write_body_bvh(tmp_path / "n.bvh", still(), drop=toes, bare=("LeftFoot", "RightFoot"))
    p = load_bvh_file(path).positions[0, 0].astype(np.float64)
    for side in ("left", "right"):
        d = p[J[f"{side}_foot"]] - p[J[f"{side}_ankle"]]
        assert d[2] > 0.05 and d[1] < 0 and np.linalg.norm(d) < 0.2


def test_unmappable_skeleton_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x.bvh"
    path.write_text(TINY)
    with pytest.raises(DatasetFormatError, match="no BVH joint"):
        load_bvh_file(path)


def test_leading_reference_pose_is_dropped(tmp_path: Path) -> None:
    # A T-pose frame, then the capture with both arms down (shoulders turned 80 degrees).
    arms = {"LeftArm.Zrotation": -80.0, "RightArm.Zrotation": 80.0}
    frames = [{}] + [dict(arms, z=float(k)) for k in range(9)]
    clip = load_bvh_file(write_body_bvh(tmp_path / "r.bvh", frames, fps=30.0))
    assert clip.meta["first_frame_dropped"] is True and clip.num_frames == 9
    p = clip.positions[0]
    assert np.all(p[:, J["left_wrist"], 1] < p[:, J["left_shoulder"], 1] - 0.4)
    still_clip = load_bvh_file(write_body_bvh(tmp_path / "s.bvh", still(5, **arms), fps=30.0))
    assert still_clip.meta["first_frame_dropped"] is False and still_clip.num_frames == 5


def test_windows_cut_a_clip_into_pieces(tmp_path: Path) -> None:
    frames = [{"z": float(k)} for k in range(60 * 19 + 1)]  # 19 s at 60 fps
    clip = load_bvh_file(write_body_bvh(tmp_path / "long.bvh", frames))
    pieces = clip_windows(clip, seconds=8.0, min_seconds=4.0)
    assert [p.num_frames for p in pieces] == [240, 240]  # the last 3 s are dropped
    np.testing.assert_array_equal(pieces[1].positions, clip.positions[:, 240:480])


# --- the real shipped files --------------------------------------------------------------------

NAMES = list_bvh_clips()
NO_FILES = "no shipped BVH files: install Debian's assimp-testmodels (apt-get install assimp-testmodels)"
REAL = NAMES or [pytest.param(None, marks=pytest.mark.skip(reason=NO_FILES))]


@cache
def real(name: str) -> MotionClip:
    return load_bvh_clip(name)


def test_list_clips_describes_each_file() -> None:
    infos = list_clips()
    if not infos:
        pytest.skip(NO_FILES)
    assert [i.name for i in infos] == NAMES
    for info in infos:
        assert isinstance(info, ClipInfo) and info.path.is_file() and info.frames > 1
        assert 20 <= info.fps <= 240 and info.licence and info.source_package
        if info.path.parent == Path("/usr/share/assimp/models/BVH"):
            assert info.source_package.startswith("assimp-testmodels==")
    if "01_01" in NAMES:
        cmu = next(i for i in infos if i.name == "01_01")
        assert (cmu.frames, round(cmu.fps)) == (2752, 120) and "CMU" in cmu.licence


@pytest.mark.parametrize("name", REAL)
def test_real_clip_is_plausible(name: str) -> None:
    clip = real(name)
    info = next(i for i in list_clips() if i.name == name)
    pos = load_clip(name)
    assert pos.dtype == np.float32 and pos.ndim == 3 and pos.shape[1:] == (22, 3)
    assert np.all(np.isfinite(pos))
    np.testing.assert_array_equal(pos, clip.positions[0])
    # 30 fps over the file's own duration.
    assert clip.fps == 30
    used = info.frames - int(clip.meta["first_frame_dropped"])  # CMU's leading T-pose frame
    assert pos.shape[0] == int(np.floor((used - 1) / info.fps * 30 + 1e-6)) + 1
    # No jump anywhere: a joint moves under 0.5 m in 1/30 s (about 15 m/s).
    assert np.linalg.norm(np.diff(pos, axis=0), axis=-1).max() < 0.5
    # On the floor, standing up (the head above the pelvis most of the time), a person's size.
    assert pos[..., 1].min() == pytest.approx(0.0, abs=1e-6)
    assert 1.3 <= clip.meta["rest_height_m"] <= 2.1
    up = pos[:, J["head"], 1] > pos[:, J["pelvis"], 1]
    assert up.mean() > 0.5
    # The limbs keep their length (each SMPL joint is fixed in one source bone); the torso-internal
    # links spine3 -> neck / collars may vary a little.
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, list(PARENTS[1:])], axis=-1)
    assert lengths.std(axis=0).max() < 0.015
    limbs = [J[f"{s}_{p}"] - 1 for s in ("left", "right") for p in ("knee", "ankle", "elbow", "wrist")]
    assert lengths[:, limbs].std(axis=0).max() < 1e-3
    thigh_shin = lengths[:, limbs[:2]].mean(axis=0)
    assert np.all((thigh_shin > 0.3) & (thigh_shin < 0.55))
    # Left is the person's left: with forward = left x up, the hips' facing and the direction
    # the toes point agree.
    left = pos[:, J["left_hip"]] - pos[:, J["right_hip"]]
    forward = np.cross(left, [0.0, 1.0, 0.0])
    toes = pos[:, J["left_foot"]] - pos[:, J["left_ankle"]]
    assert np.mean(np.sum(forward * toes, axis=-1) > 0) > 0.8
    assert clip.texts and clip.meta["source"]


@pytest.mark.parametrize("name", REAL)
def test_real_clip_windows_are_4_to_10_seconds(name: str) -> None:
    for piece in clip_windows(real(name)):
        assert 4.0 <= piece.duration <= 10.0
