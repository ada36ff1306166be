"""Training the completion model on the generator's and the real clips (train splits only).

    molam completion train --data ~/.cache/molam/data/synth1000 ~/.cache/molam/data/real --out DIR

The loop, in order: load every person of the train splits as streams; each step draw a batch of
windows (a share per dataset, `weights`), augment them (mirror, body size, a head turned away from
the torso, which optional trackers are there: completion/streams.py `Augment`), build the inputs
in the head's heading frame, and fit the body of the window's last frame in the same frame with
the mean per-joint distance (MPJPE itself, so the loss is the figure reported). Validation (the
val splits; the test splits are never read here) every `eval_every` steps with the head + hands
set; the checkpoint kept is the last one, with its validation history in config.json.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from molam_ros.completion.evaluate import complete_stream, errors, present_slots
from molam_ros.completion.model import CompletionConfig, CompletionModel, save_checkpoint
from molam_ros.completion.streams import Augment, Streams, load_streams, sample_windows
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS
from molam_ros.motion.sparse import HEAD, JOINT_GROUPS, body_targets, inputs_from_windows


@dataclass(frozen=True)
class CompletionTrainConfig:
    """Training settings. The defaults trained the shipped model on one CPU thread in ~4 minutes.

    weights: share of each batch per dataset, in the order the datasets are given (the real clips
        are few but are what a VR user moves like, so they get half by default).
    group_weights: loss weight per joint group (motion/sparse.py JOINT_GROUPS), e.g.
        (("legs", 2.0),); groups not named weigh 1. The loss is the weighted mean of the per-joint
        distances, so with no weights it is the MPJPE reported (with weights, the history's
        `train_mpjpe_mm` is the weighted figure). Heavier legs and torso pay for the joints the
        sparse points say least about (the model loses there to the nearest pose on real clips).
    """

    steps: int = 6000
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    weights: tuple[float, ...] = (0.5, 0.5)
    group_weights: tuple[tuple[str, float], ...] = ()
    augment: Augment = field(default_factory=Augment)
    eval_every: int = 500
    seed: int = 0
    threads: int = 1  # torch threads: the machine's other core is someone else's


def joint_weights(group_weights: Sequence[tuple[str, float]]) -> np.ndarray:
    """(22,) loss weight per joint, normalised to mean 1, from (group, weight) pairs."""
    w = np.ones(NUM_JOINTS)
    for group, value in group_weights:
        if group not in JOINT_GROUPS:
            raise ValueError(f"unknown joint group {group!r}; choose from {tuple(JOINT_GROUPS)}")
        if value <= 0:
            raise ValueError(f"group weight of {group} must be > 0, got {value}")
        w[[JOINT_INDEX[n] for n in JOINT_GROUPS[group]]] = value
    return w / w.mean()


def _validate(model: CompletionModel, val: Sequence[Streams]) -> dict[str, float]:
    """MPJPE (mm) of the head + hands set with the true yaw on each val split."""
    present = present_slots(())
    out = {}
    for s in val:
        errs = [
            errors(complete_stream(model, *s.stream(i), present), s.stream(i)[0])
            for i in range(len(s.bounds))
        ]
        out[s.label] = float(np.concatenate(errs).mean() * 1e3)
    return out


def train(
    data: Sequence[str | Path],
    out: str | Path,
    *,
    model_config: CompletionConfig = CompletionConfig(),  # noqa: B008 (frozen dataclass)
    config: CompletionTrainConfig = CompletionTrainConfig(),  # noqa: B008 (frozen dataclass)
    progress: bool = True,
) -> dict[str, Any]:
    """Train on the train splits of `data`, write the checkpoint to `out`; returns its metadata."""
    if config.weights and len(config.weights) != len(data):
        raise ValueError(f"{len(config.weights)} weights for {len(data)} datasets")
    torch.set_num_threads(max(1, config.threads))
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    # --- data
    train_streams = [load_streams(d, "train") for d in data]
    val_streams = []
    for d in data:
        try:
            val_streams.append(load_streams(d, "val"))
        except ValueError:  # a dataset without a val split is trained on, not validated
            pass
    weights = np.asarray(config.weights or [len(s) for s in train_streams], dtype=np.float64)
    counts = np.floor(weights / weights.sum() * config.batch_size).astype(int)
    counts[0] += config.batch_size - counts.sum()
    # --- model and optimiser
    model = CompletionModel(model_config)
    joint_w = torch.from_numpy(joint_weights(config.group_weights).astype(np.float32))
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)

    def lr_at(step: int) -> float:  # linear warm-up, then cosine to a tenth
        if step < config.warmup_steps:
            return config.lr * (step + 1) / config.warmup_steps
        f = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return config.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(f, 1.0))))

    history: list[dict[str, Any]] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    bar = tqdm(range(config.steps), disable=not progress, desc="completion", unit="step")
    loss_avg = None
    for step in bar:
        # --- batch: windows from each dataset, augmented, in the head's heading frame
        parts = [
            sample_windows(s, n, model_config.window, rng, config.augment)
            for s, n in zip(train_streams, counts, strict=True)
            if n
        ]
        points = np.concatenate([p[0] for p in parts])
        yaw = np.concatenate([p[1] for p in parts])
        body = np.concatenate([p[2] for p in parts])
        x = torch.from_numpy(inputs_from_windows(points, yaw))
        y = torch.from_numpy(body_targets(body, points[:, -1, HEAD], yaw[:, -1]))
        # --- step
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        loss = ((model(x) - y).norm(dim=-1) * joint_w).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        value = float(loss.detach())
        loss_avg = value if loss_avg is None else 0.98 * loss_avg + 0.02 * value
        bar.set_postfix(mpjpe_mm=f"{loss_avg * 1e3:.1f}")
        # --- validation
        if (
            val_streams
            and config.eval_every
            and ((step + 1) % config.eval_every == 0 or step + 1 == config.steps)
        ):
            model.eval()
            val = _validate(model, val_streams)
            model.train()
            history.append({"step": step + 1, "train_mpjpe_mm": loss_avg * 1e3, "val_mpjpe_mm": val})
            figures = ", ".join(f"{k} {v:.1f}" for k, v in val.items())
            bar.write(f"step {step + 1}: train {loss_avg * 1e3:.1f} mm, val {figures}")
    model.eval()
    extra = {
        "steps": config.steps,
        "train_seconds": round(time.perf_counter() - start, 1),
        "train_cpu_seconds": round(time.process_time() - cpu_start, 1),
        "threads": config.threads,
        "data": [str(d) for d in data],
        "train_frames": {s.label: len(s) for s in train_streams},
        "train_config": asdict(config),
        "history": history,
    }
    save_checkpoint(model, out, extra=extra)
    return extra
