"""The core never imports rclpy: only molam_ros/ros/ may (STYLE.md rule 2)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "molam_ros"
ROS_ONLY = ("rclpy", "molam_msgs", "std_msgs", "sensor_msgs", "geometry_msgs", "trajectory_msgs",
            "visualization_msgs", "diagnostic_msgs", "builtin_interfaces", "rcl_interfaces", "launch",
            "launch_ros")  # fmt: skip


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_core_does_not_import_ros() -> None:
    offenders = []
    for path in PKG.rglob("*.py"):
        if path.relative_to(PKG).parts[0] == "ros":
            continue
        bad = _imported_roots(path) & set(ROS_ONLY)
        if bad:
            offenders.append(f"{path.relative_to(PKG.parent)} imports {sorted(bad)}")
    assert not offenders, "ROS imports outside molam_ros/ros/:\n" + "\n".join(offenders)


def test_scanner_sees_imports(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("import rclpy.node\nfrom std_msgs.msg import String\n")
    assert {"rclpy", "std_msgs"} <= _imported_roots(probe)
