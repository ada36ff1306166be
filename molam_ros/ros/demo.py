"""`molam demo`: the main job. A person from held-out data, the reaction node reacting, all recorded.

    molam demo                          # the defaults: CPU, SmolLM2, the generator's data
    molam demo --seconds 60             # loop the person for a minute (time to send your own commands)
    molam say "wave at them"            # from another terminal while it runs

What happens, all of it real ROS 2 processes talking over DDS (the bring-up node set of
config/bringup.yaml, as `molam bringup --replay` starts it):
1. The default models are made if the cache lacks them (the same commands as `make tokenizer`,
   `make bench` and `make llm`; about an hour on two cores the first time, then never again).
2. The same person is played twice, once per instruction (`--instruction`, default "Be friendly."
   and "Be hesitant."), so what a text command changes is visible side by side. In each run the
   pose replay node plays the actor of a held-out clip (any dataset clip, one person or two; or a
   motion .npz, `--motion-file`; or an MCAP bag of PersonPose, `--bag`) as a live PersonPose
   stream (and a recorded partner, where the clip has one, as /molam/reference_reaction); the
   reaction node, started with that instruction, reacts; a
   recorder writes every topic to an MCAP bag (out/demo/run1/bag, out/demo/run2/bag).
3. During each run the demo says what `--command AT:TEXT` gives (default: a question); replies are
   printed as they come.
4. At the end it reads the bags back and writes out/demo/reaction.gif (the person with molam's
   reaction under each instruction, next to the recorded partner where there is one, and, where
   the optional MuJoCo extra is installed, the simulated robot's body as the sim node executed
   the reaction, standing next to the person: sim/body.py, `--no-sim` leaves it out),
   out/demo/joints.png (the robot's commanded joints over time, one line style per instruction)
   and out/demo/summary.json, and prints the latency and real-time summary of each run.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from molam_ros.bringup import default_bringup_yaml, describe_nodes, stop_processes
from molam_ros.paths import cache_root, default_export_dir, default_llm_dir, default_tokenizer_dir
from molam_ros.ros.demo_report import (
    TOPICS,
    Recording,
    format_summary,
    reaction_difference_mm,
    read_recording,
    render_runs,
)
from molam_ros.runtime.profiles import load_profile

DEFAULT_COMMANDS: tuple[tuple[float, str], ...] = ((0.65, "what is he doing?"),)
# One run per instruction, the same person each time: the styles the model is trained to follow
# (data/conversations.py asks for them as "Be <style>.").
DEFAULT_INSTRUCTIONS: tuple[str, ...] = ("Be friendly.", "Be hesitant.")
# Topics the recorder is given with their type, so it subscribes at once instead of waiting for a
# publisher to tell the type: a one-person clip never has a /molam/reference_reaction publisher, and
# the replay waits for the recorder. The others are published by the nodes the demo starts; the
# recorder waits for them, and so matches their QoS (reliable where they are).
MAYBE_UNPUBLISHED = {"reference": "molam_msgs/msg/PersonPose", "sim_joints": "sensor_msgs/msg/JointState"}


@dataclass
class DemoConfig:
    out: Path = Path("out/demo")
    model_dir: Path | None = None  # None: the molam cache
    data: Path | None = None  # None: <cache>/data/synth1000
    clip_id: str = ""  # empty: a held-out handshake (else the first held-out clip)
    motion_file: Path | None = None  # instead of a dataset clip: a motion .npz
    bag: Path | None = None  # instead of a dataset clip: an MCAP bag of PersonPose
    bag_topic: str = ""  # the bag's PersonPose topic (empty: its only one)
    profile: str = "unitree_g1"
    engine: str = "onnxruntime"
    seconds: float = 0.0  # 0: the clip once; more: the clip loops for this long
    commands: tuple[tuple[float, str], ...] = DEFAULT_COMMANDS  # (fraction of the run, text)
    instructions: tuple[str, ...] = DEFAULT_INSTRUCTIONS  # one run each; "" = react freely
    prepare: bool = True  # make missing models; False: fail with the command to run
    reactor: str = "llm_reactor"  # who writes the reaction: llm_reactor | small | llm (the node's `reactor`)
    sim: bool | None = None  # run the simulated robot and show its body; None: where MuJoCo is installed
    startup_timeout: float = 240.0
    answer_timeout: float = 30.0


def reaction_node_overrides(
    config: DemoConfig, instruction: str, start: tuple[float, float, float] | None = None
) -> list[str]:
    """The reaction node's `-p` overrides for one run: its instruction, who writes the reaction, and
    where the robot stands when the person arrives (`start`: the recorded partner's first place, so
    the robot starts where the recording's partner did; None: the node's default)."""
    args = ["-p", f"instruction:={json.dumps(instruction)}"] if instruction else []  # JSON: a YAML string
    if start is not None:
        args += ["-p", "start_position:=" + ",".join(f"{v:.3f}" for v in start)]
    return args + (["-p", f"reactor:={config.reactor}"] if config.reactor != "llm_reactor" else [])


def sim_wanted(config: DemoConfig) -> bool:
    """Whether the demo runs the simulated robot (sim node) and draws its body: asked for, or by
    default where the optional MuJoCo extra is installed and the profile is a robot with a model."""
    if config.sim is not None:
        return config.sim
    import importlib.util

    if importlib.util.find_spec("mujoco") is None:
        return False
    profile = load_profile(config.profile)
    return profile.is_robot and profile.kinematics is not None


def parse_command(spec: str) -> tuple[float, str]:
    """ "0.3:wave at them" -> (0.3, "wave at them"): when, as a fraction of the run, and what."""
    at, sep, text = spec.partition(":")
    try:
        frac = float(at)
    except ValueError:
        frac = -1.0
    if not sep or not 0.0 <= frac <= 1.0:
        raise ValueError(f"--command wants AT:TEXT with AT a fraction of the run in [0, 1], got {spec!r}")
    return frac, text


# --- the models -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrepareStep:
    what: str
    done: Any  # () -> bool: the step's output is there
    minutes: float  # on the 2-core CPU this project is measured on
    commands: tuple[tuple[str, ...], ...]  # `molam` argument lists, run in order


def prepare_steps(
    model_dir: Path | None, data: Path, engine: str = "onnxruntime", reactor: str = "llm_reactor"
) -> list[PrepareStep]:
    """The commands that make the default models: those of `make tokenizer`, `make bench`, `make llm`
    (stage 2 only: stage 3 is optional, the node takes stage 3 when it exists). A model that is
    there, however it was trained, is used as it is. With another `reactor` than the LLM the LLM is
    not made: the shipped reactors and the describer need no training (the node runs without it)."""
    tok, export = default_tokenizer_dir(model_dir), default_export_dir(model_dir)
    llm = default_llm_dir(model_dir)
    stage2 = cache_root(model_dir) / "llm" / "stage2"
    real = cache_root(model_dir) / "data" / "real"
    train_tok = ("tokenizer", "train", "--preset", "small", "--data", str(data), str(real))
    train_tok += ("--weights", "0.65", "0.35", "--out", str(tok))
    llm_train = ("llm", "train", "--stage", "2", "--preset", "small", "--steps", "200", "--data", str(data))
    steps = [
        PrepareStep(
            "the generator's dataset (1000 clips)",
            lambda: (data / "dataset.json").is_file(),
            0.6,
            (("data", "synth", "--out", str(data), "--count", "1000", "--seed", "0"),),
        ),
        PrepareStep(
            "the tokenizer (it ships in molam_ros/models; else 8000 steps, a warm restart to 11000)",
            lambda: (tok / "model.safetensors").is_file(),
            73,
            (
                ("data", "real", "--out", str(real), "--variants", "24", "--seed", "0"),
                (*train_tok, "--steps", "8000"),
                (*train_tok, "--resume", "--steps", "11000"),
            ),
        ),
        PrepareStep(
            "the tokenizer's ONNX export",
            lambda: (export / "manifest.json").is_file(),
            0.3,
            (("export", str(tok), "--out", str(export)),),
        ),
        PrepareStep(
            "the motion-language model, stage 2 (200 steps)",
            lambda: (llm / "molam_llm.json").is_file(),
            32,
            ((*llm_train, "--tokenizer", str(tok), "--out", str(stage2)),),
        ),
    ]
    # The torch engine runs the checkpoint itself; the others read the export.
    return [
        s
        for s in steps
        if (engine != "torch" or "export" not in s.what)
        and (reactor == "llm" or "motion-language model" not in s.what)
    ]


def prepare_models(
    model_dir: Path | None,
    data: Path,
    *,
    engine: str = "onnxruntime",
    run: bool = True,
    reactor: str = "llm_reactor",
) -> None:
    """Run the steps whose output is missing (or, with `run` False, say which commands would).

    Before anything long starts, it says what it is going to train and how long that takes in all,
    so nobody waits an hour without knowing why (a fresh clone with an empty cache trains first).
    """
    steps = prepare_steps(model_dir, data, engine, reactor)
    todo = [step for step in steps if not step.done()]
    if all(step.done() for step in steps[1:]):
        todo = []  # the models are there: the dataset is only needed to make them
    if todo and run:
        print(
            f"demo: the models are not in {cache_root(model_dir)}; making them first takes about "
            f"{sum(s.minutes for s in todo):.0f} min on 2 CPU cores, once "
            f"({'; '.join(f'{s.what}: ~{s.minutes:g} min' for s in todo)}). "
            "Then every later demo starts in seconds. To use models made elsewhere: --model-dir DIR.",
            flush=True,
        )
    for step in todo:
        lines = ["molam " + " ".join(argv) for argv in step.commands]
        if not run:
            raise FileNotFoundError(f"{step.what} is missing; make it with: {' && '.join(lines)}")
        print(f"demo: making {step.what}, about {step.minutes:g} min on 2 CPU cores, once", flush=True)
        for argv, line in zip(step.commands, lines, strict=True):
            print(f"demo: {line}", flush=True)
            subprocess.run([sys.executable, "-m", "molam_ros.cli", *argv], check=True)


# --- the person -------------------------------------------------------------------------------


def pick_clip(data: Path, clip_id: str = "", interaction: str = "handshake") -> tuple[str, Any]:
    """(clip id, MotionClip): `clip_id`, else the first held-out clip of `interaction`, else the first."""
    from molam_ros.data.dataset import MotionDataset

    ds = MotionDataset(data)
    if clip_id:
        return clip_id, ds.load(clip_id)
    held_out = ds.ids("test")
    if not held_out:
        raise ValueError(f"{data} has no held-out (test) clips")
    for cid in held_out:
        clip = ds.load(cid)
        if clip.meta.get("interaction") == interaction:
            return cid, clip
    return held_out[0], ds.load(held_out[0])


@dataclass(frozen=True)
class Person:
    """Who the demo replays: the replay node's source arguments, how long it lasts, what it is."""

    source: dict[str, str]  # bringup arguments (dataset + clip_id, motion_file or bag)
    seconds: float
    label: str  # printed and used as the render's title
    start: tuple[float, float, float] | None = None  # the recorded partner's first root (world), if any


