"""The plan: what a coordinator may ask the motion-language model to do, as validated JSON.

A plan is the only thing that crosses from a planner (rules, the local backbone, or a remote
OpenAI-compatible model) to the executor, so it is deliberately narrow: six step kinds, each with a
text argument and references to earlier results, bounded in count and length. Anything else is
rejected with a reason (`PlanError`), never executed.

    {"reply": "Walking up, then shaking hands.",
     "steps": [
       {"id": "s1", "kind": "generate", "text": "one person walks up to the other", "seconds": 3},
       {"id": "s2", "kind": "generate", "text": "they shake hands", "seconds": 4},
       {"id": "s3", "kind": "compose", "inputs": ["s1", "s2"]}],
     "output": "s3"}

References (`inputs`) name an earlier step's id, `live` (the partner's live motion the robot is
reacting to) or `previous` (the motion result of the conversation's previous turn).

| kind     | text                 | inputs                          | result |
|----------|----------------------|---------------------------------|--------|
| generate | what to do (needed)  | none                            | motion |
| react    | how to react (opt.)  | one motion (often `live`)       | motion |
| caption  | none                 | one motion                      | text   |
| edit     | instruction (needed) | one motion                      | motion |
| reason   | question (needed)    | zero or more motions            | text   |
| compose  | none                 | two or more motions, in order   | motion |
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MAX_STEPS = 8
MAX_TEXT = 400
MAX_REPLY = 600
MIN_SECONDS, MAX_SECONDS = 0.5, 60.0
LIVE, PREVIOUS = "live", "previous"

StepKind = Literal["generate", "react", "caption", "edit", "reason", "compose"]
STEP_KINDS: tuple[str, ...] = ("generate", "react", "caption", "edit", "reason", "compose")
MOTION_KINDS = frozenset({"generate", "react", "edit", "compose"})
TEXT_KINDS = frozenset({"caption", "reason"})
_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")


class PlanError(ValueError):
    """A plan that cannot be executed, with the reason in the message."""


class Step(BaseModel):
    """One call to the motion-language model (see the table in the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID.pattern)
    kind: StepKind
    text: str | None = Field(default=None, max_length=MAX_TEXT)
    inputs: list[str] = Field(default_factory=list, max_length=MAX_STEPS)
    seconds: float | None = Field(default=None, ge=MIN_SECONDS, le=MAX_SECONDS)

    @property
    def makes_motion(self) -> bool:
        return self.kind in MOTION_KINDS

    @model_validator(mode="after")
    def _arguments_fit_the_kind(self) -> Step:
        k, n = self.kind, len(self.inputs)
        needs_text = k in {"generate", "edit", "reason"}
        if needs_text and not (self.text and self.text.strip()):
            raise ValueError(f"step {self.id} ({k}) needs a non-empty text")
        if k in {"caption", "compose"} and self.text:
            raise ValueError(f"step {self.id} ({k}) takes no text")
        expected = {"generate": (0, 0), "react": (1, 1), "caption": (1, 1), "edit": (1, 1)}
        expected |= {"reason": (0, MAX_STEPS), "compose": (2, MAX_STEPS)}
        lo, hi = expected[k]
        if not lo <= n <= hi:
            want = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise ValueError(f"step {self.id} ({k}) takes {want} inputs, got {n}")
        if self.seconds is not None and k not in {"generate", "react"}:
            raise ValueError(f"step {self.id} ({k}) takes no seconds")
        return self


class Plan(BaseModel):
    """A bounded, ordered list of steps; `output` names the step whose motion is the turn's motion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)
    reply: str | None = Field(default=None, max_length=MAX_REPLY)
    output: str | None = None

    @model_validator(mode="after")
    def _references_resolve(self) -> Plan:
        kinds: dict[str, str] = {}
        for step in self.steps:
            if step.id in kinds or step.id in {LIVE, PREVIOUS}:
                raise ValueError(f"step id {step.id!r} is used twice or is reserved")
            for ref in step.inputs:
                if ref in {LIVE, PREVIOUS}:
                    continue
                if ref not in kinds:
                    raise ValueError(f"step {step.id} refers to {ref!r}, which is not an earlier step")
                if kinds[ref] not in MOTION_KINDS:
                    raise ValueError(f"step {step.id} needs motion but {ref!r} ({kinds[ref]}) gives text")
            kinds[step.id] = step.kind
        if self.output is not None:
            if self.output not in kinds:
                raise ValueError(f"output {self.output!r} is not a step of the plan")
            if kinds[self.output] not in MOTION_KINDS:
                raise ValueError(f"output {self.output!r} ({kinds[self.output]}) gives no motion")
        return self

    @property
    def output_step(self) -> Step | None:
        """The step whose motion the turn returns: `output`, else the last motion step (or None)."""
        if self.output is not None:
            return next(s for s in self.steps if s.id == self.output)
        motion = [s for s in self.steps if s.makes_motion]
        return motion[-1] if motion else None

    def kinds(self) -> list[str]:
        return [s.kind for s in self.steps]


def _reason(err: ValidationError) -> str:
    """The first validation problem, in one line a user (and a log) can read."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {msg}" if where else msg


def parse_plan(data: str | bytes | dict[str, Any]) -> Plan:
    """A Plan from JSON text or a decoded object, or PlanError saying why not."""
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as e:
            raise PlanError(f"plan is not valid JSON: {e.msg} at position {e.pos}") from None
    if not isinstance(data, dict):
        raise PlanError(f"plan must be a JSON object, got {type(data).__name__}")
    try:
        return Plan.model_validate(data)
    except ValidationError as e:
        raise PlanError(f"invalid plan: {_reason(e)}") from None


def plan_json_schema() -> dict[str, Any]:
    """The JSON schema a remote planner is asked to follow (response_format json_schema)."""
    return Plan.model_json_schema()
