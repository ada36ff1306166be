"""MotionSpanConstraint never lets an invalid motion token through; RealTimeBudget ends on time.

Fake scores (random logits, a hand-written sampling loop) cover every option quickly; the tiny
random backbone runs the constraint inside transformers' own `generate()`; the real SmolLM2 backbone
with a resized vocabulary (random new rows) is the slow end-to-end check.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import LogitsProcessorList, StoppingCriteriaList

from molam_ros.llm.backbone import load_backbone, make_tiny_backbone
from molam_ros.llm.constraints import (
    MotionSpanConstraint,
    RealTimeBudget,
    SpanGrammar,
    find_spans,
    parse_span,
)
from molam_ros.llm.prompts import MotionCodes, Task, build_prompt
from molam_ros.llm.vocab import MotionVocab

K, D = 8, 3


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple:
    model, tok = load_backbone(make_tiny_backbone(tmp_path_factory.mktemp("tiny")))
    vocab = MotionVocab(codebook_size=K, depth=D)
    vocab.add_to(tok, model)
    return model, tok, vocab


def _vocab(tok, step_markers: bool) -> MotionVocab:
    vocab = MotionVocab(codebook_size=K, depth=D, step_markers=step_markers)
    vocab.bind(tok)
    return vocab


def _sample(
    constraint: MotionSpanConstraint,
    prompt: list[int],
    V: int,
    *,
    rows: int = 16,
    steps: int = 80,
    eos: int,
    seed: int = 0,
    bias: dict[int, float] | None = None,
) -> list[list[int]]:
    """A sampling loop on random logits (temperature 1): what generate() does, minus the model."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor([prompt] * rows)
    done = torch.zeros(rows, dtype=torch.bool)
    for _ in range(steps):
        scores = torch.randn(rows, V, generator=gen) * 3
        for tok, b in (bias or {}).items():  # push the chance of rare tokens up, e.g. </motion>
            scores[:, tok] += b
        scores = constraint(ids, scores)
        assert torch.isfinite(scores).any(dim=1).all(), "a row had no allowed token"
        nxt = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=gen).squeeze(1)
        nxt = torch.where(done, torch.full_like(nxt, eos), nxt)  # generate() pads finished rows
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        done |= nxt == eos
        if done.all():
            break
    return [row[len(prompt) :] for row in ids.tolist()]


def _answer(row: list[int], eos: int) -> list[int]:
    return row[: row.index(eos)] if eos in row else row


@pytest.mark.parametrize("step_markers", [True, False])
@pytest.mark.parametrize("persons", [None, ("a", "b"), ("a",), ("b",)])
def test_motion_mode_always_decodes(tiny: tuple, step_markers: bool, persons: tuple | None) -> None:
    _, tok, _ = tiny
    vocab = _vocab(tok, step_markers)
    eos = tok.eos_token_id
    constraint = MotionSpanConstraint(vocab, mode="motion", persons=persons, max_steps=4, eos_token_id=eos)
    rows = _sample(constraint, [5, 6], len(tok), eos=eos, bias={vocab.ids.motion_end: 4.0})
    lengths = set()
    for row in rows:
        answer = _answer(row, eos)
        assert eos in row, "a motion answer ends after its span"
        assert find_spans(answer, vocab) == [(0, len(answer))], "exactly one span, nothing else"
        a, b = parse_span(vocab, answer)
        if persons is not None:
            assert (a is not None, b is not None) == ("a" in persons, "b" in persons)
        steps = (a if a is not None else b).shape[0]
        assert 1 <= steps <= 4
        lengths.add(steps)
    assert len(lengths) > 1  # the span length was sampled, not fixed


@pytest.mark.parametrize("step_markers", [True, False])
def test_forced_partner_codes(tiny: tuple, step_markers: bool) -> None:
    """Reaction: person a's codes are given; only person b's are sampled; the span has exactly L steps."""
    _, tok, _ = tiny
    vocab = _vocab(tok, step_markers)
    eos = tok.eos_token_id
    partner = np.random.default_rng(0).integers(0, K, (5, D))
    constraint = MotionSpanConstraint(
        vocab, mode="motion", persons=("a", "b"), forced={"a": partner}, eos_token_id=eos
    )
    rows = _sample(constraint, [5], len(tok), eos=eos, bias={vocab.ids.motion_end: 8.0})
    bs = []
    for row in rows:
        a, b = parse_span(vocab, _answer(row, eos))
        assert np.array_equal(a, partner) and b.shape == (5, D)
        bs.append(b)
    assert len({b.tobytes() for b in bs}) > 1


