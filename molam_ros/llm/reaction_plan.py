"""A plan for a whole reaction: one discrete choice, made when the reactor is told what to do, kept.

Why. A reactor that regresses its next step answers with the mean where reactions differ: told to
hug a person who waves, with nothing saying when to start, how far to walk or on which side, it
smears the hug over every way of doing it, and its own output, read back, keeps it smeared (steering
5-12 %, README). Sampling each step (llm/flow_head.py) made the motion shake instead of commit: the
draws are fresh at every step. What commits is a choice made once for the whole reaction.

How (a discrete latent variable, trained as a conditional VAE with straight-through Gumbel-softmax,
Jang et al. 2017; the prior trained on the posterior's choice, as in VQ-VAE's prior):

    posterior  q(z | the reactor's motion over the window)   reads the answer, training only
    reactor    p(b_t | a_<=t, b_<t, instruction, z)           z's vector added at every position
    prior      p(z | instruction)                              what is chosen live

In training, a share of the instructed windows (`plan_share`) carry the plan the posterior reads
from their own reaction; the rest carry none (a zero vector: the reactor without a plan is the one
trained before). Because z is read from the reaction itself, it says what the instruction cannot:
when, how far, which side; so the reactor learns to follow it, where it learnt to ignore an
instruction that its own past already explains. The prior learns which plans go with an
instruction (cross-entropy against the posterior's choice, on its own input detached). Live, the
plan is chosen once when an instruction is set (the prior's most likely plan, or a draw) and held
until the instruction changes; unprompted, there is none.

Collapse. Teacher-forced, the reactor's own previous steps already explain its next one, so the
reactor gains little from a plan and the posterior learnt nothing: after 1500 steps of a fine-tune
of the shipped small reactor every window's posterior was uniform over the 32 plans (largest
probability 0.033) and the held-out loss with the plan read from the reaction equalled the loss
without (0.00786 both), the posterior collapse of VAEs with strong autoregressive decoders. So the
plan must also say, on its own, what the window's reaction does: a linear summary head predicts the
window's mean features over each quarter of it from the plan's vector (weighted as the reactor's
own loss), which makes the plans mean something whether or not the reactor reads them yet.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ReactionPlan(nn.Module):
    """The posterior, the plans' vectors and the prior (module docstring)."""

    def __init__(self, step_dim: int, width: int, plans: int, context_steps: int) -> None:
        super().__init__()
        self.plans = plans
        self.chunks = 4  # the summary's parts of a window (module docstring: "Collapse")
        self.read = nn.Sequential(nn.Linear(step_dim, width), nn.GELU(), nn.Linear(width, width))
        self.pos = nn.Parameter(torch.randn(context_steps, width) * 0.02)  # when in the window
        self.post = nn.Linear(width, plans)
        self.vectors = nn.Parameter(torch.randn(plans, width) * 0.02)
        self.prior = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, plans))
        self.summary = nn.Linear(width, self.chunks * step_dim)

    def posterior(self, b: torch.Tensor) -> torch.Tensor:
        """(B, L, step_dim) the reactor's steps over a window -> (B, K) logits of its plan."""
        h = self.read(b) + self.pos[: b.shape[1]]
        return self.post(h.mean(1))

    def vector(self, plan: torch.Tensor) -> torch.Tensor:
        """(B, K) plan weights (one-hot; a zero row: no plan) -> (B, W) the vector added to the input."""
        return plan.to(self.vectors.dtype) @ self.vectors

    def choose(self, text_vector: torch.Tensor, temperature: float = 0.0) -> torch.Tensor:
        """(B, W) projected instructions -> (B, K) one-hot plans: the prior's most likely (temperature
        0) or a draw from it with its logits divided by `temperature`."""
        logits = self.prior(text_vector).float()
        if temperature <= 0.0:
            pick = logits.argmax(-1)
        else:
            pick = torch.distributions.Categorical(logits=logits / temperature).sample()
        return nn.functional.one_hot(pick, self.plans).float()

    def training_terms(
        self, b: torch.Tensor, text_vector: torch.Tensor, told: torch.Tensor, share: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K) the plans of a training batch (a straight-through Gumbel-softmax draw from the
        posterior on `share` of the told windows, zero rows elsewhere) and the plan's own loss: the
        prior's cross-entropy against the posterior's choice on every told window, how far the
        batch's mean posterior is from using all plans (its entropy's gap to log K; without it a few
        plans take every reaction), and the summary's error (module docstring: "Collapse")."""
        logits = self.posterior(b).float()
        draw = nn.functional.gumbel_softmax(logits, tau=1.0, hard=True)
        parts = b[:, : b.shape[1] // self.chunks * self.chunks].unflatten(1, (self.chunks, -1)).mean(2)
        summary = ((self.summary(self.vector(draw)).float() - parts.flatten(1).float()) ** 2).mean()
        use = told & (torch.rand(len(b), device=b.device) < share)
        plan = draw * use[:, None].to(draw.dtype)
        mean_q = logits.softmax(-1).mean(0)
        spread = math.log(self.plans) + (mean_q * torch.log(mean_q + 1e-9)).sum()
        prior = torch.zeros((), device=b.device)
        if bool(told.any()):
            prior_logits = self.prior(text_vector[told].detach()).float()
            prior = nn.functional.cross_entropy(prior_logits, logits[told].argmax(-1).detach())
        # weighted 0.01 both: the reactor's losses are about 0.01-0.1 and the gradient is clipped as one
        return plan, summary + 0.01 * (prior + spread)

    def read_plan(self, b: torch.Tensor, told: torch.Tensor) -> torch.Tensor:
        """(B, K) the posterior's most likely plan on told windows, zero rows elsewhere (held-out
        figures: how much a plan that fits the reaction explains)."""
        pick = self.posterior(b).float().argmax(-1)
        return nn.functional.one_hot(pick, self.plans).float() * told[:, None].float()


__all__ = ["ReactionPlan"]
