"""The runtime's node set, described once and started two ways: `ros2 launch` and `molam bringup`.

`config/bringup.yaml` names the nodes, their executables, parameter files, parameters, remappings
and the conditions under which each runs, plus the arguments that fill them in. Two readers turn it
into processes:
- `launch/reaction.launch.py`, on a standard ROS 2 install (`ros2 launch molam_ros
  reaction.launch.py replay:=true`): each NodeSpec becomes a launch_ros `Node` action;
- `molam bringup` (this module), where launch/launch_ros are not installable (docs/environment.md):
  each NodeSpec becomes `python -m <module> --ros-args ...`, a real separate process, started and
  stopped here.
Both call `describe_nodes`, so what runs cannot drift between them (tests/test_bringup.py checks
the launch file's mapping too).

The schema of bringup.yaml (config/README.md has the full description):

    arguments:                       # launch arguments = `molam bringup` options
      NAME: {default: VALUE, type: str|bool|int|float, description: TEXT, choices: [..]}
    nodes:
      - name: NODE_NAME
        package: molam_ros           # for launch_ros / ros2 run
        executable: CONSOLE_SCRIPT   # for launch_ros / ros2 run
        module: molam_ros.ros.X      # for `python -m` here
        namespace: ""                # optional; "$(arg NAME)" allowed; made absolute (robot1 -> /robot1)
        when: {ARG: VALUE, ...}      # optional: runs only if every ARG has this value
        params_files: [FILE, ...]    # relative to bringup.yaml's directory
        parameters: {KEY: VALUE}     # applied after the files; "$(arg NAME)" takes an argument
        remappings: {FROM: TO}       # topic/service remappings; "$(arg NAME)" allowed

A parameter whose value works out to an empty string is left out, so the value in the params file
stands: arguments only override what they are given. The `params_file` argument, when set, is
applied to every node last, after its own files and after the argument overrides, so a value in it
always wins.

Why the shipped params files are keyed `/**:` and not by node name: rcl merges every params file
and `-p` of a node into one table with one entry per key, kept in the order each key first appears,
and rclpy applies the entries that match the node in that order. `-p` values (and launch's
overrides) are keyed `/**`. With the node's own file keyed `/**` too, the argument overrides land in
that first entry after the file's values, and the user's params_file comes later whatever keys it
uses (`/**`, `NODE_NAME`, `/**/NODE_NAME`, `/NS/NODE_NAME`); with a node-name key, a user file keyed
the same way would merge into the first entry and lose to the overrides. `/**` also keeps a node's
own file applying under a namespace, where a bare `NODE_NAME:` key matches only `/NODE_NAME`.

This module never imports rclpy or launch: it reads YAML and starts processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

PACKAGE = "molam_ros"
BRINGUP_FILE = "bringup.yaml"
_ARG = re.compile(r"\$\(arg ([A-Za-z_][A-Za-z0-9_]*)\)")
_TYPES: dict[str, type] = {"str": str, "bool": bool, "int": int, "float": float}
_NODE_KEYS = {
    "name",
    "package",
    "executable",
    "module",
    "namespace",
    "when",
    "params_files",
    "parameters",
    "remappings",
}
_ARG_KEYS = {"default", "type", "description", "choices"}


@dataclasses.dataclass(frozen=True)
class ArgumentSpec:
    """One argument of the node set: a launch argument and a `molam bringup` option."""

    name: str
    default: Any
    type: str = "str"
    description: str = ""
    choices: tuple[Any, ...] = ()

    def parse(self, value: object) -> Any:
        """`value` (a launch string like "true", or a Python value) as this argument's type."""
        kind = _TYPES[self.type]
        if isinstance(value, kind) and not (kind is int and isinstance(value, bool)):
            parsed = value
        elif kind is bool:
            text = str(value).strip().lower()
            if text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                raise ValueError(f"argument {self.name!r}: {value!r} is not a boolean (true/false)")
            parsed = text in ("true", "1", "yes", "on")
        else:
            try:
                parsed = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"argument {self.name!r}: {value!r} is not of type {self.type}") from None
        if self.choices and parsed not in self.choices:
            raise ValueError(f"argument {self.name!r}: {parsed!r} is not one of {list(self.choices)}")
        return parsed

    def launch_default(self) -> str:
        """The default as launch writes it (launch arguments are strings)."""
        return _launch_string(self.default)


