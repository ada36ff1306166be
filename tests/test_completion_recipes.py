"""What chooses a completion recipe without the test split (completion/folds.py, `molam completion
fold`, `eval --split val`) and the training options it chose between (`--loss-weight`,
`--tracker-noise`): a fold never trains on a held-out source, the options reach the training."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from molam_ros.cli import build_parser
from molam_ros.completion.folds import FOLDS, source_of, write_source_fold
from molam_ros.completion.streams import ARMS, Augment, load_streams, sample_windows, swing_arms
from molam_ros.completion.train import joint_weights
from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import MotionDataset, write_dataset
from molam_ros.data.synth import generate_clip
from molam_ros.motion.skeleton import JOINT_INDEX
from molam_ros.motion.sparse import JOINT_GROUPS, TRACKED_INDEX


def _person(seed: int) -> np.ndarray:
    return generate_clip(seed).positions[:1, :60].astype(np.float32)


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real-like dataset: two augmentations of `walk` and of `run` in train, `kick` in test and
    `turn` in val (as recorded)."""
    root = tmp_path_factory.mktemp("real") / "real"
    clips = [
        MotionClip(f"{n}_aug{k:02d}", _person(10 * i + k))
        for i, n in enumerate(("walk", "run"))
        for k in (0, 1)
    ]
    clips += [MotionClip("kick", _person(50)), MotionClip("turn", _person(51))]
    split = {"kick": "test", "turn": "val"}
    write_dataset(root, clips, split_of=lambda c: split.get(c.name, "train"), progress=False)
    return root


def test_a_fold_holds_out_whole_sources_as_recorded(real: Path, tmp_path: Path) -> None:
    recorded = _person(99)
    info = write_source_fold(
        real, ["walk"], tmp_path / "fold", recorded={"walk": lambda: MotionClip("x", recorded)}
    )
    ds = MotionDataset(tmp_path / "fold")
    assert ds.ids("train") == ["run_aug00", "run_aug01"]  # no augmentation of walk left
    assert ds.ids("val") == ["walk"] and ds.ids("test") == [] and info["held_out_sources"] == ["walk"]
    np.testing.assert_array_equal(ds.load("walk").positions, recorded)  # as recorded, not augmented
    np.testing.assert_array_equal(
        ds.load("run_aug01").positions, MotionDataset(real).load("run_aug01").positions
    )
    assert load_streams(tmp_path / "fold", "val").names == [("walk", 0)]
    with pytest.raises(ValueError, match="not training sources"):
        write_source_fold(real, ["jump"], tmp_path / "bad", recorded={})


def test_the_fixed_folds_are_disjoint_training_sources() -> None:
    a, b = (set(FOLDS[k]) for k in ("A", "B"))
    assert not a & b and len(a) == len(b) == 7
    held = json.loads(
        (Path(__file__).parent.parent / "molam_ros/models/completion/manifest.json").read_text()
    )
    real = [d for d in held["training_data"]["datasets"] if "real_clips" in d][0]
    assert a | b <= {c["name"] for c in real["real_clips"]}  # never a test or val clip
    assert source_of("01_03_w1_aug07") == "01_03_w1" and source_of("humanoid3d_walk") == "humanoid3d_walk"


def test_group_weights_weigh_the_loss() -> None:
    w = joint_weights([("legs", 3.0)])
    legs = [JOINT_INDEX[n] for n in JOINT_GROUPS["legs"]]
    assert w.mean() == pytest.approx(1.0) and w[legs[0]] == pytest.approx(3 * w[JOINT_INDEX["head"]])
    np.testing.assert_allclose(joint_weights([]), 1.0)
    with pytest.raises(ValueError, match="unknown joint group"):
        joint_weights([("feet", 2.0)])