def pick_person(config: DemoConfig, data: Path) -> Person:
    """The person of `--bag`, `--motion-file`, or a dataset clip (`--clip-id`, else a held-out one)."""
    from molam_ros.ros.pose_replay_node import load_motion_file, recording_from_bag

    if config.bag is not None and config.motion_file is not None:
        raise ValueError("give --bag or --motion-file, not both")
    if config.bag is not None:
        rec = recording_from_bag(config.bag, config.bag_topic)
        return Person({"bag": str(config.bag)}, rec.duration, rec.description)
    if config.motion_file is not None:
        clip = load_motion_file(config.motion_file)
        label = f"motion file {config.motion_file.name}" + (f": {clip.texts[0]}" if clip.texts else "")
        return Person({"motion_file": str(config.motion_file)}, clip.num_frames / clip.fps, label)
    clip_id, clip = pick_clip(data, config.clip_id)
    label = f"{'one person' if clip.positions.shape[0] == 1 else 'the actor'} of clip {clip_id}"
    label += f": {clip.texts[0]}" if clip.texts else ""
    start = None
    if clip.positions.shape[0] == 2:  # the robot starts where the recorded partner stood
        partner = 1 - int(clip.meta.get("actor", 0))
        start = tuple(float(v) for v in clip.positions[partner, 0, 0])
    return Person({"dataset": str(data), "clip_id": clip_id}, clip.num_frames / clip.fps, label, start)


