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

Trunk (`backbone`). The same inputs and heads around a pretrained causal LM's first `layers`
decoder layers with LoRA (llm/reactor_trunk.py): the issue's cheap LLM, one backbone position per
person-step. Its files (llm/reactor_weights.py) hold only what training changed.
"""

from __future__ import annotations

import unicodedata
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

MAX_INSTRUCTION_CHARS = 1000  # the sentence encoder reads 64 tokens; anything longer is not an instruction
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
        self, a: torch.Tensor, b_prev: torch.Tensor, text: torch.Tensor | None = None
    ) -> torch.Tensor:
        """a (B, L, D) codes, b_prev (B, L, l*F) the reactor's previous steps -> (B, L, l*F) next steps
        (with modes: the chosen proposal)."""
        preds, logits = self.proposals(a, b_prev, text)
        if logits is None:
            return preds[:, :, 0]
        pick = logits.argmax(-1)[..., None, None].expand(-1, -1, 1, preds.shape[-1])
        return preds.gather(2, pick)[:, :, 0]

    def proposals(
        self, a: torch.Tensor, b_prev: torch.Tensor, text: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(B, L, K, l*F) the K proposed next steps and (B, L, K) the choice's logits (None: K = 1)."""
        h = self._state(a, b_prev, text)
        preds = self.out(h).unflatten(-1, (self.config.modes, self.config.step_dim))
        return preds, None if self.choose is None else self.choose(h)

    def _state(self, a: torch.Tensor, b_prev: torch.Tensor, text: torch.Tensor | None) -> torch.Tensor:
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
    ) -> torch.Tensor:
        """Mean squared (kind "mse") or absolute ("l1") error of the reactor's normalised next-step
        features, each of the F features weighted by `weight` (F,) where given. With modes, in
        training: the nearest proposal's error, `relax` x the mean of all proposals' and
        `choice_weight` x the choice's cross-entropy (module docstring); in eval mode: the chosen
        proposal's error, comparable with a single-mode model's. `windows` (B,): a weight per window
        (the weighted mean over windows). With a horizon, `b` holds H steps per row (B, L, H*l*F);
        in training the steps after the next add their error, weighted by 1 / H each."""
        c = self.config
        h = self._state(a, b_prev, text)
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

        ahead = torch.zeros((), device=per.device)
        if self.ahead is not None and self.training and later.shape[-1]:
            d = (self.ahead(h).float() - later) ** 2
            if weight is not None:
                d = d.view(*d.shape[:-1], -1, c.stride, c.feature_dim) * weight
            ahead = mean(d.flatten(2).mean(-1)) * (c.horizon - 1) / c.horizon
        if logits is None:
            return mean(per[..., 0]) + ahead
        if not self.training:
            return mean(per.gather(-1, logits.argmax(-1, keepdim=True))[..., 0])
        win = per.detach().argmin(-1)
        choice = nn.functional.cross_entropy(logits.float().flatten(0, 1), win.flatten(), reduction="none")
        nearest = per.gather(-1, win[..., None])[..., 0]
        chosen = mean(nearest) + relax * mean(per.mean(-1)) + choice_weight * mean(choice.view_as(nearest))
        return chosen + ahead


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
    ) -> None:
        """`anchor_pull`: the placement smoothing this reactor was measured with (its config.json's
        "anchor_pull", chosen on validation clips; ego.follow_anchor); None: the pipeline's.
        `guidance`: the instruction's guidance scale g (module docstring; None or 1: none); it costs
        a second row in the same forward pass, only while an instruction is set. `partner_weight`: w
        of "Leading with the instruction" (None or 1: none; w < 1 needs a reactor with `partner_null`)."""
        if guidance is not None and not (np.isfinite(guidance) and guidance >= 0.0):
            raise ValueError(f"guidance must be a finite number >= 0, got {guidance!r}")
        self.guidance = 1.0 if guidance is None else float(guidance)
        self.partner_weight = 1.0 if partner_weight is None else float(partner_weight)
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
            self._text = None
            return
        self._text = torch.as_tensor(np.asarray(self.embed([text]), dtype=np.float32)[:1]).to(self.device)

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
            return self.net(a, b, self._text)[0, -1].float().cpu().numpy()
        # one forward pass: told, then untold (NaN: the no-instruction vector) where g != 1, then the
        # partner hidden (codes -1) where w != 1; only the rows a term needs
        texts, rows = [self._text], [a]
        if g != 1.0:
            texts, rows = [*texts, torch.full_like(self._text, float("nan"))], [*rows, a]
        if w != 1.0:
            texts, rows = [*texts, self._text], [*rows, torch.full_like(a, -1)]
        out = self.net(torch.cat(rows), b.expand(len(rows), -1, -1), torch.cat(texts))[:, -1].float()
        c = out[0]
        pred = c + (g - 1.0) * (c - out[1]) if g != 1.0 else c
        return (pred - (1.0 - w) * (c - out[-1]) if w != 1.0 else pred).cpu().numpy()

    def react(self, codes_a: np.ndarray, start_b: np.ndarray | None = None) -> np.ndarray:
        """(L, D) actor codes -> (L, D) reactor codes from a fresh start (optionally its first step)."""
        self.reset()
        return np.stack(
            [
                self.step(row, start_b if t == 0 and start_b is not None else None)
                for t, row in enumerate(codes_a)
            ]
        )


__all__ = [
    "REACTOR_PRESETS",
    "SmallReactorConfig",
    "SmallReactorNet",
    "SmallStreamingReactor",
    "reactor_shape",
]
