"""A flow-matching head: samples a person's next step instead of regressing its mean.

Why. A regression of the next step answers doubt with the mean. Where the training clips point with
the left arm or the right, now or a second later, the generated person points with neither (README,
text to motion: point-and-look recognised 0 of 13); where a reactor sometimes walks over and
sometimes waits, it walks a fifth of the way. A head that samples from the distribution of the next
step commits to one of the answers, and the model, reading its own step back, goes on with it (as a
language model goes on with the word it sampled).

How. Per-step generative heads on a causal transformer's state are MAR's recipe (Li et al. 2024,
"Autoregressive image generation without vector quantization", a diffusion loss per token); here
with flow matching (Lipman et al. 2023; rectified flow, Liu et al. 2023): x_s = (1 - s) z + s x for
noise z and the recorded step x, the head learns the velocity x - z from (x_s, s, h), h the
transformer's state at that step, and a step is sampled by integrating the velocity from noise with
Euler steps. The state enters every block by adaptive layer norm (DiT, Peebles & Xie 2023), the
output layer starts at zero. Classifier-free guidance combines the velocities of told and untold
rows (`combine`), as the regression combines its predictions.

Why our own: diffusers' schedulers are built around image pipelines and a UNet; the whole sampler
here is an Euler loop over one small MLP.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

TIME_FEATURES = 64


def _time_features(s: torch.Tensor) -> torch.Tensor:
    """(N,) flow times in [0, 1] -> (N, TIME_FEATURES) sinusoids (as diffusion models embed time)."""
    half = TIME_FEATURES // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=s.device, dtype=torch.float32) / half)
    angles = 1000.0 * s.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class _Block(nn.Module):
    """A residual MLP block whose layer norm is shifted and scaled by the condition (adaLN)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(width, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.mod = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))
        nn.init.zeros_(self.mod[1].weight)
        nn.init.zeros_(self.mod[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.mod(c).chunk(3, dim=-1)
        return x + gate * self.mlp(self.ln(x) * (1 + scale) + shift)


class FlowHead(nn.Module):
    """Velocity of the flow from noise to a next step (dim,), conditioned on a state (cond,)."""

    def __init__(self, dim: int, cond: int, width: int, blocks: int = 3) -> None:
        super().__init__()
        self.dim = dim
        self.x_in = nn.Linear(dim, width)
        self.c_in = nn.Linear(cond, width)
        self.t_in = nn.Sequential(nn.Linear(TIME_FEATURES, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(_Block(width) for _ in range(blocks))
        self.ln = nn.LayerNorm(width, elementwise_affine=False)
        self.out = nn.Linear(width, dim)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def velocity(self, x: torch.Tensor, s: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """(N, dim) points on the flow, (N,) their times, (N, cond) states -> (N, dim) velocities."""
        c = self.c_in(h) + self.t_in(_time_features(s).to(h.dtype))
        z = self.x_in(x)
        for block in self.blocks:
            z = block(z, c)
        return self.out(self.ln(z))

    def loss(
        self, h: torch.Tensor, x: torch.Tensor, repeats: int = 2, weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Flow-matching loss of the recorded steps x (..., dim) given their states h (..., cond):
        `repeats` noise draws per step (MAR's trick: the head is cheap next to the transformer).
        `weight` (...,): a weight per step (the weighted mean)."""
        h = h.reshape(-1, h.shape[-1]).repeat(repeats, 1)
        x1 = x.reshape(-1, self.dim).float().repeat(repeats, 1)
        z = torch.randn_like(x1)
        s = torch.rand(len(x1), device=x1.device)
        xs = (1 - s[:, None]) * z + s[:, None] * x1
        err = ((self.velocity(xs.to(h.dtype), s, h).float() - (x1 - z)) ** 2).mean(-1)
        if weight is None:
            return err.mean()
        w = weight.reshape(-1).float().repeat(repeats)
        return (err * w).sum() / w.sum()

    @torch.no_grad()
    def sample(
        self,
        h: torch.Tensor,
        combine: Callable[[torch.Tensor], torch.Tensor] | None = None,
        steps: int = 16,
        temperature: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """One next step (dim,) from R states h (R, cond): every row integrates the same point, and
        `combine` turns the R rows' velocities (R, dim) into one (dim,) (guidance; None: row 0).
        `temperature` scales the starting noise (0: the flow's deterministic path from zero)."""
        x = torch.randn(self.dim, generator=generator, device=h.device) * temperature
        for k in range(steps):
            s = torch.full((len(h),), k / steps, device=h.device)
            v = self.velocity(x.expand(len(h), -1).to(h.dtype), s, h).float()
            x = x + (combine(v) if combine is not None else v[0]) / steps
        return x


__all__ = ["FlowHead"]
