"""The DeepMimic clips shipped in pybullet, mapped onto the SMPL skeleton."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from molam_ros.data.clip import MotionClip
from molam_ros.data.errors import DatasetFormatError
from molam_ros.data.pybullet_clips import (
    list_pybullet_clips,
    load_deepmimic_file,
    load_pybullet_clip,
    motions_dir,
    save_skeleton_png,
)
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.skeleton import FOOT_JOINTS, JOINT_INDEX, PARENTS

J = JOINT_INDEX
STANDING = (
    "humanoid3d_walk",
    "humanoid3d_run",
    "humanoid3d_punch",
    "humanoid3d_dance_a",
    "humanoid3d_dance_b",
    "walker_0walk_forward",
    "walker_turn_left0",
    "walker_turn_right0",
)


@cache
def clip(name: str) -> MotionClip:
    return load_pybullet_clip(name)


def forward_dir(pos: np.ndarray) -> np.ndarray:
    """Unit facing direction per frame from the hips (left = +X, up = +Y, so forward = left x up)."""
    f = np.cross(pos[:, J["left_hip"]] - pos[:, J["right_hip"]], [0.0, 1.0, 0.0])
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def test_all_twenty_clips_listed() -> None:
    names = list_pybullet_clips()
    assert len(names) == 20
    assert "humanoid3d_walk" in names and "walker_turn_left0" in names


@pytest.mark.parametrize("name", list_pybullet_clips())
def test_clip_is_rigid_30fps_on_floor(name: str) -> None:
    c = clip(name)
    assert c.fps == 30 and c.num_people == 1 and c.num_frames >= 20
    assert c.meta["source"] == "pybullet" and c.texts and c.texts[0].startswith("a person")
    pos = c.positions[0].astype(np.float64)
    lengths = np.linalg.norm(pos[:, 1:] - pos[:, list(PARENTS[1:])], axis=-1)
    assert np.abs(lengths - lengths[:1]).max() < 1e-5  # constant bone lengths
    assert abs(pos[..., 1].min()) < 1e-6  # lowest joint on the floor
    assert pos[:, list(FOOT_JOINTS), 1].min() < 0.1  # a foot gets near the floor
    fk, _ = forward_kinematics(c.local_quats[0], pos[:, 0], c.meta["rest_offsets"])
    assert np.abs(fk - pos).max() < 1e-4  # local_quats reproduce the positions
    src = json.loads(Path(c.meta["file"]).read_text())["Frames"]
    duration = sum(f[0] for f in src[:-1])
    assert abs((c.num_frames - 1) / 30 - duration) <= 1 / 30


@pytest.mark.parametrize("name", STANDING)
def test_standing_clips_upright_and_human_sized(name: str) -> None:
    pos = clip(name).positions[0]
    head_up = pos[:, J["head"], 1] - pos[:, 0, 1]
    assert np.mean(head_up > 0.3) > 0.95
    height = pos[:, J["head"], 1].max()  # head joint at its most upright; the crown is ~0.15 m higher
    assert 1.4 < height < 1.7, height


def test_walk_moves_forward_with_knees_bending_forward() -> None:
    pos = clip("humanoid3d_walk").positions[0].astype(np.float64)
    fwd = forward_dir(pos)
    disp = pos[-1, 0] - pos[0, 0]
    assert disp[2] > 1.0 and abs(disp[0]) < 0.2  # walks about 1.2 m along +Z ...
    assert np.mean(fwd @ (disp / np.linalg.norm(disp))) > 0.9  # ... facing where it goes
    for side in ("left", "right"):
        hip, knee, ankle = (pos[:, J[f"{side}_{n}"]] for n in ("hip", "knee", "ankle"))
        bend = np.sum((knee - 0.5 * (hip + ankle)) * fwd, axis=-1)
        assert np.mean(bend > -0.01) > 0.95  # knees point forward, never backwards
        wrist, elbow, shoulder = (pos[:, J[f"{side}_{n}"]] for n in ("wrist", "elbow", "shoulder"))
        elbow_bend = np.sum((elbow - 0.5 * (shoulder + wrist)) * fwd, axis=-1)
        assert np.mean(elbow_bend < 0.01) > 0.95  # elbows point backwards


def test_turns_go_the_named_way() -> None:
    left = clip("walker_turn_left0").positions[0, :, 0]
    right = clip("walker_turn_right0").positions[0, :, 0]
    assert left[-1, 0] - left[0, 0] > 0.2  # the person's left is +X
    assert right[-1, 0] - right[0, 0] < -0.2


def test_getup_ends_upright() -> None:
    for name in ("humanoid3d_getup_facedown", "humanoid3d_getup_faceup"):
        pos = clip(name).positions[0]
        assert pos[0, J["head"], 1] < 0.5 < pos[-1, J["head"], 1] - 0.8


def test_png_sanity_plot(tmp_path: Path) -> None:
    out = save_skeleton_png(clip("humanoid3d_walk"), tmp_path / "walk.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_malformed_deepmimic_file(tmp_path: Path) -> None:
    src = json.loads((motions_dir() / "humanoid3d_walk.txt").read_text())
    bad = tmp_path / "bad.txt"
    bad.write_text(json.dumps({"Loop": "wrap", "Frames": [f[:40] for f in src["Frames"]]}))
    with pytest.raises(DatasetFormatError, match="44") as exc:
        load_deepmimic_file(bad)
    assert str(bad) in str(exc.value)
    bad.write_text('{"Loop": "wrap", "Frames": [[0.03')
    with pytest.raises(DatasetFormatError, match="JSON"):
        load_deepmimic_file(bad)
    frames = [list(f) for f in src["Frames"]]
    frames[3][0] = 0.0
    bad.write_text(json.dumps({"Frames": frames}))
    with pytest.raises(DatasetFormatError, match="frame 3"):
        load_deepmimic_file(bad)
