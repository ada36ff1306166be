"""`molam bench tokenizer`: per-step latency of every available tokenizer engine.

What is timed is what the live pipeline pays per person every l frames: one `encode_step` of l
incoming frames plus one `decode_step` of one step's codes, through the engine's public API
(checks and normalisation included). Each engine runs `repeats` rounds of `steps` steps after a
warm-up; the table gives the median and p99 over all steps and the ratio of each engine's median to
torch eager measured in the same run, plus the whole-sequence encode+decode of a 10 s clip.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from molam_ros.tokenizer.engines import BACKENDS, EngineConfig, TokenizerEngine, create_engine

FRAME_PERIOD_MS = 1000.0 / 30.0


@dataclass
class BenchRow:
    engine: str
    step_median_ms: float
    step_p99_ms: float
    whole_10s_median_ms: float
    ratio_to_torch: float = float("nan")  # torch median / this median: > 1 means faster than torch


def _time_engine(engine: TokenizerEngine, steps: int, warmup: int, repeats: int, seed: int = 0) -> BenchRow:
    rng = np.random.default_rng(seed)
    l = engine.stride
    frames = engine.stats.denormalize(rng.standard_normal((1, (steps + warmup) * l, engine.feature_dim)))
    frames = frames.astype(np.float32)
    times: list[float] = []
    for _ in range(repeats):
        enc, dec = engine.init_encoder_state(), engine.init_decoder_state()
        for k in range(steps + warmup):
            x = frames[:, k * l : (k + 1) * l]
            t0 = time.perf_counter()
            codes, enc = engine.encode_step(x, enc)
            _, dec = engine.decode_step(codes, dec)
            if k >= warmup:
                times.append((time.perf_counter() - t0) * 1e3)
    clip = frames[:, : 300 - 300 % l]
    whole = []
    for _ in range(max(5, repeats)):
        t0 = time.perf_counter()
        engine.decode(engine.encode(clip))
        whole.append((time.perf_counter() - t0) * 1e3)
    return BenchRow(
        engine=engine.name,
        step_median_ms=statistics.median(times),
        step_p99_ms=float(np.percentile(times, 99)),
        whole_10s_median_ms=statistics.median(whole),
    )


def bench_tokenizer(
    checkpoint: str | Path,
    export_dir: str | Path | None,
    *,
    backends: tuple[str, ...] = BACKENDS,
    steps: int = 300,
    warmup: int = 30,
    repeats: int = 3,
    threads: int = 1,
    torch_devices: tuple[str, ...] = (),
) -> tuple[list[BenchRow], list[str]]:
    """Rows for every backend that loads (torch on the CPU first, as the baseline), torch again on
    each of `torch_devices` ("cuda" where a GPU is lent), and why others did not load."""
    rows, skipped = [], []
    order = [("torch", "cpu"), *[(b, "cpu") for b in backends if b != "torch"]]
    order += [("torch", d) for d in torch_devices if d != "cpu"]
    for backend, device in order:
        config = EngineConfig(
            backend=backend,
            checkpoint=str(checkpoint),
            export_dir=str(export_dir) if export_dir else None,
            fallback=(),
            threads=threads,
            device=device,
        )
        try:
            engine = create_engine(config)
        except (RuntimeError, AssertionError) as e:  # torch raises AssertionError without CUDA
            skipped.append(f"{backend} on {device}: {str(e).splitlines()[-1].strip()}")
            continue
        row = _time_engine(engine, steps, warmup, repeats)
        if device != "cpu":
            row.engine = f"torch {device}"
        rows.append(row)
    torch_row = next((r for r in rows if r.engine == "torch"), None)
    for r in rows:
        if torch_row is not None:
            r.ratio_to_torch = torch_row.step_median_ms / r.step_median_ms
    return rows, skipped


def format_table(rows: list[BenchRow], skipped: list[str]) -> str:
    lines = [
        "tokenizer streaming step (encode l frames + decode one step, one person)",
        f"{'engine':<14}{'median ms':>11}{'p99 ms':>9}{'x torch':>9}{'10 s clip ms':>14}{'budget use':>12}",
    ]
    for r in rows:
        lines.append(
            f"{r.engine:<14}{r.step_median_ms:>11.3f}{r.step_p99_ms:>9.3f}{r.ratio_to_torch:>9.2f}"
            f"{r.whole_10s_median_ms:>14.2f}{r.step_median_ms / FRAME_PERIOD_MS:>11.1%}"
        )
    lines.append(
        "x torch: torch eager median / engine median (higher is faster); budget use: share of one 33 ms frame"
    )
    lines += [f"not measured: {s}" for s in skipped]
    return "\n".join(lines)
