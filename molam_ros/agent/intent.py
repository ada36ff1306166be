"""The one path every text to the robot takes: the guard, then one classifier.

    text -> guard (agent/guard.py: patterns over every reading of the text, then by meaning against
            attack and harmless prototypes with the planner's sentence encoder) -> refused, with the reason
         -> words check (no letters, another language) -> a clear reply, nothing planned
         -> the offline planner's understanding (rules + sentence encoder, agent/rules_planner.py)
              small talk  -> a short reply, no motion
              question    -> answered in text from the recent motion (caption or reasoning)
              instruction -> one motion step with no duration: the live reaction's instruction
              plan        -> several steps, a duration, an edit: the coordinator plans and runs it

Used by the live node's commands (agent/commands.py `CommandRouter`: the command topic and so
`molam say`), by the coordinator (`molam chat`, `molam plan` and the node's plans), so the same
sentence is the same kind everywhere and no text reaches a model without passing the guard first.
Classification is the rules plus, for clauses no rule recognises, one batch through the sentence
encoder: 0.1-30 ms on the 2-core development CPU (tests/test_agent_intent.py holds it under 50 ms).
"""

from __future__ import annotations

import re
import time
import unicodedata
from dataclasses import dataclass

from molam_ros.agent.guard import Refusal, check_request
from molam_ros.agent.memory import PlanContext
from molam_ros.agent.plan import Plan
from molam_ros.agent.rules_planner import RulesPlanner

INSTRUCTION, QUESTION, PLAN, SMALL_TALK = "instruction", "question", "plan", "small_talk"
REFUSED, UNCLEAR = "refused", "unclear"  # the guard said no; or there is nothing to plan and why
KINDS = (INSTRUCTION, QUESTION, PLAN, SMALL_TALK, REFUSED, UNCLEAR)
# However long a deployment lets commands be, a spoken request is never longer than this: the guard
# refuses longer text before any pattern runs over it (a 1 MB command costs a length check).
MAX_CHARS = 2000

# Words that English requests are made of but an English lexicon of open-class words does not list.
_FUNCTION_WORDS = frozenset(
    """
    a an the and or but if then than so to of in on at by for with from up down out off over under
    into onto about after before while when as i me my you your he him his she her it its we us our
    they them their this that these those what why how who where which is are was were be been do does
    did can could would should will shall may might must not no yes please ok okay hi hey hello thanks
    don't can't it's i'm you're let's lol haha wow yeah yep nope hmm oh
    """.split()
)


@dataclass(frozen=True)
class Intent:
    """What a text is and what to say at once (the acknowledgement, the answer or the reason)."""

    kind: str  # one of KINDS
    text: str  # the request, stripped
    reply: str  # what to say now
    plan: Plan | None = None  # the offline plan, for instructions, questions and plans
    refusal: Refusal | None = None
    task: str | None = None  # questions: motion_to_text (a caption) or reasoning
    seconds: float = 0.0  # time to classify (wall clock)
    cpu_seconds: float = 0.0  # of it, this thread's CPU time (what it costs, whatever else runs)


# helper functions


def _is_english_word(word: str) -> bool:
    if word in _FUNCTION_WORDS or len(word) <= 2:
        return True
    try:
        from lemminflect import getAllLemmas
    except ImportError:
        return True
    base = word.removesuffix("'s").removesuffix("n't")
    return bool(getAllLemmas(base)) or base.endswith(("ing", "ed", "ly", "s"))


def words_problem(text: str) -> str | None:
    """Why `text` cannot be read as an English request (no words, another language), else None."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return "I only understand requests in words; tell me in English what to do."
    latin = sum("LATIN" in unicodedata.name(c, "") for c in letters)
    if latin < 0.5 * len(letters):
        return "I only understand English requests; please say it in English."
    words = re.findall(r"[^\W\d_]+(?:'[^\W\d_]+)?", unicodedata.normalize("NFKC", text).casefold())
    if len(words) >= 2:
        known = sum(_is_english_word(w) for w in words)
        if known < 0.5 * len(words):
            return "I only understand English requests; please say it in English."
    return None


def question_task(plan: Plan) -> str:
    """The model task that answers a question plan: a caption for "what is he doing", else reasoning."""
    return "motion_to_text" if all(s.kind == "caption" for s in plan.steps) else "reasoning"


class IntentClassifier:
    """Guard, then one classification of a text (module docstring); never raises for user text."""

    def __init__(self, planner: RulesPlanner | None = None, *, max_chars: int = 400) -> None:
        self.planner = planner or RulesPlanner()
        self.max_chars = min(max_chars, MAX_CHARS)

    def classify(self, text: str, context: PlanContext | None = None) -> Intent:
        t0, c0 = time.perf_counter(), time.thread_time()
        intent = self._classify(text if isinstance(text, str) else "", context or PlanContext(live=True))
        timing = {"seconds": time.perf_counter() - t0, "cpu_seconds": time.thread_time() - c0}
        return Intent(**{**intent.__dict__, **timing})

    def _classify(self, text: str, context: PlanContext) -> Intent:
        meaning = self.planner.meaning  # None: no encoder (or, in the node, not loaded yet)
        encoder = meaning.encoder if meaning is not None else False  # the guard's check by meaning
        refusal = check_request(text, self.max_chars, semantic=encoder)
        stripped = text.strip()
        if refusal is not None:
            return Intent(REFUSED, stripped[:200], f"I can't do that: {refusal.reason}", refusal=refusal)
        problem = words_problem(stripped)
        if problem is not None:
            return Intent(UNCLEAR, stripped, problem)
        understood = self.planner.understand(stripped, context)
        if understood.small_talk:
            return Intent(SMALL_TALK, stripped, understood.reply)
        plan = understood.plan
        if plan is None:
            return Intent(UNCLEAR, stripped, f"I could not plan that: {understood.error}")
        kinds = plan.kinds()
        if all(k in {"caption", "reason"} for k in kinds):
            return Intent(QUESTION, stripped, "ok: let me look", plan=plan, task=question_task(plan))
        if len(plan.steps) == 1 and kinds[0] in {"generate", "react"} and plan.steps[0].seconds is None:
            return Intent(INSTRUCTION, stripped, f"ok: reacting with: {stripped}", plan=plan)
        return Intent(PLAN, stripped, f"ok: planning {' -> '.join(kinds)}", plan=plan)


_shared: IntentClassifier | None = None


def shared_classifier() -> IntentClassifier:
    """One classifier per process (the sentence encoder loads once)."""
    global _shared
    if _shared is None:
        _shared = IntentClassifier()
    return _shared
