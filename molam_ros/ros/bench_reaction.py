"""`molam bench reaction`: the live reaction's latency and real-time factor, over real DDS.

Starts the bring-up node set (config/bringup.yaml: the replay node playing a clip in a loop, the
reaction node with the given models) as separate processes, listens to the reaction node's
diagnostics for `--seconds` (at least a minute for the figures the README quotes), and prints the
last report as a table: pose-to-trajectory latency (p50, p99; from the arrival of the pose that
released a step, and from its capture stamp), the real-time factor, the step time per stage, the
tokenizer engine, overruns and dropped poses. The nodes are stopped at the end.
"""

from __future__ import annotations

import signal
import subprocess
import time
import uuid
from collections.abc import Mapping
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from molam_ros.bringup import default_bringup_yaml, describe_nodes, stop_processes

ORDER = (
    "latency_ms_p50",
    "latency_ms_p99",
    "capture_latency_ms_p50",
    "capture_latency_ms_p99",
    "real_time_factor",
    "step_ms",
    "stage_ms_features",
    "stage_ms_encode",
    "stage_ms_llm",
    "stage_ms_decode",
    "stage_ms_retarget",
    "stage_ms_filter",
    "stage_ms_ik",
    "input_rate_hz",
    "reorder_window_ms",
    "collision_guarded",
    "steps",
    "overruns",
    "published",
    "engine",
    "watchdog",
    "mode",
)


def run_bench(args: Mapping[str, object], seconds: float, *, warmup: float = 60.0) -> dict[str, str]:
    """The reaction node's last diagnostics values after `seconds` of stream (bring-up `args`)."""
    specs = describe_nodes(default_bringup_yaml(), {**args, "replay": True, "reaction": True})
    topic = f"/bench_{uuid.uuid4().hex[:6]}/diagnostics"
    procs = []
    for spec in specs:
        cmd = spec.command()
        if spec.name == "reaction_node":
            cmd += ["-p", f"diagnostics_topic:={topic}"]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"bench_{uuid.uuid4().hex[:6]}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    reports: list[dict[str, str]] = []
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)

    def on_diag(msg: DiagnosticArray) -> None:
        reports.append({kv.key: kv.value for kv in msg.status[0].values})

    node.create_subscription(DiagnosticArray, topic, on_diag, qos)
    try:
        start = time.monotonic()
        # Wait for the node to load its models and to start stepping, then measure `seconds`.
        while time.monotonic() - start < warmup and not any(int(r.get("steps", 0)) > 0 for r in reports):
            executor.spin_once(timeout_sec=0.1)
            if any(p.poll() is not None for p in procs):
                errors = "".join(p.stderr.read() for p in procs if p.poll() is not None and p.stderr)
                raise RuntimeError(f"a node exited before the benchmark began:\n{errors[-2000:]}")
        if not any(int(r.get("steps", 0)) > 0 for r in reports):
            raise RuntimeError(f"the reaction node produced no step within {warmup:.0f} s")
        reports.clear()  # the latency windows restart with the measured period
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
        stop_processes({str(i): p for i, p in enumerate(procs)}, signal.SIGTERM)
    if not reports:
        raise RuntimeError("no diagnostics were received from the reaction node")
    return reports[-1]


def format_report(values: Mapping[str, Any], seconds: float) -> str:
    """A two-column markdown table, the main figures first."""
    lines = [
        f"{values.get('mode', 'reaction')} over DDS for {seconds:.0f} s (replay node -> reaction node)",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    keys = [k for k in ORDER if k in values] + sorted(k for k in values if k.startswith("dropped_"))
    lines += [f"| {k} | {values[k]} |" for k in keys]
    return "\n".join(lines)
