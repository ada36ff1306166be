"""Shared pytest set-up: keep ROS 2 logs and DDS discovery inside the test run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _ros_isolation(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Logs to a temp dir, discovery limited to this machine, a domain id per test session.

    Several CI runs or developers on one machine must not hear each other's test topics.
    """
    os.environ.setdefault("ROS_LOG_DIR", str(tmp_path_factory.mktemp("ros_log")))
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def python_exe() -> str:
    return sys.executable
