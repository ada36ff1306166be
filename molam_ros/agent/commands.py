"""Text commands of the live reaction: the one path they take, and a worker that answers off the step.

Every command goes through `CommandRouter.handle`: the guard and the one classifier of
agent/intent.py (the same as `molam chat` and `molam plan` use), then:

- refused, unclear (no words, another language, nothing to plan) or small talk: a reply at once,
  nothing reaches a model and nothing moves;
- an instruction ("be friendly", "wave back", "do a cartwheel"): it becomes the reaction's standing
  instruction and takes effect before the next step (ReactionPipeline.command);
- a question ("what is he doing?", "why did she step back?"): answered in text from the last
  seconds of both people's motion (motion-to-text, or reasoning for other questions), on the reply
  topic;
- a plan (several actions, a duration, an edit of the last motion): handed to the coordinator
  (molam_ros/agent), when one is configured; otherwise it becomes the instruction.

Each command is acknowledged at once ("ok: ...", "refused: ..."), within the 50 ms of a classified
command. Answers and plans take a second or more on a CPU, longer than a step (133 ms), so they
run on one worker thread: the live reaction keeps stepping while the model writes the answer. The
worker holds a short queue; when it is full a command is refused with "busy" instead of piling up.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

INSTRUCTION, QUESTION, PLAN = "instruction", "question", "plan"


def question_task(question: str) -> str:
    """The model task that answers a question: a caption for "what is happening", else reasoning
    (decided by the one classifier, agent/intent.py)."""
    from molam_ros.agent.intent import QUESTION as ASKED
    from molam_ros.agent.intent import shared_classifier

    intent = shared_classifier().classify(question)
    return intent.task if intent.kind == ASKED and intent.task else "reasoning"


@dataclass
class Job:
    kind: str
    text: str
    received: float


class CommandWorker:
    """One thread that runs slow command handlers in arrival order; results go to `reply`."""

    def __init__(
        self,
        handlers: dict[str, Callable[[str], str]],
        reply: Callable[[str], None],
        *,
        max_pending: int = 4,
    ) -> None:
        self.handlers = handlers
        self.reply = reply
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max_pending)
        self.done = 0
        self.failed = 0
        self.busy_since: float | None = None
        self.last_seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="molam-commands", daemon=True)
        self._thread.start()

    def submit(self, kind: str, text: str) -> str | None:
        """Queue a command; None when queued, else why not (no handler, or the queue is full)."""
        if kind not in self.handlers:
            return f"no handler for {kind} commands"
        try:
            self.jobs.put_nowait(Job(kind, text, time.monotonic()))
        except queue.Full:
            return f"busy: {self.jobs.qsize()} commands are waiting; try again in a moment"
        return None

    @property
    def pending(self) -> int:
        return self.jobs.qsize() + (1 if self.busy_since is not None else 0)

    def _run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.busy_since = time.monotonic()
            try:
                answer = self.handlers[job.kind](job.text)
                self.done += 1
            except Exception as e:  # noqa: BLE001 - a failed answer is reported, the worker goes on
                log.warning("%s command %r failed: %s: %s", job.kind, job.text[:80], type(e).__name__, e)
                answer = f"sorry, I could not answer that ({type(e).__name__}: {e})"
                self.failed += 1
            finally:
                self.last_seconds = time.monotonic() - self.busy_since
                self.busy_since = None
            try:
                self.reply(answer)
            except Exception as e:  # noqa: BLE001 - e.g. the node is shutting down
                log.warning("could not send a reply: %s", e)

    def stop(self, timeout: float = 5.0) -> None:
        """Finish the running job (queued ones are dropped) and end the thread."""
        while True:
            try:
                self.jobs.get_nowait()
            except queue.Empty:
                break
        self.jobs.put(None)
        self._thread.join(timeout)


class CommandRouter:
    """The one path of a live text command (module docstring): classify, reply at once, dispatch.

    `instruct(text or None)` sets (None: clears) the reaction's instruction and returns why not, or
    None; `worker` runs questions and plans; `reply` says something on the reply topic; `context()`
    tells the classifier whether a partner is live and a previous motion exists.
    """

    def __init__(
        self,
        classifier: Any,
        instruct: Callable[[str | None], str | None],
        worker: CommandWorker,
        reply: Callable[[str], None],
        *,
        plans: bool = True,
        context: Callable[[], Any] | None = None,
    ) -> None:
        self.classifier = classifier
        self.instruct = instruct
        self.worker = worker
        self.reply = reply
        self.plans = plans
        self.context = context
        self.counts: dict[str, int] = {}
        self.last_seconds = 0.0  # time to classify the last command

    def handle(self, text: str) -> Any:
        """Route one command; returns the Intent (None for an empty command, which clears the
        instruction). Never raises for what a user can send."""
        if not isinstance(text, str) or not text.strip():
            why = self.instruct(None)
            self.reply("ok: reacting freely" if why is None else f"refused: {why}")
            return None
        from molam_ros.agent import intent as kinds

        intent = self.classifier.classify(text, self.context() if self.context else None)
        self.last_seconds = intent.seconds
        self.counts[intent.kind] = self.counts.get(intent.kind, 0) + 1
        if intent.kind == kinds.REFUSED:
            self.reply(f"refused: {intent.refusal.reason if intent.refusal else intent.reply}")
        elif intent.kind in {kinds.UNCLEAR, kinds.SMALL_TALK}:
            self.reply(intent.reply)
        elif intent.kind == kinds.QUESTION:
            self._submit(QUESTION, intent.text, intent.reply)
        elif intent.kind == kinds.PLAN and self.plans:
            self._submit(PLAN, intent.text, intent.reply)
        else:
            why = self.instruct(intent.text)
            self.reply(f"ok: reacting with: {intent.text}" if why is None else f"refused: {why}")
        return intent

    def _submit(self, kind: str, text: str, ack: str) -> None:
        why = self.worker.submit(kind, text)
        self.reply(ack if why is None else f"refused: {why}")