# --- the live run -----------------------------------------------------------------------------


@dataclass
class LiveRun:
    bag: Path
    instruction: str = ""
    said: list[tuple[float, str]] = field(default_factory=list)  # (s after the first pose, text)
    replies: list[tuple[float, str]] = field(default_factory=list)
    diagnostics: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


def run_live(
    config: DemoConfig,
    person: Person,
    duration: float,
    instruction: str = "",
    out: Path | None = None,
) -> LiveRun:
    """Start the nodes (the reaction node with `instruction`) and the recorder, say the commands on
    time, stop; what was said and heard. The bag and the logs go to `out` (default: config.out)."""
    out = out or config.out
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from molam_msgs.msg import PersonPose
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from std_msgs.msg import String

    reliable = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
    sensor = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    loop = config.seconds > 0
    args = {
        "reaction": True,
        "replay": True,
        "model_dir": str(config.model_dir or ""),
        "profile": config.profile,
        "engine": config.engine,
        **person.source,
        "loop": loop,
        "publish_reference": True,
        "sim": sim_wanted(config),
    }
    bag = out / "bag"
    if bag.exists():
        import shutil

        shutil.rmtree(bag)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs: list[subprocess.Popen] = []
    replay: subprocess.Popen | None = None
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"molam_demo_{uuid.uuid4().hex[:6]}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    run = LiveRun(bag=bag, instruction=instruction)
    t0: list[float] = []
    node.create_subscription(
        PersonPose, TOPICS["person"], lambda _m: t0 or t0.append(time.monotonic()), sensor
    )
    node.create_subscription(String, TOPICS["reply"], lambda m: _heard(run, t0, m.data), reliable)
    node.create_subscription(
        DiagnosticArray,
        TOPICS["diagnostics"],
        lambda m: run.diagnostics.update({kv.key: kv.value for kv in m.status[0].values}),
        reliable,
    )
    say = node.create_publisher(String, TOPICS["command"], reliable)
    try:
        for spec in describe_nodes(default_bringup_yaml(), args):
            cmd = spec.command()
            if spec.name == "pose_replay_node":
                # Play only once the reaction node, the recorder and this demo listen; end with the clip.
                cmd += ["-p", "wait_for_subscribers:=3", "-p", f"exit_when_done:={str(not loop).lower()}"]
                if config.bag_topic:
                    cmd += ["-p", f"bag_topic:={json.dumps(config.bag_topic)}"]
            if spec.name == "reaction_node":
                cmd += reaction_node_overrides(config, instruction, person.start)
            log = (logs / f"{spec.name}.log").open("w")
            procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
            if spec.name == "pose_replay_node":
                replay = procs[-1]
        record = [sys.executable, "-m", "molam_ros.ros.record", str(bag)]
        record += ["--discovery-timeout", str(config.startup_timeout)]
        for name, topic in TOPICS.items():
            typed = f"{topic}:{MAYBE_UNPUBLISHED[name]}" if name in MAYBE_UNPUBLISHED else topic
            record += ["--topic", typed]
        recorder = subprocess.Popen(
            record, stdout=(logs / "recorder.log").open("w"), stderr=subprocess.STDOUT
        )
        print(f"demo: nodes starting (logs in {logs}); the reaction node loads its models first", flush=True)
        start = time.monotonic()
        while not t0:
            executor.spin_once(timeout_sec=0.05)
            dead = [p for p in [*procs, recorder] if p.poll() is not None]
            if dead:
                raise RuntimeError(
                    f"a process exited before the stream began: {dead[0].args[:4]}; see {logs}"
                )
            if time.monotonic() - start > config.startup_timeout:
                raise TimeoutError(
                    f"the stream did not begin within {config.startup_timeout:.0f} s; see {logs}"
                )
        print(
            f'demo: streaming {duration:.1f} s of {person.label} (send your own: molam say "TEXT")',
            flush=True,
        )
        pending = sorted(config.commands)
        while True:
            executor.spin_once(timeout_sec=0.02)
            elapsed = time.monotonic() - t0[0]
            while pending and elapsed >= pending[0][0] * duration:
                text = pending.pop(0)[1]
                say.publish(String(data=text))
                run.said.append((elapsed, text))
                print(f"demo: [{elapsed:5.1f} s] said: {text!r}", flush=True)
            if elapsed > duration + 1.0 or (
                not loop and replay is not None and replay.poll() is not None and elapsed > duration
            ):
                break
        end = time.monotonic() + config.answer_timeout
        while len(run.replies) < len(run.said) and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        run.seconds = time.monotonic() - t0[0]
        stop_processes({str(i): p for i, p in enumerate(procs)})
        stop_processes({"recorder": recorder}, timeout=15.0)
    finally:
        stop_processes({str(i): p for i, p in enumerate(procs)}, signal.SIGTERM)
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
    return run


