"""The `molam` command end to end on small data: synth, stats, render, the demo, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from molam_ros.cli import main


def test_synth_stats_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "data"
    assert main(["data", "synth", "--out", str(data), "--count", "6", "--seed", "1"]) == 0
    assert "wrote 6 clips" in capsys.readouterr().out
    assert json.loads((data / "dataset.json").read_text())["count"] == 6

    assert main(["data", "stats", str(data), "--quiet"]) == 0
    assert "clips           6" in capsys.readouterr().out

    gif = tmp_path / "clip.gif"
    assert (
        main(["data", "render", str(data), "--out", str(gif), "--max-frames", "8", "--strip-frames", "3"])
        == 0
    )
    assert gif.stat().st_size > 1000 and gif.read_bytes()[:3] == b"GIF"
    assert gif.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"


def test_render_a_pybullet_clip(tmp_path: Path) -> None:
    gif = tmp_path / "walk.gif"
    assert (
        main(["data", "render", "--pybullet", "humanoid3d_walk", "--out", str(gif), "--max-frames", "6"]) == 0
    )
    assert gif.stat().st_size > 1000


def test_bad_input_is_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "stats", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("molam: error:") and "dataset.json" in err
    with pytest.raises(SystemExit):
        main(["data", "synth", "--out", str(tmp_path), "--count", "0"])
    with pytest.raises(SystemExit):
        main(["no-such-command"])


def test_demo_without_models_says_what_to_run(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "molam_ros.cli", "demo", "--no-prepare", "--model-dir", str(tmp_path)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "molam data synth --out" in r.stderr and "Traceback" not in r.stderr
