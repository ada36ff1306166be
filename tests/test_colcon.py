"""`colcon build` in ros2_ws/ builds molam_msgs and molam_ros the way a ROS 2 install would.

This is the proof that the workspace is real: colcon from PyPI, against the ROS 2 wheels in the
venv, into a throw-away base directory, then the installed packages are used from there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_colcon_builds_both_packages(tmp_path: Path) -> None:
    r = subprocess.run(
        ["bash", str(REPO / "scripts/colcon_build.sh"), str(tmp_path)],
        capture_output=True, text=True, timeout=900,
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
        f"export AMENT_PREFIX_PATH={REPO / '.venv'}; . {install / 'setup.sh'}; "
        "python -c 'import molam_msgs.msg, molam_ros; "
        "print(molam_msgs.msg.__file__); print(molam_ros.__file__)'"
        f" && {script} --help"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = f"{REPO / '.venv/bin'}:{env['PATH']}"
    r = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path
    )
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(str(install / "molam_msgs")), lines
    assert lines[1].startswith(str(install / "molam_ros")), lines
    assert "usage: molam" in r.stdout
