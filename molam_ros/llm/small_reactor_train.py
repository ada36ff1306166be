"""Training the small reactor (llm/small_reactor.py): the actor's codes and the reactor's features.

Each example is a window of `crop_steps` steps cut anywhere in a training clip (live, the model sees
a window that starts mid-motion too): the actor's codes (llm/reaction_codes.py, encoded as the live
pipeline encodes them), the reactor's previous step's features as input and its next step's as the
target (normalised by the tokenizer's stats). Two things are done to the inputs only:

- Exposure bias. Live, the reactor reads its own earlier output, which drifts from anything
  recorded, so Gaussian noise of `b_noise` standard deviations is added to that input.
- Own output as input (`rollouts`, `rollout_share`). Noise is not what the reactor's drift looks
  like, so windows can also read the model's own predictions: `rollouts` extra passes without
  gradient, each feeding the previous pass's predicted step t-1 as the input of step t (parallel
  scheduled sampling, Duckworth et al. 2019: K passes give K levels of self-feedback at the cost of
  K forward passes, not one pass per step), used for a share `rollout_share` of the windows.
- Placement. Seven of the 268 ego features place the reactor in the world (yaw velocity, root
  velocity, the partner's position and heading in its own frame: motion/ego.py); in a plain MSE
  they weigh 3 % of the loss, while a wrong place costs more than any wrong pose in closed loop.
  `placement_weight` multiplies their share of the loss (1: the plain MSE). The held-out figures
  stay the plain MSE, comparable across runs.
- The loss. Unprompted, one person's motion often fits several reactions (a wave starts like a
  beckon; the reactor of one walks over, of the other stays): the mean that MSE learns walks half
  way in both, and in closed loop that drift costs more than standing still. MPJPE is a distance,
  not a squared one; its best answer under doubt is the median, which `loss="l1"` learns (a
  reactor that moves when most similar situations move, and stays otherwise). Held-out figures
  stay the MSE, comparable across runs.
- Instructions. With chance `text_share` the window carries an instruction written from the clip
  (llm/reaction_instructions.py), embedded by the sentence encoder; otherwise none. Steering pairs
  (llm/reaction_codes.py) always carry theirs. Teacher-forced, the reactor's own previous steps say
  almost everything about its next one, so an instruction lowers the loss of a steering window by
  4 % only (shipped reactor, 150 training steering pairs: 0.0125 told, 0.0132 untold) and the model
  learns to ignore it; `steering_weight` multiplies the loss of the steering windows.
- Onset. Windows are cut anywhere in a clip (a 40-step window from clips of 35-75 steps starts at
  the first step about one time in twelve), while live, and in `molam reactor eval`, a reaction
  starts from the robot standing where the person arrives: the steps in which a reactor decides
  what to do (walk over or wait, which interaction an instruction asks for) are the ones trained
  least. `onset_share` cuts that share of the windows from the clip's first step.

Held-out loss on the validation clips, next to the loss of simply holding the last step, is logged
every `eval_every` steps to train_log.jsonl; the checkpoint and the optimizer state are saved with
them, so `--resume` continues a stopped run (the time budget `minutes` stops a run cleanly).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from molam_ros.llm.reaction_codes import ReactionCodes, ReactionTargets
from molam_ros.llm.reaction_instructions import all_instructions, reactor_instruction
from molam_ros.llm.reaction_plan import summarize
from molam_ros.llm.reactor_trunk import load_trainable, trainable_state
from molam_ros.llm.reactor_weights import save_small_reactor, widen_to_modes
from molam_ros.llm.small_reactor import Embedder, SmallReactorConfig, SmallReactorNet
from molam_ros.motion import ego

log = logging.getLogger(__name__)
OWN_PASSES = 3  # self-feedback depth of the held-out `val_own` figure
PLAN_FIT_BATCHES = 60  # training batches whose windows the plans are clustered from (llm/reaction_plan.py)


@dataclass(frozen=True, kw_only=True)
class ReactorTrainConfig:
    """Optimisation of the small reactor (module docstring for the two input treatments)."""

    steps: int = 3000
    batch: int = 48
    crop_steps: int = 40
    lr: float = 5e-4
    warmup: int = 100
    weight_decay: float = 0.05
    b_noise: float = 0.2
    text_share: float = 0.5
    eval_every: int = 250
    eval_batches: int = 8
    minutes: float = 0.0  # 0: no time budget
    bf16: bool = True  # bfloat16 autocast: about 2x faster on CPUs with avx512_bf16, same losses
    placement_weight: float = 1.0  # loss weight of the features that place the reactor (module docstring)
    loss: str = "mse"  # "l1": the conditional median (module docstring)
    rollouts: int = 0  # extra passes feeding the model's own predictions back (module docstring)
    rollout_share: float = 0.5  # share of windows that read them
    relax: float = 0.05  # with modes: weight of the proposals that were not nearest (small_reactor.py)
    choice_weight: float = 0.01  # with modes: weight of the choice's cross-entropy
    steering_weight: float = 1.0  # loss weight of the steering windows (module docstring)
    onset_share: float = 0.0  # share of windows cut from a clip's first step (module docstring: "Onset")
    partner_drop: float = 0.0  # share of windows with the partner's codes hidden (small_reactor.py)
    plan_share: float = 0.5  # with plans: share of the windows that carry theirs (llm/reaction_plan.py)
    seed: int = 0
    threads: int = 2
    device: str = "cpu"  # "cuda" where a GPU is lent

    def __post_init__(self) -> None:
        if self.loss not in ("mse", "l1"):
            raise ValueError(f"loss must be 'mse' or 'l1', got {self.loss!r}")
        if self.rollouts < 0 or not 0.0 <= self.rollout_share <= 1.0:
            raise ValueError("rollouts must be >= 0 and rollout_share in [0, 1]")
        if not all(0.0 <= x <= 1.0 for x in (self.onset_share, self.partner_drop, self.plan_share)):
            raise ValueError("onset_share, partner_drop and plan_share must be in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Sampler:
    """Random windows (a, b_prev, b, text) from a pool of clips."""

    def __init__(
        self,
        codes: ReactionCodes,
        targets: ReactionTargets,
        indices: list[int],
        cfg: ReactorTrainConfig,
        texts: dict[str, np.ndarray] | None,
        text_dim: int,
        seed: int,
        horizon: int = 1,
        captions: dict[int, list[str]] | None = None,
    ) -> None:
        self.codes, self.targets, self.cfg, self.texts, self.text_dim = codes, targets, cfg, texts, text_dim
        self.captions = captions
        self.horizon = horizon
        self.pool = [i for i in indices if codes.steps(i) >= 2 + horizon]
        if not self.pool:
            raise ValueError("no clip with at least 3 steps to train or evaluate on")
        self.rng = np.random.default_rng(seed)

    def batch(self) -> tuple[torch.Tensor, ...]:
        cfg, rng = self.cfg, self.rng
        picks = [self.pool[int(rng.integers(len(self.pool)))] for _ in range(cfg.batch)]
        H = self.horizon
        n = min(cfg.crop_steps, *(self.codes.steps(i) - H for i in picks))
        A, BP, B, T, W = [], [], [], [], []
        for i in picks:
            a, _ = self.codes.clip(i)
            f = self.targets.clip(i).astype(np.float32).reshape(len(a), -1)  # (steps, l*F)
            onset = cfg.onset_share > 0 and rng.random() < cfg.onset_share
            s = 1 if onset else int(rng.integers(1, len(a) - n - H + 2))
            A.append(a[s : s + n].astype(np.int64))
            if cfg.partner_drop > 0 and rng.random() < cfg.partner_drop:
                A[-1][:] = -1  # the partner hidden: the reaction from its own past and the instruction
            BP.append(f[s - 1 : s - 1 + n])
            B.append(np.concatenate([f[s + j : s + j + n] for j in range(H)], axis=-1))
            text = np.full(self.text_dim, np.nan, dtype=np.float32)
            if self.texts is not None and (self.codes.instructed[i] or rng.random() < cfg.text_share):
                words = self._words(i, rng)
                if words is not None:
                    text = self.texts[words]
            T.append(text)
            W.append(cfg.steering_weight if self.codes.instructed[i] else 1.0)
        t = torch.as_tensor
        text_rows = t(np.stack(T)) if self.text_dim else None
        return t(np.stack(A)), t(np.stack(BP)), t(np.stack(B)), text_rows, t(np.asarray(W, np.float32))

    def _words(self, i: int, rng: np.random.Generator) -> str | None:
        """The text of clip i's window: one of its captions where the sampler has them (the actor
        generator), else an instruction written from its labels (the reactor)."""
        if self.captions is not None:
            options = self.captions.get(i) or []
            return options[int(rng.integers(len(options)))] if options else None
        return reactor_instruction(
            {"interaction": self.codes.interactions[i], "style": self.codes.styles[i]}, rng
        )


def placement_weights(feature_dim: int, weight: float) -> torch.Tensor | None:
    """(F,) loss weights: `weight` on the placement features of the ego layout, 1 elsewhere; None
    for 1 (the plain MSE) or a feature size that is not the ego layout's."""
    if weight == 1.0:
        return None
    if feature_dim != ego.EGO_DIM:
        raise ValueError(f"placement_weight needs the ego layout ({ego.EGO_DIM} features), got {feature_dim}")
    w = torch.ones(feature_dim)
    for part in (ego.YAW_VEL, ego.ROOT_VEL, ego.REL_POS, ego.REL_HEAD):
        w[part] = weight
    return w


