"""Speed of the motion-language model: `molam bench llm`.

What decides whether a streaming reaction keeps up with 30 fps: at l = 4 frames per token step, real
time needs 7.5 steps/s. Printed, for the model given (a trained checkpoint, or the default backbone
with fresh motion tokens and depth head: the speed does not depend on the weights):

- greedy `generate()` tokens per second at batch 1 (a text answer, and a constrained motion span);
- the streaming reaction step (StreamingReactor) with the depth head ("head": one backbone forward
  per step) and with the LM head writing code by code ("tokens": D + 1 forwards per step): median
  and p99 step latency over several runs, steps per second, and the real-time factor (seconds of
  reaction produced per second of wall time; >= 1 keeps up), and the ratio head / tokens measured
  in the same run;
- with `quantize="int8"`, the depth-head step again on an int8 copy of the model (llm/quantize.py),
  its ratio to float32 in the same run, and how far the two agree: greedy streams from the same
  partner codes, the share of reactor codes that are equal and the first step where they differ.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessorList

from molam_ros.llm.constraints import MotionSpanConstraint
from molam_ros.llm.model import MotionLM
from molam_ros.llm.prompts import Task, build_prompt
from molam_ros.llm.streaming import StreamingConfig, StreamingReactor

FPS = 30.0


def greedy_tokens_per_second(
    model: Any,
    input_ids: list[int],
    *,
    new_tokens: int = 64,
    processors: list[Any] | None = None,
    repeats: int = 2,
) -> float:
    """Best of `repeats` greedy generations of exactly `new_tokens` tokens at batch 1 (prefill included)."""
    ids = torch.tensor([input_ids])
    mask = torch.ones_like(ids)
    best = float("inf")
    for _ in range(repeats):
        for p in processors or []:
            p.reset()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=mask,
                do_sample=False,
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,  # EOS may not end the run early: equal work every time
                logits_processor=LogitsProcessorList(processors or []),
                pad_token_id=model.config.eos_token_id,
            )
        best = min(best, time.perf_counter() - t0)
        assert out.shape[1] == ids.shape[1] + new_tokens
    return new_tokens / best


def stream_latencies(mlm: MotionLM, config: StreamingConfig, steps: int, seed: int = 0) -> np.ndarray:
    """Seconds of each of `steps` streaming steps on random partner codes (the first, prefill, dropped)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, mlm.vocab.codebook_size, size=(steps + 1, mlm.vocab.depth))
    reactor = StreamingReactor(mlm, config)
    out = []
    for row in codes:
        reactor.step(row)
        out.append(reactor.last_step_seconds)
    return np.asarray(out[1:])


