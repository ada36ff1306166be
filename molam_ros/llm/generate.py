"""Generation with a `MotionLM`: text answers, motion answers (two ways), every task by name.

Motion answers can be written two ways, chosen by `method`:

- "head" (default): the step loop of this module. The backbone runs with a KV cache; at each person
  marker the depth head (depth_head.py) picks that person's D codes from one hidden state, and the
  codes are fed back as tokens with the next marker in one forward pass. A two-person step costs
  two backbone forwards, a reaction step (partner given) one. Whether the span goes on or ends is
  read from the LM head's logits after each step (`<person_a>` against `</motion>`).
- "tokens": transformers' `generate()` with `MotionSpanConstraint`: one forward per token, the LM
  head picks every code. 2D + 2 forwards per two-person step; kept as the reference and to measure
  the trade-off.

Text answers always use `generate()` with the constraint in "text" mode (no motion tokens).

    gen = Generator(load_motion_lm(ckpt))
    codes = gen.run(Task.TEXT_TO_MOTION, text="two people shake hands").motion
    caption = gen.run(Task.MOTION_TO_TEXT, motion=MotionCodes(a=ca, b=cb)).text
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from transformers import LogitsProcessorList

from molam_ros.llm.constraints import MotionSpanConstraint, find_spans, parse_span
from molam_ros.llm.depth_head import context_row, sample_logits
from molam_ros.llm.kv import KVRunner, SamplingConfig, code_tokens
from molam_ros.llm.model import MotionLM
from molam_ros.llm.prompts import MotionCodes, Prompt, PromptConfig, Task, Turn, build_prompt
from molam_ros.llm.streaming import StreamingConfig, StreamingReactor
from molam_ros.llm.vocab import MotionSequenceError, as_codes

METHODS = ("head", "tokens")


@dataclass
class Result:
    """What one generation produced: text, motion codes, or both (the raw answer ids too)."""

    task: Task
    text: str | None = None
    motion: MotionCodes | None = None
    token_ids: list[int] = field(default_factory=list)


# helper functions


def _continue_or_end(
    mlm: MotionLM,
    runner: KVRunner,
    hidden: torch.Tensor,
    next_marker: int,
    steps: int,
    sampling: SamplingConfig,
    gen: torch.Generator,
) -> bool:
    """Whether the span goes on after `steps` steps: `next_marker` against `</motion>` by the LM head."""
    if steps < sampling.min_steps:
        return True
    if steps >= sampling.max_steps:
        return False
    ids = mlm.vocab.ids
    logits = runner.logits(hidden[None])[0]
    pair = logits[[next_marker, ids.motion_end]][None]
    pick = sample_logits(pair, temperature=sampling.temperature, generator=gen)
    return int(pick[0]) == 0


def head_motion(
    mlm: MotionLM, prompt: Prompt, sampling: SamplingConfig | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A motion answer by the depth-head step loop (module docstring); returns (codes_a, codes_b).

    The prompt decides the people (text-to-motion: both; prediction/editing: those of the motion it
    refers to) and the given codes (reaction: person a's, the span then has as many steps).
    """
    sampling = sampling or SamplingConfig()
    gen = sampling.generator()
    ids = mlm.vocab.ids
    persons = prompt.persons or ("a", "b")
    forced = {p: np.asarray(c) for p, c in (prompt.forced or {}).items()}
    limit = min([c.shape[0] for c in forced.values()], default=sampling.max_steps)
    runner = KVRunner(mlm)
    out: dict[str, list[np.ndarray]] = {p: [] for p in persons}
    pending = list(prompt.input_ids) + [ids.motion_start]
    step = 0
    while True:
        for i, p in enumerate(persons):
            marker = ids.person(p)
            if p in forced:
                codes = forced[p][step]
                pending += [marker, *code_tokens(mlm, codes)]
                out[p].append(codes)
                continue
            hidden = runner.feed(pending + [marker])
            if i == 0 and step > 0 and not forced:
                # The hidden state before the marker decides whether there is another step at all.
                if not _continue_or_end(mlm, runner, hidden[-2], marker, step, sampling, gen):
                    return _stack(out, persons)
            # Context codes (depth_head.py): the codes right before this marker, and this person's
            # previous step.
            if i > 0:
                before = out[persons[i - 1]][step]
            else:
                before = out[persons[-1]][step - 1] if step > 0 else None
            previous = out[p][step - 1] if step > 0 else None
            context = context_row(before, previous, mlm.vocab.depth, mlm.vocab.codebook_size)
            codes = (
                mlm.head.sample(
                    hidden[-1:],
                    context=context.to(hidden.device),
                    temperature=sampling.temperature,
                    top_k=sampling.top_k,
                    generator=gen,
                )[0]
                .cpu()
                .numpy()
            )
            out[p].append(codes)
            pending = code_tokens(mlm, codes)
        step += 1
        if step >= limit:
            return _stack(out, persons)


def _stack(out: dict[str, list[np.ndarray]], persons: tuple[str, ...]) -> tuple[np.ndarray | None, ...]:
    arrays = {p: np.stack(out[p]).astype(np.int64) for p in persons}
    return arrays.get("a"), arrays.get("b")