@dataclasses.dataclass(frozen=True)
class NodeSpec:
    """One node to run, as both launch_ros and a plain `python -m` process need it."""

    name: str
    package: str
    executable: str
    module: str
    namespace: str = ""
    params_files: tuple[str, ...] = ()
    parameters: dict[str, Any] = dataclasses.field(default_factory=dict)
    remappings: tuple[tuple[str, str], ...] = ()
    # Applied after `parameters`: the user's params_file, which must win over the argument defaults.
    last_params_files: tuple[str, ...] = ()

    def ros_args(self) -> list[str]:
        """The `--ros-args ...` tail that gives the node its name, parameters and remappings."""
        out = ["--ros-args", "-r", f"__node:={self.name}"]
        if self.namespace:
            out += ["-r", f"__ns:={self.namespace}"]
        for path in self.params_files:
            out += ["--params-file", path]
        for key, value in self.parameters.items():  # after the files: later values win
            out += ["-p", f"{key}:={_param_text(value)}"]
        for path in self.last_params_files:  # last of all (the module docstring says why this works)
            out += ["--params-file", path]
        for src, dst in self.remappings:
            out += ["-r", f"{src}:={dst}"]
        return out

    def command(self, python: str = sys.executable) -> list[str]:
        """The command line that starts this node as its own process here."""
        return [python, "-m", self.module, *self.ros_args()]


# --- reading bringup.yaml --------------------------------------------------------------------


def _launch_string(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _param_text(value: object) -> str:
    """A parameter value as `-p key:=VALUE` wants it: YAML, so strings that look like numbers or
    booleans ("000123", "true") are quoted and stay strings, as a params file would keep them."""
    if isinstance(value, str):
        return value if value and yaml.safe_load(value) == value else json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value)  # lists: JSON is YAML flow style