def test_tracker_noise_moves_the_points_not_the_targets(real: Path) -> None:
    streams = load_streams(real, "train")
    clean = sample_windows(streams, 32, 8, np.random.default_rng(0), Augment(mirror=False, scale=(1, 1)))
    noisy = sample_windows(
        streams, 32, 8, np.random.default_rng(0), Augment(mirror=False, scale=(1, 1), tracker_noise=0.02)
    )
    np.testing.assert_array_equal(clean[2], noisy[2])
    np.testing.assert_array_equal(np.isnan(clean[0]), np.isnan(noisy[0]))  # absent slots stay NaN
    assert 0.01 < np.nanstd(noisy[0][:, :, :3] - clean[0][:, :, :3]) < 0.03
    np.testing.assert_array_equal(clean[2][:, TRACKED_INDEX[:3]], clean[0][:, -1, :3])


def test_a_reversed_window_runs_backwards_to_its_target(real: Path) -> None:
    streams = load_streams(real, "train")
    plain = Augment(mirror=False, scale=(1, 1), yaw_noise_rate=0.0)
    fwd = sample_windows(streams, 64, 8, np.random.default_rng(1), plain)
    back = sample_windows(
        streams,
        64,
        8,
        np.random.default_rng(1),
        Augment(mirror=False, scale=(1, 1), yaw_noise_rate=0.0, reverse_rate=1.0),
    )
    head = TRACKED_INDEX[0]
    np.testing.assert_array_equal(fwd[2], back[2])  # the same target frames
    for body, win in zip(back[2], back[0], strict=True):  # the window: that frame, then earlier in time
        (k,) = np.flatnonzero((streams.positions == body.astype(np.float32)).all(axis=(1, 2)))[:1]
        a, b = next(bd for bd in streams.bounds if bd[0] <= k < bd[1])
        frames = np.minimum(k + np.arange(7, -1, -1), b - 1)
        np.testing.assert_allclose(win[:, 0], streams.positions[frames, head], atol=1e-6)