def test_text_and_mixed_modes(tiny: tuple) -> None:
    _, tok, vocab = tiny
    eos = tok.eos_token_id
    motion_ids = set(vocab.trainable_token_indices())
    text = MotionSpanConstraint(vocab, mode="text")
    for row in _sample(text, [5], len(tok), eos=eos, steps=30):
        assert not motion_ids & set(row)
    # Mixed: text and spans in any order; push <motion> up so that spans open often.
    mixed = MotionSpanConstraint(vocab, mode="mixed", max_steps=3)
    bias = {vocab.ids.motion_start: 6.0, vocab.ids.motion_end: 4.0}
    spans = 0
    for row in _sample(mixed, [5], len(tok), eos=eos, rows=12, steps=100, bias=bias):
        answer = _answer(row, eos)
        for start, stop in find_spans(answer, vocab):
            if answer[stop - 1] == vocab.ids.motion_end:
                parse_span(vocab, answer[start:stop])
                spans += 1
            else:  # cut by the end of the loop: a valid beginning of a span
                grammar = SpanGrammar(vocab)
                state = grammar.start()
                for tok_id in answer[start + 1 : stop]:
                    state = grammar.feed(state, tok_id)
        # Outside spans no code or marker other than <motion> appears.
        inside = {i for s, e in find_spans(answer, vocab) for i in range(s, e)}
        assert all(t not in motion_ids for i, t in enumerate(answer) if i not in inside)
    assert spans > 10


def test_prompt_ending_inside_a_span(tiny: tuple) -> None:
    """Streaming-style prompts that already hold part of the span are continued, and checked."""
    _, tok, vocab = tiny
    eos = tok.eos_token_id
    a, b = np.random.default_rng(1).integers(0, K, (2, 2, D))
    span = vocab.codes_to_token_ids(a, b)[:-1]  # two whole steps, open
    prefix = [5, 6, *span, vocab.ids.person_a]  # and the next step's marker
    constraint = MotionSpanConstraint(vocab, mode="motion", persons=("a", "b"), max_steps=3, eos_token_id=eos)
    for row in _sample(constraint, prefix, len(tok), eos=eos):
        ra, rb = parse_span(vocab, prefix[2:] + _answer(row, eos))
        assert ra.shape == (3, D) and np.array_equal(ra[:2], a) and np.array_equal(rb[:2], b)
    broken = [5, *span[:3], span[4], vocab.ids.person_a]  # a depth skipped inside the prompt
    constraint = MotionSpanConstraint(vocab, mode="motion", eos_token_id=eos)
    with pytest.raises(ValueError, match="prompt ends inside a malformed motion span"):
        constraint(torch.tensor([broken]), torch.zeros(1, len(tok)))


