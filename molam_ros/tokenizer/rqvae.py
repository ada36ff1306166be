"""The causal residual-quantized VAE that turns motion into tokens and back: the whole model, one file.

It is over 500 lines on purpose (docs/style.md, after nanoGPT): the model read top to bottom in one
sitting, from the causal convolution to the checkpoint format, with its streaming step beside it.

It follows T2M-GPT (Zhang et al., CVPR 2023: the 1-D conv encoder/decoder with dilated residual
blocks, EMA codebooks with code reset) and MoMask (Guo et al., CVPR 2024: a residual quantizer of
D codebooks, quantizer dropout so that fewer depths still decode), with one change the product
needs: every convolution is causal (left padding only), so a stream fed l frames at a time gives
exactly the tokens of a whole-sequence pass, and decoding token by token gives its frames.

Read bottom-up: CausalConv1d -> CausalStack -> ResBlock -> Encoder / Decoder -> Codebook ->
ResidualVQ -> RQVAE -> checkpoints.

Shapes: B batch (people), T frames, F features (268 ego or 262 intergen, `motion/layout.py`),
T' = T / l token steps, C = code_dim, D depths, K codes per depth. With relation codes
(`TokenizerConfig.relation_quantizers` R > 0) the 4 numbers that place the person relative to
their partner also get an encoder, R codebooks (latent width Cr) and a decoder of their own, and a
step's codes are (D + R,): the body's, then the relation's (README, "Relation codes").
The model works on normalised features (FeatureStats); whoever feeds it normalises and
de-normalises, with the stats stored in the checkpoint.

Streaming state: every conv with left padding p > 0 keeps the last p frames of its input,
(B, C_in, p). A stack's state is the flat list of its convs' states in module order, so
`encode_step(frames, state) -> (codes, new_state)` is a pure function of tensors, its state has a
fixed size (one step costs the same however long the stream has run), and an ONNX step graph
takes and returns the list as inputs and outputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 (the torch idiom)
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from molam_ros.motion.layout import layout_of
from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.config import TokenizerConfig

State = list[Tensor]

# --- causal convolutions with an explicit streaming state


class CausalConv1d(nn.Conv1d):
    """A Conv1d that sees only the past: `pad` zeros on the left, none on the right.

    With kernel k, dilation d and stride s the left padding is (k - 1) d + 1 - s. Output j then
    covers input frames up to j s + s - 1, the last frame of its own block, so a strided conv never
    waits for the next block, and the output has exactly T / s frames.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, *, stride: int = 1, dilation: int = 1) -> None:
        super().__init__(c_in, c_out, kernel, stride=stride, dilation=dilation)
        self.pad = (kernel - 1) * dilation + 1 - stride
        if self.pad < 0:
            raise ValueError(f"kernel {kernel} with dilation {dilation} is shorter than stride {stride}")

    def forward(self, x: Tensor) -> Tensor:  # (B, C_in, T) -> (B, C_out, T / stride)
        return self._conv_forward(F.pad(x, (self.pad, 0)), self.weight, self.bias)

    def state_shapes(self) -> list[tuple[int, int]]:
        """(channels, frames) of each state tensor: the last `pad` input frames, or nothing."""
        return [(self.in_channels, self.pad)] if self.pad else []

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (B, C_in, n), n a multiple of the stride; the state stands in for the zero padding.

        Computed as im2col + one matmul rather than F.conv1d: for the few frames of a step, CPU
        conv kernels cost ~100 us per call (measured, torch 2.13, batch 1, more than one output
        frame) against ~20 us for this, and it exports as Slice/Concat/MatMul. The result equals
        `forward`'s to float rounding (~1e-7), far below what could change a code.
        """
        xs = torch.cat([state[0], x], dim=-1) if self.pad else x  # (B, C_in, pad + n)
        (k,), (d,), (s,) = self.kernel_size, self.dilation, self.stride
        B, n_out = x.shape[0], x.shape[-1] // s
        if k == 1 and s == 1:
            cols = xs.transpose(1, 2)  # (B, n, C_in): a 1x1 conv is a linear map per frame
        else:
            # Output j reads frames j s + m d, m = 0..k-1, of xs: k slices of (B, C_in, n_out).
            taps = [xs[..., m * d : m * d + (n_out - 1) * s + 1 : s] for m in range(k)]
            cols = torch.stack(taps, dim=-1).transpose(1, 2).reshape(B, n_out, -1)  # (B, n_out, C_in k)
        y = F.linear(cols, self.weight.reshape(self.out_channels, -1), self.bias)  # (B, n_out, C_out)
        return y.transpose(1, 2), [xs[..., -self.pad :]] if self.pad else []


def _state_shapes(module: nn.Module) -> list[tuple[int, int]]:
    return module.state_shapes() if hasattr(module, "state_shapes") else []


class CausalStack(nn.Sequential):
    """nn.Sequential whose `step` threads each child's slice of a flat state list.

    Children without `step` (ReLU, nearest Upsample) act frame by frame and need no state.
    """

    def __init__(self, *layers: nn.Module) -> None:
        super().__init__(*layers)
        # State tensors per child (-1: stateless, no `step`), fixed at construction and cached:
        # walking the modules on every step cost more than some of the convs.
        self._counts = [len(_state_shapes(m)) if hasattr(m, "step") else -1 for m in self]

    def state_shapes(self) -> list[tuple[int, int]]:
        return [s for m in self for s in _state_shapes(m)]

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        new_state: State = []
        i = 0
        for m, n in zip(self, self._counts, strict=True):
            if n >= 0:
                x, s = m.step(x, state[i : i + n])
                new_state += s
                i += n
            else:
                x = m(x)
        return x, new_state


class ResBlock(nn.Module):
    """x + conv1x1(relu(dilated causal conv(relu(x)))): T2M-GPT's ResConv1DBlock, made causal.

    No normalisation layer (T2M-GPT's default too): batch or group norm over time would need
    statistics of the future or a running state the stream would have to carry.
    """

    def __init__(self, width: int, kernel: int, dilation: int) -> None:
        super().__init__()
        self.body = CausalStack(
            nn.ReLU(),
            CausalConv1d(width, width, kernel, dilation=dilation),
            nn.ReLU(),
            CausalConv1d(width, width, 1),
        )

    def forward(self, x: Tensor) -> Tensor:  # (B, W, T) -> (B, W, T)
        return x + self.body(x)

    def state_shapes(self) -> list[tuple[int, int]]:
        return self.body.state_shapes()

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        y, state = self.body.step(x, state)
        return x + y, state


def _res_blocks(c: TokenizerConfig, width: int) -> list[ResBlock]:
    # Largest dilation first (T2M-GPT's reverse_dilation): the wide context is read before the fine one.
    dilations = [c.dilation_growth**i for i in range(c.res_depth)][::-1]
    return [ResBlock(width, c.conv_kernel, d) for d in dilations]


# --- encoder and decoder


def _encoder_stack(c: TokenizerConfig, c_in: int, width: int, c_out: int) -> CausalStack:
    """conv in, down_t x (stride-2 conv, res blocks), conv out: (B, c_in, T) -> (B, c_out, T / l)."""
    layers: list[nn.Module] = [CausalConv1d(c_in, width, c.conv_kernel), nn.ReLU()]
    for _ in range(c.down_t):
        layers += [CausalConv1d(width, width, c.down_kernel, stride=2), *_res_blocks(c, width)]
    layers.append(CausalConv1d(width, c_out, c.conv_kernel))
    return CausalStack(*layers)


def _decoder_stack(c: TokenizerConfig, c_in: int, width: int, c_out: int) -> CausalStack:
    """conv in, down_t x (res blocks, x2 nearest upsample, conv), conv out: (B, c_in, T') -> (B, c_out, T' l).

    Nearest upsampling repeats each step's features, so a token step's l frames depend on that token
    and the ones before it only (a transposed conv would do too, but Resize exports more simply).
    """
    layers: list[nn.Module] = [CausalConv1d(c_in, width, c.conv_kernel), nn.ReLU()]
    for _ in range(c.down_t):
        layers += [
            *_res_blocks(c, width),
            nn.Upsample(scale_factor=2, mode="nearest"),
            CausalConv1d(width, width, c.conv_kernel),
        ]
    layers += [
        CausalConv1d(width, width, c.conv_kernel),
        nn.ReLU(),
        CausalConv1d(width, c_out, c.conv_kernel),
    ]
    return CausalStack(*layers)


class StepMLP(nn.Module):
    """An MLP per token step, with a causal stack's interface (`forward`, `step`, `state_shapes`).

    down: (B, c_in, n l) frames -> (B, c_out, n) latents, each step from its own l frames; up: the
    reverse. It reads no earlier step, so it has no streaming state. The relation codes' cheap net.
    """

    def __init__(self, c_in: int, width: int, c_out: int, stride: int, *, up: bool) -> None:
        super().__init__()
        self.stride, self.up, self.c_out = stride, up, c_out
        n_in, n_out = (c_in, c_out * stride) if up else (c_in * stride, c_out)
        self.net = nn.Sequential(
            nn.Linear(n_in, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, n_out)
        )

    def state_shapes(self) -> list[tuple[int, int]]:
        return []

    def forward(self, x: Tensor) -> Tensor:
        B = x.shape[0]
        if self.up:  # (B, C, n) -> (B, n, l c_out) -> (B, n l, c_out) -> (B, c_out, n l)
            return self.net(x.transpose(1, 2)).reshape(B, -1, self.c_out).transpose(1, 2)
        # (B, c_in, n l) -> (B, n l, c_in) -> (B, n, l c_in), a step's frames side by side -> (B, c_out, n)
        return self.net(x.transpose(1, 2).reshape(B, -1, self.stride * x.shape[1])).transpose(1, 2)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        return self.forward(x), []


def _relation_net(c: TokenizerConfig, n_rel: int, *, up: bool) -> nn.Module:
    """The relation codes' encoder (up=False) or decoder: a conv stack or a per-step MLP (`relation_net`)."""
    c_in, c_out = (c.relation_code_dim, n_rel) if up else (n_rel, c.relation_code_dim)
    if c.relation_net == "step":
        return StepMLP(c_in, c.relation_width, c_out, c.stride, up=up)
    return (_decoder_stack if up else _encoder_stack)(c, c_in, c.relation_width, c_out)


def _relation_span(c: TokenizerConfig) -> tuple[int, int]:
    """(start, stop) of the relation features (layout.relation, contiguous: REL_POS then REL_HEAD)."""
    slices = layout_of(c.feature_dim).relation
    if not slices:
        return 0, 0
    for a, b in zip(slices, slices[1:], strict=False):
        if a.stop != b.start:
            raise ValueError("the relation codes need the layout's relation features side by side")
    return slices[0].start, slices[-1].stop


class _BodyAndRelation(nn.Module):
    """The body's net and, with relation codes, the relation's: one streaming state list, the body's
    states first (what Encoder and Decoder share)."""

    def __init__(self, c: TokenizerConfig, net: CausalStack, *, up: bool) -> None:
        super().__init__()
        self.net = net
        self.rel = _relation_span(c)
        self.relation = _relation_net(c, self.rel[1] - self.rel[0], up=up) if c.relation_quantizers else None
        self._n_body = len(self.net.state_shapes())

    def state_shapes(self) -> list[tuple[int, int]]:
        """The body stack's states, then the relation net's."""
        return self.net.state_shapes() + (self.relation.state_shapes() if self.relation is not None else [])


class Encoder(_BodyAndRelation):
    """(B, T, F) normalised frames -> (B, T / l, C [+ Cr]) latents.

    `net` reads every feature into the body latent (C); with relation codes, `relation` reads the
    relation features alone into a latent of their own (Cr), concatenated after it.
    """

    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__(c, _encoder_stack(c, c.feature_dim, c.width, c.code_dim), up=False)

    def forward(self, x: Tensor) -> Tensor:
        # (B, T, F) -> (B, F, T) -> (B, C, T') -> (B, T', C)
        z = self.net(x.transpose(1, 2))
        if self.relation is not None:
            z = torch.cat([z, self.relation(x[..., self.rel[0] : self.rel[1]].transpose(1, 2))], dim=1)
        return z.transpose(1, 2)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        y, new = self.net.step(x.transpose(1, 2), state[: self._n_body])  # (B, F, n l) -> (B, C, n)
        if self.relation is not None:
            r, s = self.relation.step(
                x[..., self.rel[0] : self.rel[1]].transpose(1, 2), state[self._n_body :]
            )
            y, new = torch.cat([y, r], dim=1), new + s
        return y.transpose(1, 2), new


class Decoder(_BodyAndRelation):
    """(B, T', C) body latents [and (B, T', Cr) relation latents] -> (B, T' l, F) frames.

    With relation latents, the relation features come from `relation` (their own decoder) in place
    of the body decoder's; without them (a tokenizer without relation codes, or codes cut to the D
    body depths) the body decoder's own relation features stand.
    """

    def __init__(self, c: TokenizerConfig) -> None:
        super().__init__(c, _decoder_stack(c, c.code_dim, c.width, c.feature_dim), up=True)

    def _merge(self, y: Tensor, r: Tensor) -> Tensor:  # (B, F, T) with r (B, 4, T) in the relation rows
        return torch.cat([y[:, : self.rel[0]], r, y[:, self.rel[1] :]], dim=1)

    def forward(self, z: Tensor, zr: Tensor | None = None) -> Tensor:
        # (B, T', C) -> (B, C, T') -> (B, F, T) -> (B, T, F)
        y = self.net(z.transpose(1, 2))
        if zr is not None and self.relation is not None:
            y = self._merge(y, self.relation(zr.transpose(1, 2)))
        return y.transpose(1, 2)

    def step(self, z: Tensor, state: State, zr: Tensor | None = None) -> tuple[Tensor, State]:
        """Without `zr` the relation stack's state is carried unchanged."""
        y, new = self.net.step(z.transpose(1, 2), state[: self._n_body])  # (B, C, n) -> (B, F, n l)
        if self.relation is not None:
            if zr is None:
                new = new + list(state[self._n_body :])
            else:
                r, s = self.relation.step(zr.transpose(1, 2), state[self._n_body :])
                y, new = self._merge(y, r), new + s
        return y.transpose(1, 2), new


# --- residual vector quantizer (written here rather than taken from vector-quantize-pytorch: see RQVAE)


class Codebook(nn.Module):
    """K codes of dimension C, learnt by exponential moving averages (no gradient), with dead-code reset.

    Buffers: `embed` (K, C) the codes; `cluster_size` (K,) EMA of hits per batch; `embed_sum` (K, C)
    EMA of the sum of latents assigned to each code (embed = embed_sum / cluster_size); `initted`,
    whether the codes were seeded from data (the first training batch, as T2M-GPT). `embed_sq`
    (K,) caches ||e||^2 (not saved), so the streaming step does not recompute it per depth.
    """

    def __init__(self, codebook_size: int, dim: int) -> None:
        super().__init__()
        self.codebook_size = codebook_size
        self.register_buffer("embed", torch.randn(codebook_size, dim))
        self.register_buffer("cluster_size", torch.ones(codebook_size))
        self.register_buffer("embed_sum", self.embed.clone())
        self.register_buffer("initted", torch.tensor(False))
        self.register_buffer("embed_sq", self.embed.pow(2).sum(-1), persistent=False)

    def _refresh(self) -> None:
        """Recompute `embed_sq`; called after every change of `embed` (EMA step, seeding, loading)."""
        self.embed_sq.copy_(self.embed.pow(2).sum(-1))

    def _load_from_state_dict(self, *args: Any, **kwargs: Any) -> None:
        super()._load_from_state_dict(*args, **kwargs)
        with torch.no_grad():
            self._refresh()

    def nearest(self, x: Tensor) -> Tensor:  # (N, C) -> (N,) long
        # argmin ||x - e||^2 = argmin (||e||^2 - 2 x.e): ||x||^2 is the same for every code.
        scores = self.embed_sq - 2.0 * (x @ self.embed.t())  # (N, K)
        return scores.argmin(-1)

    def lookup(self, idx: Tensor) -> Tensor:  # (...,) long -> (..., C)
        return F.embedding(idx, self.embed)

    def _sample(self, x: Tensor, n: int) -> Tensor:  # n rows of x (N, C) at random, with replacement
        return x[torch.randint(0, x.shape[0], (n,), device=x.device)]

    @torch.no_grad()
    def init_from(self, x: Tensor) -> None:
        """Seed the codes with random latents x (N, C) of the first batch, so none start far from the data."""
        self.embed.copy_(self._sample(x, self.codebook_size))
        self.embed_sum.copy_(self.embed)
        self.cluster_size.fill_(1.0)
        self.initted.fill_(True)
        self._refresh()

    @torch.no_grad()
    def ema_update(self, x: Tensor, idx: Tensor, decay: float, dead_threshold: float) -> None:
        """Move each code towards the mean of the latents x (N, C) assigned to it by idx (N,).

        Codes hit less than `dead_threshold` times per batch (in EMA) are re-seeded with random
        latents of this batch, with their EMA reset to `dead_threshold` hits there, so they get a
        fair chance before being reset again.
        """
        onehot = F.one_hot(idx, self.codebook_size).type_as(x)  # (N, K)
        self.cluster_size.mul_(decay).add_(onehot.sum(0), alpha=1.0 - decay)  # (K,)
        self.embed_sum.mul_(decay).add_(onehot.t() @ x, alpha=1.0 - decay)  # (K, C)
        if dead_threshold > 0:
            dead = self.cluster_size < dead_threshold  # (K,)
            seeds = self._sample(x, self.codebook_size)  # (K, C), only the dead rows are used
            self.embed_sum.copy_(torch.where(dead[:, None], seeds * dead_threshold, self.embed_sum))
            self.cluster_size.masked_fill_(dead, dead_threshold)
        # A code never hit with resets off decays towards 0/0; it keeps its place instead.
        alive = self.cluster_size > 1e-6  # (K,)
        mean = self.embed_sum / self.cluster_size.clamp(min=1e-6)[:, None]  # (K, C)
        self.embed.copy_(torch.where(alive[:, None], mean, self.embed))
        self._refresh()


def _perplexity(idx: Tensor, codebook_size: int) -> Tensor:
    """exp(entropy) of the code histogram of idx: K when all codes are used equally, 1 when one is."""
    p = torch.bincount(idx, minlength=codebook_size).float() / max(idx.numel(), 1)
    return torch.exp(-(p * torch.log(p.clamp(min=1e-10))).sum())


class ResidualVQ(nn.Module):
    """D codebooks applied in turn, each to what the previous ones left: z ~ e_1[k_1] + ... + e_D[k_D]."""

    def __init__(self, c: TokenizerConfig, *, depth: int | None = None, dim: int | None = None) -> None:
        """The body quantizer (D depths of code_dim) by default; `depth`/`dim` for the relation's."""
        super().__init__()
        n, dim = depth or c.num_quantizers, dim or c.code_dim
        self.codebooks = nn.ModuleList(Codebook(c.codebook_size, dim) for _ in range(n))
        self.decay = c.ema_decay
        self.dead_threshold = c.dead_code_threshold
        self.dropout = c.quantizer_dropout

    def encode(self, z: Tensor, depth: int | None = None) -> Tensor:  # (N, C) -> codes (N, depth) long
        codes = []
        residual = z
        for cb in self.codebooks[: depth or len(self.codebooks)]:
            idx = cb.nearest(residual)  # (N,)
            residual = residual - cb.lookup(idx)
            codes.append(idx)
        return torch.stack(codes, dim=-1)

    def decode(self, codes: Tensor) -> Tensor:  # (..., d) long, d <= D -> (..., C): sum of the first d depths
        out = self.codebooks[0].lookup(codes[..., 0])
        for i in range(1, codes.shape[-1]):
            out = out + self.codebooks[i].lookup(codes[..., i])
        return out

    def forward(self, z: Tensor, depth: int | None = None) -> tuple[Tensor, Tensor, Tensor, int]:
        """Training pass: z (N, C) -> (quantized (N, C), commitment loss, perplexity (D,), depths used).

        The quantized output carries z's gradient (straight-through estimator, applied once to the
        sum so the encoder gets the decoder's gradient once, not D times). In training mode the
        codebooks take their EMA step on this batch, and with probability `dropout` only the first
        1..D-1 depths are used (MoMask), so that coarse codes alone still decode to a motion.
        Perplexity is 0 for depths dropped in this batch. A given `depth` (0..D) is used as it is,
        without the dropout draw (the caller drew it over body and relation depths together).
        """
        if depth is None:
            depth = len(self.codebooks)
            if self.training and depth > 1 and float(torch.rand(())) < self.dropout:
                depth = int(torch.randint(1, depth, ()))
        residual = z
        quantized = torch.zeros_like(z)
        commit = z.new_zeros(())
        perplexity = z.new_zeros(len(self.codebooks))
        for i, cb in enumerate(self.codebooks[:depth]):
            if self.training and not bool(cb.initted):
                cb.init_from(residual.detach())
            idx = cb.nearest(residual.detach())  # (N,)
            q = cb.lookup(idx)  # (N, C), a buffer: no gradient
            if self.training:
                cb.ema_update(residual.detach(), idx, self.decay, self.dead_threshold)
            commit = commit + F.mse_loss(residual, q)  # pulls the encoder's residual to its code
            residual = residual - q
            quantized = quantized + q
            perplexity[i] = _perplexity(idx, cb.codebook_size)
        return z + (quantized - z).detach(), commit / max(depth, 1), perplexity, depth


# --- the model


def _drift(recon: Tensor, x: Tensor, dims: tuple[slice, ...], beta: float) -> Tensor:
    """Smooth L1 between running sums over time of recon and x (B, T, F) on `dims`; 0 when none."""
    if not dims:
        return recon.new_zeros(())
    idx = torch.cat([torch.arange(s.start, s.stop) for s in dims]).to(recon.device)
    return F.smooth_l1_loss(recon[..., idx].cumsum(1), x[..., idx].cumsum(1), beta=beta)


def _check_tensor(x: Any, what: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} must be a torch.Tensor, got {type(x).__name__}")


class RQVAE(nn.Module):
    """Causal RQ-VAE: (B, T, F) normalised frames <-> (B, T / l, D) codes.

    The residual quantizer is our own ~80 lines rather than vector-quantize-pytorch's ResidualVQ:
    that one pulls in einx, loguru and torch-einops-utils, draws quantizer dropout from Python's
    `random`, and routes even inference through einx/einops rearranges, kmeans and distributed
    branches, while the ONNX/TensorRT step graphs need exactly MatMul + ArgMin + Gather. Owning the
    buffers also keeps checkpoint keys stable across library releases.
    """

    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = ResidualVQ(config)
        R = config.relation_quantizers
        self.relation_quantizer = ResidualVQ(config, depth=R, dim=config.relation_code_dim) if R else None
        self.decoder = Decoder(config)
        # (channels, frames) of each streaming state tensor, in order; fixed by the config.
        self.encoder_state_shapes = self.encoder.state_shapes()
        self.decoder_state_shapes = self.decoder.state_shapes()
        self.body_frozen = False

    def freeze_body(self) -> None:
        """Train the relation codes alone: the body encoder, decoder and codebooks stay as they are,
        so the D body codes of every clip stay exactly those of the model this one started from
        (what brain models trained on them read and write)."""
        if self.relation_quantizer is None:
            raise ValueError("freeze_body needs relation codes (TokenizerConfig.relation_quantizers > 0)")
        for p in (*self.encoder.net.parameters(), *self.decoder.net.parameters()):
            p.requires_grad_(False)
        self.body_frozen = True
        self.train(self.training)

    def train(self, mode: bool = True) -> RQVAE:
        super().train(mode)
        if self.body_frozen:
            self.quantizer.train(False)  # no EMA step on the frozen body codebooks
        return self

    @property
    def stride(self) -> int:
        """l: frames per token step."""
        return self.config.stride

    def num_params(self) -> int:
        """Trainable parameters (the codebooks are EMA buffers and not counted)."""
        return sum(p.numel() for p in self.parameters())

    # --- input checks (plain Python on shapes plus one finiteness sync; skipped by export adapters)

    def _check_frames(self, x: Any, *, whole: bool = True) -> None:
        _check_tensor(x, "frames")
        F_, l = self.config.feature_dim, self.stride
        if x.ndim != 3 or x.shape[-1] != F_:
            raise ValueError(
                f"expected frames of shape (B, T, {F_}) (normalised features), got {tuple(x.shape)}"
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"frames are empty (zero batch or zero length): {tuple(x.shape)}")
        if x.shape[1] % l:
            where = "a whole-sequence pass" if whole else "a streaming step"
            raise ValueError(
                f"{where} needs T a multiple of the tokenizer stride l={l}, got T={x.shape[1]}; "
                "crop or pad the sequence, or buffer frames until a whole block of l has arrived"
            )
        if not x.is_floating_point():
            raise TypeError(f"frames must be floating point, got {x.dtype}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("frames contain NaN or infinite values")

    def _check_codes(self, codes: Any) -> None:
        _check_tensor(codes, "codes")
        D, K = self.config.depths, self.config.codebook_size
        if codes.ndim != 3 or not 1 <= codes.shape[-1] <= D:
            raise ValueError(
                f"expected codes of shape (B, T', d) with 1 <= d <= {D}, got {tuple(codes.shape)}"
            )
        if codes.shape[0] == 0 or codes.shape[1] == 0:
            raise ValueError(f"codes are empty (zero batch or zero length): {tuple(codes.shape)}")
        if codes.dtype not in (torch.int64, torch.int32):
            raise TypeError(f"codes must be int64 or int32, got {codes.dtype}")
        if bool((codes < 0).any()) or bool((codes >= K).any()):
            raise ValueError(f"codes out of range [0, {K}): min {int(codes.min())}, max {int(codes.max())}")

    def _check_state(self, state: Any, shapes: list[tuple[int, int]], batch: int, what: str) -> None:
        if not isinstance(state, list | tuple) or len(state) != len(shapes):
            n = len(state) if isinstance(state, list | tuple) else type(state).__name__
            raise ValueError(f"{what} state must be a list of {len(shapes)} tensors, got {n}")
        for i, (s, (c, p)) in enumerate(zip(state, shapes, strict=True)):
            _check_tensor(s, f"{what} state[{i}]")
            if tuple(s.shape) != (batch, c, p):
                raise ValueError(f"{what} state[{i}] has shape {tuple(s.shape)}, expected {(batch, c, p)}")

    # --- whole sequences

    def _codes_of(self, z: Tensor, depth: int | None = None) -> Tensor:
        """Latents (B, n, C [+ Cr]) -> codes (B, n, depth or D + R): body depths, then relation depths."""
        B, n, _ = z.shape
        C, D = self.config.code_dim, self.config.num_quantizers
        depth = depth or self.config.depths
        codes = self.quantizer.encode(z[..., :C].reshape(B * n, C), min(depth, D)).reshape(B, n, -1)
        if depth > D and self.relation_quantizer is not None:
            zr = z[..., C:].reshape(B * n, -1)
            codes = torch.cat([codes, self.relation_quantizer.encode(zr, depth - D).reshape(B, n, -1)], -1)
        return codes

    def _latents_of(self, codes: Tensor) -> tuple[Tensor, Tensor | None]:
        """codes (B, n, d) -> (body latents (B, n, C), relation latents (B, n, Cr) or None when d <= D)."""
        D = self.config.num_quantizers
        codes = codes.long()
        zr = None
        if codes.shape[-1] > D and self.relation_quantizer is not None:
            zr = self.relation_quantizer.decode(codes[..., D:])
        return self.quantizer.decode(codes[..., :D]), zr

    def encode(self, x: Tensor, depth: int | None = None, *, check: bool = True) -> Tensor:
        """x (B, T, F) normalised frames, T a multiple of l -> codes (B, T / l, depth or D + R) int64.

        `check=False` skips the input checks (and their data-dependent syncs), for graph export.
        """
        if check:
            self._check_frames(x)
        if depth is not None and not 1 <= depth <= self.config.depths:
            raise ValueError(f"depth must be in 1..{self.config.depths}, got {depth}")
        return self._codes_of(self.encoder(x), depth)

    def decode(self, codes: Tensor, *, check: bool = True) -> Tensor:
        """codes (B, T', d), d <= D + R (fewer depths give a coarser motion; d <= D decodes the
        relation from the body codes) -> frames (B, T' l, F)."""
        if check:
            self._check_codes(codes)
        return self.decoder(*self._latents_of(codes))  # (B, T', C) -> (B, T, F)

    def decode_from_latent(self, z: Tensor) -> Tensor:
        """Quantized (or any) latents (B, T', C), or (B, T', C + Cr) with relation codes -> (B, T' l, F)."""
        _check_tensor(z, "latents")
        C, c = self.config.code_dim, self.config
        widths = (C, C + c.relation_code_dim) if c.relation_quantizers else (C,)
        if z.ndim != 3 or z.shape[-1] not in widths or z.shape[1] == 0:
            raise ValueError(f"expected latents of shape (B, T' > 0, one of {widths}), got {tuple(z.shape)}")
        return self.decoder(z[..., :C], z[..., C:] if z.shape[-1] > C else None)

    def forward(self, x: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Training and evaluation pass: x (B, T, F) -> (reconstruction (B, T, F), losses).

        losses: `loss` (the total to minimise), `recon` (smooth L1 over all features), `recon_traj`
        (drift of the integrated root, `_drift`), `recon_rel` (the relation to the partner), `recon_pos`,
        `recon_vel`, `recon_contact` (per slice), `commit`, `perplexity` (D,) and `depths` (used in
        this batch; < D under quantizer dropout). In training mode the codebooks take their EMA step.
        """
        self._check_frames(x)
        c = self.config
        z = self.encoder(x)  # (B, T', C [+ Cr])
        B, T_, _ = z.shape
        C, D, R = c.code_dim, c.num_quantizers, c.relation_quantizers
        # Quantizer dropout over the D + R depths as one prefix (MoMask): the body's coarse prefixes
        # decode without relation codes, as codes cut to d <= D do. A frozen body keeps all D.
        depths = D + R
        if self.training and depths > 1 and float(torch.rand(())) < c.quantizer_dropout:
            low = D + 1 if self.body_frozen else 1
            depths = int(torch.randint(low, D + R, ())) if low < D + R else depths
        zq, commit, perplexity, _ = self.quantizer(z[..., :C].reshape(B * T_, C), min(depths, D))
        zr = None
        if self.relation_quantizer is not None and depths > D:
            zr, commit_r, perplexity_r, _ = self.relation_quantizer(
                z[..., C:].reshape(B * T_, -1), depths - D
            )
            commit, zr = commit + commit_r, zr.reshape(B, T_, -1)
            perplexity = torch.cat([perplexity, perplexity_r])
        elif R:
            perplexity = torch.cat([perplexity, perplexity.new_zeros(R)])
        recon = self.decoder(zq.reshape(B, T_, C), zr)  # (B, T, F)
        # Smooth L1 (T2M-GPT) is less swayed than L2 by the rare large errors of fast motion.
        err = F.smooth_l1_loss(recon, x, reduction="none", beta=c.recon_beta)  # (B, T, F)
        layout = layout_of(c.feature_dim)
        losses = {
            "recon": err.mean(),
            "recon_pos": torch.cat([err[..., s] for s in layout.positions], dim=-1).mean(),
            "recon_vel": torch.cat([err[..., s] for s in layout.velocities], dim=-1).mean(),
            "recon_contact": err[..., layout.contacts].mean(),
            "recon_traj": _drift(recon, x, layout.trajectory, c.recon_beta),
            "recon_rel": (
                torch.cat([err[..., s] for s in layout.relation], dim=-1).mean()
                if layout.relation
                else err.new_zeros(())
            ),
            "commit": commit,
            "perplexity": perplexity.detach(),
            "depths": torch.tensor(depths),
        }
        losses["loss"] = (
            losses["recon"]
            + c.pos_weight * losses["recon_pos"]
            + c.vel_weight * losses["recon_vel"]
            + c.traj_weight * losses["recon_traj"]
            + c.rel_weight * losses["recon_rel"]
            + c.commitment_beta * commit
        )
        return recon, losses

    def configure_optimizer(
        self, *, lr: float, weight_decay: float, betas: tuple[float, float]
    ) -> torch.optim.AdamW:
        """AdamW with decay on conv kernels (>= 2-D) only: decaying biases only shifts outputs."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        return torch.optim.AdamW(groups, lr=lr, betas=betas)

    # --- streaming: explicit, fixed-size state; l frames (or any multiple) per call

    def _new_state(self, shapes: list[tuple[int, int]], batch: int, device: Any, dtype: Any) -> State:
        p = next(self.parameters())
        return [
            torch.zeros(batch, c, n, device=device or p.device, dtype=dtype or p.dtype) for c, n in shapes
        ]

    def init_encoder_state(self, batch: int = 1, *, device: Any = None, dtype: Any = None) -> State:
        """Zeros in place of the whole-sequence pass's left padding: one (B, C_in, pad) per causal conv."""
        return self._new_state(self.encoder_state_shapes, batch, device, dtype)

    def init_decoder_state(self, batch: int = 1, *, device: Any = None, dtype: Any = None) -> State:
        return self._new_state(self.decoder_state_shapes, batch, device, dtype)

    def encode_step(self, frames: Tensor, state: State, *, check: bool = True) -> tuple[Tensor, State]:
        """frames (B, n l, F) -> (codes (B, n, D), new state); same codes as `encode` on the whole stream.

        `check=False` skips the input checks, for graph export and hot loops.
        """
        if check:
            self._check_frames(frames, whole=False)
            self._check_state(state, self.encoder_state_shapes, frames.shape[0], "encoder")
        z, state = self.encoder.step(frames, list(state))  # (B, n, C [+ Cr])
        return self._codes_of(z), state

    def decode_step(self, codes: Tensor, state: State, *, check: bool = True) -> tuple[Tensor, State]:
        """codes (B, n, d) -> (frames (B, n l, F), new state); same frames as `decode` on the whole stream."""
        if check:
            self._check_codes(codes)
            self._check_state(state, self.decoder_state_shapes, codes.shape[0], "decoder")
        zb, zr = self._latents_of(codes)
        return self.decoder.step(zb, list(state), zr)


# --- checkpoints: model.safetensors + config.json that rebuilds the model

CHECKPOINT_FORMAT = "molam-tokenizer"
CHECKPOINT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class CheckpointError(ValueError):
    """A tokenizer checkpoint directory that is missing, of another kind, or inconsistent."""


def save_checkpoint(
    model: RQVAE, directory: str | Path, *, stats: FeatureStats, extra: dict[str, Any] | None = None
) -> Path:
    """Write `model.safetensors` and `config.json` (format, the full TokenizerConfig, the feature
    stats embedded, and `extra`, e.g. training metadata) into `directory`; returns it.

    Files are written under temporary names and renamed, so an interrupted save leaves the previous
    checkpoint intact. The stats are embedded because the weights are meaningless without them.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    info = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model": "rqvae",
        "config": model.config.to_dict(),
        "stats": {"mean": stats.mean.tolist(), "std": stats.std.tolist(), "count": stats.count},
        "extra": extra or {},
    }
    tmp_weights, tmp_config = directory / (WEIGHTS_FILE + ".tmp"), directory / (CONFIG_FILE + ".tmp")
    save_file(tensors, str(tmp_weights), metadata={"format": CHECKPOINT_FORMAT})
    tmp_config.write_text(json.dumps(info, indent=1))
    tmp_weights.replace(directory / WEIGHTS_FILE)
    tmp_config.replace(directory / CONFIG_FILE)
    return directory


def read_checkpoint_info(directory: str | Path) -> dict[str, Any]:
    """The parsed and checked config.json of a tokenizer checkpoint (no weights loaded)."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; is {directory} a tokenizer checkpoint?")
    try:
        info = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(info, dict) or info.get("format") != CHECKPOINT_FORMAT or info.get("model") != "rqvae":
        got = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise CheckpointError(f"{path}: not a molam tokenizer checkpoint (format {got!r})")
    if info.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {info.get('version')}, expected {CHECKPOINT_VERSION}"
        )
    for key in ("config", "stats"):
        if not isinstance(info.get(key), dict):
            raise CheckpointError(f"{path}: missing the {key!r} section")
    return info


def checkpoint_identity(directory: str | Path) -> dict[str, Any]:
    """What a model trained on this tokenizer's codes must be paired with: the weights' sha256 and
    the motion layout (name, version, width). Recorded by the LLM's training, checked on loading."""
    from molam_ros.motion.layout import layout_of

    directory = Path(directory)
    info = read_checkpoint_info(directory)
    weights = directory / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: missing")
    layout = layout_of(int(info["config"]["feature_dim"]))
    return {
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
        "layout": layout.name,
        "layout_version": layout.version,
        "feature_dim": layout.dim,
    }


def check_pairing(recorded: dict[str, Any] | None, directory: str | Path, what: str) -> None:
    """Raise CheckpointError when `what` (an LLM checkpoint) was trained on another tokenizer.

    `recorded` is the identity stored at training time (None for models trained before it was
    recorded: only the layout width can be checked then, by the caller's engine)."""
    if not recorded:
        return
    now = checkpoint_identity(directory)
    if now != recorded:
        diff = ", ".join(f"{k} {recorded.get(k)!r} -> {v!r}" for k, v in now.items() if recorded.get(k) != v)
        raise CheckpointError(
            f"{what} was trained on the codes of another tokenizer than {directory} ({diff}); "
            "retrain it on this tokenizer (molam llm train) or name the tokenizer it was trained on"
        )


def load_checkpoint(
    directory: str | Path, *, device: str | torch.device = "cpu"
) -> tuple[RQVAE, TokenizerConfig, FeatureStats]:
    """Rebuild the model from config.json and load its weights; returns (model in eval mode, config, stats).

    Every tensor of the file must match the model the config builds, name and shape, or a
    CheckpointError says which ones differ (weights saved from another config, a truncated file).
    """
    directory = Path(directory)
    info = read_checkpoint_info(directory)
    try:
        config = TokenizerConfig.from_dict(info["config"])
        s = info["stats"]
        stats = FeatureStats(mean=np.asarray(s["mean"]), std=np.asarray(s["std"]), count=s["count"])
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{directory / CONFIG_FILE}: {e}") from e
    weights_path = directory / WEIGHTS_FILE
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing")
    try:
        tensors = load_file(str(weights_path))
    except Exception as e:  # safetensors raises its own error types for truncated or foreign files
        raise CheckpointError(f"{weights_path}: unreadable ({e})") from e
    model = RQVAE(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    mismatched = [
        f"{k}: file {tuple(tensors[k].shape)} vs config {tuple(v.shape)}"
        for k, v in expected.items()
        if k in tensors and tensors[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        lines = [f"{weights_path}: weights do not match the model its config.json describes"]
        lines += [f"  missing: {missing[:5]}{' ...' if len(missing) > 5 else ''}"] if missing else []
        lines += (
            [f"  unexpected: {unexpected[:5]}{' ...' if len(unexpected) > 5 else ''}"] if unexpected else []
        )
        lines += [f"  shape {m}" for m in mismatched[:5]]
        raise CheckpointError("\n".join(lines))
    model.load_state_dict(tensors)
    return model.to(device).eval(), config, stats
