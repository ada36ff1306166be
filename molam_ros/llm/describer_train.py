"""Training the motion describer (llm/describer.py): two people's codes in, one of the clip's captions out.

The data are the dataset's two-person clips encoded once by the tokenizer (the reaction codes'
cache, llm/reaction_codes.py, so the LLM reactor's encoding is reused) and put back in the clip's
own order, the one its captions use ("Person A waves at person B": the reaction cache stores the
actor first). Each example is a training clip's first `max_steps` steps and one of its captions,
drawn at random each time (the generator writes four per clip in different words).

Windows (`windows`). Live, a question is answered from the last `answer_steps` steps (3.2 s) of
the stream, which start anywhere in the interaction, not at a clip's first frame; the describer
trained on clip starts named the interaction in 98 % of whole validation clips and far fewer of such
windows. With chance `windows` an example is instead a window of `window_min` to `max_steps` steps
that holds the clip's interaction segment (or lies inside it when the segment is longer), so what
the caption names is always in what is read.

Held-out caption loss on a fixed set of validation clips is logged every `eval_every` steps to
train_log.jsonl with the checkpoint and the optimizer state, so `--resume` continues a stopped run;
`minutes` stops a run cleanly at a time budget.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from molam_ros.llm.describer import (
    DescriberConfig,
    MotionDescriber,
    answer_text,
    caption_ids,
    save_describer,
)
from molam_ros.llm.reactor_trunk import load_trainable, trainable_state

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class DescriberTrainConfig:
    """Optimisation of the describer."""

    steps: int = 2000
    batch: int = 32
    lr: float = 5e-4
    warmup: int = 100
    weight_decay: float = 0.0
    eval_every: int = 250
    eval_clips: int = 128
    minutes: float = 0.0  # 0: no time budget
    bf16: bool = True  # bfloat16 autocast (this CPU has avx512_bf16)
    seed: int = 0
    windows: float = 0.0  # share of examples that are a window holding the interaction (docstring)
    window_min: int = 16  # steps


@dataclass
class CaptionedCodes:
    """Each two-person clip's codes (L, 2, D) in its own person order, with its captions and labels."""

    codes: list[np.ndarray]
    captions: list[list[str]]
    clip_ids: list[str]
    splits: list[str]
    interactions: list[str]
    styles: list[str]
    spans: list[tuple[int, int]] | None = None  # the interaction segment of each clip, [start, end) steps

    def span(self, i: int) -> tuple[int, int]:
        """Clip i's interaction segment in steps (the whole clip where the data do not say)."""
        return self.spans[i] if self.spans is not None else (0, len(self.codes[i]))

    def window(self, i: int, steps: int) -> np.ndarray:
        """The `steps` steps of clip i that end where its interaction ends: what a question asked
        right after the interaction reads live (runtime/pipeline.py answers from the last steps)."""
        end = max(self.span(i)[1], min(steps, len(self.codes[i])))
        return self.codes[i][max(0, end - steps) : end]

    def indices(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.splits) if s == split]


def captioned_codes(
    data_dir: str | Path, tokenizer_dir: str | Path, *, progress: bool = True
) -> CaptionedCodes:
    """The dataset's two-person clips with captions, as codes of the tokenizer (module docstring)."""
    from molam_ros.llm.reaction_codes import encode_reaction_codes

    root = Path(data_dir)
    rc = encode_reaction_codes(root, tokenizer_dir, progress=progress)
    out = CaptionedCodes([], [], [], [], [], [], [])
    stride = 4  # frames per step of the tokenizers this reads (llm/reaction_codes.py checks the layout)
    for i, clip_id in enumerate(rc.clip_ids):
        text = root / "texts" / f"{clip_id}.txt"
        captions = [t.strip() for t in text.read_text().splitlines() if t.strip()] if text.is_file() else []
        if rc.instructed[i] or not captions:
            continue
        meta_path = root / "meta" / f"{clip_id}.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
        a, b = rc.clip(i)
        pair = (b, a) if int(meta.get("actor", 0)) == 1 else (a, b)
        out.codes.append(np.stack(pair, axis=1))
        out.captions.append(captions)
        out.clip_ids.append(clip_id)
        out.splits.append(rc.splits[i])
        out.interactions.append(rc.interactions[i])
        out.styles.append(rc.styles[i])
        out.spans.append(_span(meta, len(a), stride))
    if not out.indices("train"):
        raise ValueError(f"{root} has no captioned two-person training clips")
    return out