def bench(
    mlm: MotionLM, *, steps: int = 60, repeats: int = 3, stride: int = 4
) -> dict[str, dict[str, float]]:
    """Median / p99 step latency, steps/s and real-time factor of both streaming methods.

    The default StreamingConfig is used, so runs longer than its window include the evictions that
    keep the context bounded; `flat` is the median of the last quarter of the steps over the median
    of the first quarter (about 1.0 when the cost does not grow with the length of the stream).
    """
    results: dict[str, dict[str, float]] = {}
    for method in ("head", "tokens"):
        config = StreamingConfig(method=method)
        runs = [stream_latencies(mlm, config, steps, seed=r) for r in range(repeats)]
        lat = np.concatenate(runs)
        q = max(1, steps // 4)
        med = float(np.median(lat))
        results[method] = {
            "median_ms": med * 1e3,
            "p99_ms": float(np.percentile(lat, 99)) * 1e3,
            "steps_per_s": 1.0 / med,
            "rtf": (stride / FPS) / med,
            "flat": float(np.median([r[-q:] for r in runs]) / np.median([r[:q] for r in runs])),
        }
    return results


def greedy_stream(mlm: MotionLM, steps: int, seed: int) -> np.ndarray:
    """(steps, D) reactor codes of a greedy stream on random partner codes."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, mlm.vocab.codebook_size, size=(steps, mlm.vocab.depth))
    return StreamingReactor(mlm, StreamingConfig(method="head")).react(codes)


def quantized_comparison(
    mlm: MotionLM, quantized: MotionLM, *, steps: int, repeats: int, stride: int = 4
) -> dict[str, float]:
    """Step latency of both (same run) and the agreement of their greedy streams."""
    config = StreamingConfig(method="head")
    med = {}
    for name, model in (("float32", mlm), ("int8", quantized)):
        med[name] = float(np.median([stream_latencies(model, config, steps, seed=r) for r in range(repeats)]))
    equal, first = [], []
    for r in range(repeats):
        ref, q = greedy_stream(mlm, steps, r), greedy_stream(quantized, steps, r)
        same = (ref == q).all(axis=1)
        equal.append(float((ref == q).mean()))
        first.append(int(np.argmin(same)) if not same.all() else steps)
    return {
        "float32_ms": med["float32"] * 1e3,
        "int8_ms": med["int8"] * 1e3,
        "speedup": med["float32"] / med["int8"],
        "int8_rtf": (stride / FPS) / med["int8"],
        "codes_equal": float(np.mean(equal)),
        "first_difference": float(np.median(first)),
    }


def main(
    mlm: MotionLM, *, steps: int = 60, repeats: int = 3, stride: int = 4, quantize: str = "none"
) -> None:
    """Print the benchmark table (the body of `molam bench llm`)."""
    tok, vocab = mlm.tokenizer, mlm.vocab
    print(
        f"backbone {type(mlm.base_model()).__name__}, "
        f"{sum(p.numel() for p in mlm.lm.parameters()) / 1e6:.1f} M "
        f"parameters, vocab {len(tok)}, K={vocab.codebook_size} D={vocab.depth} l={stride}, "
        f"{torch.get_num_threads()} threads"
    )
    text = build_prompt(Task.TEXT_TO_MOTION, tokenizer=tok, vocab=vocab, text="two people shake hands")
    print(f"greedy generate(), text tokens: {greedy_tokens_per_second(mlm.lm, text.input_ids):.1f} tokens/s")
    constraint = MotionSpanConstraint.for_prompt(text, vocab, max_steps=100, eos_token_id=mlm.eos_token_id)
    rate = greedy_tokens_per_second(mlm.lm, text.input_ids, processors=[constraint])
    print(
        f"greedy generate() + MotionSpanConstraint: {rate:.1f} tokens/s "
        f"({rate / vocab.tokens_per_step(2):.2f} two-person steps/s)"
    )
    res = bench(mlm, steps=steps, repeats=repeats, stride=stride)
    print(
        f"\nstreaming reaction, {steps} steps x {repeats} runs (real time needs {FPS / stride:.1f} steps/s):"
    )
    print("| method | median ms/step | p99 ms/step | steps/s | real-time factor | last / first quarter |")
    print("|---|---|---|---|---|---|")
    for method, r in res.items():
        print(
            f"| {method} | {r['median_ms']:.1f} | {r['p99_ms']:.1f} | {r['steps_per_s']:.2f} "
            f"| {r['rtf']:.2f} | {r['flat']:.2f} |"
        )
    ratio = res["tokens"]["median_ms"] / res["head"]["median_ms"]
    print(f"depth head vs token by token, same run: {ratio:.2f}x faster per step")
    window = StreamingConfig()
    print(
        f"context: prompt + at most {window.window_steps} steps, "
        f"the oldest evicted down to {window.keep_steps}"
    )
    if quantize != "none":
        import copy

        from molam_ros.llm.quantize import quantize as quantize_model

        q = quantize_model(copy.deepcopy(mlm), quantize)
        c = quantized_comparison(mlm, q, steps=steps, repeats=repeats, stride=stride)
        print(f"\n{quantize} weights (llm/quantize.py), depth head, same run:")
        print("| weights | median ms/step | real-time factor |")
        print("|---|---|---|")
        print(f"| float32 | {c['float32_ms']:.1f} | {(stride / FPS) / (c['float32_ms'] / 1e3):.2f} |")
        print(f"| {quantize} | {c['int8_ms']:.1f} | {c['int8_rtf']:.2f} |")
        rate = greedy_tokens_per_second(q.lm, text.input_ids)
        print(f"greedy generate() with {quantize} weights, text tokens: {rate:.1f} tokens/s")
        print(
            f"{quantize} is {c['speedup']:.2f}x faster; greedy streams from the same partner codes: "
            f"{100 * c['codes_equal']:.1f} % of reactor codes equal, first difference at step "
            f"{c['first_difference']:.0f} of {steps} (median)"
        )
