"""The coordinator: one conversation turn from a user's sentence to a reply and a motion.

    request -> guard (refuse instructions to the system, secrets, code, oversized text)
            -> classifier (agent/intent.py: small talk gets a short reply and no plan; text that is
               not English words gets a clear reply)
            -> planner (rules | backbone | openai; config/coordinator.yaml) -> a validated Plan
            -> executor (every step a call to the motion-language model; compose + refine)
            -> memory (so "make that faster" finds "that")

Nothing here raises on bad input: a refusal, a plan the planner could not make, or a step that
failed becomes the turn's reply, with the reason, and the conversation goes on. The user's text
only ever reaches a planner as data (the guard runs first, and the plan is validated after).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from molam_ros.agent.config import CoordinatorConfig
from molam_ros.agent.executor import PlanExecutor, StepResult, TurnResult
from molam_ros.agent.guard import Refusal
from molam_ros.agent.intent import REFUSED, SMALL_TALK, UNCLEAR, Intent, IntentClassifier
from molam_ros.agent.memory import ConversationMemory, Planner
from molam_ros.agent.plan import Plan, PlanError
from molam_ros.agent.rules_planner import RulesPlanner

log = logging.getLogger(__name__)


@dataclass
class ChatTurn:
    """One turn as the user sees it, and what happened inside."""

    request: str
    reply: str
    plan: Plan | None = None
    result: TurnResult | None = None
    refusal: Refusal | None = None
    error: str | None = None
    seconds: float = 0.0
    intent: Intent | None = None

    @property
    def motion(self) -> StepResult | None:
        return None if self.result is None else self.result.output


def make_planner(config: CoordinatorConfig) -> Planner:
    """The planner the config names (the backbone loads lazily, on its first plan)."""
    if config.planner == "rules":
        return RulesPlanner()
    if config.planner == "backbone":
        from molam_ros.agent.backbone_planner import BackbonePlanner

        return BackbonePlanner(config.backbone.dir or None, max_new_tokens=config.backbone.max_new_tokens)
    from molam_ros.agent.openai_planner import OpenAIPlanner

    return OpenAIPlanner(config.openai)


class Coordinator:
    """Guard -> planner -> executor, with a bounded memory of earlier turns."""

    def __init__(
        self,
        config: CoordinatorConfig,
        executor: PlanExecutor | None,
        *,
        planner: Planner | None = None,
        live: Callable[[], bool] = lambda: False,
    ) -> None:
        """`executor` None plans without running (a dry run: the reply says what would happen)."""
        self.config = config
        self.executor = executor
        self.planner = planner or make_planner(config)
        self.classifier = IntentClassifier(
            self.planner if isinstance(self.planner, RulesPlanner) else None,
            max_chars=config.limits.max_request_chars,
        )
        self.live = live
        self.memory = ConversationMemory(config.memory.max_turns, config.memory.summary_chars)
        self._results: dict[str, StepResult] = {}  # motion results by memory handle
        self._turns = 0

    def handle(self, request: str) -> ChatTurn:
        """One turn; never raises for what a user can type (module docstring)."""
        t0 = time.perf_counter()
        turn = self._handle(request)
        turn.seconds = time.perf_counter() - t0
        log.info("turn %r -> %r (%.1f s)", request[:80], turn.reply[:120], turn.seconds)
        return turn

    def _handle(self, request: str) -> ChatTurn:
        context = self.memory.context(live=self.live())
        intent = self.classifier.classify(request, context)
        if intent.kind == REFUSED:
            self.memory.record(request[:200], None, reply=intent.reply)
            return ChatTurn(request, intent.reply, refusal=intent.refusal, intent=intent)
        if intent.kind in {SMALL_TALK, UNCLEAR}:
            self.memory.record(request[:200], None, reply=intent.reply)
            error = intent.reply if intent.kind == UNCLEAR else None
            return ChatTurn(request, intent.reply, error=error, intent=intent)
        try:
            # The rules planner's plan is the classifier's own; another planner plans the same text.
            plan = intent.plan if isinstance(self.planner, RulesPlanner) else None
            plan = plan or self.planner.plan(intent.text, context)
        except PlanError as e:
            reply = f"I could not plan that: {e}"
            self.memory.record(request, None, reply=reply)
            return ChatTurn(request, reply, error=str(e), intent=intent)
        if self.executor is None:
            reply = plan.reply or "Planned: " + ", ".join(plan.kinds())
            self.memory.record(request, plan, reply=reply)
            return ChatTurn(request, reply, plan=plan)
        previous = self._results.get(self.memory.previous_motion() or "")
        try:
            result = self.executor.run(plan, previous=previous)
        except (PlanError, ValueError) as e:
            reply = f"I could not do that: {e}"
            self.memory.record(request, plan, reply=reply)
            return ChatTurn(request, reply, plan=plan, error=str(e))
        handle = None
        if result.output is not None and result.output.codes is not None:
            self._turns += 1
            handle = f"turn{self._turns}"
            self._results[handle] = result.output
            # Only what memory can still refer to is kept (the last motion, however far back).
            keep = {t.handle for t in self.memory.turns} | {self.memory.previous_motion(), handle}
            self._results = {k: v for k, v in self._results.items() if k in keep}
        reply = result.reply or "Done."
        self.memory.record(request, plan, reply=reply, handle=handle)
        return ChatTurn(request, reply, plan=plan, result=result)


def build_coordinator(
    config: CoordinatorConfig,
    mlm: Any,
    codec: Any,
    *,
    live_codes: Callable[[], Any] | None = None,
    sampling: Any | None = None,
    describer: Callable[[Any], str] | None = None,
    text_to_pair: Callable[[str, int | None], Any] | None = None,
) -> Coordinator:
    """A coordinator whose executor runs on `mlm` and `codec` (the runtime's or the CLI's models);
    `describer` writes the captions of two-person motion where given (llm/describer.py), and
    `text_to_pair` the motion of generate steps (llm/pair_generator.py)."""
    from molam_ros.llm.generate import Generator

    generator = Generator(mlm, sampling=sampling)
    executor = PlanExecutor(generator, codec, live=live_codes, describer=describer, text_to_pair=text_to_pair)
    return Coordinator(config, executor, live=lambda: live_codes is not None and live_codes() is not None)


def robot_person(plan: Plan) -> int:
    """Which person of the plan's output motion the robot plays: the reactor (1) when the output is
    a reaction (or a composition of reactions only), else the actor (0): a request addresses the
    robot, and in generated two-person motion the one who acts first is person a."""
    step = plan.output_step
    if step is None:
        return 0
    by_id = {s.id: s for s in plan.steps}
    if step.kind == "compose":
        kinds = {by_id[i].kind for i in step.inputs if i in by_id}
        return 1 if kinds == {"react"} else 0
    return 1 if step.kind == "react" else 0