def test_argument_errors(tiny: tuple) -> None:
    _, tok, vocab = tiny
    eos = tok.eos_token_id
    cases = {
        "vocab is not bound": dict(vocab=MotionVocab(codebook_size=K, depth=D)),
        "mode must be one of": dict(mode="dance"),
        "eos_token_id is needed": dict(mode="motion"),
        "eos_token_id must be": dict(eos_token_id=-1),
        "persons must be one of": dict(persons=("b", "a")),
        "max_steps must be an int >= 1": dict(max_steps=0),
        r"max_steps \(2\) must be >= min_steps \(3\)": dict(min_steps=3, max_steps=2),
        "need persons holding 'a'": dict(forced={"a": np.zeros((2, D), int)}),
        "raise max_steps": dict(persons=("a", "b"), forced={"a": np.zeros((9, D), int)}, max_steps=8),
        r"shape \(L, D=3\)": dict(persons=("a", "b"), forced={"a": np.zeros((2, 2), int)}),
        "mode='text' generates no motion": dict(mode="text", persons=("a",)),
        "budget must be a RealTimeBudget": dict(budget=1.0, eos_token_id=eos),
    }
    for message, kwargs in cases.items():
        kwargs = {"vocab": vocab, **kwargs}
        with pytest.raises(ValueError, match=message):
            MotionSpanConstraint(kwargs.pop("vocab"), **kwargs)
    narrow = MotionSpanConstraint(vocab)
    with pytest.raises(ValueError, match="embeddings were not resized"):
        narrow(torch.tensor([[5]]), torch.zeros(1, 259))
    with pytest.raises(ValueError, match="seconds must be a finite number > 0"):
        RealTimeBudget(0)
    with pytest.raises(ValueError, match="hard_seconds must be >= seconds"):
        RealTimeBudget(2.0, hard_seconds=1.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_budget_stops_and_closes_spans(tiny: tuple) -> None:
    _, tok, vocab = tiny
    eos = tok.eos_token_id
    clock = _Clock()
    budget = RealTimeBudget(1.0, hard_seconds=2.0, clock=clock)
    ids = torch.tensor([[5, 6]])
    assert not budget(ids).any() and not budget.expired()
    clock.now = 1.0
    assert budget.expired() and not budget(ids).any()
    clock.now = 2.0
    assert budget(ids).all()
    budget.restart()
    assert not budget.expired()

    # Once the soft budget expires, an open span closes at its next step boundary, then EOS.
    constraint = MotionSpanConstraint(
        vocab, mode="motion", persons=("a", "b"), max_steps=50, eos_token_id=eos, budget=budget
    )
    row = [5]
    gen = torch.Generator().manual_seed(0)
    closed_at = None
    for i in range(200):
        if i == 30:
            clock.now += 1.5  # the soft budget runs out mid-generation
        logits = torch.randn(1, len(tok), generator=gen)
        logits[0, vocab.ids.motion_end] = -1e4  # the model never wants to stop: only the budget ends it
        scores = constraint(torch.tensor([row]), logits)
        row.append(int(torch.argmax(scores)))
        if row[-1] == vocab.ids.motion_end:
            closed_at = i
        if row[-1] == eos:
            break
    assert row[-1] == eos and closed_at is not None and 30 <= closed_at <= 30 + 2 * (D + 1)
    a, b = parse_span(vocab, row[1:-1])
    assert a.shape[0] >= 2


def test_inside_generate_with_tiny_backbone(tiny: tuple) -> None:
    """transformers' own sampling loop, batch of prompts, temperature 1.0: every answer decodes."""
    model, tok, vocab = tiny
    prompt = build_prompt(Task.TEXT_TO_MOTION, tokenizer=tok, vocab=vocab, text="two people hug")
    constraint = MotionSpanConstraint.for_prompt(prompt, vocab, max_steps=3, eos_token_id=tok.eos_token_id)
    out = model.generate(
        torch.tensor([prompt.input_ids]),
        attention_mask=torch.ones(1, len(prompt.input_ids), dtype=torch.long),
        logits_processor=LogitsProcessorList([constraint]),
        stopping_criteria=StoppingCriteriaList([RealTimeBudget(60.0)]),
        do_sample=True,
        temperature=1.0,
        num_return_sequences=24,
        max_new_tokens=vocab.span_length(3) + 1,
        pad_token_id=tok.pad_token_id,
    )
    for row in out[:, len(prompt.input_ids) :].tolist():
        a, b = parse_span(vocab, _answer(row, tok.eos_token_id))
        assert a.shape == b.shape and 1 <= a.shape[0] <= 3


@pytest.mark.slow
def test_real_backbone_sampled_generations_decode() -> None:
    """SmolLM2 with 2052 new random rows: 20 sampled generations (T = 1.0), reaction and text-to-motion."""
    from molam_ros.llm.backbone import default_backbone_dir

    model, tok = load_backbone(default_backbone_dir())
    vocab = MotionVocab(codebook_size=512, depth=4)
    vocab.add_to(tok, model)
    partner = np.random.default_rng(0).integers(0, 512, (2, 4))
    prompts = [
        build_prompt(Task.TEXT_TO_MOTION, tokenizer=tok, vocab=vocab, text="two people shake hands"),
        build_prompt(Task.REACTION, tokenizer=tok, vocab=vocab, motion=MotionCodes(a=partner)),
    ]
    decoded = 0
    for prompt in prompts:
        constraint = MotionSpanConstraint.for_prompt(
            prompt, vocab, max_steps=2, eos_token_id=tok.eos_token_id
        )
        out = model.generate(
            torch.tensor([prompt.input_ids]),
            attention_mask=torch.ones(1, len(prompt.input_ids), dtype=torch.long),
            logits_processor=LogitsProcessorList([constraint]),
            do_sample=True,
            temperature=1.0,
            num_return_sequences=10,
            max_new_tokens=vocab.span_length(2) + 1,
            pad_token_id=tok.pad_token_id,
        )
        for row in out[:, len(prompt.input_ids) :].tolist():
            a, b = parse_span(vocab, _answer(row, tok.eos_token_id))
            assert a is not None and b is not None and 1 <= a.shape[0] <= 2
            if prompt.forced:
                assert np.array_equal(a, partner)
            decoded += 1
    assert decoded == 20


def test_tiny_dir_has_no_gguf(tmp_path: Path) -> None:
    assert not list(make_tiny_backbone(tmp_path).glob("*.gguf"))
