"""Training stages 2 and 3 of the motion-language model: one function, one flat loop (nanoGPT style).

Stage 1 is the tokenizer (molam_ros/tokenizer); its codes of every clip are computed once and cached
(examples.encode_dataset_codes). Stage 2, cross-modal pre-training: the motion-text pairs of every
task (examples.stage2_examples), LoRA on the backbone plus the motion token rows and the depth head;
at the end the adapter is merged into the backbone (`merged/`). Stage 3, instruction tuning: a fresh
adapter on stage 2's merged model, trained on multi-turn conversations mixed with some stage 2
pairs (so single-task skills are not forgotten), the depth head carried over.

accelerate runs the loop, so the same command uses one CPU, one GPU, or several GPUs under
`accelerate launch` (DDP); only the main process writes checkpoints and logs.

A run directory holds the checkpoint (model.py's layout: `molam_llm.json`, `adapter/` or `merged/`,
`depth_head.safetensors`), `trainer_state.pt` (optimizer, scheduler and step, for `--resume`),
`train_log.jsonl` (one line per logged step and per evaluation) and `loss.png`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from molam_ros.llm.depth_head import DepthHeadConfig
from molam_ros.llm.examples import ExampleConfig, encode_dataset_codes, stage2_examples, stage3_examples
from molam_ros.llm.lora import LoraSettings
from molam_ros.llm.model import HEAD_FILE, MotionLM, load_motion_lm, read_checkpoint_record
from molam_ros.llm.prompts import IGNORE_INDEX, Example
from molam_ros.llm.vocab import MotionVocab

STATE_FILE = "trainer_state.pt"
LOG_FILE = "train_log.jsonl"


@dataclass(frozen=True, kw_only=True)
class LLMTrainConfig:
    """Settings of one run of stage 2 or 3 (stored in the checkpoint record)."""

    stage: int = 2
    steps: int = 400  # optimizer steps; on resume training continues up to this count
    batch_size: int = 4  # examples per micro-batch
    grad_accum: int = 1  # micro-batches per optimizer step
    lr: float = 5e-4  # LoRA tolerates larger rates than full fine-tuning; 1e-4..1e-3 is usual
    head_lr: float = 2e-3  # the depth head and motion rows start from scratch
    min_lr_ratio: float = 0.1
    warmup_steps: int = 20
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    eval_every: int = 100  # steps between evaluations (and at the end)
    eval_examples: int = 32  # validation examples per evaluation
    checkpoint_every: int = 200  # steps between checkpoints (and at the end)
    log_every: int = 10
    stage3_mix: float = 0.3  # share of stage 2 pairs among stage 3's examples
    seed: int = 0
    examples: ExampleConfig = ExampleConfig()
    lora: LoraSettings = LoraSettings()
    head: DepthHeadConfig = DepthHeadConfig()

    def __post_init__(self) -> None:
        if self.stage not in (2, 3):
            raise ValueError(f"stage must be 2 or 3 (stage 1 is `molam tokenizer train`), got {self.stage}")
        if self.steps < 1 or self.batch_size < 1 or self.grad_accum < 1:
            raise ValueError("steps, batch_size and grad_accum must be >= 1")
        if not 0.0 <= self.stage3_mix <= 1.0:
            raise ValueError("stage3_mix must be in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# The CPU preset keeps every reaction (the live product) and a share of the other tasks' examples.
CPU_TASK_WEIGHTS = {
    "text_to_motion": 0.6,
    "motion_to_text": 0.6,
    "prediction": 0.3,
    "editing": 0.3,
    "reasoning": 0.3,
}

# Sizes by name: `tiny` trains in seconds on the tiny random backbone (tests, smoke runs), `small`
# is the default (SmolLM2-135M, CPU-sized), `base` wants a GPU.
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        "steps": 20,
        "batch_size": 2,
        "eval_every": 10,
        "eval_examples": 4,
        "checkpoint_every": 10,
        "log_every": 5,
        "warmup_steps": 2,
        "lr": 3e-3,
        "examples": ExampleConfig(max_steps=8),
        "lora": LoraSettings(rank=4, alpha=8),
        "head": DepthHeadConfig(width=32, layers=1, context=True),
    },
    "small": {
        "steps": 600,
        "batch_size": 4,
        "examples": ExampleConfig(max_steps=24, task_weights=CPU_TASK_WEIGHTS),
        "lora": LoraSettings(rank=16, alpha=32),
        "head": DepthHeadConfig(width=256, layers=2, context=True),
    },
    "base": {
        "steps": 6000,
        "batch_size": 16,
        "eval_every": 500,
        "checkpoint_every": 1000,
        "examples": ExampleConfig(max_steps=48),
        "lora": LoraSettings(rank=32, alpha=64),
        "head": DepthHeadConfig(width=512, layers=3, context=True),
    },
}


def preset(name: str, **overrides: Any) -> LLMTrainConfig:
    """A named configuration with some fields replaced."""
    if name not in PRESETS:
        raise ValueError(f"unknown LLM preset {name!r}; choose from {sorted(PRESETS)}")
    return LLMTrainConfig(**{**PRESETS[name], **overrides})


# helper functions


def collate(examples: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, labels (IGNORE_INDEX on padding), attention_mask."""
    T = max(len(e.input_ids) for e in examples)
    ids = torch.full((len(examples), T), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), T), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(examples), T), dtype=torch.long)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "labels": labels, "attention_mask": mask}


