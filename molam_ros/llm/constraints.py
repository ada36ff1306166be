"""The motion span grammar and constrained decoding: every generated motion span decodes.

`SpanGrammar` is the one definition of a motion span's layout (written by
`MotionVocab.codes_to_token_ids`, described in vocab.py): `parse_span` reads a span back into codes
with it, `find_spans` finds the spans of an answer, and the decoding constraint below only lets
through what it accepts. The grammar and the constraint are one contract, which is why they share
this module (a little over 500 lines).

`MotionSpanConstraint` is a transformers `LogitsProcessor`: it sets the scores of every token the
span grammar (`SpanGrammar`) does not accept next to -inf, so greedy search, sampling and beam
search can only produce well-formed spans. Inside a span only the expected person marker, the codes
of the expected depth, or `</motion>` at a step boundary survive; outside a span, motion tokens are
suppressed (text answers) or only `<motion>` / EOS survive (motion answers).

`RealTimeBudget` is a `StoppingCriteria` with a wall-clock budget. Handed to the constraint too, it
turns into a soft deadline: once it expires, open spans close at their next step boundary (at most
2D + 2 tokens later) and the answer ends, so an answer cut by the budget still decodes whole.

    constraint = MotionSpanConstraint(vocab, mode="motion", persons=("a", "b"), max_steps=40,
                                      eos_token_id=tokenizer.eos_token_id)
    out = model.generate(ids, logits_processor=LogitsProcessorList([constraint]),
                         max_new_tokens=vocab.span_length(40) + 1, do_sample=True)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessor, StoppingCriteria

from molam_ros.llm.vocab import (
    MOTION_END,
    MOTION_START,
    PERSON_A,
    PERSON_B,
    MotionSequenceError,
    MotionVocab,
    as_codes,
)

MODES = ("motion", "text", "mixed")


# the span grammar


@dataclass(frozen=True)
class SpanState:
    """How far a span has got: `n` tokens after `<motion>`, and the people sets still possible.

    The people a span holds are not known until its first step (or header) is complete, so the
    state carries every candidate set that agrees with the tokens so far; feeding a token drops
    the candidates that did not expect it. Once `closed`, exactly one candidate is left.
    """

    n: int
    candidates: tuple[tuple[str, ...], ...]
    closed: bool = False


# One expected token: ("mark", person) or ("code", person, depth) or ("end",).
Slot = tuple


class SpanGrammar:
    """The layout of a motion span as a set of candidate templates (vocab.py's docstring).

    For people set P the span is `<motion>`, a header (P's markers, compact layout only), then
    steps of a fixed template, then `</motion>` at a step boundary. `allowed(state)` says what may
    come next as token-id ranges, `feed(state, tok)` advances or raises `MotionSequenceError`.
    `persons`, `max_steps` and `forced` narrow it for decoding (`MotionSpanConstraint`).
    """

    CANDIDATES: tuple[tuple[str, ...], ...] = (("a",), ("b",), ("a", "b"))

    def __init__(
        self,
        vocab: MotionVocab,
        *,
        persons: tuple[str, ...] | None = None,
        min_steps: int = 1,
        max_steps: int | None = None,
        forced: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.vocab = vocab
        self.ids = vocab.require_ids()
        self.K, self.D = vocab.codebook_size, vocab.depth
        self.persons = persons
        self.min_steps = min_steps
        self.max_steps = max_steps
        self.forced = forced or {}
        # Steps after which the span must end: max_steps, or fewer when forced codes run out first.
        lengths = [c.shape[0] for c in self.forced.values()]
        self._limit = min([*lengths, *([max_steps] if max_steps is not None else [])], default=None)
        self._templates = {c: self._template(c) for c in self.CANDIDATES}

    def _template(self, persons: tuple[str, ...]) -> tuple[list[Slot], list[Slot]]:
        """(header slots, step slots) for one people set."""
        header: list[Slot] = [] if self.vocab.step_markers else [("mark", p) for p in persons]
        step: list[Slot] = []
        for p in persons:
            if self.vocab.step_markers:
                step.append(("mark", p))
            step.extend(("code", p, d) for d in range(self.D))
        return header, step

    def start(self) -> SpanState:
        """The state right after `<motion>`."""
        cands = self.CANDIDATES if self.persons is None else (self.persons,)
        return SpanState(n=0, candidates=cands)

    def _expect(self, cand: tuple[str, ...], n: int) -> tuple[Slot | None, bool, int]:
        """For candidate `cand` after n tokens: (next slot or None when only the end may come,
        whether `</motion>` may come, whole steps so far)."""
        header, step = self._templates[cand]
        if n < len(header):
            return header[n], False, 0
        pos = n - len(header)
        steps, slot = divmod(pos, len(step))
        at_boundary = slot == 0
        if at_boundary and self._limit is not None and steps >= self._limit:
            return None, True, steps
        # Given (forced) codes fix the span's length: it may only end when they run out.
        may_end = at_boundary and steps >= self.min_steps and not self.forced
        return step[slot], may_end, steps

    def _slot_ranges(self, slot: Slot, steps: int) -> list[tuple[int, int]]:
        if slot[0] == "mark":
            i = self.ids.person(slot[1])
            return [(i, i + 1)]
        _, p, d = slot
        base = self.ids.code_base + d * self.K
        if p in self.forced:
            i = base + int(self.forced[p][steps, d])
            return [(i, i + 1)]
        return [(base, base + self.K)]

    def allowed(self, state: SpanState) -> list[tuple[int, int]]:
        """Token-id ranges [start, stop) that may come next; empty once closed."""
        if state.closed:
            return []
        out: list[tuple[int, int]] = []
        for cand in state.candidates:
            slot, may_end, steps = self._expect(cand, state.n)
            if slot is not None:
                out.extend(self._slot_ranges(slot, steps))
            if may_end:
                out.append((self.ids.motion_end, self.ids.motion_end + 1))
        return sorted(set(out))

    def feed(self, state: SpanState, tok: int) -> SpanState:
        """The state after token `tok`; `MotionSequenceError` if no candidate accepts it."""
        if state.closed:
            raise MotionSequenceError(f"{tok} after {MOTION_END}")
        keep, ended = [], False
        for cand in state.candidates:
            slot, may_end, steps = self._expect(cand, state.n)
            if tok == self.ids.motion_end and may_end:
                keep.append(cand)
                ended = True
            elif slot is not None and any(a <= tok < b for a, b in self._slot_ranges(slot, steps)):
                keep.append(cand)
        if not keep:
            raise MotionSequenceError(
                f"{self.describe(tok)} where {self._describe_expected(state)} was expected"
            )
        return SpanState(n=state.n + 1, candidates=tuple(keep), closed=ended)

    def steps(self, state: SpanState) -> int:
        """Whole steps so far; needs the people to be known (one candidate left)."""
        persons = self.resolved_persons(state)
        if persons is None:
            raise MotionSequenceError("the people of this span are not known yet (inside its first step)")
        header, step = self._templates[persons]
        n = state.n - int(state.closed)  # the closing token is not part of a step
        return max(0, (n - len(header)) // len(step))

    def resolved_persons(self, state: SpanState) -> tuple[str, ...] | None:
        """The people of the span once known from its tokens; None while still ambiguous."""
        if len(state.candidates) == 1:
            return state.candidates[0]
        # Ambiguous only inside the first step; the largest candidate that has whole steps wins.
        return None

    def extract(
        self, seq: Sequence[int], persons: tuple[str, ...], steps: int
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Codes of the first `steps` whole steps of a span parsed as `persons` (seq[0] is `<motion>`)."""
        header, step = self._templates[persons]
        body = np.asarray(seq[1 + len(header) : 1 + len(header) + steps * len(step)], dtype=np.int64)
        body = body.reshape(steps, len(step))  # (L, tokens per step)
        out: dict[str, np.ndarray] = {}
        col = 0
        for p in persons:
            col += int(self.vocab.step_markers)
            out[p] = (body[:, col : col + self.D] - self.ids.code_base - np.arange(self.D) * self.K).astype(
                np.int64
            )
            col += self.D
        return out.get("a"), out.get("b")

    def describe(self, tok: int) -> str:
        names = {self.ids.motion_start: MOTION_START, self.ids.motion_end: MOTION_END}
        names.update({self.ids.person_a: PERSON_A, self.ids.person_b: PERSON_B})
        if tok in names:
            return names[tok]
        dk = self.vocab.code_of(tok)
        return f"code <m{dk[0]}_{dk[1]}>" if dk else f"non-motion token id {tok}"

    def _describe_expected(self, state: SpanState) -> str:
        parts = []
        for cand in state.candidates:
            slot, may_end, _ = self._expect(cand, state.n)
            if slot is not None and slot[0] == "mark":
                parts.append(PERSON_A if slot[1] == "a" else PERSON_B)
            elif slot is not None:
                parts.append(f"a depth-{slot[2]} code of person {slot[1]}")
            if may_end:
                parts.append(MOTION_END)
        return " or ".join(dict.fromkeys(parts)) or "nothing"


def parse_span(
    vocab: MotionVocab, token_ids: Sequence[int] | torch.Tensor | np.ndarray, *, partial: bool = False
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Parse exactly one span back into `(codes_a, codes_b)`, (L, D) int64 or None if absent.

    Raises `MotionSequenceError` naming the first bad token. With `partial=True` an unclosed
    span is accepted (a generation cut by a time budget) and truncated to its whole steps; it
    still needs at least one.
    """
    if isinstance(token_ids, torch.Tensor | np.ndarray):
        token_ids = [int(t) for t in token_ids.reshape(-1).tolist()]
    ids = vocab.require_ids()
    seq = list(token_ids)
    if not seq or seq[0] != ids.motion_start:
        raise MotionSequenceError(f"a motion span must start with {MOTION_START} (id {ids.motion_start})")
    grammar = SpanGrammar(vocab)
    state = grammar.start()
    for pos, tok in enumerate(seq[1:], start=1):
        if state.closed:
            raise MotionSequenceError(
                f"token {pos}: {grammar.describe(tok)} after {MOTION_END}; pass exactly one span"
            )
        try:
            state = grammar.feed(state, tok)
        except MotionSequenceError as e:
            raise MotionSequenceError(f"token {pos}: {e}") from None
    if not state.closed and not partial:
        raise MotionSequenceError(
            f"the span is not closed with {MOTION_END} (cut short? pass partial=True to keep its whole steps)"
        )
    persons = grammar.resolved_persons(state)
    steps = grammar.steps(state) if persons is not None else 0
    if persons is None or steps < 1:
        raise MotionSequenceError("the span holds no whole step")
    return grammar.extract(seq, persons, steps)


def find_spans(token_ids: Iterable[int], vocab: MotionVocab) -> list[tuple[int, int]]:
    """(start, stop) of every `<motion>`..`</motion>` in a generated answer, stop exclusive.

    An unclosed last span is returned up to the end of the ids (decode it with `partial=True`).
    """
    ids = vocab.require_ids()
    spans, start = [], None
    seq = list(token_ids)
    for i, tok in enumerate(seq):
        if tok == ids.motion_start and start is None:
            start = i
        elif tok == ids.motion_end and start is not None:
            spans.append((start, i + 1))
            start = None
    if start is not None:
        spans.append((start, len(seq)))
    return spans


# decoding: the time budget and the constraint


class RealTimeBudget(StoppingCriteria):
    """Stop generating once `hard_seconds` have passed since construction (or `restart()`).

    `seconds` is the soft budget that `MotionSpanConstraint(budget=...)` reads through `expired()`:
    after it, spans close at the next step boundary and answers end. `hard_seconds` (default: the
    same as `seconds`) is the backstop at which every row stops, closed or not; give it some slack
    over `seconds` (the time of 2D + 2 tokens) when the constraint shares the budget, so that spans
    get to close first. The clock starts at construction, so the prompt's forward pass counts.

    Args:
        seconds: soft budget in seconds, > 0.
        hard_seconds: hard stop in seconds, >= seconds; None for `seconds`.
        clock: a monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(
        self,
        seconds: float,
        *,
        hard_seconds: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(seconds, int | float) or not seconds > 0 or seconds == float("inf"):
            raise ValueError(f"RealTimeBudget: seconds must be a finite number > 0, got {seconds!r}")
        hard = seconds if hard_seconds is None else hard_seconds
        if not isinstance(hard, int | float) or not hard >= seconds:
            raise ValueError(
                f"RealTimeBudget: hard_seconds must be >= seconds ({seconds}), got {hard_seconds!r}; "
                f"leave it None to stop at the soft budget"
            )
        self.seconds = float(seconds)
        self.hard_seconds = float(hard)
        self.clock = clock
        self.start = clock()

    def restart(self) -> None:
        """Start the budget now (reuse one object across generate() calls)."""
        self.start = self.clock()

    def elapsed(self) -> float:
        return self.clock() - self.start

    def expired(self) -> bool:
        """The soft budget is spent."""
        return self.elapsed() >= self.seconds

    def __call__(self, input_ids: torch.LongTensor, scores: Any = None, **kwargs: Any) -> torch.BoolTensor:
        done = self.elapsed() >= self.hard_seconds
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def _last_index(row: list[int], token: int) -> int:
    """Position of the last `token` in `row`, -1 if absent (a C-speed scan from the end)."""
    try:
        return len(row) - 1 - row[::-1].index(token)
    except ValueError:
        return -1


class MotionSpanConstraint(LogitsProcessor):
    """Only lets through tokens that keep every motion span well formed (see module docstring).

    The state of each row (outside or inside a span, which people, which step and slot) is derived
    from the ids every call: the last `<motion>` / `</motion>` positions plus the first step of the
    open span, so it costs O(D) Python work per row and step whatever the span length, and stays
    right when beam search reorders rows. Person a's and b's tokens of a span follow
    `MotionVocab`'s layout; the rows' earlier tokens are trusted (they passed this constraint, or,
    for an open span in the prompt, were checked on the first call).

    Args:
        vocab: a bound `MotionVocab` (after `add_to` or `bind`).
        mode: "motion": the answer is one span: `<motion>` first, then the span, then EOS only;
            "text": no motion tokens at all; "mixed": free text, spans allowed anywhere (chat).
        eos_token_id: the end-of-turn id(s) (`tokenizer.eos_token_id`); needed for mode "motion",
            and for mixed/text when a `budget` is given (to end the answer when it expires).
        persons: the people of generated spans, ("a", "b"), ("a",) or ("b",); None lets the model
            choose with its first step.
        min_steps: whole steps before `</motion>` may come, >= 1.
        max_steps: steps after which a span must close, >= min_steps; bounds every span.
        forced: person -> (L, D) codes that are given, not sampled (reaction: {"a": partner codes});
            the span then has exactly L steps. Needs `persons` holding those people.
        budget: a `RealTimeBudget`; once `expired()`, spans close at their next step boundary.
        prompt_length: tokens of the prompt; None takes the length seen on the first call (so one
            constraint serves one generate() call unless `reset()`).

    Example:
        >>> constraint = MotionSpanConstraint(vocab, mode="mixed", eos_token_id=tok.eos_token_id)
        >>> model.generate(ids, logits_processor=LogitsProcessorList([constraint]), do_sample=True)
    """

    def __init__(
        self,
        vocab: MotionVocab,
        *,
        mode: str = "mixed",
        eos_token_id: int | Sequence[int] | None = None,
        persons: Sequence[str] | None = None,
        min_steps: int = 1,
        max_steps: int = 128,
        forced: dict[str, Any] | None = None,
        budget: RealTimeBudget | None = None,
        prompt_length: int | None = None,
    ) -> None:
        if not isinstance(vocab, MotionVocab):
            raise ValueError(f"vocab must be a MotionVocab, got {type(vocab).__name__}")
        if vocab.ids is None:
            raise ValueError(
                "vocab is not bound to a tokenizer: call vocab.add_to(tokenizer, model) or vocab.bind()"
            )
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        eos = (
            []
            if eos_token_id is None
            else [eos_token_id]
            if isinstance(eos_token_id, int)
            else list(eos_token_id)
        )
        if not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in eos):
            raise ValueError(f"eos_token_id must be an int >= 0 or a list of them, got {eos_token_id!r}")
        if not eos and (mode == "motion" or budget is not None):
            raise ValueError(
                "eos_token_id is needed for mode='motion' and with a budget (the answer must end after "
                "its span); pass tokenizer.eos_token_id"
            )
        if persons is not None:
            persons = tuple(persons)
            if persons not in SpanGrammar.CANDIDATES:
                raise ValueError(f"persons must be one of {SpanGrammar.CANDIDATES} or None, got {persons!r}")
        for name, value in (("min_steps", min_steps), ("max_steps", max_steps)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if max_steps < min_steps:
            raise ValueError(f"max_steps ({max_steps}) must be >= min_steps ({min_steps})")
        forced_codes: dict[str, np.ndarray] = {}
        for p, codes in (forced or {}).items():
            if persons is None or p not in persons:
                raise ValueError(
                    f"forced codes of person {p!r} need persons holding {p!r}, got persons={persons}"
                )
            arr = as_codes(codes, f"forced[{p!r}]", vocab.codebook_size, vocab.depth)
            if not min_steps <= arr.shape[0] <= max_steps:
                raise ValueError(
                    f"forced[{p!r}] has {arr.shape[0]} steps, outside [min_steps={min_steps}, "
                    f"max_steps={max_steps}]; raise max_steps or crop the codes"
                )
            forced_codes[p] = arr
        if len({c.shape[0] for c in forced_codes.values()}) > 1:
            raise ValueError("forced codes of both people must have the same number of steps")
        if mode == "text" and (persons is not None or forced_codes):
            raise ValueError("mode='text' generates no motion: persons and forced make no sense with it")
        if budget is not None and not isinstance(budget, RealTimeBudget):
            raise ValueError(f"budget must be a RealTimeBudget, got {type(budget).__name__}")
        if prompt_length is not None and (not isinstance(prompt_length, int) or prompt_length < 0):
            raise ValueError(f"prompt_length must be an int >= 0 or None, got {prompt_length!r}")

        self.vocab = vocab
        self.ids = vocab.ids
        self.mode = mode
        self.eos = eos
        self.budget = budget
        self.prompt_length = prompt_length
        self._auto_prompt_length = prompt_length is None
        self._checked = False  # an open span in the prompt is verified once, on the first call
        kw: dict[str, Any] = dict(persons=persons, min_steps=min_steps, forced=forced_codes)
        self.grammar = SpanGrammar(vocab, max_steps=max_steps, **kw)
        # The same grammar with the span ending as soon as it may: used once the budget has expired.
        self._closing = SpanGrammar(vocab, max_steps=min_steps, **kw)
        self._marker_ids = self.ids.markers()
        self._code_range = (self.ids.code_base, self.ids.code_base + vocab.depth * vocab.codebook_size)
        self._first_step = vocab.depth + 2  # tokens after <motion> that settle a span's people

    @classmethod
    def for_prompt(cls, prompt: Any, vocab: MotionVocab, **kwargs: Any) -> MotionSpanConstraint:
        """The constraint that a `prompts.Prompt` asks for (its answer kind, people, given codes)."""
        return cls(vocab, mode=prompt.answer, persons=prompt.persons, forced=prompt.forced or None, **kwargs)

    def reset(self) -> None:
        """Forget the prompt length taken from the last generate() call, to reuse this constraint."""
        if self._auto_prompt_length:
            self.prompt_length = None
        self._checked = False

    # --- state of one row

    def _span_state(self, grammar: SpanGrammar, row: list[int], start: int, check: bool) -> SpanState:
        """State of the span opened at `start`; with `check`, every token is verified (prompt spans)."""
        body = row[start + 1 :]
        state = grammar.start()
        head = body if check else body[: self._first_step]
        for tok in head:
            state = grammar.feed(state, tok)
        return SpanState(n=len(body), candidates=state.candidates)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        B, T = input_ids.shape
        V = scores.shape[1]
        if self._code_range[1] > V or max(self._marker_ids) >= V:
            raise ValueError(
                f"scores have {V} columns but motion token ids reach {self._code_range[1] - 1}: the model's "
                f"embeddings were not resized; call vocab.add_to(tokenizer, model)"
            )
        if self.prompt_length is None:
            self.prompt_length = T
        prompt_len = self.prompt_length
        expired = self.budget is not None and self.budget.expired()
        grammar = self._closing if expired else self.grammar
        rows = input_ids.tolist()

        # Built in numpy and applied with one masked_fill: per-row torch indexing costs far more
        # than the masking itself on a CPU (tens of small kernel launches per step).
        blocked = np.zeros((B, V), dtype=bool)
        for r, row in enumerate(rows):
            s, e = _last_index(row, self.ids.motion_start), _last_index(row, self.ids.motion_end)
            if s > e:  # inside a span
                check = not self._checked and s < prompt_len
                blocked[r] = True
                try:
                    # The state comes from the full grammar; the closing one (budget spent) only
                    # narrows what may come next, so a span longer than its limit still parses.
                    state = self._span_state(self.grammar, row, s, check)
                except MotionSequenceError as err:
                    if check:
                        raise ValueError(
                            f"row {r}: the prompt ends inside a malformed motion span: {err}"
                        ) from None
                    # Only a finished row, padded by generate() inside its span, gets here; its
                    # tokens are discarded. EOS keeps it (and any unforeseen case) from going on.
                    blocked[r, self.eos or [self.ids.motion_end]] = False
                    continue
                for a, b in grammar.allowed(state):
                    blocked[r, a:b] = False
                continue
            opened = s >= prompt_len  # a span was opened (and, here, closed) in this answer
            if self.mode == "motion":
                blocked[r] = True
                if opened or e >= prompt_len or expired:
                    blocked[r, self.eos] = False
                else:
                    blocked[r, self.ids.motion_start] = False
                continue
            if expired:  # end the answer: only EOS
                blocked[r] = True
                blocked[r, self.eos] = False
                continue
            blocked[r, self._marker_ids] = True
            blocked[r, self._code_range[0] : self._code_range[1]] = True
            if self.mode == "mixed":
                blocked[r, self.ids.motion_start] = False
        self._checked = True
        return scores.masked_fill(torch.from_numpy(blocked).to(scores.device), float("-inf"))
