"""Conversation memory: what the coordinator remembers between turns, bounded however long the talk.

A turn keeps the request, the kinds of its plan's steps, the reply, and the handle of its motion
result: an opaque id the executor chose (the motion itself lives wherever the executor keeps it).
Only the last `max_turns` turns are kept verbatim; older ones are folded into a one-line-per-turn
summary, cut to `summary_chars` by dropping its oldest part, so a robot that talks all day holds a
fixed amount of text and every LLM planner prompt stays the same size.

`context(live=...)` is what planners see: whether a partner is live, whether there is a previous
motion to edit or ask about, and the history as text. `PlanContext` and the `Planner` protocol live
here because memory is what produces the context and every planner consumes it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from molam_ros.agent.plan import Plan

log = logging.getLogger(__name__)

_REQUEST_CHARS = 200  # a turn's request is kept (and shown to planners) up to this length


@dataclass(frozen=True)
class PlanContext:
    """What a planner needs to know besides the request itself."""

    live: bool = False  # a partner's live motion is streaming (`live` may be referenced)
    previous: bool = False  # the conversation has a motion result to refer back to (`previous`)
    history: str = ""  # earlier turns as short text, for LLM planners; the rules planner ignores it


class Planner(Protocol):
    """What every planner offers: a validated Plan for a request, or PlanError saying why not."""

    def plan(self, request: str, context: PlanContext | None = None) -> Plan: ...


@dataclass(frozen=True)
class Turn:
    """One exchange: the request, the kinds of the plan's steps, the reply, and the motion's handle."""

    request: str
    kinds: tuple[str, ...]
    reply: str
    handle: str | None  # opaque id of the turn's motion result; None when it made none

    def line(self) -> str:
        """The turn as one line of history text."""
        kinds = "+".join(self.kinds) if self.kinds else "no plan"
        motion = " -> motion" if self.handle is not None else ""
        return f"user: {self.request!r} [{kinds}{motion}] reply: {self.reply!r}"


class ConversationMemory:
    """The last `max_turns` turns verbatim, older ones folded into a bounded summary."""

    def __init__(self, max_turns: int = 8, summary_chars: int = 600) -> None:
        if max_turns < 1:
            raise ValueError(f"max_turns must be >= 1, got {max_turns}")
        if summary_chars < 0:
            raise ValueError(f"summary_chars must be >= 0, got {summary_chars}")
        self.max_turns = max_turns
        self.summary_chars = summary_chars
        self._turns: deque[Turn] = deque()
        self._summary = ""
        # Kept apart from the turns so that it survives folding: a question turn (no motion) between
        # a motion and "make that faster" must not lose the motion that "that" refers to.
        self._last_handle: str | None = None

    @property
    def turns(self) -> tuple[Turn, ...]:
        return tuple(self._turns)

    @property
    def summary(self) -> str:
        return self._summary

    def __len__(self) -> int:
        return len(self._turns)

    def record(
        self,
        request: str,
        plan: Plan | Sequence[str] | None,
        *,
        reply: str | None = None,
        handle: str | None = None,
    ) -> Turn:
        """Store one turn. `plan` may be the Plan, its kinds, or None (refused or failed).

        `reply` defaults to the plan's reply. Returns the stored Turn.
        """
        if isinstance(plan, Plan):
            kinds = tuple(plan.kinds())
            reply = plan.reply if reply is None else reply
        else:
            kinds = tuple(plan or ())
        text = " ".join(request.split())
        if len(text) > _REQUEST_CHARS:
            text = text[: _REQUEST_CHARS - 3] + "..."
        turn = Turn(request=text, kinds=kinds, reply=(reply or "").strip(), handle=handle)
        self._turns.append(turn)
        if handle is not None:
            self._last_handle = handle
        while len(self._turns) > self.max_turns:
            self._fold(self._turns.popleft())
        return turn

    def _fold(self, turn: Turn) -> None:
        """Append `turn` to the summary as one short line, then cut the summary from its oldest end."""
        if self.summary_chars == 0:
            return
        kinds = "+".join(turn.kinds) if turn.kinds else "no plan"
        line = f"{turn.request[:80]!r} ({kinds})"
        summary = f"{self._summary}; {line}" if self._summary else line
        if len(summary) > self.summary_chars:
            summary = "..." + summary[len(summary) - self.summary_chars + 3 :]
        self._summary = summary
        log.debug("folded a turn into the summary (%d chars)", len(self._summary))

    def previous_motion(self) -> str | None:
        """The handle of the most recent motion result: the last turn's, or the last one before it that
        made motion (a question turn in between does not hide it). None when there is none."""
        return self._last_handle

    def history_text(self) -> str:
        """The summary (if any) and the kept turns, one per line, oldest first."""
        lines = [f"earlier: {self._summary}"] if self._summary else []
        lines += [turn.line() for turn in self._turns]
        return "\n".join(lines)

    def context(self, live: bool = False) -> PlanContext:
        """The PlanContext for the next request; `live` says whether a partner is streaming now."""
        return PlanContext(live=live, previous=self._last_handle is not None, history=self.history_text())

    def clear(self) -> None:
        """Forget everything (a new conversation)."""
        self._turns.clear()
        self._summary = ""
        self._last_handle = None