def _span(meta: dict[str, Any], steps: int, stride: int) -> tuple[int, int]:
    """[start, end) steps of the clip's interaction segment (the generator's meta), else the clip."""
    for seg in meta.get("segments", []):
        if seg.get("kind") == "interaction":
            a = max(0, min(steps - 1, int(seg["start"]) // stride))
            return a, max(a + 1, min(steps, -(-int(seg["end"]) // stride)))
    return 0, steps


def clip_codes(engine: Any, positions: np.ndarray, actor: int = 0) -> np.ndarray:
    """(L, 2, D) codes of one two-person clip as the describer reads them: encoded as the reaction
    data are (llm/reaction_codes.py, actor first), then put back in the clip's own order."""
    from molam_ros.llm.reaction_codes import reaction_features, reaction_pair

    T = positions.shape[1] // engine.stride * engine.stride
    pair = reaction_pair(np.asarray(positions)[:, :T], actor)
    codes = engine.encode(reaction_features(pair, engine.stride))  # (2, L, D)
    return (codes[::-1] if actor == 1 else codes).transpose(1, 0, 2)


class _Batches:
    """Random (codes, lengths, caption ids) batches of one split."""

    def __init__(
        self,
        data: CaptionedCodes,
        split: str,
        net: MotionDescriber,
        seed: int,
        windows: float = 0.0,
        window_min: int = 16,
    ) -> None:
        c = net.config
        self.windows, self.window_min = windows, window_min
        self.rows = data.indices(split)
        self.data, self.max_steps, self.depth = data, c.max_steps, c.depth
        tok = net.tokenizer
        self.ids = {
            i: [
                caption_ids(tok, answer_text(t, _labels(data, i, c)), net.eos, c.max_tokens)
                for t in data.captions[i]
            ]
            for i in self.rows
        }
        self.rng = np.random.default_rng(seed)
        index = [{name: k for k, name in enumerate(group)} for group in c.aux_labels]
        self.labels = {
            i: [
                index[k].get(v, -1)
                for k, v in enumerate((data.interactions[i], data.styles[i])[: len(index)])
            ]
            for i in self.rows
        }

    def _crop(self, i: int) -> np.ndarray:
        """Clip i from its start, or (with chance `windows`) a window holding its interaction."""
        k = self.data.codes[i]
        if self.rng.random() >= self.windows or len(k) <= self.window_min:
            return k[: self.max_steps]
        n = int(self.rng.integers(self.window_min, min(self.max_steps, len(k)) + 1))
        a, b = self.data.span(i)
        lo, hi = (max(0, b - n), min(a, len(k) - n)) if b - a <= n else (a, b - n)
        return k[(s := int(self.rng.integers(min(lo, hi), max(lo, hi) + 1))) : s + n]

    def batch(self, rows: list[int], caption: list[int] | None = None) -> tuple[torch.Tensor, ...]:
        crops = [self._crop(i) for i in rows]
        L = max(len(k) for k in crops)
        codes = torch.zeros(len(rows), L, 2, self.depth, dtype=torch.long)
        lengths = torch.zeros(len(rows), dtype=torch.long)
        texts = []
        for j, (i, k) in enumerate(zip(rows, crops, strict=True)):
            codes[j, : len(k)] = torch.from_numpy(k.astype(np.int64))
            lengths[j] = len(k)
            options = self.ids[i]
            texts.append(
                options[caption[j] % len(options) if caption else int(self.rng.integers(len(options)))]
            )
        N = max(len(t) for t in texts)
        text = torch.full((len(rows), N), -100, dtype=torch.long)
        for j, t in enumerate(texts):
            text[j, : len(t)] = torch.tensor(t)
        labels = torch.tensor([self.labels[i] for i in rows], dtype=torch.long).view(len(rows), -1)
        return codes, lengths, text, labels

    def sample(self, size: int) -> tuple[torch.Tensor, ...]:
        return self.batch([self.rows[int(k)] for k in self.rng.integers(len(self.rows), size=size)])


def label_sets(data: CaptionedCodes) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The training split's interaction types and styles, sorted: the auxiliary head's classes."""
    train = data.indices("train")
    return tuple(sorted({data.interactions[i] for i in train})), tuple(
        sorted({data.styles[i] for i in train})
    )


def _labels(data: CaptionedCodes, i: int, config: DescriberConfig) -> tuple[str, str] | None:
    return (data.interactions[i], data.styles[i]) if config.label_line else None


def caption_vocab(data: CaptionedCodes, tokenizer: Any, config: DescriberConfig) -> list[int]:
    """Every token id that the training answers use (captions, and their label lines)."""
    vocab: set[int] = set()
    for i in data.indices("train"):
        for t in data.captions[i]:
            vocab.update(tokenizer(answer_text(t, _labels(data, i, config)))["input_ids"])
    return sorted(vocab)


def _lr(step: int, cfg: DescriberTrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    progress = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def held_out_loss(net: MotionDescriber, val: _Batches, clips: int, batch: int) -> float:
    """Mean caption loss over the first `clips` validation clips, each with its first caption."""
    net.eval()
    rows = val.rows[:clips]
    losses = []
    for s in range(0, len(rows), batch):
        chunk = rows[s : s + batch]
        codes, lengths, text, _ = val.batch(chunk, caption=[0] * len(chunk))
        losses.append(float(net.loss(codes, lengths, text)) * len(chunk))  # the caption's loss alone
    net.train()
    return sum(losses) / max(1, len(rows))


def train_describer(
    data: CaptionedCodes,
    out: str | Path,
    model: DescriberConfig,
    cfg: DescriberTrainConfig,
    info: dict[str, Any],
    *,
    resume: bool = False,
    progress: bool = True,
    init: str | Path | None = None,
) -> dict[str, Any]:
    """Train (or continue) a describer into `out`; returns the last logged figures. `init`: start from
    another describer's weights (the shipped one, to teach it windows; its caption vocabulary kept)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    from transformers import AutoTokenizer

    from molam_ros.llm.reactor_trunk import backbone_dir

    tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir(model.backbone)))
    if init is not None and not (resume and (out / "train_state.pt").is_file()):
        from molam_ros.llm.describer import load_describer

        net, _ = load_describer(init)
        net.train()
        log.info("starting from the weights of %s", init)
    else:
        net = MotionDescriber(model, caption_vocab(data, tokenizer, model))
    params = [p for p in net.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    step, elapsed = 0, 0.0
    state_path = out / "train_state.pt"
    if resume and state_path.is_file():
        state = torch.load(state_path, weights_only=False)
        load_trainable(net, state["model"])
        opt.load_state_dict(state["optimizer"])
        step, elapsed = int(state["step"]), float(state["seconds"])
        log.info("resuming %s at step %d (%.0f s trained)", out, step, elapsed)
    train = _Batches(data, "train", net, cfg.seed + step, cfg.windows, cfg.window_min)
    val = _Batches(data, "val", net, 0)
    if not val.rows:
        raise ValueError("the dataset has no captioned validation clips to measure on")
    t0 = time.perf_counter() - elapsed
    last: dict[str, Any] = {}
    net.train()
    bar = tqdm(total=cfg.steps, initial=step, desc="describer", unit="step", disable=not progress)
    while step < cfg.steps:
        for g in opt.param_groups:
            g["lr"] = _lr(step, cfg)
        codes, lengths, text, labels = train.sample(cfg.batch)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = net.loss(codes, lengths, text, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.3f}")
        seconds = time.perf_counter() - t0
        out_of_time = cfg.minutes > 0 and seconds > cfg.minutes * 60
        if step % cfg.eval_every == 0 or step == cfg.steps or out_of_time:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.bf16):
                val_loss = held_out_loss(net, val, cfg.eval_clips, cfg.batch)
            last = {"step": step, "loss": float(loss), "val_loss": val_loss, "seconds": round(seconds, 1)}
            with (out / "train_log.jsonl").open("a") as f:
                f.write(json.dumps(last) + "\n")
            save_describer(net, out, {**info, "train": asdict(cfg), "figures": last})
            torch.save(
                {
                    "model": trainable_state(net),
                    "optimizer": opt.state_dict(),
                    "step": step,
                    "seconds": seconds,
                },
                state_path,
            )
            log.info("step %d: loss %.3f, held-out %.3f (%.0f s)", step, float(loss), val_loss, seconds)
        if out_of_time:
            log.info("time budget of %.0f min reached at step %d", cfg.minutes, step)
            break
    bar.close()
    return last


__all__ = [
    "CaptionedCodes",
    "DescriberTrainConfig",
    "caption_vocab",
    "captioned_codes",
    "clip_codes",
    "label_sets",
    "train_describer",
]