def _load(bringup_yaml: str | Path) -> tuple[Path, dict[str, Any]]:
    path = Path(bringup_yaml)
    if not path.is_file():
        raise FileNotFoundError(f"node set {path} does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or set(data) - {"arguments", "nodes"}:
        raise ValueError(f"{path}: expected top-level keys 'arguments' and 'nodes'")
    return path, data


def load_arguments(bringup_yaml: str | Path) -> dict[str, ArgumentSpec]:
    """The arguments a node set declares, by name, in file order."""
    path, data = _load(bringup_yaml)
    out = {}
    for name, spec in (data.get("arguments") or {}).items():
        spec = spec if isinstance(spec, dict) else {"default": spec}
        if unknown := set(spec) - _ARG_KEYS:
            raise ValueError(f"{path}: argument {name!r}: unknown keys {sorted(unknown)}")
        default = spec.get("default", "")
        kind = spec.get("type", type(default).__name__)
        if kind not in _TYPES:
            raise ValueError(f"{path}: argument {name!r}: type must be one of {list(_TYPES)}, got {kind!r}")
        arg = ArgumentSpec(
            name=name,
            default=default,
            type=kind,
            description=str(spec.get("description", "")),
            choices=tuple(spec.get("choices", ())),
        )
        out[name] = dataclasses.replace(arg, default=arg.parse(default))  # a bad default fails here
    return out


def resolve_arguments(bringup_yaml: str | Path, args: Mapping[str, object]) -> dict[str, Any]:
    """Every argument's typed value: `args` (strings from launch, or Python values) over the defaults."""
    declared = load_arguments(bringup_yaml)
    if unknown := set(args) - set(declared):
        raise ValueError(f"unknown argument(s) {sorted(unknown)}; the node set declares {list(declared)}")
    return {name: spec.parse(args.get(name, spec.default)) for name, spec in declared.items()}


def _substitute(value: object, values: Mapping[str, Any], where: str) -> object:
    """Fill "$(arg NAME)": a whole-string reference takes the argument's typed value."""
    if not isinstance(value, str):
        return value
    for name in _ARG.findall(value):
        if name not in values:
            raise ValueError(f"{where}: $(arg {name}) names no declared argument")
    whole = _ARG.fullmatch(value)
    if whole:
        return values[whole.group(1)]
    return _ARG.sub(lambda m: _launch_string(values[m.group(1)]), value)


def describe_nodes(bringup_yaml: str | Path, args: Mapping[str, object]) -> list[NodeSpec]:
    """The nodes to run for these argument values, with everything each one is given.

    args: argument name -> value (launch's strings such as "true", or Python values); arguments
    left out take their defaults, unknown ones are refused. Nodes whose `when` is not met are left
    out. Params files are returned as absolute paths and must exist. Arguments that enable no node
    at all (`reaction:=false` without `replay:=true`) are an error, not a silent empty launch.
    """
    path, data = _load(bringup_yaml)
    declared = load_arguments(path)
    values = resolve_arguments(path, args)
    extra_params = str(values.get("params_file") or "")
    if extra_params and not Path(extra_params).is_file():
        raise FileNotFoundError(f"params_file {extra_params} does not exist")
    specs = []
    for i, node in enumerate(data.get("nodes") or []):
        where = f"{path}: node {node.get('name', i)!r}"
        if unknown := set(node) - _NODE_KEYS:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        if missing := {"name", "package", "executable", "module"} - set(node):
            raise ValueError(f"{where}: missing {sorted(missing)}")
        when = node.get("when") or {}
        if undeclared := set(when) - set(declared):
            raise ValueError(f"{where}: `when` names undeclared argument(s) {sorted(undeclared)}")
        if any(values[name] != declared[name].parse(want) for name, want in when.items()):
            continue
        files = []
        for file in node.get("params_files") or []:
            full = (path.parent / _substitute(file, values, where)).resolve()
            if not full.is_file():
                raise FileNotFoundError(f"{where}: params file {full} does not exist")
            files.append(str(full))
        params = {}
        for key, value in (node.get("parameters") or {}).items():
            value = _substitute(value, values, f"{where}, parameter {key!r}")
            if value != "":
                params[str(key)] = value
        remaps = tuple(
            (str(_substitute(src, values, where)), str(_substitute(dst, values, where)))
            for src, dst in (node.get("remappings") or {}).items()
        )
        specs.append(
            NodeSpec(
                name=node["name"],
                package=node["package"],
                executable=node["executable"],
                module=node["module"],
                namespace=absolute_namespace(
                    str(_substitute(node.get("namespace") or "", values, where)), f"{where}: namespace"
                ),
                params_files=tuple(files),
                parameters=params,
                remappings=remaps,
                last_params_files=(str(Path(extra_params).resolve()),) if extra_params else (),
            )
        )
    if not specs and data.get("nodes"):
        raise ValueError(_nothing_enabled(path, data["nodes"], values))
    return specs


_NAMESPACE_TOKEN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def absolute_namespace(namespace: str, where: str = "namespace") -> str:
    """`robot1`, `/robot1/` -> `/robot1`; "" stays "". rcl refuses a relative `__ns:=` ("Couldn't parse
    remap rule") while launch makes it absolute itself, so both paths get the absolute form."""
    parts = [p for p in namespace.strip().split("/") if p]
    if not parts:
        return ""
    bad = [p for p in parts if not _NAMESPACE_TOKEN.fullmatch(p)]
    if bad:
        raise ValueError(
            f"{where}: {namespace!r} is not a valid ROS namespace ({bad[0]!r}: letters, digits and "
            "underscores, not starting with a digit)"
        )
    return "/" + "/".join(parts)


def overrides_params_yaml(parameters: Mapping[str, Any]) -> str:
    """`parameters` as a params file keyed `/**`, what `-p` gives rcl. The launch file passes the
    argument overrides this way: a dict given to launch_ros is keyed by the node's full name, which
    would put it after a user's `/**` params_file and let the defaults win over it."""
    return yaml.safe_dump({"/**": {"ros__parameters": dict(parameters)}}, default_flow_style=False)


def _nothing_enabled(path: Path, nodes: Sequence[Mapping[str, Any]], values: Mapping[str, Any]) -> str:
    needs = [
        f"{node.get('name')} needs "
        + " ".join(f"{k}:={_launch_string(v)}" for k, v in (node.get("when") or {}).items())
        for node in nodes
    ]
    keys = dict.fromkeys(k for node in nodes for k in (node.get("when") or {}))
    given = " ".join(f"{k}:={_launch_string(values[k])}" for k in keys)
    return (
        f"no node is enabled by {path} with {given or 'these arguments'}, so nothing would start; "
        + "; ".join(needs)
    )


def default_bringup_yaml() -> Path:
    """The package's bringup.yaml (the checkout's `config/`, else an install's share directory)."""
    from molam_ros.paths import config_file

    return config_file(BRINGUP_FILE)


# --- running the nodes here ------------------------------------------------------------------


def _check_modules(specs: Sequence[NodeSpec]) -> None:
    missing = [s for s in specs if importlib.util.find_spec(s.module) is None]
    if missing:
        names = ", ".join(f"{s.name} ({s.module})" for s in missing)
        raise ValueError(
            f"no module for node(s) {names}; switch them off with their argument (e.g. --no-reaction)"
        )


def stop_processes(
    procs: Mapping[str, subprocess.Popen],
    sig: int = signal.SIGINT,
    timeout: float = 10.0,
    say: Callable[[str], None] = lambda _line: None,
) -> None:
    """Ask every live process to stop with `sig`, then escalate (SIGTERM, then SIGKILL), as launch does."""
    for step in dict.fromkeys((sig, signal.SIGTERM, signal.SIGKILL)):
        alive = {name: p for name, p in procs.items() if p.poll() is None}
        if not alive:
            return
        if step != sig:
            say(f"{', '.join(alive)} still running; sending {signal.Signals(step).name}")
        for p in alive.values():
            p.send_signal(step)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.poll() is None for p in alive.values()):
            time.sleep(0.05)


