"""The small reactor: a few-million-parameter causal transformer from the actor's codes to the reactor's.

Why it exists. It has the interface of the LLM's streaming reaction (the actor's D codes of a step
in, the reactor's D codes out, `StreamingReactor`), trains from scratch in minutes on this CPU, and
so is (a) the bench on which the reaction recipe is found (data scale, input noise against exposure
bias, instruction conditioning, sampling), (b) a baseline row the LLM has to beat in `molam llm
eval`, and (c) what a user with no LLM compute runs for live reaction.

The model (read it in one sitting, as nanoGPT):

    position 2t:     sum_d E[a_t,d] + person_a + pos[2t] + text      -> h_t
    position 2t + 1: sum_d E[b_t,d] + person_b + pos[2t + 1] + text
    causal self-attention blocks; the depth head (llm/depth_head.py) turns h_t into b_t's D codes.

One position per person-step (the sum of that step's D code embeddings, as RQ-Transformer and MoGo
do), so a window of W steps is 2W positions. h_t has seen the actor up to step t and the reactor up
to step t - 1: exactly what is known when the reactor's step t is generated live. The instruction
is one vector added to every position: the sentence encoder's embedding (384-d MiniLM) projected to
the width, or a learned "no instruction" vector; training drops it half of the time, so the model
reacts with and without being told, and classifier-free guidance is possible at sampling.
"""

from __future__ import annotations

import json
import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from molam_ros.llm.depth_head import DepthHead, DepthHeadConfig, context_row

MAX_INSTRUCTION_CHARS = 1000  # the sentence encoder reads 64 tokens; anything longer is not an instruction
Embedder = Callable[[list[str]], np.ndarray]  # texts -> (N, text_dim) unit vectors


@dataclass(frozen=True, kw_only=True)
class SmallReactorConfig:
    """Shape of the small reactor; `codebook_size` and `depth` follow the tokenizer."""

    codebook_size: int = 512
    depth: int = 4
    width: int = 256
    layers: int = 4
    heads: int = 4
    context_steps: int = 48  # steps the model attends to (a window of 2x as many positions)
    text_dim: int = 384  # instruction embedding size (agent/encoder.py); 0: no instructions
    dropout: float = 0.1
    head: DepthHeadConfig = field(default_factory=lambda: DepthHeadConfig(width=256, layers=2, context=True))

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError("SmallReactorConfig.width must be a multiple of heads")
        if self.context_steps < 2:
            raise ValueError("SmallReactorConfig.context_steps must be at least 2")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SmallReactorConfig:
        d = dict(d)
        d["head"] = DepthHeadConfig(**d["head"])
        return cls(**d)


class _Block(nn.Module):
    def __init__(self, c: SmallReactorConfig) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(c.width), nn.LayerNorm(c.width)
        self.qkv = nn.Linear(c.width, 3 * c.width)
        self.proj = nn.Linear(c.width, c.width)
        self.mlp = nn.Sequential(nn.Linear(c.width, 4 * c.width), nn.GELU(), nn.Linear(4 * c.width, c.width))
        self.heads, self.dropout = c.heads, c.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, W = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(B, L, 3, self.heads, W // self.heads).permute(2, 0, 3, 1, 4)
        p = self.dropout if self.training else 0.0
        y = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=p)
        x = x + nn.functional.dropout(self.proj(y.transpose(1, 2).reshape(B, L, W)), p, self.training)
        return x + nn.functional.dropout(self.mlp(self.ln2(x)), p, self.training)


