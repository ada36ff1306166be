"""Text commands of the live reaction: their kinds, and the worker that answers off the step thread."""

from __future__ import annotations

import threading
import time

import pytest

from molam_ros.runtime.commands import (
    INSTRUCTION,
    PLAN,
    QUESTION,
    CommandWorker,
    classify_command,
    question_task,
)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("wave at them", INSTRUCTION),
        ("be more hesitant", INSTRUCTION),
        ("shake hands", INSTRUCTION),
        ("what is he doing?", QUESTION),
        ("Why did she step back", QUESTION),
        ("how should you answer?", QUESTION),
        ("is he angry?", QUESTION),
        ("walk up to her, shake her hand, then step back and wave", PLAN),
        ("be the goalkeeper for 60 seconds", PLAN),
    ],
)
def test_classify_command(text: str, kind: str) -> None:
    assert classify_command(text) == kind


def test_question_task() -> None:
    assert question_task("what is he doing?") == "motion_to_text"
    assert question_task("what happened?") == "motion_to_text"
    assert question_task("why did she step back?") == "reasoning"


def _wait(cond, seconds: float = 5.0) -> None:
    end = time.monotonic() + seconds
    while not cond() and time.monotonic() < end:
        time.sleep(0.01)


def test_worker_answers_in_order_and_survives_a_failing_handler() -> None:
    replies: list[str] = []

    def answer(text: str) -> str:
        if text == "boom":
            raise RuntimeError("model exploded")
        return f"answer to {text}"

    worker = CommandWorker({QUESTION: answer}, replies.append)
    try:
        for text in ("a?", "boom", "b?"):
            assert worker.submit(QUESTION, text) is None
        _wait(lambda: len(replies) == 3)
        assert replies[0] == "answer to a?" and replies[2] == "answer to b?"
        assert "RuntimeError: model exploded" in replies[1]
        assert worker.done == 2 and worker.failed == 1
        assert "no handler" in worker.submit(PLAN, "x then y")
    finally:
        worker.stop()


def test_worker_refuses_when_busy_instead_of_piling_up() -> None:
    release = threading.Event()
    replies: list[str] = []
    worker = CommandWorker({QUESTION: lambda t: release.wait(5) and t}, replies.append, max_pending=2)
    try:
        assert worker.submit(QUESTION, "1") is None
        _wait(lambda: worker.busy_since is not None)
        assert worker.submit(QUESTION, "2") is None and worker.submit(QUESTION, "3") is None
        why = worker.submit(QUESTION, "4")
        assert why is not None and why.startswith("busy")
        assert worker.pending == 3
        release.set()
        _wait(lambda: len(replies) == 3)
        assert replies == ["1", "2", "3"]
    finally:
        worker.stop()
