"""The package manifests and the installed entry points are what colcon, pip and ros2 expect."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[1]


def test_molam_ros_manifest_is_format3_ament_python() -> None:
    pkg = parse_package(REPO / "package.xml")
    pkg.validate()
    assert pkg.package_format == 3
    assert pkg.name == "molam_ros"
    assert [e.content for e in pkg.exports if e.tagname == "build_type"] == ["ament_python"]
    run_deps = {d.name for d in pkg.exec_depends}
    assert {"rclpy", "molam_msgs", "std_msgs", "trajectory_msgs", "sensor_msgs"} <= run_deps


def test_molam_msgs_manifest_is_an_interface_package() -> None:
    pkg = parse_package(REPO / "ros2_ws/src/molam_msgs/package.xml")
    pkg.validate()
    assert pkg.package_format == 3
    assert "rosidl_interface_packages" in [g.name for g in pkg.member_of_groups]
    assert {"std_msgs", "geometry_msgs"} <= {d.name for d in pkg.build_depends}


def test_workspace_links_both_packages() -> None:
    src = REPO / "ros2_ws/src"
    assert (src / "molam_ros").resolve() == REPO, "ros2_ws/src/molam_ros must point at the repository root"
    assert (src / "molam_msgs/CMakeLists.txt").is_file()


def test_ament_index_marker_and_versions_agree() -> None:
    assert (REPO / "resource/molam_ros").is_file()
    import molam_ros

    assert parse_package(REPO / "package.xml").version == molam_ros.__version__


def test_console_script_installed_and_helps() -> None:
    exe = shutil.which("molam", path=str(Path(sys.executable).parent))
    assert exe, "the molam console script is not installed in the venv (pip install -e .)"
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "data" in r.stdout
    for group in (["data", "--help"], ["data", "synth", "--help"], ["demo", "--help"]):
        r = subprocess.run([exe, *group], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
