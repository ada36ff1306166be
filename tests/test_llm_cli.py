"""`molam llm train|eval`, `molam generate` (every task) and `molam bench llm` on the tiny sizes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from molam_ros.cli import main
from molam_ros.data.dataset import MotionDataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoints(tiny_llm_env: dict[str, Path]) -> dict[str, Path]:
    root = tiny_llm_env["root"] / "cli"
    env = tiny_llm_env
    common = ["--preset", "tiny", "--data", str(env["data"]), "--tokenizer", str(env["tokenizer"])]
    s2, s3 = root / "s2", root / "s3"
    assert (
        main(
            [
                "llm",
                "train",
                "--stage",
                "2",
                *common,
                "--out",
                str(s2),
                "--backbone",
                str(env["backbone"]),
                "--steps",
                "3",
            ]
        )
        == 0
    )
    assert (
        main(["llm", "train", "--stage", "3", *common, "--out", str(s3), "--init", str(s2), "--steps", "2"])
        == 0
    )
    return {"s2": s2, "s3": s3}


def test_training_writes_both_stages(checkpoints: dict[str, Path]) -> None:
    assert json.loads((checkpoints["s2"] / "molam_llm.json").read_text())["weights"] == "merged"
    assert json.loads((checkpoints["s3"] / "molam_llm.json").read_text())["stage"] == 3


def test_generate_every_task(
    checkpoints: dict[str, Path], tiny_llm_env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    ckpt = ["--checkpoint", str(checkpoints["s3"]), "--max-steps", "4"]
    clip = f"{tiny_llm_env['data']}:{MotionDataset(tiny_llm_env['data']).ids('test')[0]}"
    out = tmp_path / "t2m"
    assert (
        main(
            [
                "generate",
                "text_to_motion",
                "--text",
                "two people shake hands",
                "--out",
                str(out),
                "--render",
                *ckpt,
            ]
        )
        == 0
    )
    with np.load(out / "motion.npz") as z:
        assert z["positions"].shape[0] == 2 and z["positions"].shape[2:] == (22, 3)
        assert np.isfinite(z["positions"]).all()
    assert (out / "motion.gif").stat().st_size > 0 and (out / "motion.png").stat().st_size > 0
    out = tmp_path / "reaction"
    assert main(["generate", "reaction", "--motion", clip, "--out", str(out), *ckpt]) == 0
    with np.load(out / "codes.npz") as z:
        assert z["codes"].shape[:2] == (2, 4)
    for task, text in (
        ("motion_to_text", None),
        ("prediction", None),
        ("editing", "make it faster"),
        ("reasoning", "What happens before?"),
    ):
        args = ["generate", task, "--motion", clip, "--out", str(tmp_path / task), *ckpt]
        assert main(args + (["--text", text] if text else [])) == 0
    assert main(["generate", "motion_to_text", "--motion", str(tmp_path / "nope.npz"), *ckpt]) == 2
    assert "no such motion file" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", positions=np.zeros((2, 30, 17, 3)))  # 17 joints, not the SMPL 22
    assert main(["generate", "reaction", "--motion", str(tmp_path / "bad.npz"), *ckpt]) == 2
    assert "(P, T, 22, 3)" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse: an unknown task is refused with the list of tasks
        main(["generate", "dance_battle", *ckpt])


def test_eval_prints_the_quality_table(
    checkpoints: dict[str, Path], tiny_llm_env: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    report = tmp_path / "report.json"
    args = [
        "llm",
        "eval",
        "--checkpoint",
        str(checkpoints["s2"]),
        "--data",
        str(tiny_llm_env["data"]),
        "--clips",
        "2",
        "--json",
        str(report),
        "--classifier",
        str(tmp_path / "clf.npz"),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "reaction MPJPE (mm)" in text and "classifier" in text
    r = json.loads(report.read_text())
    assert r["clips"] == 2 and {"model", "still", "mirror"} <= set(r["per_clip"][0]["reaction_mm"])
    assert (tmp_path / "clf.npz").is_file()


def test_bench_llm_reports_both_methods(checkpoints: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert (
        main(["bench", "llm", "--checkpoint", str(checkpoints["s2"]), "--steps", "3", "--repeats", "1"]) == 0
    )
    out = capsys.readouterr().out
    assert "| head |" in out and "| tokens |" in out and "real-time factor" in out
