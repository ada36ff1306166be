"""Humble, Jazzy and Kilted: no rclpy API newer than Humble's, no Python newer than 3.10.

Only Kilted's rclpy installs here (PyPI wheels), so nothing that runs here would catch a call that
Humble (Ubuntu 22.04, Python 3.10, rclpy 3.3, e.g. a Jetson on JetPack 6) or Jazzy (rclpy 7.1)
lacks. This test reads the code instead. The lists below come from diffing the public classes,
functions and modules of ros2/rclpy's `humble`, `jazzy` and `rolling` branches (rclpy/rclpy/*.py),
plus the Python 3.11+ APIs and syntax a py311 code base picks up without noticing.

Each rule is also run on a snippet that uses it, so a rule that stops matching fails here too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# Everything a ROS user runs: the package, the launch files, the helper scripts.
SCANNED = [REPO / "molam_ros", REPO / "launch", REPO / "scripts", REPO / "ros2_ws/src/molam_ros/setup.py"]

# rclpy modules that do not exist in Humble (added in Iron/Jazzy).
POST_HUMBLE_MODULES = {
    "rclpy.clock_type": "Jazzy (Humble: rclpy.clock.ClockType)",
    "rclpy.destroyable": "Jazzy",
    "rclpy.event_handler": "Iron/Jazzy (Humble: rclpy.qos_event)",
    "rclpy.logging_service": "Jazzy",
    "rclpy.parameter_client": "Jazzy",
    "rclpy.parameter_event_handler": "Jazzy",
    "rclpy.service_introspection": "Jazzy",
    "rclpy.type_description_service": "Jazzy",
    "rclpy.type_hash": "Jazzy",
}
# Names imported from rclpy that Humble lacks.
POST_HUMBLE_NAMES = {
    "InitContextManager": "rclpy 8 (Kilted)",
    "TimerInfo": "rclpy 8 (Kilted)",
    "EventHandler": "Iron/Jazzy (Humble: QoSEventHandler)",
    "AsyncParameterClient": "Jazzy",
    "ParameterEventHandler": "Jazzy",
}
# Methods (of Node, Subscription, ...) that Humble lacks. Names are specific enough to rclpy that a
# match is worth a look; a false alarm is fixed by renaming, never by listing an exception.
POST_HUMBLE_METHODS = {
    "count_clients": "Jazzy",
    "count_services": "Jazzy",
    "get_fully_qualified_node_names": "Jazzy",
    "wait_for_node": "Jazzy",
    "get_publisher_count": "Jazzy",
    "add_pre_set_parameters_callback": "Jazzy",
    "add_post_set_parameters_callback": "Jazzy",
    "remove_pre_set_parameters_callback": "Jazzy",
    "remove_post_set_parameters_callback": "Jazzy",
    "get_logger_level": "Jazzy",
    "configure_introspection": "Jazzy",
    "get_ros_time_override_is_enabled": "Jazzy",
    "set_ros_time_override_is_enabled": "Jazzy",
}
# Keyword arguments that Humble's signatures lack.
POST_HUMBLE_KEYWORDS = {
    ("create_timer", "autostart"): "Jazzy",
    ("Node", "enable_logger_service"): "Jazzy",
    ("create_node", "enable_logger_service"): "Jazzy",
}
# `with X(...)`: rclpy objects that became context managers after Humble.
POST_HUMBLE_CONTEXT_MANAGERS = {
    "init": "rclpy 8 (Kilted): Humble and Jazzy return None (ros2/rclpy#1298)",
    "Context": "Jazzy",
    "Node": "rclpy 8 (Kilted)",
    "LifecycleNode": "rclpy 8 (Kilted)",
    "create_node": "rclpy 8 (Kilted)",
    "create_publisher": "rclpy 8 (Kilted)",
    "create_subscription": "rclpy 8 (Kilted)",
    "create_timer": "rclpy 8 (Kilted)",
    "create_service": "rclpy 8 (Kilted)",
    "create_client": "rclpy 8 (Kilted)",
}
# Python 3.11+ (Humble runs on Ubuntu 22.04's Python 3.10).
PY311_NAMES = {
    ("enum", "StrEnum"): "3.11",
    ("typing", "Self"): "3.11",
    ("typing", "LiteralString"): "3.11",
    ("typing", "Never"): "3.11",
    ("typing", "NotRequired"): "3.11",
    ("typing", "Required"): "3.11",
    ("typing", "assert_never"): "3.11",
    ("typing", "reveal_type"): "3.11",
    ("typing", "override"): "3.12",
    ("datetime", "UTC"): "3.11",
    ("asyncio", "TaskGroup"): "3.11",
    ("asyncio", "timeout"): "3.11",
    ("hashlib", "file_digest"): "3.11",
    ("contextlib", "chdir"): "3.11",
    ("itertools", "batched"): "3.12",
}
PY311_MODULES = {"tomllib": "3.11 (use `tomli` or YAML)"}
PY311_BUILTINS = {"ExceptionGroup": "3.11", "BaseExceptionGroup": "3.11"}
PY311_KEYWORDS = {("Popen", "process_group"): "3.11 (use start_new_session=True)"}


def _callee(call: ast.Call) -> str:
    """The last name of what is called: `rclpy.init(...)` -> "init", `Node(...)` -> "Node"."""
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""


def _dotted(node: ast.AST) -> str:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
    return ".".join(reversed(parts))


def problems(source: str, where: str = "<snippet>") -> list[str]:
    """Every use of a post-Humble rclpy API or post-3.10 Python in `source`, one line each."""
    try:
        tree = ast.parse(source, feature_version=(3, 10))
    except SyntaxError as e:
        return [f"{where}:{e.lineno}: syntax newer than Python 3.10: {e.msg}"]
    found = []

    def say(node: ast.AST, what: str, since: str) -> None:
        found.append(f"{where}:{getattr(node, 'lineno', 0)}: {what} (since {since})")

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module in POST_HUMBLE_MODULES:
                say(node, f"import from {node.module}", POST_HUMBLE_MODULES[node.module])
            if node.module in PY311_MODULES:
                say(node, f"import from {node.module}", PY311_MODULES[node.module])
            for alias in node.names:
                if node.module.split(".")[0] == "rclpy" and alias.name in POST_HUMBLE_NAMES:
                    say(node, f"{node.module}.{alias.name}", POST_HUMBLE_NAMES[alias.name])
                if (node.module, alias.name) in PY311_NAMES:
                    say(node, f"{node.module}.{alias.name}", PY311_NAMES[node.module, alias.name])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in POST_HUMBLE_MODULES:
                    say(node, f"import {alias.name}", POST_HUMBLE_MODULES[alias.name])
                if alias.name in PY311_MODULES:
                    say(node, f"import {alias.name}", PY311_MODULES[alias.name])
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            if dotted in POST_HUMBLE_MODULES:
                say(node, dotted, POST_HUMBLE_MODULES[dotted])
            if node.attr in POST_HUMBLE_METHODS:
                say(node, f".{node.attr}()", POST_HUMBLE_METHODS[node.attr])
            if isinstance(node.value, ast.Name) and (node.value.id, node.attr) in PY311_NAMES:
                say(node, dotted, PY311_NAMES[node.value.id, node.attr])
        elif isinstance(node, ast.Name) and node.id in PY311_BUILTINS:
            say(node, node.id, PY311_BUILTINS[node.id])
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                key = (_callee(node), kw.arg)
                if key in POST_HUMBLE_KEYWORDS:
                    say(node, f"{key[0]}({key[1]}=...)", POST_HUMBLE_KEYWORDS[key])
                if key in PY311_KEYWORDS:
                    say(node, f"{key[0]}({key[1]}=...)", PY311_KEYWORDS[key])
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                expr = item.context_expr
                if isinstance(expr, ast.Call) and _callee(expr) in POST_HUMBLE_CONTEXT_MANAGERS:
                    name = _callee(expr)
                    say(node, f"`with {name}(...)`", POST_HUMBLE_CONTEXT_MANAGERS[name])
        elif isinstance(node, ast.TryStar if hasattr(ast, "TryStar") else ()):
            say(node, "except*", "3.11")
    return found


def python_files() -> Iterator[Path]:
    for root in SCANNED:
        assert root.exists(), f"{root} is gone: update SCANNED"
        yield from [root] if root.is_file() else sorted(root.rglob("*.py"))


def test_no_post_humble_api_or_post_310_python() -> None:
    found = [p for path in python_files() for p in problems(path.read_text(), str(path.relative_to(REPO)))]
    assert not found, "newer than Humble / Python 3.10:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "snippet",
    [
        "import rclpy\nwith rclpy.init(args=None):\n    pass\n",
        "from rclpy import init\nwith init():\n    pass\n",
        "import rclpy\nwith rclpy.create_node('n') as node:\n    pass\n",
        "from rclpy.node import Node\nwith Node('n'):\n    pass\n",
        "from rclpy.context import Context\nwith Context() as c:\n    pass\n",
        "with node.create_subscription(M, 't', cb, 10):\n    pass\n",
        "from rclpy.clock_type import ClockType\n",
        "import rclpy.event_handler\n",
        "from rclpy.event_handler import SubscriptionEventCallbacks\n",
        "from rclpy.parameter_client import AsyncParameterClient\n",
        "from rclpy.timer import TimerInfo\n",
        "node.count_services('/s')\n",
        "node.wait_for_node('/other', 1.0)\n",
        "node.create_timer(0.1, cb, autostart=False)\n",
        "import enum\nclass T(enum.StrEnum):\n    A = 'a'\n",
        "from enum import StrEnum\n",
        "import tomllib\n",
        "from typing import Self\n",
        "import datetime\nnow = datetime.datetime.now(datetime.UTC)\n",
        "import subprocess\nsubprocess.Popen(['true'], process_group=0)\n",
        "try:\n    pass\nexcept* ValueError:\n    pass\n",
        "raise ExceptionGroup('x', [ValueError()])\n",
    ],
)
def test_every_rule_catches_its_api(snippet: str) -> None:
    assert problems(snippet), snippet


def test_what_humble_has_passes() -> None:
    """The Humble spellings of the same things are not flagged."""
    ok = (
        "import rclpy\nfrom rclpy.clock import ClockType\n"
        "from rclpy.qos_event import SubscriptionEventCallbacks\n"
        "rclpy.init(args=None)\ntry:\n    node = rclpy.create_node('n')\n    node.count_publishers('/t')\n"
        "    node.create_timer(0.1, cb)\nfinally:\n    rclpy.try_shutdown()\n"
        "import enum\nclass T(str, enum.Enum):\n    A = 'a'\n"
        "import subprocess\nsubprocess.Popen(['true'], start_new_session=True)\n"
    )
    assert problems(ok) == []
