"""`molam demo` end to end on tiny models: replay -> reaction node -> recorder, over real DDS, then
the bag read back, the side-by-side render, the joints plot and the summary."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from molam_ros.paths import shipped_tokenizer_dir
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
    shipped = (shipped_tokenizer_dir() / "config.json").is_file()
    # Nothing is there in an empty cache, except the tokenizer that ships with the package.
    assert [s.done() for s in steps] == [shipped and s.what.startswith("the tokenizer (") for s in steps]
    commands = [argv for step in steps for argv in step.commands]
    assert "--resume --steps $(TOK_STEPS2)" in makefile and "TOK_STEPS2 ?= 11000" in makefile
    assert any(argv[-2:] == ("--steps", "11000") and "--resume" in argv for argv in commands)
    for argv in commands:  # every subcommand the demo runs is one the Makefile documents
        words = [w for w in argv[:2] if not w.startswith(("/", "-"))]
        assert f"molam {' '.join(words)}" in makefile, argv
    assert not any("export" in s.what for s in prepare_steps(tmp_path, tmp_path / "data", engine="torch"))


@pytest.mark.slow
@pytest.mark.ros
def _logs(out: Path) -> str:
    return "".join(p.read_text() for p in sorted(out.glob("run*/logs/*.log")))


def test_demo_end_to_end(tiny_llm_env: dict[str, Path], tiny_models: Path, tmp_path: Path) -> None:
    """The default demo: the same person twice, told two different things, side by side."""
    from PIL import Image

    from molam_ros.ros.demo import DEFAULT_INSTRUCTIONS

    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "molam_ros.cli", "demo", "--out", str(out), "--no-prepare"]
    cmd += ["--model-dir", str(tiny_models), "--data", str(tiny_llm_env["data"]), "--engine", "torch"]
    cmd += ["--profile", "unitree_h1", "--command", "0.5:what is he doing?", "--reactor", "llm"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + _logs(out)[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [run["instruction"] for run in summary["runs"]] == list(DEFAULT_INSTRUCTIONS)
    for i, run in enumerate(summary["runs"], 1):
        assert run["diagnostics"]["instruction"] == run["instruction"]  # the node was really told
        assert run["messages"]["reactor"] > 30 and run["messages"]["trajectory"] > 5, run["messages"]
        assert [text for _, text in run["said"]] == ["what is he doing?"]
        replies = [text for _, text in run["replies"]]
        # the question's acknowledgement ("ok: ...") and then its answer: every command is acknowledged
        assert len(replies) == 2 and replies[0].startswith("ok"), replies
        assert float(run["diagnostics"]["real_time_factor"]) > 0
        bag = out / f"run{i}" / "bag"
        assert list(bag.glob("*.mcap")) and (bag / "metadata.yaml").is_file()
    # Three panels: molam told each instruction, then the recorded partner (a two-person clip); where
    # the simulated robot ran (the [sim] extra, as in CI), each run's robot body has a panel too.
    gif = Image.open(out / "reaction.gif")
    panels = 3 + (len(summary["runs"]) if summary["sim"] else 0)
    assert gif.size[0] == pytest.approx(panels * 4.6 * 80, abs=8) and gif.n_frames > 10
    assert (out / "joints.png").is_file() and summary["reaction_difference_mm"] >= 0
    assert "| latency_ms_p50 |" in r.stdout and "reply:" in r.stdout
    assert r.stdout.count('told "Be hesitant."') >= 2 and "the two instructions' reactions differ" in r.stdout


@pytest.mark.slow
@pytest.mark.ros
def test_demo_on_a_one_person_clip(tiny_models: Path, tmp_path: Path) -> None:
    """What users record: one person (the partner is the robot). No /molam/reference_reaction ever
    has a publisher; the recorder must not wait for one, and the replay must not wait for it."""
    from molam_ros.data.dataset import MotionDataset, write_dataset
    from molam_ros.data.pybullet_clips import load_pybullet_clip

    clip = load_pybullet_clip("humanoid3d_walk")  # a real recorded clip, one person
    assert clip.positions.shape[0] == 1
    write_dataset(tmp_path / "data", [clip], progress=False)
    (clip_id,) = MotionDataset(tmp_path / "data").ids()
    out = tmp_path / "demo"
    cmd = [sys.executable, "-m", "molam_ros.cli", "demo", "--out", str(out), "--no-prepare"]
    cmd += ["--model-dir", str(tiny_models), "--data", str(tmp_path / "data"), "--clip-id", clip_id]
    cmd += ["--engine", "torch", "--seconds", "4", "--command", "0.3:wave at them", "--instruction", ""]
    cmd += ["--reactor", "llm"]
    start = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    took = time.monotonic() - start
    logs = _logs(out)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:] + logs[-3000:]
    assert (out / "reaction.gif").stat().st_size > 10_000
    (run,) = json.loads((out / "summary.json").read_text())["runs"]
    assert run["messages"]["reference"] == 0 and run["messages"]["reactor"] > 30, run["messages"]
    assert "has no other person" in logs  # the replay said why there is no reference
    assert took < 200, f"{took:.0f} s: something waited for a timeout"


@pytest.mark.ros
def test_recorder_never_waits_for_a_typed_topic(tmp_path: Path) -> None:
    """`--topic NAME:TYPE` subscribes at once; without the type, a topic nobody publishes times out."""
    from molam_ros.ros.record import message_counts

    topic = f"/molam_test_{uuid.uuid4().hex[:8]}"
    cmd = [sys.executable, "-m", "molam_ros.ros.record"]
    start = time.monotonic()
    typed = [*cmd, str(tmp_path / "typed"), "--topic", f"{topic}:std_msgs/msg/String", "--duration", "1"]
    r = subprocess.run([*typed, "--discovery-timeout", "60"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and time.monotonic() - start < 30, r.stderr
    assert message_counts(tmp_path / "typed") == {topic: 0}  # in the bag, with no message
    untyped = [*cmd, str(tmp_path / "untyped"), "--topic", topic, "--discovery-timeout", "1"]
    r = subprocess.run(untyped, capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "no publisher of" in r.stderr, r.stderr


def test_prepare_says_what_it_trains_and_how_long(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """A fresh cache: the first lines say what will be trained and the total time, before any step runs."""
    from molam_ros.ros import demo

    ran: list[list[str]] = []
    monkeypatch.setattr(demo.subprocess, "run", lambda argv, check: ran.append(argv))
    demo.prepare_models(tmp_path / "models", tmp_path / "data", reactor="llm")  # the most it makes
    out = capsys.readouterr().out.splitlines()
    todo = [s for s in prepare_steps(tmp_path / "models", tmp_path / "data", reactor="llm") if not s.done()]
    total = sum(s.minutes for s in todo)
    assert out[0].startswith(f"demo: the models are not in {tmp_path / 'models'}; making them first takes ")
    assert f"about {total:.0f} min on 2 CPU cores" in out[0] and "the motion-language model" in out[0]
    assert len(ran) == sum(len(s.commands) for s in todo)


@pytest.mark.slow
@pytest.mark.ros
def test_demo_on_a_motion_file_then_on_its_own_bag(tiny_models: Path, tmp_path: Path) -> None:
    """Any person the user has: a one-person `.npz`, then the MCAP bag that run recorded."""
    import numpy as np

    from molam_ros.data.pybullet_clips import load_pybullet_clip

    clip = load_pybullet_clip("humanoid3d_walk")
    npz = tmp_path / "walk.npz"
    np.savez(npz, positions=clip.positions[0], fps=clip.fps)
    base = [sys.executable, "-m", "molam_ros.cli", "demo", "--no-prepare", "--model-dir", str(tiny_models)]
    base += ["--engine", "torch", "--instruction", "Be calm.", "--seconds", "3", "--command", "0.5:hello"]
    base += ["--reactor", "llm"]
    sources = {
        "npz": ["--motion-file", str(npz)],
        # The first run's bag holds several PersonPose topics: name the person's.
        "bag": ["--bag", str(tmp_path / "npz/run1/bag"), "--bag-topic", "/molam/person_pose"],
    }
    for name, source in sources.items():
        out = tmp_path / name
        r = subprocess.run([*base, "--out", str(out), *source], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, name + r.stdout[-3000:] + r.stderr[-3000:] + _logs(out)[-3000:]
        summary = json.loads((out / "summary.json").read_text())
        want = {"motion_file": str(npz)} if name == "npz" else {"bag": source[1]}
        assert summary["source"] == want
        (run,) = summary["runs"]
        assert run["messages"]["person"] > 30 and run["messages"]["reactor"] > 30, run["messages"]
        assert (out / "reaction.gif").stat().st_size > 10_000


def test_the_demo_tells_the_node_who_reacts() -> None:
    """`molam demo --reactor X` reaches the reaction node as its `reactor` parameter (the node's own
    default, the shipped LLM reactor, needs no override), next to the run's instruction."""
    from molam_ros.agent.reaction_setup import REACTORS
    from molam_ros.cli import build_parser
    from molam_ros.ros.demo import DemoConfig, reaction_node_overrides
    from molam_ros.ros.reaction_node import PARAMETERS

    for kind in REACTORS:  # the CLI's literal choices (no model imports for --help) are the node's
        assert build_parser().parse_args(["demo", "--reactor", kind]).reactor == kind
    assert reaction_node_overrides(DemoConfig(), "") == []
    assert reaction_node_overrides(DemoConfig(reactor="llm"), "Be friendly.") == [
        "-p",
        'instruction:="Be friendly."',
        "-p",
        "reactor:=llm",
    ]
    assert reaction_node_overrides(DemoConfig(), "", (0.5, 0.95, -2.0)) == [
        "-p",
        "start_position:=0.500,0.950,-2.000",
    ]
    assert PARAMETERS["reactor"][0] == DemoConfig.reactor


def test_the_default_demo_needs_no_llm_training(tmp_path: Path) -> None:
    """`molam demo` (the LLM reactor) on a fresh clone trains nothing (the reactor and the describer
    ship); `--reactor llm`, the LLM's own reaction, still makes the LLM first."""
    whats = [s.what for s in prepare_steps(tmp_path, tmp_path / "data")]
    assert not any("motion-language model" in w for w in whats)
    assert any(
        "motion-language model" in s.what for s in prepare_steps(tmp_path, tmp_path / "data", reactor="llm")
    )
