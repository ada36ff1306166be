"""A plan for a whole reaction: one discrete choice, made when the reactor is told what to do, kept.

Why. A reactor that regresses its next step answers with the mean where reactions differ: told to
hug a person who waves, with nothing saying when to start, how far to walk or on which side, it
smears the hug over every way of doing it, and its own output, read back, keeps it smeared (steering
5-12 %, README). Sampling each step (llm/flow_head.py) made the motion shake instead of commit: the
draws are fresh at every step. What commits is a choice made once for the whole reaction.

How. The plans are K clusters of reactions: k-means (scipy) over the training windows' summaries
(the reactor's mean normalised features over each quarter of a window: what it does, and when),
fitted once before training. A window's plan is the cluster nearest to its own reaction:

    plan       z = nearest centroid to summary(the reactor's motion over the window)   training
    reactor    p(b_t | a_<=t, b_<t, instruction, z)     z's learned vector added at every position
    prior      p(z | instruction)                       what is chosen live

In training, a share of the windows (`plan_share`) carry their plan; the rest carry none (a zero
vector: the reactor without a plan is the one trained before). Untold windows carry plans too,
though live a plan comes only with an instruction: how much the reactor reads its plan is what
limits this (below), and every window that carries one teaches it. Because z is read from the
reaction itself, it says what the instruction cannot (when, how far, which side), so the reactor
learns to follow it where it learnt to ignore an instruction that its own past already explains.
The prior learns which plans go with an instruction (cross-entropy on its own input detached).
Live, the plan is chosen once when an instruction is set (the prior's most likely plan, or a draw)
and held until the instruction changes; unprompted, there is none.

Why clusters and not a learned posterior. Tried first: a posterior network reading the window,
straight-through Gumbel-softmax (a discrete conditional VAE). Teacher-forced, the reactor's own
previous steps already explain its next one, so it gained nothing from a plan and the posterior
learnt nothing: fine-tuning the shipped small reactor, after 1500 steps every window's posterior was
uniform over 32 plans (largest probability 0.033) and the held-out loss with the plan read from the
reaction equalled the loss without (0.00786 both; with a head that predicts the window's summary
from the plan, the same after 500 steps): the posterior collapse of VAEs with strong autoregressive
decoders. Clusters fitted beforehand mean something from the first step. But the reactor still
has to read them: with the plans' vectors started small (0.02, as a new input usually is) and
only told windows carrying them, a 20-minute fine-tune of the shipped small reactor left the
held-out loss with and without the plan equal (0.00783 both) and its steering where it was (7 %
against 3 % with the plans switched off, 30 validation clips; told its own clip's instruction,
166 mm both), though the clusters do part interactions (most bows, handshakes, hugs, pushes and
kicks in one or two plans each) and the prior picks a plan of the instructed interaction for 11
of 14. So the vectors start at the scale of the actor's code embeddings (what the reactor reads
most), and every window may carry its plan.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

CHUNKS = 4  # parts of a window in its summary


def summarize(b: torch.Tensor) -> torch.Tensor:
    """(B, L, step_dim) a window's reactor steps -> (B, CHUNKS * step_dim) its mean over each quarter
    (a window shorter than CHUNKS steps repeats its steps)."""
    L = b.shape[1]
    if L < CHUNKS:
        b = b.repeat_interleave(-(-CHUNKS // L), dim=1)
        L = b.shape[1]
    return b[:, : L // CHUNKS * CHUNKS].unflatten(1, (CHUNKS, -1)).mean(2).flatten(1)


class ReactionPlan(nn.Module):
    """The plans' centroids and vectors, and the prior (module docstring)."""

    def __init__(self, step_dim: int, width: int, plans: int) -> None:
        super().__init__()
        self.plans = plans
        self.register_buffer("centroids", torch.zeros(plans, CHUNKS * step_dim))  # all 0: not fitted
        self.vectors = nn.Parameter(torch.randn(plans, width) * 0.02)
        self.prior = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, plans))

    @property
    def fitted(self) -> bool:
        return bool(self.centroids.abs().sum() > 0)

    def fit(self, summaries: torch.Tensor, seed: int = 0) -> np.ndarray:
        """Fit the centroids by k-means on (N, CHUNKS * step_dim) training windows' summaries
        (`summarize`); returns how many windows each plan took."""
        from scipy.cluster.vq import kmeans2

        x = summaries.float().cpu().numpy().astype(np.float64)
        if len(x) < self.plans:
            raise ValueError(f"{len(x)} windows cannot make {self.plans} plans")
        centroids, label = kmeans2(x, self.plans, minit="++", seed=seed, iter=30)
        self.centroids.copy_(torch.as_tensor(centroids, dtype=self.centroids.dtype))
        return np.bincount(label, minlength=self.plans)

    def assign(self, b: torch.Tensor) -> torch.Tensor:
        """(B, L, step_dim) -> (B,) the plan nearest to each window's reaction."""
        return torch.cdist(summarize(b.float()), self.centroids.float()).argmin(-1)

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
        """(B, K) the plans of a training batch (each window's own on `share` of the windows, told
        or not, zero rows elsewhere) and the prior's cross-entropy against them on every told window
        (weighted 0.01: the reactor's losses are about 0.01-0.1 and the gradient is clipped as one)."""
        if not self.fitted:
            raise RuntimeError("the plans were never fitted (ReactionPlan.fit before training)")
        pick = self.assign(b)
        plan = self._one_hot(pick, torch.rand(len(b), device=b.device) < share)
        prior = torch.zeros((), device=b.device)
        if bool(told.any()):
            logits = self.prior(text_vector[told].detach()).float()
            prior = nn.functional.cross_entropy(logits, pick[told])
        return plan, 0.01 * prior

    def read_plan(self, b: torch.Tensor, told: torch.Tensor) -> torch.Tensor:
        """(B, K) each told window's own plan, zero rows elsewhere (held-out figures: how much a plan
        that fits the reaction explains)."""
        return self._one_hot(self.assign(b), told)

    def _one_hot(self, pick: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """(B,) plan indices, (B,) bool -> (B, K) one-hot rows where `keep`, zero rows elsewhere."""
        return nn.functional.one_hot(pick, self.plans).float() * keep[:, None].float()


__all__ = ["CHUNKS", "ReactionPlan", "summarize"]