def _device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def _to(batch: tuple[torch.Tensor | None, ...], device: torch.device) -> tuple[Any, ...]:
    return tuple(None if x is None else x.to(device, non_blocking=True) for x in batch)


def own_inputs(
    net: SmallReactorNet,
    a: torch.Tensor,
    b_prev: torch.Tensor,
    text: torch.Tensor | None,
    passes: int,
    share: float,
) -> torch.Tensor:
    """`b_prev` where a share of the windows read the model's own predictions instead (module
    docstring): after `passes` passes, step t's input is the prediction for step t-1 made from inputs
    that were themselves predictions. The first step keeps its recorded input (live, the reactor's
    first step follows a given or a held pose)."""
    if passes <= 0 or share <= 0:
        return b_prev
    x = b_prev
    with torch.no_grad():
        for _ in range(passes):
            pred = net(a, x, text).float()
            x = torch.cat([b_prev[:, :1], pred[:, :-1]], dim=1)
    pick = torch.rand(len(a), 1, 1, device=a.device) < share
    return torch.where(pick, x, b_prev)


def _lr(step: int, cfg: ReactorTrainConfig, seconds: float = 0.0) -> float:
    """Warm-up, then a cosine to zero over the steps or, with a time budget, over whichever of the
    steps and the minutes runs out first (a run on an unknown machine still ends annealed)."""
    warm = min(1.0, (step + 1) / cfg.warmup)
    done = min(step, cfg.steps) / cfg.steps
    if cfg.minutes > 0:
        done = max(done, min(1.0, seconds / (cfg.minutes * 60)))
    return cfg.lr * warm * 0.5 * (1 + math.cos(math.pi * done))


