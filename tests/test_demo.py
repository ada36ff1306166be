"""`molam demo` end to end on tiny models: replay -> reaction node -> recorder, over real DDS, then
the bag read back, the side-by-side render, the joints plot and the summary."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from molam_ros.ros.demo import parse_command, prepare_steps


def test_parse_command() -> None:
    assert parse_command("0.3:wave at them") == (0.3, "wave at them")
    assert parse_command("1:what: is that?") == (1.0, "what: is that?")
    for bad in ("wave", "1.5:too late", "x:y"):
        with pytest.raises(ValueError, match="AT:TEXT"):
            parse_command(bad)


def test_prepare_steps_are_the_makefile_commands(tmp_path: Path) -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    steps = prepare_steps(tmp_path, tmp_path / "data")
    assert [s.done() for s in steps] == [False] * len(steps)
    commands = [argv for step in steps for argv in step.commands]
    assert "--resume --steps 9000" in makefile and any("--resume" in argv for argv in commands)
    for argv in commands:  # every subcommand the demo runs is one the Makefile documents
        words = [w for w in argv[:2] if not w.startswith(("/", "-"))]
        assert f"molam {' '.join(words)}" in makefile, argv
    assert not any("export" in s.what for s in prepare_steps(tmp_path, tmp_path / "data", engine="torch"))


@pytest.mark.slow
@pytest.mark.ros
def test_demo_end_to_end(tiny_llm_env: dict[str, Path], tiny_models: Path, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "molam_ros.cli", "demo", "--out", str(out), "--no-prepare"]
    cmd += ["--model-dir", str(tiny_models), "--data", str(tiny_llm_env["data"]), "--engine", "torch"]
    cmd += ["--profile", "unitree_h1", "--command", "0.2:be hesitant", "--command", "0.5:what is he doing?"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=400)
    logs = "".join(p.read_text() for p in (out / "logs").glob("*.log")) if (out / "logs").is_dir() else ""
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "reaction.gif").stat().st_size > 10_000 and (out / "joints.png").is_file()
    assert summary["messages"]["reactor"] > 30 and summary["messages"]["trajectory"] > 5
    assert [text for _, text in summary["said"]] == ["be hesitant", "what is he doing?"]
    replies = [text for _, text in summary["replies"]]
    # the instruction's "ok", the question's acknowledgement ("ok: let me look") and its answer
    assert sum(t.startswith("ok") for t in replies) == 2 and len(replies) == 3, replies
    assert float(summary["diagnostics"]["real_time_factor"]) > 0
    assert "| latency_ms_p50 |" in r.stdout and "reply:" in r.stdout
    assert list((out / "bag").glob("*.mcap")) and (out / "bag" / "metadata.yaml").is_file()