def run_nodes(
    specs: Sequence[NodeSpec],
    *,
    python: str = sys.executable,
    stop_timeout: float = 5.0,
    say: Callable[[str], None] | None = None,
) -> int:
    """Start every node as its own process and wait; SIGINT/SIGTERM are forwarded to all of them.

    Children get their own process group, so a Ctrl-C reaches them once, through here. A node that
    exits on its own is reported and the others keep running; when all have exited the worst exit
    status is returned (0 when a requested stop ended them cleanly).
    """
    say = say or (lambda text: print(f"[bringup] {text}", flush=True))
    _check_modules(specs)
    received: list[int] = []
    previous = {
        s: signal.signal(s, lambda sig, _frame: received.append(sig)) for s in (signal.SIGINT, signal.SIGTERM)
    }
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs: dict[str, subprocess.Popen] = {}
    try:
        for spec in specs:
            cmd = spec.command(python)
            # A session of its own (setsid): its own process group, as `process_group=0` gives from
            # Python 3.11, but also on Humble's Python 3.10.
            procs[spec.name] = subprocess.Popen(cmd, env=env, start_new_session=True)
            say(f"started {spec.name} (pid {procs[spec.name].pid}): {shlex.join(cmd)}")
        reported: set[str] = set()
        while not received:
            for name, p in procs.items():
                if p.poll() is not None and name not in reported:
                    reported.add(name)
                    say(f"{name} exited with status {p.returncode}")
            if len(reported) == len(procs):
                return max((abs(p.returncode) for p in procs.values()), default=0)
            time.sleep(0.1)
        say(f"{signal.Signals(received[0]).name}: stopping {', '.join(procs)}")
        stop_processes(procs, received[0], stop_timeout, say)
        clean = {0, -signal.SIGINT, -signal.SIGTERM}
        return 0 if all(p.returncode in clean for p in procs.values()) else 1
    finally:
        stop_processes(procs, signal.SIGTERM, stop_timeout, say)  # only if something is still alive
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --- the command -----------------------------------------------------------------------------


def _add_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="node set YAML (default: the package's config/bringup.yaml)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the nodes and their command lines, start nothing"
    )
    p.add_argument(
        "--arg",
        action="append",
        metavar="NAME:=VALUE",
        help="set any argument of the node set, as `ros2 launch` takes them",
    )
    try:
        declared = load_arguments(default_bringup_yaml())
    except (OSError, ValueError, yaml.YAMLError):
        return  # no node set to read options from: --arg still works, describe_nodes reports the cause
    for arg in declared.values():
        flag = "--" + arg.name.replace("_", "-")
        text = arg.description or arg.name
        if arg.choices:
            text += f"; one of {', '.join(map(str, arg.choices))}"
        if arg.type == "bool":
            p.add_argument(
                flag,
                dest=f"arg_{arg.name}",
                action=argparse.BooleanOptionalAction,
                help=f"{text} (default: {arg.launch_default()})",
            )
        else:
            p.add_argument(
                flag,
                dest=f"arg_{arg.name}",
                type=_TYPES[arg.type],
                choices=arg.choices or None,
                metavar=arg.name.upper(),
                help=f"{text} (default: {arg.launch_default() or 'empty'})",
            )


def add_command(groups: argparse._SubParsersAction, fmt: type[argparse.HelpFormatter]) -> None:
    """Add `molam bringup` to the `molam` command's subcommands."""
    p = groups.add_parser(
        "bringup",
        help="start the runtime's nodes as separate processes (what launch/reaction.launch.py starts)",
        description="Start the nodes of config/bringup.yaml as separate ROS 2 processes, with the "
        "parameters and remappings the launch file gives them; Ctrl-C or SIGTERM stops them all.",
        formatter_class=fmt,
    )
    _add_options(p)
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    """`molam bringup`: describe the nodes for the given options, print them, run them."""
    config = args.config or default_bringup_yaml()
    values: dict[str, object] = {}
    for item in args.arg or []:
        name, sep, value = item.partition(":=")
        if not sep:
            raise ValueError(f"--arg {item!r}: expected NAME:=VALUE")
        values[name] = value
    values.update({k[4:]: v for k, v in vars(args).items() if k.startswith("arg_") and v is not None})
    specs = describe_nodes(config, values)
    if args.dry_run:
        for spec in specs:
            print(f"{spec.name}: {shlex.join(spec.command())}")
        return 0
    return run_nodes(specs)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m molam_ros.bringup ...`, the same as `molam bringup ...`."""
    parser = argparse.ArgumentParser(prog="python -m molam_ros.bringup", description=__doc__.split("\n")[0])
    _add_options(parser)
    try:
        return run_command(parser.parse_args(argv))
    except (FileNotFoundError, ValueError) as e:
        print(f"bringup: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