@torch.no_grad()
def held_out(net: SmallReactorNet, sampler: _Sampler, batches: int) -> dict[str, float]:
    """Mean loss over fixed validation windows with recorded inputs (`val_loss`), with the model's own
    inputs after OWN_PASSES passes (`val_own`, nearer to closed loop), and of holding the last step;
    with plans, with each told window given the plan read from its own reaction (`val_planned`: below
    `val_loss` where the reactor follows a plan)."""
    net.eval()
    state = sampler.rng.bit_generator.state
    sampler.rng = np.random.default_rng(1234)
    losses, own, hold, planned = [], [], [], []
    for _ in range(batches):
        a, b_prev, b, text, _ = _to(sampler.batch(), _device(net))
        losses.append(float(net.loss(a, b_prev, b, text)))
        if net.plan is not None and text is not None:  # each told window with the plan read from it
            plan = net.plan.read_plan(b[..., : net.config.step_dim], text.isfinite().all(-1))
            planned.append(float(net.loss(a, b_prev, b, text, plan=plan)))
        own.append(float(net.loss(a, own_inputs(net, a, b_prev, text, OWN_PASSES, 1.0), b, text)))
        hold.append(float(((b_prev - b[..., : b_prev.shape[-1]]) ** 2).mean()))
    sampler.rng.bit_generator.state = state
    net.train()
    out = {
        "val_loss": float(np.mean(losses)),
        "val_own": float(np.mean(own)),
        "val_hold_last": float(np.mean(hold)),
    }
    return {**out, "val_planned": float(np.mean(planned))} if planned else out


