"""`molam tokenizer train|eval`, `molam export` and `molam bench tokenizer` end to end on tiny data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from molam_ros.cli import main
from molam_ros.data.dataset import write_dataset
from molam_ros.data.synth import generate_dataset


@pytest.mark.slow
def test_train_eval_export_bench(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, ckpt, export = tmp_path / "data", tmp_path / "ckpt", tmp_path / "export"
    write_dataset(data, generate_dataset(12, 0), progress=False)
    train = ["tokenizer", "train", "--preset", "tiny", "--data", str(data), "--out", str(ckpt)]
    assert (
        main(
            [
                *train,
                "--steps",
                "12",
                "--batch-size",
                "8",
                "--window",
                "32",
                "--eval-every",
                "6",
                "--rel-weight",
                "3",
            ]
        )
        == 0
    )
    info = json.loads((ckpt / "config.json").read_text())
    assert info["extra"]["step"] == 12 and info["config"]["width"] == 32
    assert info["config"]["rel_weight"] == 3.0  # --rel-weight replaces the preset's
    # Resume continues the step counter up to the new total; loss weights given win over the
    # checkpoint's, the others (and the architecture) are the checkpoint's.
    resume = [*train, "--steps", "16", "--batch-size", "8", "--window", "32", "--resume"]
    resume += ["--traj-weight", "0.7"]
    assert main(resume) == 0
    info = json.loads((ckpt / "config.json").read_text())
    assert info["extra"]["step"] == 16 and info["config"]["width"] == 32
    assert info["config"]["traj_weight"] == 0.7 and info["config"]["rel_weight"] == 3.0
    capsys.readouterr()

    metrics = tmp_path / "eval.json"
    real_dir = tmp_path / "real"
    assert main(["data", "real", "--out", str(real_dir), "--variants", "1"]) == 0
    args = ["tokenizer", "eval", str(ckpt), "--data", str(data), str(real_dir), "--json", str(metrics)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "MPJPE global" in out and "root-rel" in out and "depth 2" in out
    results = json.loads(metrics.read_text())
    assert set(results) == {"data (test)", "real (test)"}  # each dataset by its name
    real = results["real (test)"]
    assert real["clips"] >= 5 and real["mpjpe_mm"] > 0 and len(real["mpjpe_mm_per_person"]) == 1
    assert results["data (test)"]["rel_mpjpe_mm"] > 0

    assert main(["export", str(ckpt), "--out", str(export)]) == 0
    assert "encoder_step" in capsys.readouterr().out and (export / "manifest.json").is_file()
    assert (
        main(
            [
                "bench",
                "tokenizer",
                "--checkpoint",
                str(ckpt),
                "--export",
                str(export),
                "--steps",
                "20",
                "--repeats",
                "1",
            ]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "torch" in table and "onnxruntime" in table and "x torch" in table


def test_export_of_a_missing_checkpoint_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "x")]) == 2
    assert "config.json" in capsys.readouterr().err