@dataclass
class ExampleSource:
    """Everything examples are built from; `epoch(n)` draws a fresh set (new crops, new phrasings)."""

    dataset: Any
    codes: dict[str, np.ndarray]
    mlm: MotionLM
    stride: int
    config: LLMTrainConfig
    conversations: dict[str, list[Any]] = field(default_factory=dict)

    def epoch(self, n: int, split: str = "train") -> list[Example]:
        # The last draw is kept: the run's summary line and the first batches ask for the same one.
        key = (n, split)
        if getattr(self, "_last", (None, None))[0] != key:
            self._last = (key, self._draw(n, split))
        return self._last[1]

    def _draw(self, n: int, split: str) -> list[Example]:
        rng = np.random.default_rng([self.config.seed, n, 0 if split == "train" else 1])
        kw = dict(stride=self.stride, config=self.config.examples)
        pairs = list(
            stage2_examples(
                self.dataset, self.codes, self.mlm.tokenizer, self.mlm.vocab, rng, split=split, **kw
            )
        )
        if self.config.stage == 2:
            out = pairs
        else:
            convs = list(
                stage3_examples(
                    self.conversations.get(split, []),
                    self.codes,
                    self.mlm.tokenizer,
                    self.mlm.vocab,
                    rng,
                    **kw,
                )
            )
            k = int(round(len(convs) * self.config.stage3_mix / max(1e-9, 1 - self.config.stage3_mix)))
            picks = rng.permutation(len(pairs))[: min(k, len(pairs))]
            out = convs + [pairs[i] for i in picks]
        order = rng.permutation(len(out))
        return [out[i] for i in order]


def _batches(source: ExampleSource, batch_size: int, start_epoch: int) -> Iterator[tuple[int, list[Example]]]:
    epoch = start_epoch
    while True:
        examples = source.epoch(epoch)
        if not examples:
            raise ValueError(
                "no training examples: is the dataset's train split empty, or are its clips too short?"
            )
        for i in range(0, len(examples) - batch_size + 1 if len(examples) >= batch_size else 1, batch_size):
            yield epoch, examples[i : i + batch_size]
        epoch += 1


def _lr_factor(step: int, config: LLMTrainConfig) -> float:
    """Linear warm-up, then cosine down to min_lr_ratio."""
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def evaluate_loss(
    mlm: Any, examples: list[Example], batch_size: int, pad_id: int, device: Any
) -> dict[str, float]:
    """Mean losses over `examples` (the model in eval mode for the duration)."""
    was_training = mlm.training
    mlm.eval()
    sums = {"loss": 0.0, "lm_loss": 0.0, "depth_loss": 0.0}
    n = 0
    for i in range(0, len(examples), batch_size):
        batch = {k: v.to(device) for k, v in collate(examples[i : i + batch_size], pad_id).items()}
        out = mlm(**batch)
        for k in sums:
            sums[k] += float(out[k]) * len(batch["input_ids"])
        n += len(batch["input_ids"])
    mlm.train(was_training)
    return {k: v / max(n, 1) for k, v in sums.items()}


