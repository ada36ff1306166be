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
    assert reaction.parameters == {
        "profile": "unitree_g1",
        "engine": "onnxruntime",
        "device": "cpu",
        "mode": "reaction",
    }


def test_web_view_is_off_by_default_and_takes_its_port() -> None:
    (reaction, web) = describe_nodes(BRINGUP_YAML, {"web": "true", "web_port": "9000", "person_id": "alice"})
    assert (web.name, web.module) == ("web_view_node", "molam_ros.ros.web_view_node")
    assert web.params_files == (str(REPO / "config" / "web_view_node.yaml"),)
    assert web.parameters == {"port": 9000, "person_id": "alice"}  # an int, as the node declares it
    assert reaction.parameters["person_id"] == "alice"  # both follow the same person


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
        params_files=(str(tmp_path / "a.yaml"),),
        parameters={"rate": 2.5, "label": "h1_arm", "fixed": [1, 2]},
        remappings=(("/joint_states", "/h1/joint_states"),),
        last_params_files=(str(tmp_path / "extra.yaml"),),
    )
    assert b.last_params_files == (str(tmp_path / "extra.yaml"),)  # the extra file goes to every node
    assert parse_ros_args(a.ros_args()) == {
        "name": "a",
        "namespace": "/robot",
        "params_files": list(a.params_files),
        "parameters": a.parameters,
        "remappings": list(a.remappings),
        "last_params_files": list(a.last_params_files),  # after the -p overrides
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
    setup_py = REPO / "ros2_ws/src/molam_ros/setup.py"  # the ament_python package
    scripts = dict(re.findall(r'"(\w+) = ([\w.]+):main"', setup_py.read_text()))
    installed = {Path(p).name for p in glob.glob(str(REPO / "config" / "*.yaml"))}  # setup.py's glob
    for node in yaml.safe_load(BRINGUP_YAML.read_text())["nodes"]:
        if importlib.util.find_spec(node["module"]) is not None:  # a node not yet written has no script
            assert scripts.get(node["executable"]) == node["module"], node["name"]
        for file in node["params_files"]:
            assert file in installed
            params = yaml.safe_load((REPO / "config" / file).read_text())
            # `/**`: it applies under a namespace, and a params_file still wins over it (bringup.py).
            assert list(params) == ["/**"] and list(params["/**"]) == ["ros__parameters"]
            missing = set(node.get("parameters", {})) - set(params["/**"]["ros__parameters"])
            assert not missing, f"{node['name']}: {sorted(missing)} not in {file}"


def test_replay_params_file_matches_the_node() -> None:
    from molam_ros.ros.pose_replay_node import PARAMETERS

    params = yaml.safe_load((REPO / "config" / "pose_replay_node.yaml").read_text())
    declared = params["/**"]["ros__parameters"]
    assert declared == {name: default for name, (default, _, _) in PARAMETERS.items()}


def test_namespace_is_made_absolute_and_checked() -> None:
    (reaction,) = describe_nodes(BRINGUP_YAML, {"namespace": "robot1"})
    assert reaction.namespace == "/robot1"  # rcl refuses `__ns:=robot1` ("Couldn't parse remap rule")
    assert ["-r", "__ns:=/robot1"] == reaction.ros_args()[3:5]
    assert describe_nodes(BRINGUP_YAML, {"namespace": "/fleet/robot_2/"})[0].namespace == "/fleet/robot_2"
    assert describe_nodes(BRINGUP_YAML, {"namespace": ""})[0].namespace == ""
    with pytest.raises(ValueError, match="'2robot' is not a valid ROS namespace"):
        describe_nodes(BRINGUP_YAML, {"namespace": "2robot"})


def test_params_file_comes_after_the_argument_overrides(tmp_path: Path) -> None:
    """`loop: false` in params_file must beat the `loop` argument's default (true), on both paths."""
    user = tmp_path / "mine.yaml"
    user.write_text("/**:\n  ros__parameters:\n    loop: false\n")
    (replay,) = describe_nodes(BRINGUP_YAML, {"replay": True, "reaction": False, "params_file": str(user)})
    assert replay.parameters["loop"] is True and replay.last_params_files == (str(user),)
    args = replay.ros_args()
    files = [i for i, a in enumerate(args) if a == "--params-file"]
    overrides = [i for i, a in enumerate(args) if a == "-p"]
    assert args[files[-1] + 1] == str(user) and files[-1] > max(overrides)


def test_nothing_enabled_is_an_error(capsys: pytest.CaptureFixture, launch_module: types.ModuleType) -> None:
    message = (
        r"no node is enabled by .*bringup.yaml with reaction:=false replay:=false sim:=false web:=false, so "
        r"nothing would start; reaction_node needs reaction:=true; pose_replay_node needs replay:=true; "
        r"sim_node needs sim:=true; web_view_node needs web:=true"
    )
    with pytest.raises(ValueError, match=message):
        describe_nodes(BRINGUP_YAML, {"reaction": "false"})
    assert bringup.main(["--no-reaction", "--dry-run"]) == 2
    assert "no node is enabled" in capsys.readouterr().err
    # `ros2 launch ... reaction:=false` fails with the same message instead of starting nothing.
    *declared, opaque = launch_module.generate_launch_description().args[0]
    configs = {d.args[0]: d.kwargs["default_value"] for d in declared} | {"reaction": "false"}
    with pytest.raises(ValueError, match=message):
        opaque.kwargs["function"](types.SimpleNamespace(launch_configurations=configs))


def test_missing_node_module_is_refused_before_anything_starts() -> None:
    ghost = NodeSpec(
        name="ghost", package="molam_ros", executable="ghost", module="molam_ros.ros.no_such_node"
    )
    with pytest.raises(ValueError, match=r"no module for node\(s\) ghost \(molam_ros.ros.no_such_node\)"):
        bringup.run_nodes([ghost])


# --- the launch file, with stand-ins for launch and launch_ros -------------------------------


def parse_ros_args(args: list[str]) -> dict:
    """What a `--ros-args` tail gives a node, in the terms of launch_ros's Node arguments.

    `-p` values are YAML, as rcl reads them. Params files after a `-p` are `last_params_files`.
    """
    assert args[0] == "--ros-args"
    out: dict = {"name": None, "namespace": None, "params_files": [], "parameters": {}, "remappings": []}
    out["last_params_files"] = []
    it = iter(args[1:])
    for flag in it:
        value = next(it)
        if flag == "--params-file":
            out["last_params_files" if out["parameters"] else "params_files"].append(value)
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


def _node_as_ros_args(node: _Action, share: Path) -> dict:
    """A fake launch_ros Node's arguments, in parse_ros_args' terms: the installed files, then the
    argument overrides (a file keyed `/**`, as `-p` is), then the user's params_file."""
    files = node.kwargs["parameters"]
    assert all(isinstance(f, str) for f in files), files  # paths only: a dict would be keyed by node name
    own = [f for f in files if Path(f).parent == share]
    rest = files[len(own) :]
    assert files[: len(own)] == own  # the installed files first
    overrides: dict = {}
    if rest and Path(rest[0]).name.startswith(f"molam_{node.kwargs['name']}_"):
        content = yaml.safe_load(Path(rest.pop(0)).read_text())
        assert list(content) == ["/**"] and list(content["/**"]) == ["ros__parameters"], content
        overrides = content["/**"]["ros__parameters"]
    return {
        "name": node.kwargs["name"],
        "namespace": node.kwargs["namespace"],
        "params_files": own,
        "parameters": overrides,
        "remappings": node.kwargs["remappings"],
        "last_params_files": rest,
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
        {
            "replay": "true",
            "namespace": "robot1",
            "params_file": str(REPO / "config" / "pose_replay_node.yaml"),
        },
    ],
    ids=["default", "replay", "replay-only", "gpu", "namespace-params-file"],
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
        launched = _node_as_ros_args(node, launch_module.share_yaml.parent)
        # Installed params files instead of the checkout's: same names, same contents.
        assert [Path(f).name for f in launched["params_files"]] == [Path(f).name for f in spec.params_files]
        assert all(Path(f).parent == launch_module.share_yaml.parent for f in launched["params_files"])
        here = parse_ros_args(spec.ros_args())
        assert launched["parameters"] == here["parameters"]  # typed the same way on both paths
        assert launched["remappings"] == here["remappings"] and launched["name"] == here["name"]
        assert (launched["namespace"] or None) == here["namespace"]
        assert launched["last_params_files"] == here["last_params_files"] == list(spec.last_params_files)


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


def _launch_ros_command(node: _Action, python: str, module: str) -> list[str]:
    """The command line launch_ros gives a Node with this name, namespace and list of params file
    paths (launch_ros/actions/node.py, the same on its humble and rolling branches)."""
    cmd = [python, "-m", module, "--ros-args", "-r", f"__node:={node.kwargs['name']}"]
    if node.kwargs["namespace"]:
        cmd += ["-r", f"__ns:=/{node.kwargs['namespace'].strip('/')}"]
    for path in node.kwargs["parameters"]:
        cmd += ["--params-file", path]
    return cmd


def _parameters_of(fqn: str, names: list[str], cmd: list[str], timeout: float = 20.0) -> dict:
    """Start `cmd`, read `names` from the node `fqn` through its get_parameters service, stop it."""
    import rclpy
    from rcl_interfaces.srv import GetParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import parameter_value_to_python

    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"param_probe_{uuid.uuid4().hex[:8]}", context=context)
    client = node.create_client(GetParameters, f"{fqn}/get_parameters")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + timeout
        while not client.wait_for_service(timeout_sec=0.2):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate(timeout=5)[0]
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        # A request sent as soon as the service is discovered can be lost while DDS is still
        # matching the server's reply writer to this client (a fresh-clone CI run once waited 30 s
        # for an answer that never came): ask again every 5 s, up to 30 s on a loaded 2-core box.
        for _ in range(6):
            future = client.call_async(GetParameters.Request(names=names))
            executor.spin_until_future_complete(future, timeout_sec=5)
            if future.done():
                break
        executor.shutdown()
        assert future.done() and future.result() is not None, f"{fqn}/get_parameters did not answer"
        values = [parameter_value_to_python(v) for v in future.result().values]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out = proc.communicate(timeout=10)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
        node.destroy_node()
        rclpy.shutdown(context=context)
    assert "Traceback" not in out and "Couldn't parse" not in out, out
    return dict(zip(names, values, strict=True))


