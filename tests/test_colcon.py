"""`colcon build` in ros2_ws/ builds molam_msgs and molam_ros the way a ROS 2 install would.

This is the proof that the workspace is real: colcon from PyPI, against the ROS 2 wheels in the
venv, into a throw-away base directory, then the installed packages are used from there.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _venv() -> Path:
    """The venv with the ROS 2 wheels and colcon: the checkout's, else the one running the tests."""
    venv = REPO / ".venv"
    return venv if (venv / "bin/colcon").exists() else Path(sys.executable).parents[1]


@pytest.mark.slow
def test_colcon_builds_both_packages(tmp_path: Path) -> None:
    r = subprocess.run(
        ["bash", str(REPO / "scripts/colcon_build.sh"), str(tmp_path)],
        capture_output=True, text=True, timeout=900, env={**os.environ, "MOLAM_VENV": str(_venv())},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for package in ("molam_msgs", "molam_ros"):
        assert f"Finished <<< {package}" in r.stdout, r.stdout[-3000:]
    install = tmp_path / "install"
    # ament_python conventions: the ament index marker, the manifest, data files, scripts in lib/<pkg>.
    share = install / "molam_ros/share"
    assert (share / "ament_index/resource_index/packages/molam_ros").is_file()
    assert (share / "molam_ros/package.xml").is_file()
    assert (share / "molam_ros/msg/PersonPose.msg").is_file()
    script = install / "molam_ros/lib/molam_ros/molam"
    assert script.is_file()
    # The interface package registered itself and generated Python code.
    assert (install / "molam_msgs/share/ament_index/resource_index/rosidl_interfaces/molam_msgs").is_file()
    # Use the installed packages exactly as `source install/setup.sh` would expose them.
    probe = (
        f"export AMENT_PREFIX_PATH={_venv()}; . {install / 'setup.sh'}; "
        "python -c 'import molam_msgs.msg, molam_ros; "
        "print(molam_msgs.msg.__file__); print(molam_ros.__file__)'"
        f" && {script} --help"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{_venv() / 'bin'}:{env['PATH']}"
    r = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(str(install / "molam_msgs")), lines
    assert lines[1].startswith(str(install / "molam_ros")), lines
    assert "usage: molam" in r.stdout


@pytest.mark.slow
def test_clone_in_a_workspace_src_builds_both_packages(tmp_path: Path) -> None:
    """How ROS users add a package: the clone at `<ws>/src/molam_ros`, then `colcon build` in `<ws>`.

    colcon crawls `<ws>` and stops at each package it finds, so it must find molam_msgs and
    molam_ros inside the clone (ros2_ws/src/...), each once, and the nodes must import their
    message from the workspace's install.
    """
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "molam_ros").symlink_to(REPO)  # the clone (a link: the working tree as it is)
    venv = _venv()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    env["AMENT_PREFIX_PATH"] = env["CMAKE_PREFIX_PATH"] = str(venv)
    build = [
        "colcon", "build", "--event-handlers", "console_direct+",
        "--cmake-args", f"-DPython3_EXECUTABLE={venv / 'bin/python'}", "-DBUILD_TESTING=OFF",
    ]  # fmt: skip
    r = subprocess.run(build, capture_output=True, text=True, timeout=900, cwd=ws, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    started = sorted(re.findall(r"^Starting >>> (\S+)", r.stdout, flags=re.M))
    assert started == ["molam_msgs", "molam_ros"], started  # each found once, nothing else
    assert sorted(p.name for p in (ws / "install").iterdir() if p.is_dir()) == ["molam_msgs", "molam_ros"]
    probe = (
        f". {ws / 'install/setup.sh'}; python -c 'import molam_msgs.msg, molam_ros; "
        "print(molam_msgs.msg.__file__); print(molam_ros.__file__)'"
        f" && {ws / 'install/molam_ros/lib/molam_ros/molam'} --help"
    )
    r = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(str(ws / "install/molam_msgs")), lines
    assert lines[1].startswith(str(ws / "install/molam_ros")), lines
    assert (ws / "install/molam_ros/share/molam_ros/launch/reaction.launch.py").is_file()
    assert (ws / "install/molam_ros/share/molam_ros/config/bringup.yaml").is_file()
