"""`molam reactor bench`: what one live reaction step costs, per reactor and torch device.

One step is what the pipeline pays every l frames for one partner: the person's l new frames
through the tokenizer's streaming encoder, the small reactor's step (its window forward, its
prediction re-encoded to codes) and the streaming decoder on the reactor's codes. The tokenizer and
the reactor run on the same device; the first reactor on the first device listed is the baseline
the ratios refer to, measured in the same run (several reactors: the small reactor and the LLM
reactor, llm/reactor_trunk.py, side by side). Each runs `repeats` rounds of `steps` steps after a
warm-up, and the table gives the median of the rounds' medians, the p99 over all steps and the ratio.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

FRAME_PERIOD_MS = 1000.0 / 30.0


def time_reactor_step(
    reactor_dir: str | Path,
    tokenizer: str | Path,
    device: str,
    *,
    steps: int = 200,
    warmup: int = 20,
    repeats: int = 5,
    threads: int = 1,
    seed: int = 0,
) -> dict[str, Any]:
    """Figures of one device (module docstring): median/p99 ms of a step, and the rounds' medians."""
    from molam_ros.llm.reactor_weights import load_small_reactor
    from molam_ros.llm.small_streaming import SmallStreamingReactor
    from molam_ros.tokenizer.engines import TorchEngine

    engine = TorchEngine(tokenizer, device=device, threads=threads)
    net, _ = load_small_reactor(reactor_dir)
    reactor = SmallStreamingReactor(net.to(device), engine)
    l = engine.stride
    rng = np.random.default_rng(seed)
    frames = engine.stats.denormalize(rng.standard_normal(((steps + warmup) * l, engine.feature_dim)))
    frames = frames.astype(np.float32)[None]
    rounds: list[float] = []
    every: list[float] = []
    for _ in range(repeats):
        reactor.reset()
        enc, dec = engine.init_encoder_state(), engine.init_decoder_state()
        times = []
        for k in range(steps + warmup):
            t0 = time.perf_counter()
            codes_a, enc = engine.encode_step(frames[:, k * l : (k + 1) * l], enc)
            codes_b = reactor.step(codes_a[0, 0])
            engine.decode_step(codes_b[None, None], dec)  # numpy out: the device has finished
            if k >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
        rounds.append(statistics.median(times))
        every += times
    return {
        "device": device,
        "median_ms": statistics.median(rounds),
        "p99_ms": float(np.percentile(every, 99)),
        "round_medians_ms": rounds,
    }


def bench_reactor(
    reactor_dirs: str | Path | list[str | Path], tokenizer: str | Path, devices: list[str], **kwargs: Any
) -> list[dict[str, Any]]:
    """One row per reactor and device (the first is the baseline of `ratio`: its median / this one's)."""
    dirs = [reactor_dirs] if isinstance(reactor_dirs, str | Path) else list(reactor_dirs)
    rows = [
        {"reactor": Path(r).name, **time_reactor_step(r, tokenizer, d, **kwargs)}
        for r in dirs
        for d in devices
    ]
    for r in rows:
        r["ratio"] = rows[0]["median_ms"] / r["median_ms"]
    return rows


def format_rows(rows: list[dict[str, Any]], name: str = "") -> str:
    base = f"x {rows[0].get('reactor', '')} {rows[0]['device']}".replace("  ", " ")
    lines = [
        f"reaction step {name} (encode the person's l frames, react, decode)",
        f"{'reactor':<16}{'device':<10}{'median ms':>11}{'p99 ms':>9}{base:>20}{'budget use':>12}",
    ]
    for r in rows:
        lines.append(
            f"{r.get('reactor', ''):<16}{r['device']:<10}{r['median_ms']:>11.2f}{r['p99_ms']:>9.2f}"
            f"{r['ratio']:>20.2f}{100 * r['median_ms'] / (4 * FRAME_PERIOD_MS):>11.1f}%"
        )
    lines.append("budget use: share of the 133 ms a 4-frame step lasts at 30 Hz")
    return "\n".join(lines)
