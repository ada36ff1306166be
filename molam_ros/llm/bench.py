"""Speed of the backbone: conversion, reload, greedy tokens per second (the basis of `molam bench llm`).

    python -m molam_ros.llm.bench            # the default backbone, batch 1, fp32, this machine's CPU

Decoding speed is what decides whether a streaming reaction keeps up with 30 fps: at l = 4 frames
per step, real time needs 7.5 steps/s, i.e. 7.5 * D sampled tokens/s for the reactor alone.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from transformers import LogitsProcessorList

from molam_ros.llm.backbone import default_backbone_dir, load_backbone
from molam_ros.llm.constraints import MotionSpanConstraint
from molam_ros.llm.prompts import Task, build_prompt
from molam_ros.llm.vocab import MotionVocab


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


def main() -> None:  # pragma: no cover - a measurement, run by hand
    t0 = time.perf_counter()
    directory = default_backbone_dir()
    t1 = time.perf_counter()
    model, tok = load_backbone(directory)
    t2 = time.perf_counter()
    print(
        f"backbone dir ready in {t1 - t0:.1f} s, loaded in {t2 - t1:.2f} s, {torch.get_num_threads()} threads"
    )
    text = tok.apply_chat_template(
        [{"role": "user", "content": "Describe two people shaking hands."}], add_generation_prompt=True
    )["input_ids"]
    print(f"base vocab {len(tok)}: {greedy_tokens_per_second(model, text):.1f} tokens/s (text prompt)")
    vocab = MotionVocab()
    vocab.add_to(tok, model)
    print(f"resized vocab {len(tok)}: {greedy_tokens_per_second(model, text):.1f} tokens/s (text prompt)")
    prompt = build_prompt(Task.TEXT_TO_MOTION, tokenizer=tok, vocab=vocab, text="two people shake hands")
    constraint = MotionSpanConstraint.for_prompt(prompt, vocab, max_steps=100, eos_token_id=tok.eos_token_id)
    rate = greedy_tokens_per_second(model, prompt.input_ids, processors=[constraint])
    print(f"resized vocab + MotionSpanConstraint: {rate:.1f} tokens/s (text-to-motion prompt)")


if __name__ == "__main__":  # pragma: no cover
    main()
