"""The backbone stepped with a KV cache, and how picks are made: shared by `generate` and `streaming`.

`KVRunner` feeds token ids in pieces and returns hidden states, keeping the cache between calls, and
can evict a run of cached tokens (the bounded context of the live reaction). `SamplingConfig` says
how tokens are picked; `code_tokens` turns one person-step's D codes into their token ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from molam_ros.llm.model import MotionLM


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """How tokens are picked: temperature 0 is greedy (deterministic)."""

    temperature: float = 0.0
    top_k: int = 0
    seed: int = 0
    max_steps: int = 48  # motion steps per generated span (48 x 4 frames = 6.4 s)
    min_steps: int = 2
    max_text_tokens: int = 96

    def __post_init__(self) -> None:
        if self.temperature < 0 or self.top_k < 0:
            raise ValueError("SamplingConfig needs temperature >= 0 and top_k >= 0")
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError("SamplingConfig needs 1 <= min_steps <= max_steps")
        if self.max_text_tokens < 1:
            raise ValueError("SamplingConfig.max_text_tokens must be >= 1")

    def generator(self) -> torch.Generator:
        return torch.Generator().manual_seed(self.seed)


class KVRunner:
    """The backbone with a KV cache: feed token ids, get the last layer's hidden states back.

    One object per sequence; `reset()` starts a new one. Positions continue from the cache length,
    so feeding a sequence in pieces gives the hidden states of feeding it whole.
    """

    def __init__(self, mlm: MotionLM) -> None:
        self.mlm = mlm
        self.cache: Any = None
        self.length = 0

    def reset(self) -> None:
        self.cache = None
        self.length = 0

    @torch.inference_mode()
    def feed(self, ids: list[int]) -> torch.Tensor:
        """(n,) new token ids -> (n, H) hidden states."""
        if not ids:
            raise ValueError("KVRunner.feed needs at least one token id")
        x = torch.tensor([ids], dtype=torch.long, device=self.mlm.device)
        out = self.mlm.decoder(input_ids=x, past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        self.length += len(ids)
        return out.last_hidden_state[0]

    def can_evict(self) -> bool:
        """Whether `evict` applies: plain growing caches and unscaled rotary positions (LLaMA-style).

        Sliding-window layers (Gemma 3) or scaled RoPE variants would need their own shift; callers
        fall back to re-feeding the context instead.
        """
        from transformers.cache_utils import DynamicLayer

        rotary = getattr(self.mlm.decoder, "rotary_emb", None)
        if rotary is None or float(getattr(rotary, "attention_scaling", 1.0)) != 1.0:
            return False
        layers = getattr(self.cache, "layers", None)
        return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)

    @torch.inference_mode()
    def evict(self, start: int, count: int) -> None:
        """Drop cached tokens [start, start + count) and move the later ones back by `count` positions.

        Rotary attention depends on relative positions only, so rotating the later keys by
        -count x theta makes the cache what it would hold had those tokens never been there,
        except that their keys and values were computed while the dropped tokens were visible
        (StreamingLLM's window with attention sinks, here the kept prompt). A few milliseconds
        instead of re-feeding the window through the backbone.
        """
        if count <= 0:
            return
        if not 0 <= start <= self.length - count:
            raise ValueError(f"cannot evict [{start}, {start + count}) from a cache of {self.length} tokens")
        rotary = self.mlm.decoder.rotary_emb
        layer0 = self.cache.layers[0]
        shift = torch.tensor([[count]], device=layer0.keys.device)
        cos, sin = rotary(layer0.keys, shift)  # (1, 1, head_dim): the rotation of `count` positions
        cos, sin = cos[:, None].to(layer0.keys.dtype), sin[:, None].to(layer0.keys.dtype)
        for layer in self.cache.layers:
            k, v = layer.keys, layer.values
            tail = k[:, :, start + count :]
            half = tail.shape[-1] // 2
            rotated = torch.cat((-tail[..., half:], tail[..., :half]), dim=-1)  # rotate_half
            layer.keys = torch.cat([k[:, :, :start], tail * cos - rotated * sin], dim=2)
            layer.values = torch.cat([v[:, :, :start], v[:, :, start + count :]], dim=2)
        self.length -= count

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """LM-head logits of (n, H) hidden states."""
        return self.mlm.lm_head(hidden).float()


def code_tokens(mlm: MotionLM, codes: np.ndarray | torch.Tensor) -> list[int]:
    """(D,) codes of one person-step -> their token ids."""
    v = mlm.vocab
    return [v.code_id(d, int(k)) for d, k in enumerate(np.asarray(codes).tolist())]
