"""Dataset loaders on tiny files written in each dataset's exact published layout."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from molam_ros.data.errors import BodyModelNotFoundError, DatasetFormatError
from molam_ros.data.humanml3d import HumanML3D, parse_text_file
from molam_ros.data.interhuman import Z_UP_TO_Y_UP, InterHuman
from molam_ros.data.interx import InterX
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.rotations import axis_angle_to_quat, matrix_to_6d, quat_to_matrix
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS, REST_OFFSETS

J = JOINT_INDEX


def walking_person(t: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """An upright person (Y up) with bent knees/elbows, moving along +Z: local quats and positions."""
    rng = np.random.default_rng(seed)
    aa = np.zeros((t, NUM_JOINTS, 3))
    phase = np.linspace(0, 2 * np.pi, t)
    aa[:, J["left_knee"], 0] = 0.6 + 0.4 * np.sin(phase)
    aa[:, J["right_knee"], 0] = 0.6 - 0.4 * np.sin(phase)
    aa[:, J["left_hip"], 0] = -0.4 * np.sin(phase)
    aa[:, J["left_elbow"], 1] = 1.0
    aa[:, J["right_elbow"], 1] = -1.0
    aa[:, 1:] += rng.normal(scale=0.05, size=(t, NUM_JOINTS - 1, 3))
    aa[:, 0, 1] = 0.3  # turned a little about the vertical
    q = axis_angle_to_quat(aa)
    root = np.stack([np.zeros(t), np.full(t, 0.9), np.linspace(0, 1, t)], 1)
    pos, _ = forward_kinematics(q, root, REST_OFFSETS)
    return q, pos


def assert_names(exc: pytest.ExceptionInfo, path: Path) -> None:
    assert str(path) in str(exc.value), exc.value


# --- HumanML3D ---------------------------------------------------------------------------------


def make_humanml3d(root: Path, t: int = 21) -> np.ndarray:
    for d in ("new_joints", "new_joint_vecs", "texts"):
        (root / d).mkdir(parents=True, exist_ok=True)
    _, pos = walking_person(t)
    pos[..., 1] -= pos[..., 1].min()
    np.save(root / "new_joints" / "000001.npy", pos.astype(np.float32))
    np.save(root / "new_joint_vecs" / "000001.npy", np.zeros((t - 1, 263), np.float32))
    (root / "texts" / "000001.txt").write_text(
        "a person walks forward.#a/DET person/NOUN walk/VERB forward/ADV#0.0#0.0\n"
        "someone strolls ahead#someone/PRON stroll/VERB ahead/ADV#nan#nan\n"
        "the person takes a step.#the/DET person/NOUN take/VERB a/DET step/NOUN#0.2#0.8\n"
    )
    (root / "train.txt").write_text("000001\n")
    (root / "test.txt").write_text("")
    return pos


def test_humanml3d_loads_resamples_and_parses_captions(tmp_path: Path) -> None:
    pos = make_humanml3d(tmp_path)
    ds = HumanML3D(tmp_path)
    assert ds.split_ids("train") == ["000001"]
    assert ds.split_ids("test") == []
    clip = ds.load("000001")
    assert clip.fps == 30 and clip.num_people == 1
    assert clip.num_frames == 31  # 1.0 s at 20 fps (21 frames) -> 31 frames at 30 fps
    np.testing.assert_allclose(clip.positions[0, 0], pos[0], atol=1e-6)
    np.testing.assert_allclose(clip.positions[0, -1], pos[-1], atol=1e-6)
    np.testing.assert_allclose(clip.positions[0, 3], pos[2], atol=1e-6)  # t = 0.1 s
    np.testing.assert_allclose(clip.positions[0, 1], (pos[0] + 2 * pos[1]) / 3, atol=1e-5)  # t = 1/30 s
    assert clip.texts == ["a person walks forward.", "someone strolls ahead"]
    assert clip.meta["segments"] == [
        {"start_frame": 6, "end_frame": 24, "texts": ["the person takes a step."]}
    ]
    clips = list(ds.iter_split("train"))
    assert [c.name for c in clips] == ["000001", "000001#6#24"]
    assert clips[1].num_frames == 18


def test_humanml3d_malformed_files(tmp_path: Path) -> None:
    make_humanml3d(tmp_path)
    ds = HumanML3D(tmp_path)
    joints = tmp_path / "new_joints" / "000001.npy"
    vecs = tmp_path / "new_joint_vecs" / "000001.npy"
    text = tmp_path / "texts" / "000001.txt"

    np.save(vecs, np.zeros((7, 263), np.float32))
    with pytest.raises(DatasetFormatError, match="different runs") as exc:
        ds.load("000001")
    assert_names(exc, vecs)
    np.save(vecs, np.zeros((20, 263), np.float32))

    text.write_text("a caption without the other fields\n")
    with pytest.raises(DatasetFormatError, match="line 1") as exc:
        ds.load("000001")
    assert_names(exc, text)
    with pytest.raises(DatasetFormatError, match="not numbers"):
        text.write_text("cap#tok#zero#1.0\n")
        parse_text_file(text)

    good = joints.read_bytes()
    joints.write_bytes(good[: len(good) // 2])  # truncated download
    with pytest.raises(DatasetFormatError) as exc:
        ds.load("000001")
    assert_names(exc, joints)

    np.save(joints, np.zeros((21, 24, 3), np.float32))
    with pytest.raises(DatasetFormatError, match="22, 3") as exc:
        ds.load("000001")
    assert_names(exc, joints)

    with pytest.raises(DatasetFormatError, match="missing") as exc:
        ds.load("000002")
    assert_names(exc, tmp_path / "new_joints" / "000002.npy")
    with pytest.raises(DatasetFormatError, match="split file"):
        ds.split_ids("val")


# --- InterHuman --------------------------------------------------------------------------------


def interhuman_rows(q: np.ndarray, pos_yup: np.ndarray, layout: str) -> np.ndarray:
    """(T, 492) rows as the dataset stores them: Z-up positions, 6D body rotations."""
    t = pos_yup.shape[0]
    rows = np.zeros((t, 492), np.float32)
    pos_zup = pos_yup @ Z_UP_TO_Y_UP  # inverse of the loader's rotation
    rows[:, :66] = pos_zup.reshape(t, 66)
    rows[:, 66:186] = np.repeat(pos_zup[:, 20:22], 20, axis=1).reshape(t, 120)  # hand joints
    mats = quat_to_matrix(q[:, 1:])
    if layout == "rows":
        mats = np.swapaxes(mats, -1, -2)
    rows[:, 186:312] = matrix_to_6d(mats).reshape(t, 126)
    rows[:, 312:] = 0.5
    return rows


def make_interhuman(root: Path, layout: str = "rows", t: int = 40) -> tuple[np.ndarray, np.ndarray]:
    for d in ("annots", "motions_processed/person1", "motions_processed/person2", "split"):
        (root / d).mkdir(parents=True, exist_ok=True)
    q1, p1 = walking_person(t, seed=1)
    q2, p2 = walking_person(t, seed=2)
    p2 = p2 + np.array([0.0, 0.0, 1.5])
    for i, (q, p) in enumerate(((q1, p1), (q2, p2)), start=1):
        np.save(root / f"motions_processed/person{i}/10.npy", interhuman_rows(q, p, layout))
        np.save(root / f"motions_processed/person{i}/11.npy", interhuman_rows(q, p, layout))
    (root / "annots" / "10.txt").write_text("one waves to the other.\n\nthe other waves back.\n")
    (root / "annots" / "11.txt").write_text("two people stand.\n")
    (root / "split" / "train.txt").write_text("10\n11\n")
    (root / "split" / "ignore_list.txt").write_text("11\n")
    return np.stack([q1, q2]), np.stack([p1, p2])


@pytest.mark.parametrize("layout", ["rows", "columns"])
def test_interhuman_axes_floor_rotations(tmp_path: Path, layout: str) -> None:
    q, pos = make_interhuman(tmp_path, layout)
    ds = InterHuman(tmp_path)
    assert ds.split_ids("train") == ["10"]  # 11 is on the ignore list
    clips = list(ds.iter_split("train"))
    assert len(clips) == 1
    clip = clips[0]
    assert clip.texts == ["one waves to the other.", "the other waves back."]
    assert clip.positions.shape == (2, 40, 22, 3) and clip.fps == 30
    p = clip.positions
    # Upright in Y-up: head above pelvis above ankles; person's left (+X) kept (no mirror).
    assert np.all(p[:, :, J["head"], 1] > p[:, :, 0, 1] + 0.4)
    assert np.all(p[:, :, J["left_hip"], 0] > p[:, :, J["right_hip"], 0] - 0.05)
    assert abs(p[..., 1].min()) < 1e-6  # on the floor
    np.testing.assert_allclose(p - p[:1, :1, :1], pos - pos[:1, :1, :1], atol=1e-5)
    assert clip.local_quats is not None
    assert clip.meta["rotations"].startswith(f"6D block decoded as {layout}/{layout}")
    dots = np.abs(np.sum(clip.local_quats[:, :, 1:] * q[:, :, 1:], axis=-1))
    assert dots.min() > 0.9999
    # Root rotation comes from the positions: forward kinematics reproduces the joints closely.
    fk, _ = forward_kinematics(clip.local_quats[0], clip.positions[0, :, 0], REST_OFFSETS)
    assert np.abs(fk - clip.positions[0]).max() < 0.02


def test_interhuman_bad_rotations_and_files(tmp_path: Path) -> None:
    make_interhuman(tmp_path)
    path1 = tmp_path / "motions_processed/person1/10.npy"
    rows = np.load(path1)
    rows[:, 186:312] = np.random.default_rng(0).normal(size=(rows.shape[0], 126))
    np.save(path1, rows)
    clip = InterHuman(tmp_path).load("10")
    assert clip.local_quats is None and "IK" in clip.meta["rotations"]

    np.save(path1, rows[:, :300])
    with pytest.raises(DatasetFormatError, match="492") as exc:
        InterHuman(tmp_path).load("10")
    assert_names(exc, path1)
    np.save(path1, rows[:30])
    with pytest.raises(DatasetFormatError, match="frames") as exc:
        InterHuman(tmp_path).load("10")
    assert_names(exc, tmp_path / "motions_processed/person2/10.npy")
    path1.write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(DatasetFormatError) as exc:
        InterHuman(tmp_path).load("10")
    assert_names(exc, path1)
    (tmp_path / "annots" / "11.txt").unlink()
    with pytest.raises(DatasetFormatError, match="missing caption") as exc:
        InterHuman(tmp_path).load("11")
    assert_names(exc, tmp_path / "annots" / "11.txt")


# --- Inter-X -----------------------------------------------------------------------------------


def make_fake_smplx(folder: Path, gender: str = "NEUTRAL") -> np.ndarray:
    """A structurally complete SMPL-X .npz (55 joints) whose body joints sit at the SMPL rest pose.

    It has SMPL-X's vertex count because smplx reads fixed vertex ids (face and foot keypoints);
    blend shapes are zero, so it compresses to a few hundred KB. Returns the (55, 3) rest joints.
    """
    n_verts, n_joints = 10475, 55
    parents = list(PARENTS) + [15, 15, 15]  # jaw, eyes
    for wrist in (20, 21):
        for _ in range(5):
            parents += [wrist, len(parents), len(parents) + 1]
    rest = np.zeros((n_joints, 3))
    for j in range(1, n_joints):
        off = REST_OFFSETS[j] if j < 22 else np.array([0.0, 0.03, 0.03]) if j < 25 else np.array([0.02, 0, 0])
        rest[j] = rest[parents[j]] + off
    rng = np.random.default_rng(0)
    verts = rest[rng.integers(0, n_joints, n_verts)] + rng.normal(scale=0.03, size=(n_verts, 3))
    verts[:n_joints] = rest
    regressor = np.zeros((n_joints, n_verts), np.float32)
    regressor[np.arange(n_joints), np.arange(n_joints)] = 1.0  # joint j = vertex j
    weights = np.zeros((n_verts, n_joints), np.float32)
    weights[np.arange(n_joints), np.arange(n_joints)] = 1.0
    weights[n_joints:, 0] = 1.0
    faces = np.stack([np.arange(200), np.arange(1, 201), np.arange(2, 202)], 1)
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        folder / f"SMPLX_{gender}.npz",
        v_template=verts.astype(np.float32),
        shapedirs=np.zeros((n_verts, 3, 400), np.float32),  # 300 shape + 100 expression
        posedirs=np.zeros((n_verts, 3, 486), np.float32),
        J_regressor=regressor,
        weights=weights,
        kintree_table=np.stack([np.array([2**32 - 1] + parents[1:]), np.arange(n_joints)]),
        f=faces,
        hands_componentsl=np.eye(45, dtype=np.float32),
        hands_componentsr=np.eye(45, dtype=np.float32),
        hands_meanl=np.zeros(45, np.float32),
        hands_meanr=np.zeros(45, np.float32),
        lmk_faces_idx=np.arange(51),
        lmk_bary_coords=np.full((51, 3), 1 / 3, np.float32),
    )
    return rest


def write_interx_person(path: Path, t: int, x0: float, root_orient: np.ndarray, gender: str = "male") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    trans = np.stack([x0 + np.linspace(0, 1, t), np.full(t, 0.3), np.zeros(t)], 1)
    body = np.zeros((t, 21, 3))
    body[:, J["left_knee"] - 1, 0] = 0.5
    np.savez(
        path,
        root_orient=np.repeat(root_orient[None], t, 0),
        pose_body=body,
        pose_lhand=np.zeros((t, 45)),
        pose_rhand=np.zeros((t, 15, 3)),
        pose_jaw=np.zeros((t, 3)),
        trans=trans,
        betas=np.zeros((1, 10)),
        gender=np.array(gender),
    )


def make_interx(root: Path, t: int = 121, root_orient: np.ndarray | None = None) -> None:
    ro = np.zeros(3) if root_orient is None else root_orient
    write_interx_person(root / "motions/G001T000A000R000/P1.npz", t, 0.0, ro)
    write_interx_person(root / "motions/G001T000A000R000/P2.npz", t, 1.0, ro, gender="female")
    (root / "texts").mkdir(parents=True)
    (root / "texts/G001T000A000R000.txt").write_text("The first person hugs the second.\nThey embrace.\n")
    (root / "annots").mkdir()
    with open(root / "annots/interaction_order.pkl", "wb") as fh:
        pickle.dump({"G001T000A000R000": 1}, fh)
    (root / "splits").mkdir()
    (root / "splits/train.txt").write_text("G001T000A000R000\n")


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    models = tmp_path_factory.mktemp("models")
    return models, make_fake_smplx(models / "smplx")


def test_interx_end_to_end_through_smplx(tmp_path: Path, smplx_dir: tuple[Path, np.ndarray]) -> None:
    models, rest = smplx_dir
    make_interx(tmp_path)
    ds = InterX(tmp_path, models)
    clips = list(ds.iter_split("train"))
    assert len(clips) == 1
    clip = clips[0]
    assert clip.texts == ["The first person hugs the second.", "They embrace."]
    assert clip.meta["actor"] == 1
    assert clip.meta["genders"] == ["neutral", "neutral"]  # no gendered model here: fall back
    assert clip.positions.shape == (2, 31, 22, 3) and clip.fps == 30  # 1 s at 120 fps -> 30 fps
    p = clip.positions
    assert abs(p[..., 1].min()) < 1e-6
    assert np.all(p[:, :, J["head"], 1] > p[:, :, 0, 1] + 0.4)  # upright, Y up
    np.testing.assert_allclose(p[0, -1, 0, 0] - p[0, 0, 0, 0], 1.0, atol=1e-5)  # 1 m along x in 1 s
    np.testing.assert_allclose(p[0, :, J["neck"]] - p[0, :, 0], np.repeat(rest[None, 12], 31, 0), atol=1e-5)
    offsets = np.concatenate([[np.zeros(3)], rest[1:22] - rest[list(PARENTS[1:])]])
    fk, _ = forward_kinematics(clip.local_quats[1], p[1, :, 0], offsets)
    np.testing.assert_allclose(fk, p[1], atol=1e-5)
    knee_dir = p[0, 0, J["left_ankle"]] - p[0, 0, J["left_knee"]]
    assert knee_dir[2] < -0.1  # the knee bends the ankle backwards (-Z), as SMPL knees do


def test_interx_z_up_copy_and_errors(tmp_path: Path, smplx_dir: tuple[Path, np.ndarray]) -> None:
    models, _ = smplx_dir
    # An AMASS-style Z-up copy: the body is stood up along +Z by a +90 degree turn about X.
    make_interx(tmp_path, t=13, root_orient=np.array([np.pi / 2, 0.0, 0.0]))
    clip = InterX(tmp_path, models, up_axis="z").load("G001T000A000R000")
    assert clip.num_frames == 4
    p = clip.positions
    assert np.all(p[:, :, J["head"], 1] > p[:, :, 0, 1] + 0.4)
    assert np.all(p[:, :, J["left_hip"], 0] > p[:, :, J["right_hip"], 0])

    with pytest.raises(BodyModelNotFoundError, match="smpl-x.is.tue.mpg.de") as exc:
        InterX(tmp_path, tmp_path / "nowhere")
    assert "SMPLX_NEUTRAL.npz" in str(exc.value)

    p1 = tmp_path / "motions/G001T000A000R000/P1.npz"
    np.savez(p1, root_orient=np.zeros((13, 3)), trans=np.zeros((13, 3)))
    with pytest.raises(DatasetFormatError, match="missing keys") as exc:
        InterX(tmp_path, models).load("G001T000A000R000")
    assert_names(exc, p1)
    write_interx_person(p1, 13, 0.0, np.zeros(3))
    bad = dict(np.load(p1))
    bad["pose_body"] = np.zeros((13, 60))
    np.savez(p1, **bad)
    with pytest.raises(DatasetFormatError, match="pose_body") as exc:
        InterX(tmp_path, models).load("G001T000A000R000")
    assert_names(exc, p1)
    (tmp_path / "texts/G001T000A000R000.txt").unlink()
    with pytest.raises(DatasetFormatError, match="caption") as exc:
        InterX(tmp_path, models).load("G001T000A000R000")
    assert_names(exc, tmp_path / "texts/G001T000A000R000.txt")


# --- molam data import -------------------------------------------------------------------------


def _import(source: str, root: Path, out: Path) -> int:
    from molam_ros.cli import main

    return main(["data", "import", "--source", source, "--root", str(root), "--out", str(out)])


def test_import_keeps_published_splits_and_segments(tmp_path: Path) -> None:
    from molam_ros.data.dataset import MotionDataset

    make_interhuman(tmp_path / "ih")
    assert _import("interhuman", tmp_path / "ih", tmp_path / "a") == 0
    ds = MotionDataset(tmp_path / "a")
    assert ds.ids("train") == ["10"]  # 11 is on the ignore list
    assert ds.load("10").num_people == 2
    assert ds.load("10").texts == ["one waves to the other.", "the other waves back."]

    make_humanml3d(tmp_path / "h")
    assert _import("humanml3d", tmp_path / "h", tmp_path / "b") == 0
    ids = MotionDataset(tmp_path / "b").ids()
    assert "000001" in ids and any(i.startswith("000001#") for i in ids)  # the captioned segment

    with pytest.raises(SystemExit, match="body-model"):
        _import("interx", tmp_path, tmp_path / "c")


def test_import_of_an_evaluation_only_copy(tmp_path: Path) -> None:
    """A copy with only a test split imports: its stats come from the clips there are (issue 11.8)."""
    from molam_ros.data.dataset import MotionDataset

    make_humanml3d(tmp_path / "h")
    (tmp_path / "h" / "train.txt").write_text("")
    (tmp_path / "h" / "test.txt").write_text("000001\n")
    assert _import("humanml3d", tmp_path / "h", tmp_path / "b") == 0
    ds = MotionDataset(tmp_path / "b")
    assert "000001" in ds.ids() and np.all(np.isfinite(ds.stats().mean))
