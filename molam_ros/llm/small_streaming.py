"""The small reactor played step by step: the actor's codes of a step in, the reactor's codes out.

Kept apart from the network (llm/small_reactor.py) so each reads in one sitting: this is the live
side, the instruction's checks, guidance and sampling, and the tokenizer's streaming encoder and
decoder around the network.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from typing import Any

import numpy as np
import torch

from molam_ros.llm.small_reactor import Embedder, SmallReactorNet

MAX_INSTRUCTION_CHARS = 1000  # the sentence encoder reads 64 tokens; anything longer is not an instruction


class SmallStreamingReactor:
    """Step-by-step reaction with the small reactor; the same calls as llm.streaming.StreamingReactor.

    `engine` is the tokenizer engine the reactor was trained with: its stats normalise features, its
    streaming encoder turns the predicted features into the codes this returns, and its streaming
    decoder turns given codes (a forced first step) into the features the model reads next. Each step
    re-runs the window of the last `context_steps` steps (no KV cache: at this size a full window
    costs about a millisecond, and positions always start at 0 as in training).
    """

    def __init__(
        self,
        net: SmallReactorNet,
        engine: Any,
        *,
        embed: Embedder | None = None,
        instruction: str | None = None,
        anchor_pull: float | None = None,
        guidance: float | None = None,
        partner_weight: float | None = None,
        temperature: float | None = None,
        plan_temperature: float = 0.0,
    ) -> None:
        """`anchor_pull`: the placement smoothing this reactor was measured with (its config.json's
        "anchor_pull", chosen on validation clips; ego.follow_anchor); None: the pipeline's.
        `guidance`: the instruction's guidance scale g (llm/small_reactor.py, "Guidance"; None or 1:
        none); it costs a second row in the same forward pass, only while an instruction is set.
        `partner_weight`: w of "Leading with the instruction" there (None or 1: none; w < 1 needs a
        reactor with `partner_null`).
        `temperature`: the starting noise of a sampled step's deviation (a reactor with a `flow`
        head; None: 1, 0: the flow's path from zero); a reactor without one regresses its step.
        `plan_temperature`: for a reactor with plans, how the plan of an instruction is chosen (0: the
        prior's most likely; above 0: a draw, its logits divided by it; llm/reaction_plan.py)."""
        if guidance is not None and not (np.isfinite(guidance) and guidance >= 0.0):
            raise ValueError(f"guidance must be a finite number >= 0, got {guidance!r}")
        self.guidance = 1.0 if guidance is None else float(guidance)
        self.partner_weight = 1.0 if partner_weight is None else float(partner_weight)
        self.temperature = 1.0 if temperature is None else float(temperature)
        if not (np.isfinite(self.temperature) and self.temperature >= 0.0):
            raise ValueError(f"temperature must be a finite number >= 0, got {temperature!r}")
        if not 0.0 <= self.partner_weight <= 1.0:
            raise ValueError(f"partner_weight must be in [0, 1], got {partner_weight!r}")
        if self.partner_weight != 1.0 and net.no_partner is None:
            raise ValueError("partner_weight needs a reactor trained with the partner hidden (partner_drop)")
        self.net = net.eval()
        self.device = next(net.parameters()).device  # where the caller put the net (cpu, cuda)
        self.anchor_pull = anchor_pull
        self.engine = engine
        self.embed = embed
        c = net.config
        if engine.depths != c.depth or engine.stride != c.stride or engine.feature_dim != c.feature_dim:
            raise ValueError(
                f"the small reactor reads D={c.depth}, l={c.stride}, F={c.feature_dim}; the tokenizer has "
                f"D={engine.depths}, l={engine.stride}, F={engine.feature_dim}: not trained together"
            )
        self.history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=c.context_steps)
        self.last_features: np.ndarray | None = None
        self._text: torch.Tensor | None = None
        self._plan: torch.Tensor | None = None
        self.plan_temperature = float(plan_temperature)
        self.reset()
        self.set_instruction(instruction)

    def reset(self) -> None:
        self.history.clear()
        self._a: deque[np.ndarray] = deque(maxlen=self.net.config.context_steps + 1)
        self._b: deque[np.ndarray] = deque(maxlen=self.net.config.context_steps + 1)  # normalised features
        self._enc = self.engine.init_encoder_state(1)
        self._dec = self.engine.init_decoder_state(1)

    def check_instruction(self, text: str | None) -> None:
        """ValueError saying why `text` cannot condition the reaction (None and "" always can)."""
        if not text:
            return
        if not isinstance(text, str):
            raise ValueError(f"an instruction is text, got {type(text).__name__}")
        if len(text) > MAX_INSTRUCTION_CHARS:
            raise ValueError(f"the instruction has {len(text)} characters; at most {MAX_INSTRUCTION_CHARS}")
        if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n" for ch in text):
            raise ValueError("the instruction contains control characters")
        if self.net.text is None:
            raise ValueError("this small reactor was trained without instructions; it reacts unprompted")
        if self.embed is None:
            raise ValueError("this small reactor was given no sentence encoder; instructions cannot reach it")

    def set_instruction(self, text: str | None) -> None:
        """Condition what follows on `text` (None or "": react unprompted)."""
        self.check_instruction(text)
        self.instruction = text or None  # what the node's diagnostics report, as for the LLM's reactor
        if not text or self.net.text is None or self.embed is None:
            self._text, self._plan = None, None
            return
        self._text = torch.as_tensor(np.asarray(self.embed([text]), dtype=np.float32)[:1]).to(self.device)
        if self.net.plan is not None:  # chosen once, held until the instruction changes
            with torch.no_grad():
                self._plan = self.net.plan.choose(self.net._text(self._text, 1), self.plan_temperature)

    @torch.no_grad()
    def step(self, codes_a: np.ndarray, codes_b: np.ndarray | None = None) -> np.ndarray:
        """The actor's (D,) codes of this step -> the reactor's (D,) codes (or `codes_b`, given)."""
        c = self.net.config
        a_now = np.asarray(codes_a, dtype=np.int64).reshape(-1)
        if a_now.shape != (c.depth,) or a_now.min() < 0 or a_now.max() >= c.codebook_size:
            raise ValueError(f"expected {c.depth} codes in [0, {c.codebook_size}), got {codes_a!r}")
        self._a.append(a_now)
        self.last_features = None
        if codes_b is not None:  # given: its features, as the decoder makes them, are what comes next
            given = np.asarray(codes_b, dtype=np.int64).reshape(1, 1, c.depth)
            raw, self._dec = self.engine.decode_step(given, self._dec)
            _, self._enc = self.engine.encode_step(raw, self._enc)
            self._b.append(self.engine.stats.normalize(raw[0]).reshape(-1).astype(np.float32))
            out = given[0, 0]
        else:
            n = min(len(self._a), c.context_steps)
            prev = [np.zeros(c.step_dim, np.float32)] * max(0, n - len(self._b)) + list(self._b)[-n:]
            a = torch.as_tensor(np.stack(list(self._a)[-n:]))[None].to(self.device)
            b = torch.as_tensor(np.stack(prev[-n:]))[None].to(self.device)
            pred = self._predict(a, b)
            raw = self.engine.stats.denormalize(pred.reshape(c.stride, c.feature_dim))[None].astype(
                np.float32
            )
            codes, self._enc = self.engine.encode_step(raw, self._enc)
            self._b.append(pred.astype(np.float32))
            self.last_features = raw[0]  # (l, F): what the codes approximate, for a caller that can use it
            out = codes[0, 0].astype(np.int64)
        self.history.append((a_now, out))
        return out.copy()

    def _predict(self, a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
        """The next step's normalised (l*F,) features, guided where an instruction is set."""
        g, w = self.guidance, self.partner_weight
        if self._text is None or (g == 1.0 and w == 1.0):
            if self.net.flow is not None:
                h = self.net._state(a, b, self._text, self._plan)[:, -1]
                return self.net.sample_step(h, temperature=self.temperature).cpu().numpy()
            return self.net(a, b, self._text, self._plan)[0, -1].float().cpu().numpy()
        # one forward pass: told, then untold (NaN: the no-instruction vector) where g != 1, then the
        # partner hidden (codes -1) where w != 1; only the rows a term needs
        texts, rows = [self._text], [a]
        if g != 1.0:
            texts, rows = [*texts, torch.full_like(self._text, float("nan"))], [*rows, a]
        if w != 1.0:
            texts, rows = [*texts, self._text], [*rows, torch.full_like(a, -1)]
        text = torch.cat(texts)
        plan = None  # the plan goes with the instruction: the untold (NaN) row has none
        if self._plan is not None:
            plan = self._plan * text.isfinite().all(-1, keepdim=True)

        def combine(out: torch.Tensor) -> torch.Tensor:  # the rows' predictions (or velocities) -> one
            c = out[0]
            pred = c + (g - 1.0) * (c - out[1]) if g != 1.0 else c
            return pred - (1.0 - w) * (c - out[-1]) if w != 1.0 else pred

        inputs = (torch.cat(rows), b.expand(len(rows), -1, -1), text, plan)
        if self.net.flow is not None:
            h = self.net._state(*inputs)[:, -1]
            return self.net.sample_step(h, combine, temperature=self.temperature).cpu().numpy()
        return combine(self.net(*inputs)[:, -1].float()).cpu().numpy()

    def react(self, codes_a: np.ndarray, start_b: np.ndarray | None = None) -> np.ndarray:
        """(L, D) actor codes -> (L, D) reactor codes from a fresh start (optionally its first step)."""
        self.reset()
        return np.stack(
            [
                self.step(row, start_b if t == 0 and start_b is not None else None)
                for t, row in enumerate(codes_a)
            ]
        )


__all__ = ["MAX_INSTRUCTION_CHARS", "SmallStreamingReactor"]