def test_the_cli_passes_the_recipe_options(
    real: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import molam_ros.completion.train as train_module

    seen = {}

    def fake_train(data, out, *, model_config, config, progress):  # noqa: ANN001, ANN202
        seen.update(config=config, model=model_config)
        return {"steps": config.steps, "train_seconds": 0.0}

    monkeypatch.setattr(train_module, "train", fake_train)
    parser = build_parser()
    argv = ["completion", "train", "--data", str(real), "--out", str(tmp_path / "c"), "--steps", "7"]
    args = parser.parse_args(
        [
            *argv,
            "--loss-weight",
            "legs=2",
            "torso=1.5",
            "--tracker-noise",
            "0.01",
            "--lr",
            "1e-3",
            "--reverse-rate",
            "0.3",
            "--arm-swing-rate",
            "0.25",
            "--arm-swing-turn",
            "1.0",
        ]
    )
    assert args.func(args) == 0
    config = seen["config"]
    assert config.group_weights == (("legs", 2.0), ("torso", 1.5)) and config.augment.tracker_noise == 0.01
    assert config.lr == 1e-3 and config.steps == 7 and config.augment.reverse_rate == 0.3
    assert config.augment.arm_swing_rate == 0.25 and config.augment.arm_swing_turn == 1.0
    for bad in ("feet=2", "legs", "legs=-1", "legs=x"):
        with pytest.raises(SystemExit):
            parser.parse_args([*argv, "--loss-weight", bad])
    args = parser.parse_args(
        ["completion", "fold", "--data", str(real), "--hold-out", "run", "--out", str(tmp_path / "f")]
    )
    assert args.hold_out == ["run"] and args.fold is None
    assert parser.parse_args(["completion", "eval", "--data", str(real), "--split", "val"]).split == "val"
    assert parser.parse_args(["completion", "eval", "--data", str(real)]).split == "test"


def test_swung_arms_keep_their_bones_and_the_rest_of_the_body(real: Path) -> None:
    """The arm swing turns shoulder -> elbow -> wrist rigidly, one rotation per window, and moves
    nothing else; the hands then reach places no clip took them (behind the head among them)."""
    streams = load_streams(real, "train")
    starts = np.linspace(0, len(streams) - 8, 200).astype(int)
    pos = np.stack([streams.positions[i : i + 8] for i in starts]).astype(np.float64)  # (200, 8, 22, 3)
    out = swing_arms(pos, np.random.default_rng(0))
    others = [j for j in range(22) if j not in {e for arm in ARMS for e in arm[1:]}]
    np.testing.assert_array_equal(out[:, :, others], pos[:, :, others])
    for shoulder, elbow, wrist in ARMS:
        for a, b in ((shoulder, elbow), (elbow, wrist)):  # the bones; the elbow angle may change
            np.testing.assert_allclose(
                np.linalg.norm(out[:, :, a] - out[:, :, b], axis=-1),
                np.linalg.norm(pos[:, :, a] - pos[:, :, b], axis=-1),
                atol=1e-9,
            )
        moved = np.linalg.norm(out[:, :, wrist] - pos[:, :, wrist], axis=-1)
        assert np.median(moved) > 0.1
    turning = swing_arms(pos, np.random.default_rng(0), turn=1.0)  # the arm also turns over the window
    for shoulder, elbow, _wrist in ARMS:
        np.testing.assert_allclose(
            np.linalg.norm(turning[:, :, elbow] - turning[:, :, shoulder], axis=-1),
            np.linalg.norm(pos[:, :, elbow] - pos[:, :, shoulder], axis=-1),
            atol=1e-9,
        )
    static_path = np.linalg.norm(np.diff(out[:, :, ARMS[0][2]] - out[:, :, ARMS[0][0]], axis=1), axis=-1).sum(
        1
    )
    turning_path = np.linalg.norm(
        np.diff(turning[:, :, ARMS[0][2]] - turning[:, :, ARMS[0][0]], axis=1), axis=-1
    ).sum(1)
    assert np.median(turning_path) > np.median(static_path) + 0.05  # the hand travels further
    head = JOINT_INDEX["head"]
    behind = (out[:, -1, [ARMS[0][2], ARMS[1][2]], 1] > out[:, -1, [head], 1] - 0.1).any(axis=1)
    assert behind.sum() >= 5  # some windows have a hand at head height or above


def test_the_arm_swing_rate_changes_only_the_chosen_windows(real: Path) -> None:
    streams = load_streams(real, "train")
    base = Augment(mirror=False, scale=(1, 1), yaw_noise_rate=0.0, optional_rate=0.0)
    _, _, plain = sample_windows(streams, 64, 8, np.random.default_rng(3), base)
    _, _, none = sample_windows(
        streams, 64, 8, np.random.default_rng(3), dataclasses.replace(base, arm_swing_rate=0.0)
    )
    np.testing.assert_array_equal(plain, none)  # the rate at 0 draws nothing: runs without it are as before
    _, _, all_ = sample_windows(
        streams, 64, 8, np.random.default_rng(3), dataclasses.replace(base, arm_swing_rate=1.0)
    )
    wrist = ARMS[0][2]
    assert np.all(np.linalg.norm(all_[:, wrist] - plain[:, wrist], axis=-1) > 1e-6)
    np.testing.assert_array_equal(all_[:, JOINT_INDEX["left_ankle"]], plain[:, JOINT_INDEX["left_ankle"]])
    each = dataclasses.replace(base, arm_swing_rate=0.5, arm_swing_each=True)
    _, _, one_by_one = sample_windows(streams, 64, 8, np.random.default_rng(3), each)
    moved = [np.linalg.norm(one_by_one[:, arm[2]] - plain[:, arm[2]], axis=-1) > 1e-6 for arm in ARMS]
    assert (moved[0] != moved[1]).any() and 10 < moved[0].sum() < 54  # each arm drawn on its own
