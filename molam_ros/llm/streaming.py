"""Streaming reaction: every l frames, the partner's D codes in, the reactor's D codes out.

`StreamingReactor` is the stateful generator the live pipeline calls once per token step. It holds
the backbone's KV cache across steps, so a step feeds only what is new:

    [b codes of the previous step] <person_a> [a codes of this step] <person_b>

and the depth head turns the hidden state at `<person_b>` into this step's D codes for the reactor
(method "head": one backbone forward per step). Method "tokens" writes them with the LM head, one
forward per code (D + 1 forwards per step), the slower reference.

Bounded context. The sequence is the reaction prompt (system message, instruction) and `<motion>`,
the kept prefix, then the steps. Once `window_steps` steps sit in the cache, the oldest steps are
evicted down to `keep_steps`: their keys and values are cut out of the cache and the later keys are
rotated back by as many positions (KVRunner.evict), which takes milliseconds, so the per-step cost
never grows with the length of the interaction, never spikes, and positions stay inside what the
model was trained on (set the window near the training span length, ExampleConfig.max_steps). The
training examples are windows cut from anywhere in a clip, so a span that starts mid-motion is what
the model has seen. Backbones whose cache cannot be shifted that way (sliding-window layers, scaled
RoPE) fall back to rebuilding the cache from the prefix and the kept steps: one prefill every
`window_steps - keep_steps` steps.

Text commands. `set_instruction(text)` rebuilds the prompt with the new instruction and re-feeds
the kept steps: what follows is conditioned on it, as in a reaction example with that instruction.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from molam_ros.llm.depth_head import context_row, sample_logits
from molam_ros.llm.kv import KVRunner, SamplingConfig, code_tokens
from molam_ros.llm.model import MotionLM
from molam_ros.llm.prompts import PromptConfig, reaction_prompt_ids
from molam_ros.llm.vocab import as_codes


@dataclass(frozen=True, kw_only=True)
class StreamingConfig:
    """Context bounds and decoding of the streaming reaction."""

    window_steps: int = 24  # steps in the cache at most (24 x 4 frames = 3.2 s, the `small` training span)
    keep_steps: int = 16  # steps kept when the oldest are evicted
    method: str = "head"  # "head" | "tokens" (module docstring)
    temperature: float = 0.0
    top_k: int = 0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.keep_steps < self.window_steps:
            raise ValueError("StreamingConfig needs 1 <= keep_steps < window_steps")
        if self.method not in ("head", "tokens"):
            raise ValueError(f"StreamingConfig.method must be 'head' or 'tokens', got {self.method!r}")


class StreamingReactor:
    """Person b's codes step by step from person a's (module docstring)."""

    def __init__(
        self,
        mlm: MotionLM,
        config: StreamingConfig | None = None,
        *,
        instruction: str | None = None,
        prompt_config: PromptConfig | None = None,
    ) -> None:
        self.mlm = mlm
        self.config = config or StreamingConfig()
        self.prompt_config = prompt_config or PromptConfig()
        self.runner = KVRunner(mlm)
        self.gen = torch.Generator().manual_seed(self.config.seed)
        self.history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=self.config.window_steps)
        self.cached_steps = 0
        self.pending: list[int] = []
        self.rebuilds = 0
        self.evictions = 0
        self._cache_prefix = 0  # tokens of the prompt prefix at the start of the cache
        self.last_step_seconds = 0.0
        self.instruction = instruction
        self._prefix = self._prefix_ids(instruction)
        self._sampling = SamplingConfig(temperature=self.config.temperature, top_k=self.config.top_k)

    def _prefix_ids(self, instruction: str | None) -> list[int]:
        ids = reaction_prompt_ids(
            tokenizer=self.mlm.tokenizer,
            vocab=self.mlm.vocab,
            config=self.prompt_config,
            instruction=instruction,
        )
        return [*ids, self.mlm.vocab.ids.motion_start]

    # --- control

    def reset(self) -> None:
        """Start a new interaction (same instruction)."""
        self.runner.reset()
        self.history.clear()
        self.cached_steps = 0
        self.pending = []

    def check_instruction(self, text: str | None) -> None:
        """Raise ValueError if `text` would be refused as an instruction; changes nothing."""
        self._prefix_ids(text)

    def set_instruction(self, text: str | None) -> None:
        """A text command mid-stream: it conditions every following step (module docstring)."""
        self._prefix = self._prefix_ids(text)  # validates the text before anything changes
        self.instruction = text
        self._rebuild(len(self.history))

    def _step_tokens(self, a: np.ndarray, b: np.ndarray) -> list[int]:
        ids = self.mlm.vocab.ids
        return [ids.person_a, *code_tokens(self.mlm, a), ids.person_b, *code_tokens(self.mlm, b)]

    def _rebuild(self, keep: int) -> None:
        """Cache := prefix + the last `keep` steps, as pending input of the next step."""
        kept = list(self.history)[len(self.history) - keep :] if keep else []
        self.runner.reset()
        self.pending = list(self._prefix)
        for a, b in kept:
            self.pending += self._step_tokens(a, b)
        self.cached_steps = len(kept)
        self._cache_prefix = len(self._prefix)
        self.rebuilds += 1

    # --- the step

    def step(self, codes_a: np.ndarray, codes_b: np.ndarray | None = None) -> np.ndarray:
        """Person a's (D,) codes of this step -> person b's (D,) codes.

        `codes_b`, when given, is what the reactor actually did this step (a robot's own encoded
        pose: where it stands and how): it goes into the context instead of a sample and is
        returned, so the following steps continue from the reactor's real state.
        """
        t0 = time.perf_counter()
        v = self.mlm.vocab
        a = as_codes(np.asarray(codes_a).reshape(1, -1), "codes_a", v.codebook_size, v.depth)[0]
        given = None
        if codes_b is not None:
            given = as_codes(np.asarray(codes_b).reshape(1, -1), "codes_b", v.codebook_size, v.depth)[0]
        if self.runner.length == 0 and not self.pending:
            self.pending = list(self._prefix)
            self._cache_prefix = len(self._prefix)
        elif self.cached_steps >= self.config.window_steps:
            self._shrink()
        ids = v.ids
        feed = [*self.pending, ids.person_a, *code_tokens(self.mlm, a), ids.person_b]
        if given is not None:
            b = given
            self.pending = []
            self.runner.feed(feed + code_tokens(self.mlm, b))
        elif self.config.method == "head":
            hidden = self.runner.feed(feed)[-1:]
            # Context codes: person a's, right before the marker, and the reactor's previous step.
            previous = self.history[-1][1] if self.history else None
            context = context_row(a, previous, v.depth, v.codebook_size).to(hidden.device)
            sample = self.mlm.head.sample(
                hidden,
                context=context,
                temperature=self.config.temperature,
                top_k=self.config.top_k,
                generator=self.gen,
            )
            b = sample[0].cpu().numpy()
            self.pending = code_tokens(self.mlm, b)
        else:
            b = self._tokens_step(self.runner.feed(feed)[-1:])
            self.pending = [v.code_id(v.depth - 1, int(b[-1]))]
        self.history.append((a, b))
        self.cached_steps += 1
        self.last_step_seconds = time.perf_counter() - t0
        return b

    def _shrink(self) -> None:
        """Cut the cache down to the prefix and the last `keep_steps` steps (module docstring)."""
        if not self.runner.can_evict():
            self._rebuild(self.config.keep_steps)
            return
        # The newest step's reactor codes are still pending (fed with the next step), so the cache
        # holds cached_steps - 1 whole steps; evict the oldest whole ones.
        drop = min(self.cached_steps - self.config.keep_steps, self.cached_steps - 1)
        per_step = self.mlm.vocab.tokens_per_step(2)
        self.runner.evict(self._cache_prefix, drop * per_step)
        self.cached_steps -= drop
        self.evictions += 1

    def _tokens_step(self, hidden: torch.Tensor) -> np.ndarray:
        """D codes with the LM head, each depth restricted to its own code range (one forward each)."""
        v = self.mlm.vocab
        codes = []
        for d in range(v.depth):
            if d > 0:
                hidden = self.runner.feed([v.code_id(d - 1, codes[-1])])
            base = v.code_id(d, 0)
            logits = self.runner.logits(hidden)[:, base : base + v.codebook_size]
            k = sample_logits(
                logits, temperature=self.config.temperature, top_k=self.config.top_k, generator=self.gen
            )
            codes.append(int(k[0]))
        return np.asarray(codes, dtype=np.int64)

    def react(self, codes_a: np.ndarray, start_b: np.ndarray | None = None) -> np.ndarray:
        """(L, D) partner codes -> (L, D) reactor codes, step by step (the offline use of the stream).

        `start_b` (k, D): the reactor's first k steps as they were (its starting pose and place),
        given rather than generated.
        """
        v = self.mlm.vocab
        arr = as_codes(codes_a, "codes_a", v.codebook_size, v.depth)
        start = [] if start_b is None else list(as_codes(start_b, "start_b", v.codebook_size, v.depth))
        return np.stack([self.step(row, start[i] if i < len(start) else None) for i, row in enumerate(arr)])
