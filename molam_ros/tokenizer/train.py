"""Training of the RQ-VAE tokenizer: one function, one flat loop (nanoGPT style).

Data: every person of every train clip of one or more molam dataset directories, as features in the
model's layout (`motion/layout.py`; both people of a pair go through the same tokenizer, as the
motion-language model needs), normalised with stats computed here over those train features (so
the stats always match the layout and the data mix; a resumed run keeps its checkpoint's).
Batches are random crops of `window` frames.
Loss: smooth L1 reconstruction on normalised features with extra weight on positions and
velocities, plus the commitment loss (`RQVAE.forward`); codebooks learn by EMA inside forward.

A run directory holds the latest checkpoint (`model.safetensors` + `config.json`, see
`rqvae.save_checkpoint`), `optimizer.pt` (what resuming needs beyond the weights) and
`train_log.jsonl` (one line per evaluation).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from molam_ros.data.dataset import MotionDataset, clip_features
from molam_ros.motion.layout import layout_of
from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.config import LOSS_WEIGHTS, TokenizerConfig
from molam_ros.tokenizer.evaluate import evaluate
from molam_ros.tokenizer.rqvae import (
    RQVAE,
    checkpoint_identity,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)

OPTIMIZER_FILE = "optimizer.pt"
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Settings of one training run (not part of the model; stored in the checkpoint's `extra`)."""

    steps: int = 6000  # total optimiser steps; on resume, training continues up to this count
    batch_size: int = 64  # crops per step; with window 64 and l = 4: 1024 latents per codebook update
    window: int = 64  # frames per crop, a multiple of l (64 frames ~ 2 s, as T2M-GPT)
    # Peak learning rate. T2M-GPT / MoMask use 2e-4 over 300k steps; a CPU budget of a few thousand
    # steps needs larger ones (1e-3 was stable for the small preset in a 500-step check).
    lr: float = 1e-3
    min_lr: float = 1e-4  # cosine floor, lr / 10
    # Linear warm-up: the fresh EMA codebooks move fast early on, small steps keep the encoder with them.
    warmup_steps: int = 200
    weight_decay: float = 0.0  # T2M-GPT and MoMask train without decay
    beta1: float = 0.9
    beta2: float = 0.99  # MoMask's AdamW betas
    grad_clip: float = 1.0  # max gradient norm; 0 disables clipping
    eval_every: int = 500  # steps between validations (and at the end); 0 only at the end
    eval_clips: int = 64  # val clips per validation (the first ones of the split); 0 = all
    checkpoint_every: int = 500  # steps between checkpoints (and at the end); 0 only at the end
    seed: int = 0
    device: str = "cpu"
    # Share of the crops drawn from each dataset when training on several (generator, real clips);
    # empty: by their number of windows, so a small real set would be drowned by the generator.
    dataset_weights: tuple[float, ...] = ()
    # Train the relation codes alone on top of an --init tokenizer (RQVAE.freeze_body): its D body
    # codes stay bit-identical, so brain models trained on them stay valid.
    freeze_body: bool = False

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1")
        if any(not w > 0 for w in self.dataset_weights):
            raise ValueError("TrainConfig.dataset_weights must all be > 0")
        for name in (
            "warmup_steps",
            "eval_every",
            "eval_clips",
            "checkpoint_every",
            "weight_decay",
            "grad_clip",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0")
        if not 0 < self.min_lr <= self.lr:
            raise ValueError("TrainConfig needs 0 < min_lr <= lr")


def lr_at(step: int, tc: TrainConfig) -> float:
    """Learning rate at `step`: 1) linear warm-up, 2) cosine decay to min_lr, 3) min_lr after the end."""
    if step < tc.warmup_steps:  # 1)
        return tc.lr * (step + 1) / tc.warmup_steps
    if step >= tc.steps:  # 3)
        return tc.min_lr
    progress = (step - tc.warmup_steps) / max(tc.steps - tc.warmup_steps, 1)  # 2)
    return tc.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (tc.lr - tc.min_lr)


def _load_people(
    ds: MotionDataset, split: str, limit: int = 0, progress: bool = True, *, layout: str = "ego"
) -> list[np.ndarray]:
    """(P, T, F) features in `layout` of the clips of `split` (the first `limit` if > 0).

    Computed once per run (inverse kinematics per clip is the slow part) and held in memory:
    ~2 MB per minute of two-person motion.
    """
    ids = ds.ids(split)
    if limit:
        ids = ids[:limit]
    return [
        clip_features(ds.load(i), layout)
        for i in tqdm(
            ids, desc=f"features {ds.root.name} ({split})", unit="clip", leave=False, disable=not progress
        )
    ]


def init_weights(model: RQVAE, init: str | Path) -> FeatureStats:
    """Load the weights of the tokenizer at `init` into `model`; returns its feature stats.

    `model` may have relation codes the checkpoint lacks (they start fresh); every other tensor must
    be there with its shape, and the two configs must agree on everything but the relation codes and
    the loss weights, or the body codes would not mean what they meant.
    """
    src, src_config, stats = load_checkpoint(init)
    ignore = {*LOSS_WEIGHTS, "relation_quantizers", "relation_width", "relation_code_dim", "relation_net"}
    a, b = model.config.to_dict(), src_config.to_dict()
    differ = sorted(k for k in a if k not in ignore and a[k] != b[k])
    if differ:
        raise ValueError(f"--init {init}: its architecture differs in {differ}")
    own = model.state_dict()
    tensors = src.state_dict()
    missing = [k for k in own if k not in tensors]
    if any(".relation" not in k and not k.startswith("relation_quantizer.") for k in missing):
        raise ValueError(f"--init {init}: lacks {missing[:5]}")
    model.load_state_dict(tensors, strict=False)
    return stats


def train(
    data_dir: str | Path | list[str | Path],
    out_dir: str | Path,
    *,
    model_config: TokenizerConfig | None = None,
    train_config: TrainConfig = TrainConfig(),  # noqa: B008 (frozen dataclass, safe default)
    resume: str | Path | None = None,
    loss_weights: dict[str, float] | None = None,
    progress: bool = True,
    init: str | Path | None = None,
) -> dict[str, Any]:
    """Train a tokenizer on the dataset at `data_dir`, writing checkpoints to `out_dir`; returns a summary.

    resume: a checkpoint directory (usually `out_dir` itself) to continue from: the architecture
    and feature stats come from it (a different `model_config` is ignored with a warning), and
    the optimiser state and step counter too when it holds `optimizer.pt`.
    loss_weights: TokenizerConfig loss weights (`LOSS_WEIGHTS`) that win over the preset's and, on
    resume, over the checkpoint's: they shape training only, not the architecture, so a fine-tune
    may change them (the relation's weight 1 -> 4 is how the shipped default was continued).
    init: a tokenizer checkpoint whose weights and feature stats start a new run of `model_config`
    (which may add relation codes to it: `init_weights`); ignored on resume.
    """
    tc = train_config
    out_dir = Path(out_dir)
    torch.manual_seed(tc.seed)
    device = torch.device(tc.device)

    # --- data: features of each person of each train clip of every dataset, held in memory
    dirs = [Path(data_dir)] if isinstance(data_dir, str | Path) else [Path(d) for d in data_dir]
    datasets = [MotionDataset(d) for d in dirs]
    if tc.dataset_weights and len(tc.dataset_weights) != len(datasets):
        raise ValueError(f"{len(tc.dataset_weights)} dataset_weights for {len(datasets)} datasets")
    start_step, optimizer_state, stats = 0, None, None
    init_identity: dict[str, Any] | None = None
    if resume is not None:
        resume = Path(resume)
        info = read_checkpoint_info(resume)
        model, ckpt_config, stats = load_checkpoint(resume, device=device)
        if model_config is not None and model_config != ckpt_config:
            warnings.warn(f"resuming {resume}: its architecture wins over model_config", stacklevel=2)
        model_config = ckpt_config
        start_step = int(info.get("extra", {}).get("step", 0))
        init_identity = info.get("extra", {}).get("init")
        if (resume / OPTIMIZER_FILE).is_file():
            optimizer_state = torch.load(resume / OPTIMIZER_FILE, map_location=device, weights_only=True)
        # Fresh random streams (crops, quantizer dropout, code resets), not a replay of the first steps.
        rng = np.random.default_rng([tc.seed, start_step])
        torch.manual_seed(tc.seed * 1_000_003 + start_step)
    else:
        model_config = model_config or TokenizerConfig()
        model = RQVAE(model_config).to(device)
        if init is not None:
            stats = init_weights(model, init)
            init_identity = checkpoint_identity(init)
        rng = np.random.default_rng(tc.seed)
    if tc.freeze_body:
        if init is None and resume is None:
            raise ValueError("TrainConfig.freeze_body needs a tokenizer to start from (init)")
        model.freeze_body()
    if loss_weights:
        unknown = set(loss_weights) - set(LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"not loss weights of TokenizerConfig: {sorted(unknown)}; known: {LOSS_WEIGHTS}")
        model_config = dataclasses.replace(model_config, **loss_weights)
        model.config = model_config
    l = model_config.stride
    if tc.window % l:
        raise ValueError(f"TrainConfig.window={tc.window} must be a multiple of the tokenizer stride l={l}")
    layout = layout_of(model_config.feature_dim).name
    raw = [
        [p for clip in _load_people(ds, "train", progress=progress, layout=layout) for p in clip]
        for ds in datasets
    ]
    if stats is None:  # the stats of exactly what this model trains on, in its layout
        stats = FeatureStats.from_features(p for people_of_ds in raw for p in people_of_ds)
    people, weights = [], []
    for k, people_of_ds in enumerate(raw):
        kept = [stats.normalize(p).astype(np.float32) for p in people_of_ds if p.shape[0] >= tc.window]
        if not kept:
            warnings.warn(f"{dirs[k]}: no train clip has {tc.window} frames; not used", stacklevel=2)
            continue
        # Crop starts are uniform over a dataset's valid windows (long clips weigh more); datasets
        # weigh by their windows too, unless dataset_weights gives each its share of the crops.
        n = np.array([p.shape[0] - tc.window + 1 for p in kept], dtype=np.float64)
        share = tc.dataset_weights[k] if tc.dataset_weights else n.sum()
        people += kept
        weights.append(n / n.sum() * share)
    if not people:
        raise ValueError(
            f"{', '.join(map(str, dirs))}: no train clip has {tc.window} frames; lower TrainConfig.window"
        )
    n_starts = np.array([p.shape[0] - tc.window + 1 for p in people], dtype=np.float64)
    pick_p = np.concatenate(weights)
    pick_p = pick_p / pick_p.sum()
    val_clips = [
        c for ds in datasets for c in _load_people(ds, "val", tc.eval_clips, progress, layout=layout)
    ]

    # --- model and optimiser
    model.train()
    optimizer = model.configure_optimizer(lr=tc.lr, weight_decay=tc.weight_decay, betas=(tc.beta1, tc.beta2))
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)

    def checkpoint(step: int, metrics: dict[str, Any] | None) -> None:
        extra = {
            "step": step,
            "train_config": dataclasses.asdict(tc),
            "data": [str(d) for d in dirs],
            "val": metrics,
        }
        if init_identity:  # what models trained on the init's codes check before reading these
            extra["init"] = init_identity
        save_checkpoint(model, out_dir, stats=stats, extra=extra)
        torch.save(optimizer.state_dict(), out_dir / OPTIMIZER_FILE)

    def validate(step: int) -> dict[str, Any]:
        metrics = evaluate(model, stats, val_clips) if val_clips else {}
        with (out_dir / LOG_FILE).open("a") as fh:
            fh.write(json.dumps({"step": step, "loss": last.get("loss"), **metrics}) + "\n")
        return metrics

    out_dir.mkdir(parents=True, exist_ok=True)
    step = start_step
    last: dict[str, float] = {}
    metrics: dict[str, Any] = {}
    t0 = time.time()
    bar = tqdm(total=tc.steps, initial=step, desc="tokenizer", unit="step", disable=not progress)
    while step < tc.steps:
        # 1) learning rate of this step
        lr = lr_at(step, tc)
        for group in optimizer.param_groups:
            group["lr"] = lr

        # 2) evaluate and checkpoint (not at the resumed step: that checkpoint exists already)
        if step > start_step and tc.eval_every and step % tc.eval_every == 0:
            metrics = validate(step)
            model.train()
        if step > start_step and tc.checkpoint_every and step % tc.checkpoint_every == 0:
            checkpoint(step, metrics)

        # 3) batch: random crops (B, window, F) of random people
        which = rng.choice(len(people), size=tc.batch_size, p=pick_p)
        starts = rng.integers(0, n_starts[which].astype(np.int64))
        batch = np.stack([people[i][s : s + tc.window] for i, s in zip(which, starts, strict=True)])
        x = torch.from_numpy(batch).to(device)

        # 4) forward (the codebooks' EMA step happens here) and backward
        _, losses = model(x)
        losses["loss"].backward()

        # 5) clip, step, zero
        if tc.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        # 6) log: .item() syncs with the device, so only the few scalars shown are read
        step += 1
        last = {k: losses[k].item() for k in ("loss", "recon", "recon_pos", "recon_traj", "commit")}
        if progress:
            perplexity = losses["perplexity"][: int(losses["depths"])]
            postfix = {
                "loss": f"{last['loss']:.4f}",
                "ppl": f"{float(perplexity.mean()):.0f}",
                "lr": f"{lr:.1e}",
            }
            if metrics:
                postfix["val_mm"] = f"{metrics['mpjpe_mm']:.1f}"
            bar.set_postfix(postfix)
        bar.update(1)
    bar.close()

    # --- the end: a last validation and checkpoint (unless nothing was trained)
    if step > start_step:
        metrics = validate(step)
        checkpoint(step, metrics)
    return {
        "steps": step,
        "trained_steps": step - start_step,
        "seconds": time.time() - t0,
        "train_people": len(people),
        "val_clips": len(val_clips),
        "loss": last,
        "val": metrics,
        "checkpoint": str(out_dir),
        "params": model.num_params(),
    }
