"""The small reactor: a few-million-parameter causal transformer from the actor's codes to the reactor's.

Why it exists. It has the interface of the LLM's streaming reaction (the actor's D codes of a step
in, the reactor's D codes out, `StreamingReactor`), trains from scratch in minutes on this CPU, and
so is (a) the bench on which the reaction recipe is found, (b) a baseline row the LLM has to beat,
and (c) what a user with no LLM compute runs for live reaction (`reactor: small`).

The model (read it in one sitting, as nanoGPT), one position per step t:

    x_t = sum_d E[a_t,d] + W_b feats(b_{t-1}) + pos[t] + text  ->  causal blocks  ->  feats(b_t)

The actor enters as its D codes (what the tokenizer sees), the reactor as its own previous step's
l x F features (normalised by the tokenizer's stats), and the output is the reactor's next l frames
of features, trained with mean squared error. The features are encoded back to codes by the
tokenizer's streaming encoder, so the pipeline decodes them like any reactor's codes.

Why regression and not codes. Predicting the reactor's codes autoregressively (the LLM's recipe:
cross-entropy over D codes, a depth head) was measured first, on the same 18k generator clips and
CPU time: its held-out depth-0 accuracy stayed at the level of repeating the previous code (0.665
against 0.654) and in closed loop the reactor walked off (MPJPE 637 mm against 217 for standing
still, 30 held-out clips). The regression reaches a third of the error of holding the last step in
teacher forcing, and in closed loop keeps the pose better than standing still (`molam reactor eval`;
figures in the README). Exposure bias: live, the reactor reads its own earlier output, so training
adds noise to that input (`ReactorTrainConfig.b_noise`).

Blind inputs (`SmallReactorConfig.blind`). Measured on held-out windows fed the model's own
predictions (3 passes), its error on the partner's position in its own frame was 2.4x that of
holding the last step, though 4x lower in teacher forcing: the model copies the relation it reads
from its own previous step, and in closed loop that copy compounds. The person's codes already
carry the same relation seen from the other side (the person's features are computed against the
reactor as generated), anchored to where the reactor really is; hiding the reactor's own placement
features from its input makes the model read the relation from there.

The instruction is one vector added to every position: the sentence encoder's embedding (384-d
MiniLM) projected to the width, or a learned "no instruction" vector; training drops it half of
the time, so the model reacts with and without being told.

Commitment (`modes` > 1). Under doubt a regression answers with the mean: where the generator's
reactor sometimes walks over to the person and sometimes waits for them (hand-overs, hugs), it
walks a fifth of the way; told to wave while the person kicks, with nothing saying when to start,
it smears the wave over every start time. With K modes the network proposes K next steps and a
choice among them (multiple choice learning, Guzman-Rivera et al. 2012; as in trajectory
prediction, e.g. MultiPath): only the proposal nearest the recording is trained on a window
step (plus `relax` of the others' loss, so that none is left untrained), and the choice learns
which one that was (cross-entropy). Live, the chosen proposal is the step: the reactor commits to
one reaction, and its own output, read back, keeps it there.

Looking ahead (`horizon` H > 1). Teacher-forced, the reactor's own previous steps say almost
everything about its next one, so an instruction barely lowers the next-step loss and the model
learns to ignore it (shipped reactor, training steering pairs: 0.0125 told, 0.0132 untold). A
second head predicts the H - 1 steps after the next one from the same state (trained only, as in
multi-token prediction): what the reactor will be doing in a second depends on what it was told and
on where it means to go, so the shared state has to carry them. Live, only the next step is used.

Guidance. Because the same network predicts with and without the instruction, an instructed step
can be pushed further along what the instruction changes: pred = u + g (c - u), c the prediction
told, u the one untold, g the `guidance` (classifier-free guidance, Ho & Salimans 2022, applied to
the regressed features instead of a score). g = 1 is the plain conditional prediction. Measured
on validation clips, the instruction's effect on an unguided reactor is small (steering 7 %): the
actor's motion dominates what the reactor does.

Leading with the instruction (`partner_null`, the `partner_weight` w). Told to hug a person who
waves, the reactor answers the wave: the actor's codes explain the reaction in every training window
where they fit it, so they outweigh the instruction (steering 11 %, README). Trained with the
partner's codes hidden in some windows (a learned "no partner" vector in their place,
`ReactorTrainConfig.partner_drop`), the same network also predicts the reaction from its own past
and the instruction alone, l, and an instructed step can lean on it: pred = l + w (c - l) (w = 1:
the plain told prediction, w = 0: the instruction alone; the reactor is still placed by its
relation to the person actually seen).

Sampling (`flow` > 0). A flow-matching head on the same state samples the next step's deviation
from the regressed one (llm/flow_head.py), in units of `flow_scale`: the model can commit where a
regression hedges. The regression head stays, trained as before: own-output training passes read it.
Sampling the whole step instead (tried first) needs the head to learn how narrow the next step is
given the last one; after 22 minutes it had not, and the motion shook (3x the recorded energy).

A plan (`plans` K > 0). One discrete choice for a whole instructed reaction (K clusters of
reactions), read in training from the reaction itself and chosen live by a prior on the
instruction, added at every position as the instruction is (llm/reaction_plan.py): a choice made
once commits where a regressed or a sampled step does not.

Trunk (`backbone`). The same inputs and heads around a pretrained causal LM's first `layers`
decoder layers with LoRA (llm/reactor_trunk.py): the issue's cheap LLM, one backbone position per
person-step. Its files (llm/reactor_weights.py) hold only what training changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from molam_ros.llm.flow_head import FlowHead
from molam_ros.llm.reaction_plan import ReactionPlan

Embedder = Callable[[list[str]], np.ndarray]  # texts -> (N, text_dim) unit vectors


@dataclass(frozen=True, kw_only=True)
class SmallReactorConfig:
    """Shape of the small reactor; codebook_size, depth, stride and feature_dim follow the tokenizer."""

    codebook_size: int = 512
    depth: int = 4
    stride: int = 4  # frames per step
    feature_dim: int = 268
    width: int = 256
    layers: int = 4
    heads: int = 4
    context_steps: int = 64  # steps the model attends to
    text_dim: int = 384  # instruction embedding size (agent/encoder.py); 0: no instructions
    dropout: float = 0.1
    modes: int = 1  # next-step proposals and a choice among them (module docstring: "Commitment")
    horizon: int = 1  # steps predicted in training (module docstring: "Looking ahead"); 1: the next only
    flow: int = 0  # width of a head that samples the next step (module docstring: "Sampling"); 0: none
    flow_scale: float = 0.15  # the sampled deviation's unit (normalised features; about the regression's RMS)
    plans: int = 0  # K plans for a whole instructed reaction (llm/reaction_plan.py); 0: none
    # [start, stop) ranges of the F features hidden from the previous-step input (module docstring:
    # "Blind inputs"); the model still predicts them
    blind: tuple[tuple[int, int], ...] = ()
    # a learned "no partner" input, read where the codes are < 0 (module docstring: "Leading with ...")
    partner_null: bool = False
    # a pretrained causal LM ("default": the shipped SmolLM2, or a local path) whose first `layers`
    # decoder layers, with LoRA of rank `lora_rank`, replace the own blocks (module docstring: "Trunk")
    backbone: str = ""
    lora_rank: int = 16

    def __post_init__(self) -> None:
        if self.width % self.heads:
            raise ValueError("SmallReactorConfig.width must be a multiple of heads")
        if self.context_steps < 2:
            raise ValueError("SmallReactorConfig.context_steps must be at least 2")
        if self.modes < 1 or self.horizon < 1:
            raise ValueError("SmallReactorConfig.modes and horizon must be at least 1")
        if self.flow and self.modes > 1:
            raise ValueError("SmallReactorConfig: a sampled step (flow) or proposals (modes), not both")
        if self.backbone and self.lora_rank < 1:
            raise ValueError("SmallReactorConfig.lora_rank must be at least 1")

    @property
    def step_dim(self) -> int:
        return self.stride * self.feature_dim

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def for_engine(cls, engine: Any, **shape: Any) -> SmallReactorConfig:
        """The shape fields that must follow the tokenizer (K, D, l, F) read from its torch engine,
        the rest from `shape`."""
        return cls(
            codebook_size=int(engine.model.config.codebook_size),
            depth=engine.depths,
            stride=engine.stride,
            feature_dim=engine.feature_dim,
            **shape,
        )

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SmallReactorConfig:
        return cls(**{**d, "blind": tuple(tuple(r) for r in d.get("blind", ()))})


# Model shapes by name: `small` is the shipped reactor's (trains in 30 min on 2 CPU cores); `base`
# is for a lent GPU, sized so its float16 weights stay under the repository's 25 MB per file; `llm`
# is the pretrained backbone's first 4 layers with LoRA (llm/reactor_trunk.py; width and heads are
# the backbone's).
REACTOR_PRESETS: dict[str, dict[str, int | str]] = {
    "small": {"width": 256, "layers": 4, "heads": 4},
    "base": {"width": 384, "layers": 6, "heads": 6},
    "llm": {"backbone": "default", "layers": 4},
}


def reactor_shape(preset: str, **override: Any) -> dict[str, Any]:
    """The preset's shape with the given (non-empty) overrides; a backbone's width and heads are its own."""
    shape = {**REACTOR_PRESETS[preset], **{k: v for k, v in override.items() if v}}
    if shape.get("backbone"):
        from molam_ros.llm.reactor_trunk import backbone_shape  # transformers loads only here

        own = backbone_shape(str(shape["backbone"]))
        shape.update(width=own["width"], heads=own["heads"])
    return shape


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
    """The transformer (module docstring): (actor codes, reactor's previous features) -> features."""

    def __init__(self, config: SmallReactorConfig) -> None:
        super().__init__()
        c = self.config = config
        self.code = nn.Embedding(c.depth * c.codebook_size, c.width)
        self.prev = nn.Linear(c.step_dim, c.width)
        self.trunk: nn.Module | None = None
        if c.backbone:
            from molam_ros.llm.reactor_trunk import LlmTrunk

            self.trunk = LlmTrunk(c.backbone, c.layers, c.lora_rank)
            if self.trunk.width != c.width:
                raise ValueError(f"the backbone is {self.trunk.width} wide; the config says {c.width}")
            # code embeddings at the scale of the token embeddings its layers were trained on
            nn.init.normal_(self.code.weight, std=self.trunk.token_std)
        self.pos = (
            None if self.trunk is not None else nn.Parameter(torch.randn(c.context_steps, c.width) * 0.02)
        )
        self.no_text = nn.Parameter(torch.zeros(c.width))
        self.no_partner = nn.Parameter(torch.zeros(c.width)) if c.partner_null else None
        self.text = nn.Linear(c.text_dim, c.width) if c.text_dim else None
        self.blocks = nn.ModuleList(() if self.trunk is not None else (_Block(c) for _ in range(c.layers)))
        self.ln = nn.LayerNorm(c.width)
        self.out = nn.Linear(c.width, c.modes * c.step_dim)
        self.choose = nn.Linear(c.width, c.modes) if c.modes > 1 else None
        self.ahead = nn.Linear(c.width, (c.horizon - 1) * c.step_dim) if c.horizon > 1 else None
        self.flow = FlowHead(c.step_dim, c.width, c.flow) if c.flow else None
        self.plan = ReactionPlan(c.step_dim, c.width, c.plans) if c.plans else None
        if self.plan is not None:  # at the scale of what the reactor reads most (llm/reaction_plan.py)
            nn.init.normal_(self.plan.vectors, std=float(self.code.weight.detach().std()))
        self.register_buffer("_off", torch.arange(c.depth) * c.codebook_size, persistent=False)
        seen = torch.ones(c.feature_dim)
        for start, stop in c.blind:
            seen[start:stop] = 0.0
        self.register_buffer("_seen", seen.repeat(c.stride), persistent=False)

    def _text(self, text: torch.Tensor | None, B: int) -> torch.Tensor:
        """(B, W): the projected instruction, or the no-instruction vector where text is None/NaN."""
        none = self.no_text.expand(B, -1)
        if text is None or self.text is None:
            return none
        has = torch.isfinite(text).all(-1, keepdim=True)
        return torch.where(has, self.text(torch.nan_to_num(text)), none)

    def forward(
        self,
        a: torch.Tensor,
        b_prev: torch.Tensor,
        text: torch.Tensor | None = None,
        plan: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """a (B, L, D) codes, b_prev (B, L, l*F) the reactor's previous steps -> (B, L, l*F) next steps
        (with modes: the chosen proposal). `plan` (B, K): the reaction's plan (llm/reaction_plan.py)."""
        preds, logits = self.proposals(a, b_prev, text, plan)
        if logits is None:
            return preds[:, :, 0]
        pick = logits.argmax(-1)[..., None, None].expand(-1, -1, 1, preds.shape[-1])
        return preds.gather(2, pick)[:, :, 0]

    def sample_step(
        self,
        h: torch.Tensor,
        combine: Callable[[torch.Tensor], torch.Tensor] | None = None,
        temperature: float = 1.0,
    ) -> torch.Tensor:
        """(R, W) states (told, untold, ... rows) -> one sampled next step (l*F,): the regressed step
        plus a sampled deviation, both with the rows combined (guidance; None: row 0)."""
        mean = self.out(h).float()
        mean = combine(mean) if combine is not None else mean[0]
        dev = self.flow.sample(h, combine, temperature=temperature)
        return mean + self.config.flow_scale * dev

    def proposals(
        self,
        a: torch.Tensor,
        b_prev: torch.Tensor,
        text: torch.Tensor | None = None,
        plan: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, L, K, l*F) the K proposed next steps and (B, L, K) the choice's logits (None: K = 1)."""
        h = self._state(a, b_prev, text, plan)
        preds = self.out(h).unflatten(-1, (self.config.modes, self.config.step_dim))
        return preds, None if self.choose is None else self.choose(h)

    def _state(
        self,
        a: torch.Tensor,
        b_prev: torch.Tensor,
        text: torch.Tensor | None,
        plan: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, L, W) the last block's normalised state at every step."""
        B, L, _ = a.shape
        if L > self.config.context_steps:
            raise ValueError(f"{L} steps exceed the context of {self.config.context_steps}")
        idx = a.long()
        if self.no_partner is None:
            partner = self.code(idx + self._off).sum(2)
        else:  # codes < 0: the partner hidden
            partner = self.code(idx.clamp(min=0) + self._off).sum(2)
            partner = torch.where(idx[..., :1] < 0, self.no_partner.to(partner.dtype), partner)
        x = partner + self.prev(b_prev * self._seen) + self._text(text, B)[:, None]
        if plan is not None and self.plan is not None:
            x = x + self.plan.vector(plan)[:, None].to(x.dtype)
        if self.trunk is not None:  # rotary positions inside the backbone's layers
            return self.ln(self.trunk(x))
        x = x + self.pos[:L]
        for block in self.blocks:
            x = block(x)
        return self.ln(x)

    def loss(
        self,
        a: torch.Tensor,
        b_prev: torch.Tensor,
        b: torch.Tensor,
        text: torch.Tensor | None = None,
        weight: torch.Tensor | None = None,
        kind: str = "mse",
        relax: float = 0.05,
        choice_weight: float = 0.01,
        windows: torch.Tensor | None = None,
        plan_share: float = 0.0,
        plan: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Mean squared (kind "mse") or absolute ("l1") error of the reactor's normalised next-step
        features, each of the F features weighted by `weight` (F,) where given. With modes, in
        training: the nearest proposal's error, `relax` x the mean of all proposals' and
        `choice_weight` x the choice's cross-entropy (module docstring); in eval mode: the chosen
        proposal's error, comparable with a single-mode model's. `windows` (B,): a weight per window
        (the weighted mean over windows). With a horizon, `b` holds H steps per row (B, L, H*l*F);
        in training the steps after the next add their error, weighted by 1 / H each. With plans, in
        training: `plan_share` of the windows carry the plan read from their reaction, and the
        plan's own loss is added (llm/reaction_plan.py); `plan` (B, K) gives the plans instead."""
        c = self.config
        B = a.shape[0]
        plan_loss = torch.zeros((), device=a.device)
        if self.plan is not None and plan is None and self.training and plan_share > 0:
            told = (
                torch.zeros(B, dtype=torch.bool, device=a.device) if text is None else text.isfinite().all(-1)
            )
            plan, plan_loss = self.plan.training_terms(
                b[..., : c.step_dim].float(), self._text(text, B), told, plan_share
            )
        h = self._state(a, b_prev, text, plan)
        preds = self.out(h).unflatten(-1, (c.modes, c.step_dim))
        logits = None if self.choose is None else self.choose(h)
        b, later = b[..., : c.step_dim], b[..., c.step_dim :]
        diff = preds.float() - b[:, :, None]
        err = diff.abs() if kind == "l1" else diff**2
        if weight is not None:
            err = err.view(*err.shape[:-1], self.config.stride, -1) * weight
        per = err.flatten(3).mean(-1)  # (B, L, K)
        w = (
            torch.ones(per.shape[:2], device=per.device)
            if windows is None
            else windows[:, None].expand(per.shape[:2])
        )
        w = w / w.mean()

        def mean(x: torch.Tensor) -> torch.Tensor:  # (B, L) -> the window-weighted mean
            return (x * w).mean()

        ahead = plan_loss
        if self.ahead is not None and self.training and later.shape[-1]:
            d = (self.ahead(h).float() - later) ** 2
            if weight is not None:
                d = d.view(*d.shape[:-1], -1, c.stride, c.feature_dim) * weight
            ahead = ahead + mean(d.flatten(2).mean(-1)) * (c.horizon - 1) / c.horizon
        if self.flow is not None and self.training:
            ahead = ahead + self.flow.loss(h, (b - preds[:, :, 0].detach().float()) / c.flow_scale, weight=w)
        if logits is None:
            return mean(per[..., 0]) + ahead
        if not self.training:
            return mean(per.gather(-1, logits.argmax(-1, keepdim=True))[..., 0])
        win = per.detach().argmin(-1)
        choice = nn.functional.cross_entropy(logits.float().flatten(0, 1), win.flatten(), reduction="none")
        nearest = per.gather(-1, win[..., None])[..., 0]
        chosen = mean(nearest) + relax * mean(per.mean(-1)) + choice_weight * mean(choice.view_as(nearest))
        return chosen + ahead


__all__ = [
    "REACTOR_PRESETS",
    "SmallReactorConfig",
    "SmallReactorNet",
    "reactor_shape",
]
