"""Check `ros2 launch molam_ros reaction.launch.py` for real: what parameters the launched node has.

Where the `ros2` command and launch/launch_ros exist (a ROS 2 install, or their sources installed
next to the PyPI wheels as docs/environment.md describes) and molam_ros is installed in the sourced
workspace, this launches the replay node in the ways issue 13 found broken and reads its parameters
back over its get_parameters service:
- params_file is applied last: `loop: false` in it beats the `loop` argument's default (true);
- under `namespace:=robot1` the node's own params file still applies, and params_file keyed `/**`
  or `/robot1/pose_replay_node` still wins;
- `reaction:=false` without `replay:=true` fails with a message instead of starting nothing.

    python scripts/check_ros2_launch.py [--ros2 PATH_TO_ros2]

Exit status 0 when every case holds. tests/test_bringup.py checks the same on the command lines
launch_ros builds, without launch installed; this script checks launch itself.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path


def launched_parameters(ros2: str, args: list[str], fqn: str, names: list[str]) -> tuple[list | None, str]:
    """Launch with `args`, read `names` from node `fqn`, stop the launch with SIGINT."""
    import rclpy
    from rcl_interfaces.srv import GetParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.parameter import parameter_value_to_python

    cmd = [ros2, "launch", "molam_ros", "reaction.launch.py", *args]
    # Background processes of a script ignore SIGINT unless the handler is restored (docs/environment.md).
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node(f"launch_check_{uuid.uuid4().hex[:6]}", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    client = node.create_client(GetParameters, f"{fqn}/get_parameters")
    got = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if client.wait_for_service(timeout_sec=0.5):
                future = client.call_async(GetParameters.Request(names=names))
                executor.spin_until_future_complete(future, timeout_sec=10)
                got = [parameter_value_to_python(v) for v in future.result().values]
                break
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out = proc.communicate(timeout=20)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
        executor.shutdown()
        node.destroy_node()
        rclpy.shutdown(context=context)
    return got, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ros2", default=shutil.which("ros2"), help="the ros2 command (default: on PATH)")
    args = parser.parse_args(argv)
    if not args.ros2:
        parser.error("no `ros2` command on PATH; give --ros2")
    tmp = Path(tempfile.mkdtemp(prefix="molam_launch_check_"))
    wildcard, namespaced = tmp / "wildcard.yaml", tmp / "namespaced.yaml"
    wildcard.write_text("/**:\n  ros__parameters:\n    loop: false\n    synth_seed: 5\n")
    namespaced.write_text(
        "/robot1/pose_replay_node:\n  ros__parameters:\n    loop: false\n    synth_seed: 6\n"
    )
    replay = ["replay:=true", "reaction:=false"]
    cases = [
        (replay, "/pose_replay_node", [True, 0]),
        ([*replay, f"params_file:={wildcard}"], "/pose_replay_node", [False, 5]),
        ([*replay, "namespace:=robot1", f"params_file:={wildcard}"], "/robot1/pose_replay_node", [False, 5]),
        (
            [*replay, "namespace:=robot1", f"params_file:={namespaced}"],
            "/robot1/pose_replay_node",
            [False, 6],
        ),
    ]
    failed = 0
    for launch_args, fqn, want in cases:
        start = time.monotonic()
        got, out = launched_parameters(args.ros2, launch_args, fqn, ["loop", "synth_seed"])
        ok = got == want
        failed += not ok
        print(
            f"{'ok  ' if ok else 'FAIL'} {' '.join(launch_args)}: {fqn} loop, synth_seed = {got} "
            f"(want {want}), {time.monotonic() - start:.1f} s",
            flush=True,
        )
        if not ok:
            print(out[-2000:])
    r = subprocess.run(
        [args.ros2, "launch", "molam_ros", "reaction.launch.py", "reaction:=false"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    text = (r.stdout + r.stderr).strip()
    ok = r.returncode != 0 and "no node is enabled" in text
    failed += not ok
    last = text.splitlines()[-1] if text else ""
    print(f"{'ok  ' if ok else 'FAIL'} reaction:=false: exit {r.returncode}: {last}")
    shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
