"""Motion to text with the LLM's first layers: two people's codes in, a caption out.

Why. The issue's LLM row asks the motion-language model to describe motion (the interaction named
in >= 60 % of held-out clips, its style in >= 40 %). The full model writes every code as its own
token through SmolLM2's 30 layers and, trained as far as this CPU allows, gave every clip the same
caption. This is the cheap LLM of the issue, the LLM reactor's recipe (llm/reactor_trunk.py) with
the language head kept: one backbone position per step whose input is the sum of that step's code
embeddings, both people's (each person has its own code table, so who does what stays readable), the
backbone's first `layers` decoder layers frozen with LoRA, and its own tied LM head writing the
caption after a prompt in words:

    [sum_d E_a[a_t,d] + sum_d E_b[b_t,d]]_t=1..L  "Describe what the people do.\\n"  -> caption <eos>

Caption vocabulary. The head scores only the tokens that the training captions use (`vocab`, kept
in the checkpoint): training computes the softmax over those rows of the head (about 1 % of the
49152, which is what makes a step affordable here) and generation forbids the others with a
LogitsProcessor, so training and generation score the same distribution. A model trained on other
captions keeps their vocabulary.

Grounding (`aux_labels`). A caption is mostly phrasing: of its ~25 tokens one or two name the
interaction, so the caption loss falls for hundreds of steps while the words that matter are
guessed (400 steps: the phrasing fluent, the interaction named in 12 % of validation clips, against
84 % for the nearest training clip by code histogram). An auxiliary head asks the state that starts
the caption to name the interaction and the style linearly (cross-entropy, training only), so the
motion is read from the first steps on.

Labels first (`label_line`). Even so the caption's words lagged (500 steps: the head named the
interaction in 91 % of validation clips, the captions in 16 %): the interaction word sits deep in a
caption, after phrasing ("Person B walks up first. Person A ..."), and is written from the language
prior there. So the answer starts with a line that names the labels in words ("hand over, calm"),
written by the LM head from the same state the auxiliary head reads, and the caption follows,
conditioned on it, as a short reasoning step before the answer; describe() returns the caption.

Only the adapters, the code tables and the auxiliary head are trained and saved; the frozen layers
and the LM head come back from the backbone directory at load, whose identity config.json records
(as the LLM reactor's).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import LogitsProcessor

from molam_ros.llm.reactor_trunk import (
    backbone_dir,
    backbone_identity,
    load_trainable,
    pretrained_layers,
    trainable_state,
    with_lora,
)

KIND, VERSION = "motion_describer", 1


@dataclass(frozen=True, kw_only=True)
class DescriberConfig:
    """Shape of the describer; codebook_size and depth follow the tokenizer whose codes it reads."""

    codebook_size: int = 512
    depth: int = 4
    backbone: str = "default"
    layers: int = 4
    lora_rank: int = 16
    max_steps: int = 64  # motion steps read: a clip's first, a live stream's last (8.5 s at 30 fps)
    max_tokens: int = 48  # answer tokens written (the labels line and the caption)
    prompt: str = "Describe what the people do.\n"
    # label sets (the interaction types, the styles) that an auxiliary head reads from the state that
    # starts the caption, in training only (module docstring: "Grounding"); () for none
    aux_labels: tuple[tuple[str, ...], ...] = ()
    aux_weight: float = 1.0
    # the answer starts with a line naming the labels ("wave, calm"), then the caption (module
    # docstring: "Labels first"); describe() returns the caption
    label_line: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DescriberConfig:
        return cls(**{**d, "aux_labels": tuple(tuple(g) for g in d.get("aux_labels", ()))})


class AllowedTokens(LogitsProcessor):
    """Generation writes only the caption vocabulary (module docstring)."""

    def __init__(self, allowed: torch.Tensor) -> None:
        self.allowed = allowed

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        out = torch.full_like(scores, float("-inf"))
        out[:, self.allowed] = scores[:, self.allowed]
        return out


class MotionDescriber(nn.Module):
    """(B, L, 2, D) codes -> caption logits over the caption vocabulary (module docstring)."""

    def __init__(self, config: DescriberConfig, vocab: list[int]) -> None:
        super().__init__()
        from transformers import AutoTokenizer

        self.config = c = config
        self.tokenizer = AutoTokenizer.from_pretrained(str(backbone_dir(c.backbone)))
        eos = int(self.tokenizer.eos_token_id)
        self.register_buffer("vocab", torch.tensor(sorted({*vocab, eos}), dtype=torch.long), persistent=True)
        lm = pretrained_layers(c.backbone, c.layers, lm_head=True)
        self.width = int(lm.config.hidden_size)
        token_std = float(lm.get_input_embeddings().weight.detach().std())
        self.lm = with_lora(lm, c.lora_rank)
        # one table per person and depth; the sum of 2 D embeddings at the scale of one token's
        self.code = nn.Embedding(2 * c.depth * c.codebook_size, self.width)
        nn.init.normal_(self.code.weight, std=token_std / np.sqrt(2 * c.depth))
        self.register_buffer(
            "offsets", torch.arange(2 * c.depth).view(2, c.depth) * c.codebook_size, persistent=False
        )
        sizes = [len(g) for g in c.aux_labels]
        self.aux = nn.Linear(self.width, sum(sizes)) if sizes else None
        self.aux_sizes = sizes
        self.register_buffer(
            "prompt_ids",
            torch.tensor(self.tokenizer(c.prompt)["input_ids"], dtype=torch.long),
            persistent=False,
        )

    @property
    def eos(self) -> int:
        return int(self.tokenizer.eos_token_id)

    def _embed_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm.get_input_embeddings()(ids)

    def prefix(self, codes: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded [motion steps, prompt] embeddings (B, P, W) and their attention mask.

        codes: (B, L, 2, D) with each row's first `lengths[i]` steps valid (the rest is padding)."""
        B, L = codes.shape[:2]
        motion = self.code(codes.long() + self.offsets).sum(dim=(2, 3))  # (B, L, W)
        valid = torch.arange(L, device=codes.device)[None] < lengths[:, None]
        # left padding: row i's valid steps end where the prompt starts
        shift = (L - lengths).view(B, 1)
        src = (torch.arange(L, device=codes.device)[None] - shift).clamp(min=0)
        motion = torch.gather(motion, 1, src[..., None].expand(-1, -1, self.width))
        mask = torch.gather(valid, 1, src) & (torch.arange(L, device=codes.device)[None] >= shift)
        prompt = self._embed_tokens(self.prompt_ids).expand(B, -1, -1)
        x = torch.cat([motion, prompt], dim=1)
        m = torch.cat([mask, torch.ones(B, prompt.shape[1], dtype=torch.bool, device=codes.device)], dim=1)
        return x, m.long()

    def loss(
        self,
        codes: torch.Tensor,
        lengths: torch.Tensor,
        text: torch.Tensor,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Cross-entropy of the captions `text` (B, N) token ids, -100 after each one's <eos>; with
        `labels` (B, groups) indices into `aux_labels` (-1: unknown), plus the auxiliary head's."""
        x, mask = self.prefix(codes, lengths)
        inp = self._embed_tokens(text.clamp(min=0))
        x = torch.cat([x, inp], dim=1)
        mask = torch.cat([mask, torch.ones_like(text)], dim=1)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        base = self.lm.get_base_model()
        h = base.model(inputs_embeds=x, attention_mask=mask, position_ids=positions, use_cache=False)
        P = x.shape[1] - text.shape[1]
        states = h.last_hidden_state[:, P - 1 : -1]  # the state before each caption token predicts it
        logits = states @ base.lm_head.weight[self.vocab].T  # (B, N, V): the caption vocabulary only
        target = torch.full_like(text, -100)
        index = torch.searchsorted(self.vocab, text.clamp(min=0))
        target[text >= 0] = index[text >= 0]
        loss = nn.functional.cross_entropy(logits.float().flatten(0, 1), target.flatten(), ignore_index=-100)
        if self.aux is None or labels is None:
            return loss
        groups = self.aux(states[:, 0]).float().split(self.aux_sizes, dim=-1)
        aux = sum(nn.functional.cross_entropy(g, labels[:, k], ignore_index=-1) for k, g in enumerate(groups))
        return loss + self.config.aux_weight * aux / len(groups)

    def describe(self, codes: list[np.ndarray]) -> list[str]:
        """One caption per (L, 2, D) code array (greedy decoding through transformers' generate)."""
        # a caption cut off by max_tokens still says what its labels line says
        return [caption or labels for labels, caption in self.answers(codes)]

    @torch.no_grad()
    def answers(self, codes: list[np.ndarray]) -> list[tuple[str, str]]:
        """(labels line, caption) per (L, 2, D) code array; the labels line is empty without `label_line`."""
        c = self.config
        rows = [np.asarray(k)[: c.max_steps] for k in codes]
        if any(r.ndim != 3 or r.shape[1:] != (2, c.depth) or len(r) == 0 for r in rows):
            raise ValueError(f"describe() reads (steps > 0, 2, {c.depth}) codes per clip")
        if any(r.min() < 0 or r.max() >= c.codebook_size for r in rows):
            raise ValueError(f"describe() reads codes in [0, {c.codebook_size}): another tokenizer's?")
        L = max(len(r) for r in rows)
        batch = torch.zeros(len(rows), L, 2, c.depth, dtype=torch.long)
        for i, r in enumerate(rows):
            batch[i, : len(r)] = torch.from_numpy(r.astype(np.int64))
        device = self.code.weight.device
        lengths = torch.tensor([len(r) for r in rows], device=device)
        x, mask = self.prefix(batch.to(device), lengths)
        out = self.lm.generate(
            inputs_embeds=x,
            attention_mask=mask,
            max_new_tokens=c.max_tokens,
            do_sample=False,
            logits_processor=[AllowedTokens(self.vocab)],
            eos_token_id=self.eos,
            pad_token_id=self.eos,
        )
        texts = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return [split_answer(t, self.config.label_line) for t in texts]

    def caption(self, codes: np.ndarray) -> str:
        """The caption of a (2, L, D) two-person motion's last `max_steps` steps (live: the most recent)."""
        codes = np.asarray(codes)
        if codes.ndim != 3 or codes.shape[0] != 2:
            raise ValueError(f"caption() reads (2, steps, {self.config.depth}) codes, got {codes.shape}")
        return self.describe([codes[:, -self.config.max_steps :].transpose(1, 0, 2)])[0]


def answer_text(caption: str, labels: tuple[str, ...] | None) -> str:
    """What the describer is trained to write: with `labels` (interaction, style) a first line
    naming them in words ("hand over, calm"), then the caption."""
    caption = caption.strip()
    if not labels:
        return caption
    return ", ".join(str(x).replace("_", " ") for x in labels) + "\n" + caption


def split_answer(text: str, label_line: bool) -> tuple[str, str]:
    """(labels line, caption) of a written answer; the labels line is empty without `label_line`."""
    text = text.strip()
    if not label_line:
        return "", text
    head, _, tail = text.partition("\n")
    return head.strip(), tail.strip()


def caption_ids(tokenizer: Any, text: str, eos: int, max_tokens: int) -> list[int]:
    """An answer's token ids ending in <eos>, cut to `max_tokens`."""
    return (tokenizer(text.strip())["input_ids"] + [eos])[:max_tokens]


def save_describer(
    net: MotionDescriber, out: str | Path, info: dict[str, Any], *, half: bool = False
) -> Path:
    """config.json (shape, vocabulary, backbone identity, `info`) and model.safetensors (the adapters
    and code tables; float16 with `half`)."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    state = {k: v for k, v in trainable_state(net).items() if k != "vocab"}
    save_file(
        {k: v.detach().to("cpu", dtype).contiguous() for k, v in state.items()},
        str(out / "model.safetensors"),
    )
    config = {
        "kind": KIND,
        "version": VERSION,
        "model": net.config.to_dict(),
        "vocab": net.vocab.tolist(),
        "backbone_identity": backbone_identity(net.config.backbone),
        **info,
    }
    (out / "config.json").write_text(json.dumps(config, indent=1))
    return out


def load_describer(directory: str | Path) -> tuple[MotionDescriber, dict[str, Any]]:
    """The describer (float32, eval mode) and its config.json, or a clear error."""
    from safetensors.torch import load_file

    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise FileNotFoundError(f"{d} holds no motion describer; train one: molam describer train")
    info = json.loads((d / "config.json").read_text())
    if info.get("kind") != KIND or info.get("version") != VERSION:
        raise ValueError(f"{d}/config.json is not a motion describer of this version (retrain it)")
    config = DescriberConfig.from_dict(info["model"])
    if info.get("backbone_identity") != backbone_identity(config.backbone):
        raise ValueError(f"{d} was trained on another backbone than {config.backbone!r} is now: retrain it")
    net = MotionDescriber(config, info["vocab"])
    state = {k: v.float() for k, v in load_file(str(d / "model.safetensors")).items()}
    load_trainable(net, {**state, "vocab": net.vocab})
    return net.eval(), info


__all__ = [
    "AllowedTokens",
    "DescriberConfig",
    "MotionDescriber",
    "answer_text",
    "caption_ids",
    "load_describer",
    "save_describer",
    "split_answer",
]
