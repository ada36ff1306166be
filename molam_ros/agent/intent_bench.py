"""How long the one path takes: loading the classifier, then the guard and classification per request.

    python -m molam_ros.agent.intent_bench [--cases tests/data/planner_requests.jsonl]

Prints the load time (torch, transformers and the packaged sentence encoder, the example bank
embedded) and, over every request of the case file (three rounds after a warm-up), the median, p90
and maximum of the wall time and of the classifying thread's CPU time per request.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m molam_ros.agent.intent_bench", description=__doc__)
    parser.add_argument("--cases", help="JSON-lines case file (default: the development set)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    from molam_ros.agent.planner_eval import load_cases

    t0 = time.perf_counter()
    from molam_ros.agent.intent import IntentClassifier
    from molam_ros.agent.memory import PlanContext

    classifier = IntentClassifier()
    classifier.classify("warm up")
    load = time.perf_counter() - t0
    cases = load_cases(args.cases)
    wall, cpu = [], []
    for _ in range(args.rounds):
        for case in cases:
            intent = classifier.classify(case.request, PlanContext(live=case.live, previous=case.previous))
            wall.append(intent.seconds * 1000)
            cpu.append(intent.cpu_seconds * 1000)

    def stats(xs: list[float]) -> str:
        xs = sorted(xs)
        p90 = xs[int(0.9 * (len(xs) - 1))]
        return f"median {statistics.median(xs):.1f} ms, p90 {p90:.1f} ms, max {xs[-1]:.1f} ms"

    print(f"load (imports, encoder, example bank): {load:.2f} s")
    print(f"{len(wall)} classifications; wall: {stats(wall)}")
    print(f"{len(cpu)} classifications; cpu:  {stats(cpu)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