def token_motion(
    mlm: MotionLM, prompt: Prompt, sampling: SamplingConfig | None = None
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """A motion answer by `generate()` + `MotionSpanConstraint`, token by token with the LM head."""
    sampling = sampling or SamplingConfig()
    vocab = mlm.vocab
    steps = sampling.max_steps
    if prompt.forced:
        steps = min(c.shape[0] for c in prompt.forced.values())
    constraint = MotionSpanConstraint.for_prompt(
        prompt,
        vocab,
        eos_token_id=mlm.eos_token_id,
        min_steps=min(sampling.min_steps, steps),
        max_steps=steps,
    )
    answer = _generate(mlm, prompt.input_ids, constraint, vocab.span_length(steps) + 1, sampling)
    spans = find_spans(answer, vocab)
    if not spans:
        raise MotionSequenceError("the model ended its answer without a motion span")
    start, stop = spans[0]
    return parse_span(vocab, answer[start:stop], partial=True)


def _generate(
    mlm: MotionLM,
    input_ids: list[int],
    constraint: MotionSpanConstraint,
    max_new: int,
    sampling: SamplingConfig,
) -> list[int]:
    torch.manual_seed(sampling.seed)
    x = torch.tensor([input_ids], dtype=torch.long, device=mlm.device)
    kwargs: dict[str, Any] = {"do_sample": sampling.temperature > 0}
    if sampling.temperature > 0:
        kwargs.update(temperature=sampling.temperature, top_k=sampling.top_k or None)
    with torch.inference_mode():
        out = mlm.lm.generate(
            input_ids=x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=max_new,
            logits_processor=LogitsProcessorList([constraint]),
            eos_token_id=mlm.eos_token_id,
            pad_token_id=mlm.eos_token_id,
            **kwargs,
        )
    answer = out[0, x.shape[1] :].tolist()
    if answer and answer[-1] == mlm.eos_token_id:
        answer = answer[:-1]
    return answer


def text_answer(mlm: MotionLM, prompt: Prompt, sampling: SamplingConfig | None = None) -> str:
    """A text answer (captions, reasoning): no motion tokens can be generated."""
    sampling = sampling or SamplingConfig()
    constraint = MotionSpanConstraint(mlm.vocab, mode="text", eos_token_id=mlm.eos_token_id)
    answer = _generate(mlm, prompt.input_ids, constraint, sampling.max_text_tokens, sampling)
    return mlm.tokenizer.decode(answer, skip_special_tokens=True).strip()


class Generator:
    """Every task by name over one `MotionLM`, keeping a conversation's earlier turns as context."""

    def __init__(
        self,
        mlm: MotionLM,
        *,
        method: str = "head",
        sampling: SamplingConfig | None = None,
        prompt_config: PromptConfig | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.mlm = mlm
        self.method = method
        self.sampling = sampling or SamplingConfig()
        self.prompt_config = prompt_config or PromptConfig()
        self.history: list[Turn] = []

    def reset(self) -> None:
        """Forget the conversation."""
        self.history = []

    def _react_from_start(self, motion: MotionCodes, text: str | None) -> Result:
        """A reaction whose reactor's first steps are given (`motion.b`, k <= L steps): the reactor's
        real starting pose and place, as a robot knows its own, instead of a guess."""
        v = self.mlm.vocab
        a = as_codes(motion.a, "person a's codes", v.codebook_size, v.depth)
        start = as_codes(motion.b, "person b's first codes", v.codebook_size, v.depth)[: len(a)]
        s = self.sampling
        # The live reaction's own context bounds: what this measures is what a robot would do.
        config = StreamingConfig(method=self.method, temperature=s.temperature, top_k=s.top_k, seed=s.seed)
        reactor = StreamingReactor(self.mlm, config, instruction=text, prompt_config=self.prompt_config)
        b = reactor.react(a, start_b=start)
        return Result(Task.REACTION, motion=MotionCodes(a=a, b=b))

    def run(
        self,
        task: Task | str,
        *,
        text: str | None = None,
        motion: MotionCodes | None = None,
        remember: bool = False,
    ) -> Result:
        """Generate the answer of one task; with `remember`, the turn joins the conversation context."""
        task = Task.parse(task)
        if task is Task.REACTION and motion is not None and motion.a is not None and motion.b is not None:
            return self._react_from_start(motion, text)
        if motion is not None:
            v = self.mlm.vocab
            motion = MotionCodes(
                *(
                    None if c is None else as_codes(c, f"person {p}'s codes", v.codebook_size, v.depth)
                    for p, c in (("a", motion.a), ("b", motion.b))
                )
            )
        turn = Turn(task=task, text=text, motion=motion)
        turns = [*self.history, turn]
        prompt = build_prompt(
            Task.CONVERSATION if len(turns) > 1 else task,
            tokenizer=self.mlm.tokenizer,
            vocab=self.mlm.vocab,
            config=self.prompt_config,
            **({"turns": turns} if len(turns) > 1 else {"text": text, "motion": motion}),
        )
        if prompt.answer == "text":
            result = Result(task, text=text_answer(self.mlm, prompt, self.sampling))
            answer: Any = result.text
        else:
            fn = head_motion if self.method == "head" else token_motion
            a, b = fn(self.mlm, prompt, self.sampling)
            if task is Task.REACTION:
                result = Result(task, motion=MotionCodes(a=motion.a, b=b))
                answer = MotionCodes(b=b)
            else:
                result = Result(task, motion=MotionCodes(a=a, b=b))
                answer = result.motion
        if remember and answer:  # an empty answer (a model that said nothing) cannot be context
            self.history.append(Turn(task=task, text=text, motion=motion, answer=answer))
        return result