def train_small_reactor(
    codes: ReactionCodes,
    targets: ReactionTargets,
    out: str | Path,
    *,
    model: SmallReactorConfig | None = None,
    train: ReactorTrainConfig | None = None,
    embed: Embedder | None = None,
    info: dict[str, Any] | None = None,
    resume: bool = False,
    init: str | Path | None = None,
    progress: bool = True,
    captions: dict[int, list[str]] | None = None,
) -> dict[str, Any]:
    """Train (or continue) a small reactor into `out`; returns the last logged figures. `init`: start
    from another run's weights (same shape; this run's config otherwise, e.g. blind inputs).
    `captions` (clip index -> its captions): windows carry one of these instead of an instruction
    (the actor generator, llm/pair_generator.py)."""
    cfg = train or ReactorTrainConfig()
    out = Path(out)
    state_path = out / "train_state.pt"
    torch.manual_seed(cfg.seed)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    D = codes.a.shape[1]
    mcfg = model or SmallReactorConfig(depth=D, feature_dim=targets.features.shape[1])
    if resume and state_path.is_file():
        saved = json.loads((out / "config.json").read_text())
        mcfg = SmallReactorConfig.from_dict(saved["model"])
    if cfg.partner_drop > 0 and not mcfg.partner_null:
        raise ValueError("partner_drop needs a model with partner_null (its 'no partner' input)")
    if mcfg.depth != D or mcfg.feature_dim != targets.features.shape[1]:
        raise ValueError(
            f"the data have D={D}, F={targets.features.shape[1]}; the model {mcfg.depth}, {mcfg.feature_dim}"
        )
    texts = None
    if mcfg.text_dim and embed is not None:
        words = (
            sorted({t for c in captions.values() for t in c}) if captions is not None else all_instructions()
        )
        vecs = np.asarray(embed(words), dtype=np.float32)
        if vecs.shape != (len(words), mcfg.text_dim):
            raise ValueError(f"the sentence encoder gives {vecs.shape[1:]}, the model reads {mcfg.text_dim}")
        texts = dict(zip(words, vecs, strict=True))
    device = torch.device(cfg.device)
    net = SmallReactorNet(mcfg).to(device)
    weight = placement_weights(mcfg.feature_dim, cfg.placement_weight)
    weight = None if weight is None else weight.to(device)
    trained = [p for p in net.parameters() if p.requires_grad]  # a pretrained trunk's own weights stay
    opt = torch.optim.AdamW(trained, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.95))
    start = 0
    if init is not None and not (resume and state_path.is_file()):
        from molam_ros.llm.reactor_weights import load_small_reactor

        start_net, _ = load_small_reactor(init)
        net.load_state_dict(widen_to_modes(start_net.state_dict(), net))
        log.info("starting from the weights of %s", init)
    if resume and state_path.is_file():
        state = torch.load(state_path, weights_only=False, map_location=device)
        load_trainable(net, state["model"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        log.info("resuming %s at step %d", out, start)
    train_idx = [i for i in codes.indices("train") if i in targets.row]
    val_idx = [i for i in codes.indices("val") or codes.indices("test") if i in targets.row]
    sampler = _Sampler(
        codes, targets, train_idx, cfg, texts, mcfg.text_dim, cfg.seed + start, mcfg.horizon, captions
    )
    plain = replace(cfg, onset_share=0.0, partner_drop=0.0)  # held-out figures comparable across recipes
    val = _Sampler(codes, targets, val_idx, plain, texts, mcfg.text_dim, 0, mcfg.horizon, captions)
    n_params = sum(p.numel() for p in net.parameters())
    log.info(
        "small reactor: %.2f M parameters (%.2f M trained), %d training clips, %d validation clips",
        n_params / 1e6,
        sum(p.numel() for p in trained) / 1e6,
        len(sampler.pool),
        len(val.pool),
    )
    if net.plan is not None and not net.plan.fitted:  # the plans are clusters of training reactions
        summaries = torch.cat(
            [summarize(sampler.batch()[2][..., : mcfg.step_dim]) for _ in range(PLAN_FIT_BATCHES)]
        )
        sizes = net.plan.fit(summaries, seed=cfg.seed)
        log.info("%d plans fitted on %d windows; windows per plan: %s", mcfg.plans, len(summaries), sizes)
    out.mkdir(parents=True, exist_ok=True)
    base_info = {"train": cfg.to_dict(), "parameters": n_params, **(info or {})}
    t0, last = time.time(), {}
    net.train()
    bar = tqdm(
        range(start, cfg.steps), initial=start, total=cfg.steps, desc="small reactor", disable=not progress
    )
    for step in bar:
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg, time.time() - t0)
        a, b_prev, b, text, windows = _to(sampler.batch(), device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            b_prev = own_inputs(net, a, b_prev, text, cfg.rollouts, cfg.rollout_share)
            b_prev = b_prev + cfg.b_noise * torch.randn_like(b_prev)
            loss = net.loss(
                a,
                b_prev,
                b,
                text,
                weight,
                cfg.loss,
                cfg.relax,
                cfg.choice_weight,
                windows if cfg.steering_weight != 1.0 else None,
                cfg.plan_share,
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trained, 1.0)
        opt.step()
        done = step + 1
        over = cfg.minutes > 0 and time.time() - t0 > cfg.minutes * 60
        if done % cfg.eval_every == 0 or done == cfg.steps or over:
            last = {
                "step": done,
                "loss": float(loss.detach()),
                **held_out(net, val, cfg.eval_batches),
                "seconds": round(time.time() - t0, 1),
            }
            bar.set_postfix(loss=f"{last['loss']:.3f}", val=f"{last['val_loss']:.3f}")
            with open(out / "train_log.jsonl", "a") as f:
                f.write(json.dumps(last) + "\n")
            save_small_reactor(net, out, {**base_info, "step": done, "last": last})
            torch.save(
                {"model": trainable_state(net), "optimizer": opt.state_dict(), "step": done}, state_path
            )
            if over:
                log.info(
                    "time budget of %.1f min reached at step %d; continue with --resume", cfg.minutes, done
                )
                break
    return last
