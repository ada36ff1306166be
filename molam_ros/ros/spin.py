"""Running one node as a process: start-up errors as one line, spinning, and a clean stop.

Shared by every node's `main()`, so they all behave the same way under bring-up and launch.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor
from rclpy.node import Node

N = TypeVar("N", bound=Node)

# What a node's constructor raises for bad parameters, missing files or models: the node cannot
# start, and the user gets one clear log line and exit status 2 instead of a traceback.
STARTUP_ERRORS = (
    ValueError,
    FileNotFoundError,
    RuntimeError,
    InvalidParameterTypeException,
    InvalidParameterValueException,
)


def run_node(
    make: Callable[[], N],
    name: str,
    *,
    done: Callable[[N], bool] | None = None,
    args: list[str] | None = None,
    threads: int = 1,
) -> None:
    """rclpy.init, build the node with `make()`, spin until shutdown (or `done(node)`), clean up.

    threads > 1 spins a MultiThreadedExecutor, for nodes whose callback groups may run at once.
    """
    # Not `with rclpy.init(...)`: init returns a context manager only from rclpy 8 (Kilted,
    # ros2/rclpy#1298); on Humble and Jazzy it returns None and every node died at start-up.
    rclpy.init(args=args)
    try:
        try:
            node = make()
        except STARTUP_ERRORS as e:
            rclpy.logging.get_logger(name).fatal(str(e))
            sys.exit(2)
        executor = SingleThreadedExecutor() if threads <= 1 else MultiThreadedExecutor(num_threads=threads)
        executor.add_node(node)
        try:
            while rclpy.ok() and not (done is not None and done(node)):
                executor.spin_once(timeout_sec=0.1)
        except RuntimeError:
            # A signal shuts the context down asynchronously; landing while the executor builds
            # its wait set, that raises RCLError rather than ExternalShutdownException (a known
            # rclpy race, ros2/rclpy#398). Only with the context down is it a normal stop.
            if rclpy.ok():
                raise
        node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()  # what leaving the context manager did; a no-op after a signal's shutdown
