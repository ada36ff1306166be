"""Bring-up: config/bringup.yaml read by launch/reaction.launch.py and by `molam bringup` alike.

`launch`/`launch_ros` are not installable here, so the launch file is loaded with stand-ins for
them (sys.modules) and its Node actions are compared with what `molam bringup` starts; with the
real packages present the same file is also run through them. `molam bringup --replay` is run for
real: it must start a separate process whose poses a subscriber here receives over DDS.
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import types
import uuid
from pathlib import Path

import pytest
import yaml

from molam_ros import bringup
from molam_ros.bringup import NodeSpec, describe_nodes, load_arguments

REPO = Path(__file__).resolve().parents[1]
BRINGUP_YAML = REPO / "config" / "bringup.yaml"
LAUNCH_FILE = REPO / "launch" / "reaction.launch.py"


# --- the node set ----------------------------------------------------------------------------


def test_default_node_set() -> None:
    assert bringup.default_bringup_yaml() == BRINGUP_YAML
    (reaction,) = describe_nodes(BRINGUP_YAML, {})
    assert (reaction.name, reaction.executable, reaction.module) == (
        "reaction_node",
        "reaction_node",
        "molam_ros.ros.reaction_node",
    )
    assert reaction.params_files == (str(REPO / "config" / "reaction_node.yaml"),)
    # Empty arguments are left out, so the params file's values stand.
    assert reaction.parameters == {"profile": "unitree_g1", "engine": "onnxruntime", "device": "cpu"}


def test_replay_only_with_typed_overrides() -> None:
    (replay,) = describe_nodes(
        BRINGUP_YAML, {"replay": "true", "reaction": False, "clip_id": "000123", "dataset": "/data"}
    )
    assert replay.name == "pose_replay_node"
    # A clip id that looks like a number stays a string, in launch's dict and on the command line.
    assert replay.parameters == {
        "dataset": "/data",
        "clip_id": "000123",
        "loop": True,
        "publish_reference": False,
    }
    args = replay.ros_args()
    assert args[:3] == ["--ros-args", "-r", "__node:=pose_replay_node"]
    assert ["-p", 'clip_id:="000123"'] == args[args.index('clip_id:="000123"') - 1 :][:2]
    assert parse_ros_args(args)["parameters"] == replay.parameters


def test_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match=r"unknown argument\(s\) \['replya'\]"):
        describe_nodes(BRINGUP_YAML, {"replya": "true"})
    with pytest.raises(ValueError, match=r"'cuda' is not one of \['torch', 'onnxruntime', 'tensorrt'\]"):
        describe_nodes(BRINGUP_YAML, {"engine": "cuda"})
    with pytest.raises(ValueError, match="'maybe' is not a boolean"):
        describe_nodes(BRINGUP_YAML, {"replay": "maybe"})
    with pytest.raises(FileNotFoundError, match="params_file /no/such.yaml"):
        describe_nodes(BRINGUP_YAML, {"params_file": "/no/such.yaml"})


def test_schema(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a:\n  ros__parameters:\n    x: 1\n")
    (tmp_path / "extra.yaml").write_text("/**:\n  ros__parameters:\n    y: 2\n")
    spec = {
        "arguments": {
            "robot": {"default": "g1", "description": "which robot"},
            "rate": {"default": 2.5},
            "mode": {"default": "sim", "choices": ["sim", "real"]},
            "params_file": "",
        },
        "nodes": [
            {
                "name": "a",
                "package": "p",
                "executable": "a_exe",
                "module": "p.a",
                "namespace": "/robot",
                "when": {"mode": "real"},
                "params_files": ["a.yaml"],
                "parameters": {"rate": "$(arg rate)", "label": "$(arg robot)_arm", "fixed": [1, 2]},
                "remappings": {"/joint_states": "/$(arg robot)/joint_states"},
            },
            {"name": "b", "package": "p", "executable": "b_exe", "module": "p.b"},
        ],
    }
    path = tmp_path / "bringup.yaml"
    path.write_text(yaml.safe_dump(spec))
    assert [s.name for s in describe_nodes(path, {})] == ["b"]
    a, b = describe_nodes(path, {"mode": "real", "robot": "h1", "params_file": str(tmp_path / "extra.yaml")})
    assert a == NodeSpec(
        name="a",
        package="p",
        executable="a_exe",
        module="p.a",
        namespace="/robot",
        params_files=(str(tmp_path / "a.yaml"), str(tmp_path / "extra.yaml")),
        parameters={"rate": 2.5, "label": "h1_arm", "fixed": [1, 2]},
        remappings=(("/joint_states", "/h1/joint_states"),),
    )
    assert b.params_files == (str(tmp_path / "extra.yaml"),)  # the extra file goes to every node
    assert parse_ros_args(a.ros_args()) == {
        "name": "a",
        "namespace": "/robot",
        "params_files": list(a.params_files),
        "parameters": a.parameters,
        "remappings": list(a.remappings),
    }

    def broken(change: dict) -> Path:
        bad = yaml.safe_load(yaml.safe_dump(spec))
        bad["nodes"][0].update(change)
        path.write_text(yaml.safe_dump(bad))
        return path

    with pytest.raises(ValueError, match=r"node 'a': unknown keys \['param_files'\]"):
        describe_nodes(broken({"param_files": []}), {"mode": "real"})
    with pytest.raises(ValueError, match=r"\$\(arg nope\) names no declared argument"):
        describe_nodes(broken({"parameters": {"x": "$(arg nope)"}}), {"mode": "real"})
    with pytest.raises(ValueError, match=r"`when` names undeclared argument\(s\) \['nope'\]"):
        describe_nodes(broken({"when": {"nope": True}}), {})
    with pytest.raises(FileNotFoundError, match="params file .*missing.yaml does not exist"):
        describe_nodes(broken({"params_files": ["missing.yaml"]}), {"mode": "real"})


def test_every_node_has_a_console_script_and_its_params_file() -> None:
    """`ros2 run`/launch find the executable, and every override hits a parameter in the file."""
    scripts = dict(re.findall(r'"(\w+) = ([\w.]+):main"', (REPO / "setup.py").read_text()))
    installed = {Path(p).name for p in glob.glob(str(REPO / "config" / "*.yaml"))}  # setup.py's glob
    for node in yaml.safe_load(BRINGUP_YAML.read_text())["nodes"]:
        if importlib.util.find_spec(node["module"]) is not None:  # a node not yet written has no script
            assert scripts.get(node["executable"]) == node["module"], node["name"]
        for file in node["params_files"]:
            assert file in installed
            params = yaml.safe_load((REPO / "config" / file).read_text())
            assert list(params) == [node["name"]] and list(params[node["name"]]) == ["ros__parameters"]
            missing = set(node.get("parameters", {})) - set(params[node["name"]]["ros__parameters"])
            assert not missing, f"{node['name']}: {sorted(missing)} not in {file}"


def test_replay_params_file_matches_the_node() -> None:
    from molam_ros.ros.pose_replay_node import PARAMETERS

    params = yaml.safe_load((REPO / "config" / "pose_replay_node.yaml").read_text())
    declared = params["pose_replay_node"]["ros__parameters"]
    assert declared == {name: default for name, (default, _, _) in PARAMETERS.items()}


def test_missing_node_module_is_refused_before_anything_starts() -> None:
    ghost = NodeSpec(
        name="ghost", package="molam_ros", executable="ghost", module="molam_ros.ros.no_such_node"
    )
    with pytest.raises(ValueError, match=r"no module for node\(s\) ghost \(molam_ros.ros.no_such_node\)"):
        bringup.run_nodes([ghost])


# --- the launch file, with stand-ins for launch and launch_ros -------------------------------


def parse_ros_args(args: list[str]) -> dict:
    """What a `--ros-args` tail gives a node, in the terms of launch_ros's Node arguments.

    `-p` values are YAML, as rcl reads them.
    """
    assert args[0] == "--ros-args"
    out: dict = {"name": None, "namespace": None, "params_files": [], "parameters": {}, "remappings": []}
    it = iter(args[1:])
    for flag in it:
        value = next(it)
        if flag == "--params-file":
            out["params_files"].append(value)
            continue
        key, _, rhs = value.partition(":=")
        if flag == "-p":
            out["parameters"][key] = yaml.safe_load(rhs)
        elif key == "__node":
            out["name"] = rhs
        elif key == "__ns":
            out["namespace"] = rhs
        else:
            out["remappings"].append((key, rhs))
    return out


class _Action:
    """Stand-in for a launch action: keeps its arguments."""

    def __init__(self, *args, **kwargs) -> None:
        self.args, self.kwargs = args, kwargs


def _node_as_ros_args(node: _Action) -> dict:
    """A fake launch_ros Node's arguments, in parse_ros_args' terms (files, then the dict)."""
    files = [p for p in node.kwargs["parameters"] if isinstance(p, str)]
    dicts = [p for p in node.kwargs["parameters"] if isinstance(p, dict)]
    assert node.kwargs["parameters"] == files + dicts and len(dicts) <= 1  # files first, overrides last
    return {
        "name": node.kwargs["name"],
        "namespace": node.kwargs["namespace"],
        "params_files": files,
        "parameters": dicts[0] if dicts else {},
        "remappings": node.kwargs["remappings"],
    }


@pytest.fixture
def launch_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> types.ModuleType:
    """reaction.launch.py loaded against stand-ins, with an install-like share directory."""
    share = tmp_path / "share" / "molam_ros"
    (share / "config").mkdir(parents=True)
    for file in glob.glob(str(REPO / "config" / "*.yaml")):  # what setup.py installs
        shutil.copy(file, share / "config")

    def stub(name: str, **attrs: object) -> None:
        module = types.ModuleType(name)
        module.__path__ = []  # importable as a package too
        module.__dict__.update(attrs)
        monkeypatch.setitem(sys.modules, name, module)

    kinds = ("LaunchDescription", "DeclareLaunchArgument", "OpaqueFunction", "Node")
    fake = {kind: type(kind, (_Action,), {}) for kind in kinds}
    stub("launch")
    stub("launch.launch_description", LaunchDescription=fake["LaunchDescription"])
    stub(
        "launch.actions",
        DeclareLaunchArgument=fake["DeclareLaunchArgument"],
        OpaqueFunction=fake["OpaqueFunction"],
    )
    stub("launch_ros")
    stub("launch_ros.actions", Node=fake["Node"])
    stub("ament_index_python.packages", get_package_share_directory=lambda pkg: str(tmp_path / "share" / pkg))
    spec = importlib.util.spec_from_file_location("reaction_launch_under_test", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.fake = fake
    module.share_yaml = share / "config" / "bringup.yaml"
    return module


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"replay": "true"},
        {"replay": "true", "reaction": "false", "clip_id": "000123", "dataset": "/d", "loop": "false"},
        {"profile": "unitree_h1", "engine": "tensorrt", "device": "cuda:1", "model_dir": "/models"},
    ],
    ids=["default", "replay", "replay-only", "gpu"],
)
def test_launch_file_starts_what_molam_bringup_starts(
    launch_module: types.ModuleType, overrides: dict
) -> None:
    description = launch_module.generate_launch_description()
    *declared, opaque = description.args[0]
    # Launch arguments: exactly the node set's, with the same defaults and choices.
    arguments = load_arguments(BRINGUP_YAML)
    assert [d.args[0] for d in declared] == list(arguments)
    for d in declared:
        arg = arguments[d.args[0]]
        assert (
            d.kwargs["default_value"] == arg.launch_default() and d.kwargs["description"] == arg.description
        )
        assert d.kwargs.get("choices", []) == [str(c) for c in arg.choices]
    # Launch hands the function every configuration as a string, its own ones included.
    configs = {d.args[0]: d.kwargs["default_value"] for d in declared} | overrides | {"use_sim_time": "false"}
    nodes = opaque.kwargs["function"](types.SimpleNamespace(launch_configurations=configs))
    specs = describe_nodes(BRINGUP_YAML, overrides)
    assert [n.kwargs["name"] for n in nodes] == [s.name for s in specs]
    for node, spec in zip(nodes, specs, strict=True):
        assert isinstance(node, launch_module.fake["Node"])
        assert (node.kwargs["package"], node.kwargs["executable"]) == (spec.package, spec.executable)
        launched = _node_as_ros_args(node)
        # Installed params files instead of the checkout's: same names, same contents.
        assert [Path(f).name for f in launched["params_files"]] == [Path(f).name for f in spec.params_files]
        assert all(Path(f).parent == launch_module.share_yaml.parent for f in launched["params_files"])
        here = parse_ros_args(spec.ros_args())
        assert launched["parameters"] == here["parameters"]  # typed the same way on both paths
        assert launched["remappings"] == here["remappings"] and launched["name"] == here["name"]
        assert (launched["namespace"] or None) == here["namespace"]


def test_with_real_launch_packages() -> None:
    try:
        launch = importlib.import_module("launch")
        importlib.import_module("launch_ros.actions")
    except ImportError:
        launch = None
    if launch is None or not hasattr(launch, "LaunchDescription"):
        pytest.skip(
            "launch/launch_ros are not installable on this machine (docs/environment.md); the launch file's "
            "mapping is covered by test_launch_file_starts_what_molam_bringup_starts with stand-ins"
        )
    spec = importlib.util.spec_from_file_location("reaction_launch_real", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = launch.LaunchContext()
    for entity in description.entities[:-1]:
        entity.visit(context)  # declares the arguments' defaults
    context.launch_configurations["replay"] = "true"
    nodes = description.entities[-1].execute(context)
    specs = describe_nodes(module.bringup_yaml(), {"replay": "true"})
    assert [(n.node_package, n.node_executable) for n in nodes] == [(s.package, s.executable) for s in specs]


# --- molam bringup ---------------------------------------------------------------------------


def test_dry_run_prints_the_command_lines(capsys: pytest.CaptureFixture) -> None:
    assert (
        bringup.main(["--replay", "--no-reaction", "--dry-run", "--clip-id", "000123", "--dataset", "/d"])
        == 0
    )
    (line,) = capsys.readouterr().out.splitlines()
    name, _, command = line.partition(": ")
    argv = shlex.split(command)
    assert name == "pose_replay_node" and argv[1:3] == ["-m", "molam_ros.ros.pose_replay_node"]
    assert parse_ros_args(argv[3:])["parameters"] == {
        "dataset": "/d",
        "clip_id": "000123",
        "loop": True,
        "publish_reference": False,
    }
    assert bringup.main(["--arg", "engine:=cuda", "--dry-run"]) == 2
    assert "is not one of" in capsys.readouterr().err


def test_molam_cli_has_bringup(capsys: pytest.CaptureFixture) -> None:
    from molam_ros.cli import build_parser

    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert "bringup" in commands.choices
    args = parser.parse_args(["bringup", "--replay", "--no-reaction", "--dry-run"])
    assert args.func(args) == 0
    assert capsys.readouterr().out.startswith("pose_replay_node: ")


@pytest.mark.ros
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_bringup_replay_publishes_over_dds_and_stops_on_signals(sig: signal.Signals) -> None:
    import rclpy
    from molam_msgs.msg import PersonPose
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"bringup_probe_{uuid.uuid4().hex[:8]}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    got: list[PersonPose] = []
    node.create_subscription(PersonPose, "/molam/person_pose", got.append, qos_profile_sensor_data)
    proc = subprocess.Popen(
        [sys.executable, "-m", "molam_ros.bringup", "--replay", "--no-reaction"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(got) < 5 and time.monotonic() < deadline and proc.poll() is None:
            executor.spin_once(timeout_sec=0.05)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert len(got) >= 5, out
    assert got[-1].person_id.startswith("person_") and len(got[-1].positions) == 22
    assert proc.returncode == 0, out
    started = re.search(r"\[bringup\] started pose_replay_node \(pid (\d+)\): (.*)", out)
    assert started and "-m molam_ros.ros.pose_replay_node --ros-args" in started.group(2), out
    assert f"[bringup] {sig.name}: stopping pose_replay_node" in out and "Traceback" not in out, out
    with pytest.raises(ProcessLookupError):  # the node process is gone, not orphaned
        os.kill(int(started.group(1)), 0)