def _heard(run: LiveRun, t0: list[float], text: str) -> None:
    elapsed = time.monotonic() - t0[0] if t0 else 0.0
    run.replies.append((elapsed, text))
    print(f"demo: [{elapsed:5.1f} s] reply: {text!r}", flush=True)


def run_demo(config: DemoConfig) -> dict[str, Any]:
    """The whole main job (module docstring); returns what summary.json holds."""
    data = config.data or cache_root(config.model_dir) / "data" / "synth1000"
    prepare_models(config.model_dir, data, engine=config.engine, run=config.prepare, reactor=config.reactor)
    person = pick_person(config, data)
    duration = config.seconds or person.seconds
    config.out.mkdir(parents=True, exist_ok=True)
    print(f"demo: person = {person.label}")
    instructions = config.instructions or ("",)
    runs: list[tuple[LiveRun, Recording]] = []
    for i, instruction in enumerate(instructions):
        told = f'"{instruction}"' if instruction else "no instruction"
        print(f"demo: run {i + 1} of {len(instructions)}: the reaction node is told {told}")
        run = run_live(config, person, duration, instruction, config.out / f"run{i + 1}")
        runs.append((run, read_recording(run.bag)))
    title = person.label
    profile = load_profile(config.profile) if sim_wanted(config) else None
    written = render_runs([(run.instruction, rec) for run, rec in runs], config.out, title, profile)
    for run, rec in runs:
        print()
        print(format_summary(run.instruction, run.seconds, run.diagnostics, rec, person.label))
    difference = reaction_difference_mm([rec for _, rec in runs])
    if difference is not None:
        print(f"\nthe two instructions' reactions differ by {difference:.0f} mm per joint on average")
    summary = {
        "person": person.label,
        "source": person.source,
        "runs": [
            {
                "instruction": run.instruction,
                "seconds": run.seconds,
                "diagnostics": run.diagnostics,
                "said": run.said,
                "replies": run.replies,
                "messages": rec.counts,
                "bag": str(run.bag),
            }
            for run, rec in runs
        ],
        "reaction_difference_mm": difference,
        "sim": sim_wanted(config),  # the simulated robot ran and its body is drawn
        "renders": [str(p) for p in written],
    }
    (config.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    bags = ", ".join(str(run.bag) for run, _ in runs)
    print(f"\nwrote {', '.join(str(p) for p in written)}, {config.out / 'summary.json'} and the bags {bags}")
    return summary
