"""Text commands of the live reaction: which kind each is, and a worker that answers off the step.

A command is one of:
- an instruction ("be friendly", "wave back"): it becomes the reaction's standing instruction and
  takes effect before the next step (ReactionPipeline.command);
- a question ("what is he doing?", "why did she step back?"): answered in text from the last
  seconds of both people's motion (motion-to-text, or reasoning for other questions), on the reply
  topic;
- a request that needs a plan (several actions in sequence): handed to the coordinator
  (molam_ros/agent), when one is configured.

Answers and plans take a second or more on a CPU, longer than a step (133 ms), so they run on one
worker thread: the live reaction keeps stepping while the model writes the answer. The worker
holds a short queue; when it is full a command is refused with "busy" instead of piling up.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

INSTRUCTION, QUESTION, PLAN = "instruction", "question", "plan"
_QUESTION_START = re.compile(
    r"^(what|why|how|who|where|when|which|is|are|was|were|did|does|do|can|could|should|would|will)\b",
    re.IGNORECASE,
)
# Words that chain actions: a request that needs a plan of several steps.
_SEQUENCE = re.compile(
    r"\b(then|after that|afterwards|followed by|and finally|for \d+ (seconds?|minutes?))\b", re.IGNORECASE
)
_CAPTION = re.compile(r"\b(doing|happen(ed|ing|s)?|going on|describe)\b", re.IGNORECASE)


def classify_command(text: str) -> str:
    """INSTRUCTION, QUESTION or PLAN for a command (already stripped, non-empty)."""
    t = text.strip()
    if t.endswith("?") or _QUESTION_START.match(t):
        return QUESTION
    if _SEQUENCE.search(t):
        return PLAN
    return INSTRUCTION


def question_task(question: str) -> str:
    """The model task that answers a question: a caption for "what is happening", else reasoning."""
    return "motion_to_text" if _CAPTION.search(question) else "reasoning"


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