def plot_log(log_path: Path, out_png: Path) -> None:
    """Training and validation loss curves of a run (people look at this rather than the JSONL)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    fig, ax = plt.subplots(figsize=(7, 4))
    for kind, style in (("train", "-"), ("eval", "o-")):
        pts = [r for r in rows if r.get("kind") == kind]
        for key in ("lm_loss", "depth_loss"):
            if pts:
                ax.plot([r["step"] for r in pts], [r[key] for r in pts], style, label=f"{kind} {key}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


def _build_model(
    config: LLMTrainConfig, backbone: Path, init: Path | None, tok_config: Any, device: str
) -> MotionLM:
    """A fresh MotionLM for a run: stage 2 on the backbone, stage 3 on stage 2's merged model."""
    vocab = MotionVocab.from_tokenizer_config(tok_config)
    mlm = MotionLM.create(backbone, vocab, config.head, lora=config.lora, seed=config.seed, device=device)
    if init is not None:  # stage 3 continues stage 2's depth head
        from safetensors.torch import load_file

        mlm.head.load_state_dict(load_file(str(init / HEAD_FILE)))
    return mlm


# the run


def train(
    *,
    config: LLMTrainConfig,
    data_dir: str | Path,
    tokenizer_checkpoint: str | Path,
    out_dir: str | Path,
    backbone_dir: str | Path | None = None,
    init: str | Path | None = None,
    conversations: dict[str, list[Any]] | None = None,
    resume: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Run stage `config.stage`; returns a summary (steps, seconds, last losses, checkpoint path).

    Stage 2 needs `backbone_dir` (a local causal LM directory); stage 3 needs `init`, a finished
    stage 2 run (its `merged/` is the backbone) and `conversations` ({split: [Conversation]}).
    """
    from accelerate import Accelerator

    from molam_ros.data.dataset import MotionDataset
    from molam_ros.tokenizer.config import TokenizerConfig
    from molam_ros.tokenizer.rqvae import checkpoint_identity, read_checkpoint_info

    out = Path(out_dir)
    data_dir, tokenizer_checkpoint = Path(data_dir), Path(tokenizer_checkpoint)
    tok_config = TokenizerConfig.from_dict(read_checkpoint_info(tokenizer_checkpoint)["config"])
    if config.stage == 2:
        if backbone_dir is None:
            raise ValueError("stage 2 needs a backbone directory")
        backbone, init_dir = Path(backbone_dir), None
    else:
        if init is None:
            raise ValueError("stage 3 needs --init, the directory of a finished stage 2 run")
        init_dir = Path(init)
        record = read_checkpoint_record(init_dir)
        if record.get("weights") != "merged":
            raise ValueError(
                f"{init_dir} is not a finished stage 2 run (no merged model); finish stage 2 first"
            )
        backbone = init_dir / "merged"
        if not conversations or not conversations.get("train"):
            raise ValueError("stage 3 needs conversations for the train split")

    accelerator = Accelerator(gradient_accumulation_steps=config.grad_accum, cpu=device == "cpu")
    torch.manual_seed(config.seed)
    state_file = out / STATE_FILE
    step = 0
    epoch = 0
    if resume and state_file.is_file():
        mlm = load_motion_lm(out, trainable=True, device=accelerator.device)
        mlm.train()
        state = torch.load(state_file, map_location="cpu", weights_only=False)
        step, epoch = int(state["step"]), int(state["epoch"])
    else:
        if resume:
            print(f"molam: nothing to resume in {out}, starting a new run")
        mlm = _build_model(config, backbone, init_dir, tok_config, str(accelerator.device))
        mlm.train()
        state = None
    mlm.info = {
        "tokenizer_checkpoint": str(tokenizer_checkpoint.resolve()),
        "tokenizer": checkpoint_identity(tokenizer_checkpoint),
        "data": str(data_dir.resolve()),
        "train": config.to_dict(),
    }

    codes = encode_dataset_codes(data_dir, tokenizer_checkpoint, out / "codes_cache.npz", progress=progress)
    dataset = MotionDataset(data_dir)
    source = ExampleSource(dataset, codes, mlm, tok_config.stride, config, conversations or {})
    val = source.epoch(0, split="val")[: config.eval_examples] or source.epoch(0)[: config.eval_examples]

    head_params = list(mlm.head.parameters())
    head_ids = {id(p) for p in head_params}
    lm_params = [p for p in mlm.trainable_parameters() if id(p) not in head_ids]
    optimizer = torch.optim.AdamW(
        [{"params": lm_params, "lr": config.lr}, {"params": head_params, "lr": config.head_lr}],
        weight_decay=config.weight_decay,
        betas=(0.9, 0.95),
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, config))
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
    model, optimizer, scheduler = accelerator.prepare(mlm, optimizer, scheduler)
    pad_id = mlm.tokenizer.pad_token_id
    per_epoch = len(source.epoch(epoch)) if accelerator.is_main_process else 0
    n_train = sum(p.numel() for p in mlm.trainable_parameters())
    n_all = sum(p.numel() for p in mlm.parameters())
    if accelerator.is_main_process:
        print(
            f"molam llm stage {config.stage}: {n_train / 1e6:.2f} M of {n_all / 1e6:.1f} M parameters "
            "trained, "
            f"{per_epoch} examples per epoch, {step}/{config.steps} steps done"
        )
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / LOG_FILE, "a")  # noqa: SIM115 - kept open for the whole run
    bar = tqdm(
        total=config.steps,
        initial=step,
        desc=f"llm stage {config.stage}",
        unit="step",
        disable=not (progress and accelerator.is_main_process),
    )
    batches = _batches(source, config.batch_size, epoch)
    t0 = time.perf_counter()
    last: dict[str, float] = {}
    last_eval: dict[str, float] = {}

    def checkpoint(final: bool) -> None:
        if not accelerator.is_main_process:
            return
        unwrapped = accelerator.unwrap_model(model)
        merged = final and config.stage == 2
        unwrapped.save(
            out,
            base=backbone,
            stage=config.stage,
            lora=config.lora,
            merged=merged,
            extra={"steps_done": step, "eval": last_eval},
        )
        torch.save(
            {
                "step": step,
                "epoch": epoch,
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
            },
            state_file,
        )

    while step < config.steps:
        for _ in range(config.grad_accum):
            epoch, examples = next(batches)
            batch = {k: v.to(accelerator.device) for k, v in collate(examples, pad_id).items()}
            with accelerator.accumulate(model):
                outputs = model(**batch)
                accelerator.backward(outputs["loss"])
                if accelerator.sync_gradients and config.grad_clip > 0:
                    accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
        step += 1
        last = {k: float(v.detach()) for k, v in outputs.items()}
        bar.update(1)
        bar.set_postfix(lm=f"{last['lm_loss']:.3f}", depth=f"{last['depth_loss']:.3f}")
        if accelerator.is_main_process and (step % config.log_every == 0 or step == config.steps):
            log.write(
                json.dumps(
                    {
                        "kind": "train",
                        "step": step,
                        "lr": scheduler.get_last_lr()[0],
                        **last,
                        "seconds": time.perf_counter() - t0,
                    }
                )
                + "\n"
            )
            log.flush()
        if (config.eval_every and step % config.eval_every == 0) or step == config.steps:
            last_eval = evaluate_loss(model, val, config.batch_size, pad_id, accelerator.device)
            if accelerator.is_main_process:
                log.write(json.dumps({"kind": "eval", "step": step, **last_eval}) + "\n")
                log.flush()
                bar.write(
                    f"step {step}: eval lm_loss {last_eval['lm_loss']:.4f} "
                    f"depth_loss {last_eval['depth_loss']:.4f}"
                )
        if step < config.steps and config.checkpoint_every and step % config.checkpoint_every == 0:
            checkpoint(final=False)
    bar.close()
    log.close()
    checkpoint(final=True)
    seconds = time.perf_counter() - t0
    if accelerator.is_main_process:
        plot_log(out / LOG_FILE, out / "loss.png")
    return {"steps": step, "seconds": seconds, "train": last, "eval": last_eval, "checkpoint": str(out)}
