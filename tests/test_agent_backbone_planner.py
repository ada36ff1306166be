"""The local backbone planner: prompt, greedy generation that stops at the JSON's end, validation.

A tiny random backbone checks the plumbing (it writes garbage, so PlanError is the right answer);
the embedded SmolLM2, when it has been converted into the cache, runs once in a slow test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from molam_ros.agent.backbone_planner import BackbonePlanner, _json_closed
from molam_ros.agent.memory import PlanContext
from molam_ros.agent.plan import Plan, PlanError
from molam_ros.paths import cache_root

PLAN = {"reply": "Waving.", "steps": [{"id": "s1", "kind": "generate", "text": "wave"}]}


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from molam_ros.llm.backbone import make_tiny_backbone

    return make_tiny_backbone(tmp_path_factory.mktemp("planner_backbone"))


@pytest.mark.parametrize(
    ("text", "closed"),
    [
        ('{"a": 1}', True),
        ('prose {"a": {"b": 2}} more', True),
        ('{"a": "}"', False),  # a brace inside a string does not close
        ('{"a": "\\"}"}', True),
        ('{"a": {"b": 2}', False),
        ("no json } at all", False),
        ("", False),
    ],
)
def test_json_closed(text: str, closed: bool) -> None:
    assert _json_closed(text) is closed


class _Canned(BackbonePlanner):
    """The planner with the model replaced by a fixed answer, to test what happens around it."""

    def __init__(self, answer: str) -> None:
        super().__init__("/unused")
        self.answer, self.seen = answer, []

    def generate(self, messages: list[dict[str, str]]) -> str:
        self.seen.append(messages)
        return self.answer


def test_answer_is_repaired_and_validated() -> None:
    planner = _Canned("Here you go: ```json\n" + json.dumps(PLAN) + "\n```")
    plan = planner.plan("wave", PlanContext(live=True, history="user: 'hi'"))
    assert isinstance(plan, Plan) and plan.kinds() == ["generate"]
    (messages,) = planner.seen
    assert '"$defs"' not in messages[0]["content"]  # no schema for a small model: examples instead
    assert '"history"' not in messages[-1]["content"]  # history off by default
    assert json.loads(messages[-1]["content"].split("\n", 1)[1])["live"] is True


def test_invalid_answers_are_plan_errors() -> None:
    with pytest.raises(PlanError):
        _Canned('{"steps": [{"id": "s1", "kind": "dance", "text": "x"}]}').plan("wave")
    with pytest.raises(PlanError):
        _Canned("I would wave.").plan("wave")


def test_missing_backbone_dir_says_so(tmp_path: Path) -> None:
    from molam_ros.llm.backbone import BackboneError

    with pytest.raises(BackboneError, match="not an existing directory"):
        BackbonePlanner(tmp_path / "nope").plan("wave")
    with pytest.raises(ValueError, match="max_new_tokens"):
        BackbonePlanner(tmp_path, max_new_tokens=0)


def test_tiny_random_backbone_runs_and_its_garbage_is_a_plan_error(tiny_backbone: Path) -> None:
    planner = BackbonePlanner(tiny_backbone, max_new_tokens=24)
    with pytest.raises(PlanError):
        planner.plan("walk up to her, then wave", PlanContext(live=True))
    answer = planner.generate([{"role": "user", "content": "hi"}])
    assert isinstance(answer, str)  # decoded text of at most 24 new tokens
    assert len(planner._tokenizer(answer, add_special_tokens=False)["input_ids"]) <= 24


def test_generation_stops_when_the_json_closes(tiny_backbone: Path) -> None:
    from molam_ros.agent.backbone_planner import _stop_when_json_closes

    planner = BackbonePlanner(tiny_backbone)
    planner.load()
    tok = planner._tokenizer
    prompt = tok("prompt", return_tensors="pt")["input_ids"]
    stop = _stop_when_json_closes(tok, prompt.shape[1])
    import torch

    def ids(text: str) -> torch.Tensor:
        return torch.cat([prompt, tok(text, return_tensors="pt")["input_ids"]], dim=1)

    assert not stop(ids('{"a": {"b": 1}'), None).item()
    assert stop(ids('{"a": {"b": 1}}'), None).item()


_SMOLLM = cache_root() / "backbones" / "SmolLM2-135M-Instruct"


@pytest.mark.slow
@pytest.mark.skipif(not (_SMOLLM / "config.json").is_file(), reason="SmolLM2 not converted into the cache")
def test_default_smollm2_answers_with_a_plan_or_a_plan_error() -> None:
    planner = BackbonePlanner(max_new_tokens=120)
    answer = planner.generate(
        [
            {"role": "system", "content": "Answer with one JSON object."},
            {"role": "user", "content": 'Write {"ok": true}'},
        ]
    )
    # It wrote an object and generation stopped at the brace that closes it (greedy, so always).
    assert "{" in answer and answer.rstrip().endswith("}"), answer
    # Nothing invalid comes out: a plan that validates, or the schema's refusal of an answer that was
    # one whole JSON object (so the stop and the extraction worked). Measured: the 135M model writes
    # step kinds that do not exist ("invalid plan: steps.0.kind ..."), so only the schema stops it.
    try:
        plan = planner.plan("wave at them", PlanContext(live=False))
    except PlanError as e:
        assert str(e).startswith("invalid plan:"), e
    else:
        assert Plan.model_validate(plan.model_dump()) == plan
