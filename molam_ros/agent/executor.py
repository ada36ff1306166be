"""Runs a validated Plan against the motion-language model: every step a real model call.

Each step's result is codes (motion, (P, L, D) on the tokenizer's grid) and/or text. Motion steps
are decoded to positions once, at the end of the step, and refined (the reactor kept at a plausible
distance, facing, out of the partner, feet on the floor: coordination/refine.py). `compose` joins
its inputs' codes, decodes them in one pass and smooths the joins (coordination/compose.py), which
is what makes a long request one smooth motion.

Durations: a generate step of `seconds` asks the model for that many steps (l = 4 frames each);
beyond one span (SamplingConfig.max_steps) it continues the motion with the prediction task, the
last `CONTEXT_STEPS` steps as context, until the length is reached (a minute of goalkeeping is
about 15 spans).

References: `live` is the partner's recent motion as the runtime saw it (a callable gives the
codes), `previous` the previous turn's output (the caller passes it in).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from molam_ros.agent.plan import LIVE, PREVIOUS, Plan, PlanError, Step

log = logging.getLogger(__name__)

FPS = 30.0
CONTEXT_STEPS = 16  # steps of a motion shown to the model when it continues or edits it


@dataclass
class StepResult:
    """What one step produced: motion codes and positions, or text."""

    kind: str
    codes: np.ndarray | None = None  # (P, L, D)
    positions: np.ndarray | None = None  # (P, L * l, 22, 3), canonical frame of the pair
    text: str | None = None
    seconds: float = 0.0

    @property
    def frames(self) -> int:
        return 0 if self.positions is None else int(self.positions.shape[1])


@dataclass
class TurnResult:
    """A plan's whole outcome: the reply to say, the output motion, every step's result."""

    plan: Plan
    reply: str
    output: StepResult | None
    steps: dict[str, StepResult] = field(default_factory=dict)
    seconds: float = 0.0


class PlanExecutor:
    """Executes plans with a `Generator` (llm/generate.py) and a `MotionCodec` (llm/motion_io.py)."""

    def __init__(
        self,
        generator: Any,
        codec: Any,
        *,
        live: Callable[[], np.ndarray | None] | None = None,
        refine: bool = True,
        smooth_frames: int = 5,
        describer: Callable[[np.ndarray], str] | None = None,
        text_to_pair: Callable[[str, int | None], np.ndarray] | None = None,
    ) -> None:
        self.generator = generator
        self.codec = codec
        self.live = live
        self.refine = refine
        self.smooth_frames = smooth_frames
        self.describer = describer  # (2, L, D) codes -> caption (llm/describer.py); None: the LLM
        # (caption, steps or None) -> (2, L, D) codes (llm/pair_generator.py); None: the LLM
        self.text_to_pair = text_to_pair
        self.stride = int(codec.stride)

    # --- references

    def _motion(self, ref: str, done: dict[str, StepResult], previous: StepResult | None) -> StepResult:
        if ref == PREVIOUS:
            if previous is None or previous.codes is None:
                raise PlanError("the plan refers to the previous motion, but there is none yet")
            return previous
        if ref == LIVE:
            codes = self.live() if self.live is not None else None
            if codes is None or len(codes) == 0:
                raise PlanError("the plan refers to the live partner, but nobody is being tracked")
            return StepResult("live", codes=np.asarray(codes)[None])  # person a only
        return done[ref]

    # --- model calls

    def _sampling(self, steps: int | None) -> Any:
        s = self.generator.sampling
        if steps is None:
            return s
        return dataclasses.replace(s, max_steps=steps, min_steps=max(1, min(steps, int(0.8 * steps))))

    def _call(self, task: str, *, steps: int | None = None, **kwargs: Any) -> Any:
        saved = self.generator.sampling
        self.generator.sampling = self._sampling(steps)
        try:
            return self.generator.run(task, **kwargs)
        finally:
            self.generator.sampling = saved

    def _steps_for(self, seconds: float | None) -> int | None:
        return None if seconds is None else max(2, int(round(seconds * FPS / self.stride)))

    def _generate(self, step: Step) -> np.ndarray:
        from molam_ros.llm.prompts import MotionCodes

        want = self._steps_for(step.seconds)
        if self.text_to_pair is not None:  # the actor generator writes any length in one pass
            return np.asarray(self.text_to_pair(step.text or "", want), dtype=np.int64)
        span = self.generator.sampling.max_steps
        first = self._call("text_to_motion", text=step.text, steps=min(want, span) if want else None)
        codes = _pair(first.motion)
        while want is not None and codes.shape[1] < want:
            context = codes[:, -CONTEXT_STEPS:]
            more = self._call(
                "prediction",
                motion=MotionCodes(a=context[0], b=context[1]),
                steps=min(want - codes.shape[1], span),
            )
            extra = _pair(more.motion)
            if extra.shape[1] == 0:
                break
            codes = np.concatenate([codes, extra], axis=1)
        return codes if want is None else codes[:, :want]

    def _react(self, step: Step, source: StepResult) -> np.ndarray:
        from molam_ros.llm.prompts import MotionCodes

        a = source.codes[0]
        if step.seconds is not None:
            a = a[: self._steps_for(step.seconds)]
        result = self._call("reaction", text=step.text, motion=MotionCodes(a=a))
        return _pair(result.motion)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        positions = self.codec.decode(codes)
        if self.refine and positions.shape[0] == 2:
            from molam_ros.coordination.refine import refine_reactor

            positions = refine_reactor(positions)
        return positions

    # --- the plan

    def run_step(self, step: Step, done: dict[str, StepResult], previous: StepResult | None) -> StepResult:
        """One step's result (the references must already be resolvable)."""
        from molam_ros.llm.prompts import MotionCodes

        t0 = time.perf_counter()
        inputs = [self._motion(ref, done, previous) for ref in step.inputs]
        kind = step.kind
        if kind == "generate":
            codes = self._generate(step)
        elif kind == "react":
            codes = self._react(step, inputs[0])
        elif kind == "edit":
            src = _pair_or_single(inputs[0].codes)
            codes = _pair(self._call("editing", text=step.text, motion=src).motion)
        elif kind == "compose":
            from molam_ros.coordination.compose import compose_codes, decode_composed

            pieces = [np.asarray(r.codes) for r in inputs]
            if len({p.shape[0] for p in pieces}) != 1:
                raise PlanError(f"step {step.id} (compose) joins motions of different numbers of people")
            positions = decode_composed(self.codec, pieces, smooth_frames=self.smooth_frames)
            if self.refine:
                from molam_ros.coordination.refine import refine_reactor

                positions = refine_reactor(positions)
            return StepResult(
                kind, codes=compose_codes(pieces), positions=positions, seconds=time.perf_counter() - t0
            )
        else:  # caption, reason: text about motion
            motion = inputs[0] if inputs else previous
            if motion is None and self.live is not None and self.live() is not None:
                motion = self._motion(LIVE, done, previous)
            if motion is None or motion.codes is None:
                raise PlanError(f"step {step.id} ({kind}) has no motion to talk about")
            mc: MotionCodes = _pair_or_single(motion.codes)
            if kind == "caption" and self.describer is not None and np.asarray(motion.codes).shape[0] == 2:
                text = self.describer(np.asarray(motion.codes))
            elif kind == "caption":
                text = self._call("motion_to_text", motion=mc).text
            else:
                text = self._call("reasoning", text=step.text, motion=mc).text
            return StepResult(kind, text=text or "", seconds=time.perf_counter() - t0)
        return StepResult(kind, codes=codes, positions=self._decode(codes), seconds=time.perf_counter() - t0)

    def run(self, plan: Plan, previous: StepResult | None = None) -> TurnResult:
        """Every step in order; the reply joins the plan's reply and the text steps' answers."""
        t0 = time.perf_counter()
        done: dict[str, StepResult] = {}
        for step in plan.steps:
            done[step.id] = self.run_step(step, done, previous)
            r = done[step.id]
            log.info("step %s (%s): %.1f s, %s", step.id, step.kind, r.seconds, _describe(r))
        out = plan.output_step
        texts = [done[s.id].text for s in plan.steps if done[s.id].text]
        reply = " ".join(t for t in [plan.reply or "", *texts] if t).strip()
        return TurnResult(
            plan=plan,
            reply=reply,
            output=done[out.id] if out is not None else None,
            steps=done,
            seconds=time.perf_counter() - t0,
        )


def _pair(motion: Any) -> np.ndarray:
    """(2, L, D) codes from a Result's MotionCodes (or an array), cut to the shorter person."""
    if isinstance(motion, np.ndarray):
        return motion
    a, b = motion.a, motion.b
    if a is None or b is None:
        only = a if a is not None else b
        return np.asarray(only)[None]
    n = min(len(a), len(b))
    return np.stack([np.asarray(a)[:n], np.asarray(b)[:n]])


def _pair_or_single(codes: np.ndarray) -> Any:
    """MotionCodes of a (P, L, D) array: both people when there are two, person a alone when one."""
    from molam_ros.llm.prompts import MotionCodes

    codes = np.asarray(codes)[:, -CONTEXT_STEPS * 3 :]
    return MotionCodes(a=codes[0], b=codes[1] if len(codes) > 1 else None)


def _describe(r: StepResult) -> str:
    if r.text is not None:
        return f"text {r.text[:60]!r}"
    return f"{r.frames / FPS:.1f} s of motion for {0 if r.positions is None else r.positions.shape[0]} people"
