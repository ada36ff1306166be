"""The depth head: a step's D codes of one person from ONE backbone hidden state (RQ-Transformer style).

Why it exists. Writing a step token by token costs one backbone forward pass per code: with D = 4
and SmolLM2-135M on the 2-core CPU, a KV-cached streaming reaction step (one forward for the
partner's tokens, then one per generated code) ran at about 4.6 steps/s, short of the 7.5 steps/s
that 30 fps needs at l = 4 frames per step (`molam bench llm` prints the steps/s of both methods).
The depth head reads the backbone's hidden state at the person marker (`<person_b>`) and predicts
that person's D codes itself, coarse to fine, each depth conditioned on the codes already chosen at
the shallower depths (the residual quantizer's codes are refinements of each other, so depth d
depends on depths < d). The backbone then sees the chosen codes as ordinary tokens in the next
step's single forward pass, so one reaction step costs one backbone forward however large D is.

Architecture (small on purpose, ~2-3 M parameters for SmolLM2): project the hidden state to `width`,
add the sum of the embeddings of the codes at shallower depths and a depth embedding, a few pre-norm
residual MLP blocks, then one output matrix per depth over its K codes. Only codes of the right
depth can come out, so its outputs always decode (the constraint holds by construction).

Context codes (`DepthHeadConfig.context`). The codes of a person change slowly: on the generator's
data a person's code often repeats from one step to the next, most at depth 0 and less at each finer
depth, and knowing the previous step's code cuts its held-out entropy, most at depth 0
(`python -m molam_ros.llm.code_stats --data DATA --tokenizer CKPT` prints the repeat rate and both
entropies per depth for a trained tokenizer). Through the backbone alone the head sees that only
once LoRA has learnt to carry the previous codes to the marker, which 200 CPU steps did not reach
(its loss stayed at the unigram level). So the head may also take two sets of codes directly, by position
in the token sequence: slot 0, the D codes right before the marker (the other person's latest
step, or the same person's previous one in a one-person span), and slot 1, the same person's
previous step; each missing one (the first steps of a span) is the extra index K. Besides
their embeddings (which must see each code many times to learn what it means), a learned copy
logit per slot and depth is added to the context code's own logit, starting from a prior that the
person's own code stays (COPY_PRIOR).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

CONTEXT_SLOTS = 2  # the codes right before the marker, the same person's previous step
# Initial copy logit of a person's previous code. Against an otherwise flat distribution over K codes,
# a repeat rate p is met by a boost of ln(p (K - 1) / (1 - p)); `python -m molam_ros.llm.code_stats`
# prints it for each depth's measured rate. 5 was chosen at or below the boost of every depth on the
# default tokenizer's generator data: a conservative start for all.
COPY_PRIOR = 5.0


def context_row(before: Any, previous: Any, depth: int, codebook_size: int) -> torch.Tensor:
    """(1, 2, D) context codes from two (D,) code arrays or None (missing = codebook_size)."""
    rows = [[codebook_size] * depth if c is None else [int(x) for x in c] for c in (before, previous)]
    return torch.tensor([rows], dtype=torch.long)


@dataclass(frozen=True, kw_only=True)
class DepthHeadConfig:
    """Shape of the depth head and the weight of its loss next to the language-model loss."""

    width: int = 256
    layers: int = 2
    loss_weight: float = 1.0
    context: bool = False  # also read the context codes (module docstring); checkpoints say which

    def __post_init__(self) -> None:
        if self.width < 1 or self.layers < 0 or self.loss_weight < 0:
            raise ValueError("DepthHeadConfig needs width >= 1, layers >= 0, loss_weight >= 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Block(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.fc = nn.Linear(width, 4 * width)
        self.proj = nn.Linear(4 * width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.proj(nn.functional.gelu(self.fc(self.norm(x))))


class DepthHead(nn.Module):
    """Logits of the D codes of one person-step from the backbone hidden state at its marker."""

    def __init__(self, hidden_size: int, codebook_size: int, depth: int, config: DepthHeadConfig) -> None:
        super().__init__()
        self.K, self.D = codebook_size, depth
        self.config = config
        w = config.width
        self.inp = nn.Linear(hidden_size, w)
        self.code_emb = nn.Embedding(depth * codebook_size, w)
        self.depth_emb = nn.Parameter(torch.zeros(depth, w))
        self.blocks = nn.ModuleList(_Block(w) for _ in range(config.layers))
        self.norm = nn.LayerNorm(w)
        self.out_w = nn.Parameter(torch.randn(depth, w, codebook_size) * w**-0.5)
        self.out_b = nn.Parameter(torch.zeros(depth, codebook_size))
        self.register_buffer("_offsets", torch.arange(depth) * codebook_size, persistent=False)
        self.ctx_emb = (
            nn.Embedding(CONTEXT_SLOTS * depth * (codebook_size + 1), w) if config.context else None
        )
        ctx_offsets = torch.arange(CONTEXT_SLOTS * depth).view(CONTEXT_SLOTS, depth) * (codebook_size + 1)
        self.register_buffer("_ctx_offsets", ctx_offsets, persistent=False)
        self.copy_logit = None
        if config.context:
            # Start from "the person's own code stays": +COPY_PRIOR on the logit of its previous code.
            # The step's learning rate moves a scalar by about lr per step, so starting at 0 it would
            # take thousands of steps to reach what the data says (module docstring).
            prior = torch.zeros(CONTEXT_SLOTS, depth)
            prior[1] = COPY_PRIOR
            self.copy_logit = nn.Parameter(prior)

    def forward(
        self, hidden: torch.Tensor, codes: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N, H) hidden states, (N, D) codes (teacher forcing) and, for a head with context, (N, 2, D)
        context codes (K = missing; None: all missing) -> (N, D, K) logits.

        The logits of depth d see only codes[:, :d] (an exclusive prefix sum), so the same call
        trains all depths at once and, with unknown deeper codes set to anything, samples depth d.
        """
        x = self.inp(hidden.to(self.inp.weight.dtype))[:, None, :]  # (N, 1, W)
        if self.ctx_emb is not None:
            if context is None:
                context = torch.full((hidden.shape[0], CONTEXT_SLOTS, self.D), self.K, device=hidden.device)
            x = x + self.ctx_emb(context.long() + self._ctx_offsets).sum(dim=(1, 2))[:, None, :]
        emb = self.code_emb(codes.long() + self._offsets)  # (N, D, W)
        prefix = torch.cumsum(emb, dim=1) - emb  # codes of shallower depths only
        x = x + prefix + self.depth_emb
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        logits = torch.einsum("ndw,dwk->ndk", x, self.out_w) + self.out_b
        if self.copy_logit is not None and context is not None:
            # + copy_logit[slot, d] on the logit of each present context code (K = missing: dropped).
            onehot = nn.functional.one_hot(context.long(), self.K + 1)[..., : self.K].to(logits.dtype)
            logits = logits + torch.einsum("nsdk,sd->ndk", onehot, self.copy_logit.to(logits.dtype))
        return logits

    def loss(
        self, hidden: torch.Tensor, codes: torch.Tensor, context: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean cross-entropy over every depth of every step."""
        logits = self(hidden, codes, context)
        return nn.functional.cross_entropy(logits.reshape(-1, self.K).float(), codes.reshape(-1).long())

    @torch.no_grad()
    def sample(
        self,
        hidden: torch.Tensor,
        *,
        context: torch.Tensor | None = None,
        temperature: float = 0.0,
        top_k: int = 0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """(N, H) [+ (N, 2, D) context] -> (N, D) codes, depth by depth; temperature 0 is greedy."""
        n = hidden.shape[0]
        codes = torch.zeros(n, self.D, dtype=torch.long, device=hidden.device)
        for d in range(self.D):
            logits = self(hidden, codes, context)[:, d].float()  # (N, K); deeper codes do not reach depth d
            codes[:, d] = sample_logits(logits, temperature=temperature, top_k=top_k, generator=generator)
        return codes


def sample_logits(
    logits: torch.Tensor,
    *,
    temperature: float = 0.0,
    top_k: int = 0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(N, V) logits -> (N,) ids: argmax at temperature 0, else softmax sampling (optionally top-k)."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