@pytest.fixture
def rclpy_loaded() -> None:
    """Import rclpy's parameter service types (and the real ament_index_python, which the demo's
    modules import) before launch_module stubs ament_index_python."""
    importlib.import_module("ament_index_python.packages")
    importlib.import_module("rclpy.parameter")
    importlib.import_module("rcl_interfaces.srv")


@pytest.mark.ros
@pytest.mark.parametrize("path", ["molam bringup", "launch"])
@pytest.mark.parametrize(
    ("namespace", "user_key"),
    [("robot1", None), ("robot1", "/**"), ("", "pose_replay_node"), ("robot1", "/**/pose_replay_node")],
    ids=["ns-own-file", "ns-wildcard", "node-name", "ns-node-wildcard"],
)
def test_real_node_gets_params_file_last_under_a_namespace(
    rclpy_loaded: None,
    tmp_path: Path,
    launch_module: types.ModuleType,
    path: str,
    namespace: str,
    user_key: str | None,
) -> None:
    """What the node really ends up with (rcl's merge, read back over its parameter service): its own
    file applies under a namespace; the user's params_file beats the `loop` argument's default."""
    share = launch_module.share_yaml.parent
    own = share / "pose_replay_node.yaml"
    own.write_text(own.read_text().replace("synth_seed: 0 ", "synth_seed: 7 "))
    args = {"replay": "true", "reaction": "false", "namespace": namespace}
    if user_key:
        user = tmp_path / "user.yaml"
        user.write_text(yaml.safe_dump({user_key: {"ros__parameters": {"loop": False, "synth_seed": 5}}}))
        args["params_file"] = str(user)
    if path == "launch":
        *declared, opaque = launch_module.generate_launch_description().args[0]
        configs = {d.args[0]: d.kwargs["default_value"] for d in declared} | args
        (node,) = opaque.kwargs["function"](types.SimpleNamespace(launch_configurations=configs))
        cmd = _launch_ros_command(node, sys.executable, "molam_ros.ros.pose_replay_node")
    else:
        (spec,) = describe_nodes(launch_module.share_yaml, args)
        cmd = spec.command()
    fqn = f"/{namespace}/pose_replay_node" if namespace else "/pose_replay_node"
    got = _parameters_of(fqn, ["loop", "synth_seed"], cmd)
    assert got == ({"loop": False, "synth_seed": 5} if user_key else {"loop": True, "synth_seed": 7}), cmd