class SmallReactorNet(nn.Module):
    """The transformer and its depth head (module docstring)."""

    def __init__(self, config: SmallReactorConfig) -> None:
        super().__init__()
        c = self.config = config
        K, D = c.codebook_size, c.depth
        self.code = nn.Embedding(D * K, c.width)
        self.person = nn.Parameter(torch.zeros(2, c.width))
        self.pos = nn.Parameter(torch.randn(2 * c.context_steps, c.width) * 0.02)
        self.no_text = nn.Parameter(torch.zeros(c.width))
        self.text = nn.Linear(c.text_dim, c.width) if c.text_dim else None
        self.blocks = nn.ModuleList(_Block(c) for _ in range(c.layers))
        self.ln = nn.LayerNorm(c.width)
        self.head = DepthHead(c.width, K, D, c.head)
        self.register_buffer("_off", torch.arange(D) * K, persistent=False)

    def _text(self, text: torch.Tensor | None, B: int) -> torch.Tensor:
        """(B, W): the projected instruction, or the no-instruction vector where text is None/NaN."""
        none = self.no_text.expand(B, -1)
        if text is None or self.text is None:
            return none
        has = torch.isfinite(text).all(-1, keepdim=True)
        return torch.where(has, self.text(torch.nan_to_num(text)), none)

    def hidden(self, a: torch.Tensor, b: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        """a, b: (B, L, D) codes (b's last step is never read) -> (B, L, W) states h_t (docstring)."""
        B, L, _ = a.shape
        if L > self.config.context_steps:
            raise ValueError(f"{L} steps exceed the context of {self.config.context_steps}")
        ea = self.code(a.long() + self._off).sum(2) + self.person[0]
        eb = self.code(b.long() + self._off).sum(2) + self.person[1]
        x = torch.stack([ea, eb], 2).reshape(B, 2 * L, -1) + self.pos[: 2 * L] + self._text(text, B)[:, None]
        for block in self.blocks:
            x = block(x)
        return self.ln(x)[:, 0::2]

    @staticmethod
    def context(a: torch.Tensor, b: torch.Tensor, missing: int) -> torch.Tensor:
        """(B, L, 2, D) depth-head context: the actor's step t and the reactor's step t - 1."""
        prev_b = torch.cat([torch.full_like(b[:, :1], missing), b[:, :-1]], 1)
        return torch.stack([a, prev_b], 2)

    def loss(
        self, a: torch.Tensor, b_in: torch.Tensor, b: torch.Tensor, text: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Cross-entropy of the reactor's codes b given the actor and b_in (b, maybe corrupted), and
        the (L, D)-averaged depth accuracies (D,)."""
        h = self.hidden(a, b_in, text)
        ctx = self.context(a, b_in, self.config.codebook_size) if self.config.head.context else None
        B, L, D = b.shape
        logits = self.head(
            h.reshape(B * L, -1), b.reshape(B * L, D), None if ctx is None else ctx.reshape(B * L, 2, D)
        )
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), b.reshape(-1).long())
        acc = (logits.argmax(-1) == b.reshape(B * L, D)).float().mean(0)
        return loss, acc


def save_small_reactor(net: SmallReactorNet, out: str | Path, info: dict[str, Any]) -> Path:
    """config.json (shape + `info`: tokenizer identity, training figures) and model.safetensors."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(out / "model.safetensors"))
    (out / "config.json").write_text(
        json.dumps({"kind": "small_reactor", "model": net.config.to_dict(), **info}, indent=1)
    )
    return out


def load_small_reactor(directory: str | Path) -> tuple[SmallReactorNet, dict[str, Any]]:
    """The network (float32, eval mode) and its config.json, or a clear error."""
    from safetensors.torch import load_file

    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{d} holds no small reactor (config.json and model.safetensors); train one: molam reactor train"
        )
    info = json.loads((d / "config.json").read_text())
    if info.get("kind") != "small_reactor":
        raise ValueError(f"{d}/config.json is not a small reactor (kind {info.get('kind')!r})")
    net = SmallReactorNet(SmallReactorConfig.from_dict(info["model"]))
    net.load_state_dict({k: v.float() for k, v in load_file(str(d / "model.safetensors")).items()})
    return net.eval(), info


@dataclass(frozen=True, kw_only=True)
class ReactorSampling:
    """How the streaming reactor picks codes: greedy at temperature 0; `guidance` > 1 is
    classifier-free guidance towards the instruction (two passes per step)."""

    temperature: float = 0.0
    top_k: int = 0
    guidance: float = 1.0
    seed: int = 0


class SmallStreamingReactor:
    """Step-by-step reaction with the small reactor; the same calls as llm.streaming.StreamingReactor.

    Each step re-runs the window of the last `context_steps` steps (no KV cache: at this size a
    full window costs about a millisecond, and the positions always start at 0 as in training).
    """

    def __init__(
        self,
        net: SmallReactorNet,
        sampling: ReactorSampling | None = None,
        *,
        embed: Embedder | None = None,
        instruction: str | None = None,
    ) -> None:
        self.net = net.eval()
        self.sampling = sampling or ReactorSampling()
        self.embed = embed
        self.gen = torch.Generator().manual_seed(self.sampling.seed)
        self.history: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=net.config.context_steps)
        self._text: torch.Tensor | None = None
        self.set_instruction(instruction)

    def reset(self) -> None:
        self.history.clear()

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
        """Condition what follows on `text` (None: react unprompted)."""
        self.check_instruction(text)
        if not text or self.net.text is None or self.embed is None:  # (checked: only when empty)
            self._text = None
            return
        self._text = torch.as_tensor(np.asarray(self.embed([text]), dtype=np.float32)[:1])

    @torch.no_grad()
    def step(self, codes_a: np.ndarray, codes_b: np.ndarray | None = None) -> np.ndarray:
        """The actor's (D,) codes of this step -> the reactor's (D,) codes (or `codes_b`, forced)."""
        a_now = np.asarray(codes_a, dtype=np.int64).reshape(-1)
        D, K = self.net.config.depth, self.net.config.codebook_size
        if a_now.shape != (D,) or a_now.min() < 0 or a_now.max() >= K:
            raise ValueError(f"expected {D} codes in [0, {K}), got {codes_a!r}")
        if codes_b is None:
            rows = [*self.history, (a_now, np.zeros(D, dtype=np.int64))][-self.net.config.context_steps :]
            a = torch.as_tensor(np.stack([r[0] for r in rows]))[None]
            b = torch.as_tensor(np.stack([r[1] for r in rows]))[None]
            codes_b = self._sample(a, b).numpy()
        self.history.append((a_now, np.asarray(codes_b, dtype=np.int64).reshape(D)))
        return self.history[-1][1].copy()

    def _sample(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        net, s = self.net, self.sampling
        ctx = net.context(a, b, net.config.codebook_size)[:, -1] if net.config.head.context else None
        h = net.hidden(a, b, self._text)[:, -1]
        if self._text is None or s.guidance == 1.0:
            return net.head.sample(
                h, context=ctx, temperature=s.temperature, top_k=s.top_k, generator=self.gen
            )[0]
        h0 = net.hidden(a, b, None)[:, -1]
        codes = torch.zeros(1, net.config.depth, dtype=torch.long)
        from molam_ros.llm.depth_head import sample_logits

        for d in range(net.config.depth):  # guided logits depth by depth: uncond + g (cond - uncond)
            lc, lu = net.head(h, codes, ctx)[:, d], net.head(h0, codes, ctx)[:, d]
            logits = lu + s.guidance * (lc - lu)
            codes[:, d] = sample_logits(
                logits.float(), temperature=s.temperature, top_k=s.top_k, generator=self.gen
            )
        return codes[0]

    def react(self, codes_a: np.ndarray, start_b: np.ndarray | None = None) -> np.ndarray:
        """(L, D) actor codes -> (L, D) reactor codes from a fresh start (optionally its first step)."""
        self.reset()
        out = []
        for t, row in enumerate(np.asarray(codes_a)):
            out.append(self.step(row, start_b if t == 0 and start_b is not None else None))
        return np.stack(out)


__all__ = [
    "ReactorSampling",
    "SmallReactorConfig",
    "SmallReactorNet",
    "SmallStreamingReactor",
    "context_row",
    "load_small_reactor",
    "save_small_reactor",
]
