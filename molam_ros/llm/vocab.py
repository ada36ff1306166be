"""Motion tokens in the LLM's vocabulary: token strings, their ids, codes -> token ids.

The RQ-VAE (molam_ros/tokenizer) turns every l = 4 frames of one person into D codes, one per depth,
each in [0, K). The LLM sees them as added tokens, one token per (depth, code): `<m{d}_{k}>`, d and k
0-based (`<m0_17>` is code 17 of the coarsest depth). Both people share these tokens because they
share one codebook: a code means the same body movement whoever performs it, so its embedding learns
from both people's data. D * K code tokens plus four markers: `<motion>`, `</motion>`, `<person_a>`,
`<person_b>`.

Layout of one motion span (`step_markers=True`, the default), per time step of l frames:

    <motion> <person_a> a_0 .. a_{D-1} <person_b> b_0 .. b_{D-1}   (step 1)
             <person_a> a_0 .. a_{D-1} <person_b> b_0 .. b_{D-1}   (step 2) ... </motion>

which is the paper's `[k(1;a)_1..D, k(1;b)_1..D, ..., k(L;a), k(L;b)]` with a person marker before
each person's D codes. A span of one person drops the other person's part (`<motion> <person_a> a..
<person_a> a.. </motion>`); which people a span holds is fixed by its first step. `</motion>` may only
come at a step boundary after at least one step, so every span holds whole steps.

Why a marker per person-step. Since code tokens are shared, without markers the only thing telling
a's codes from b's is the parity of the step inside the span, i.e. counting up to hundreds of
tokens, which transformers do badly; the marker states it at every step. The price is 2D + 2 = 10
tokens per step instead of 2D = 8 (D = 4): 25 % more context. The number of *sampled* tokens is
unchanged (the markers are fixed by the grammar), and a streaming reaction step feeds `<person_a>
a_0..a_{D-1} <person_b>` in one forward pass either way, so there the markers only cost longer
inputs (two tokens more per step; `molam bench llm` prints the step rate of the layout a checkpoint
uses). Offline `generate()` samples the forced markers like any token: 10 forward passes per step
instead of 8.
`step_markers=False` is that compact alternative, kept to measure the quality side of the trade-off:
the people are named once after `<motion>` (`<motion> <person_a> <person_b> a_0..a_{D-1} b_0..b_{D-1}
...`).

`codes_to_token_ids` writes that layout. Its grammar (`constraints.SpanGrammar`) is the one
definition of it: `constraints.parse_span` reads a span back into codes with it, and the decoding
constraint only lets through what it accepts, so every constrained span decodes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

MOTION_START = "<motion>"
MOTION_END = "</motion>"
PERSON_A = "<person_a>"
PERSON_B = "<person_b>"
PERSONS = ("a", "b")  # interleaving order inside a step: a, then b
VOCAB_FILE = "motion_vocab.json"
_FORMAT = 1  # bump when the token strings or the layout change

# Every string of the motion vocabulary, for refusing them inside user text (prompts.py).
MOTION_TOKEN_RE = re.compile(r"</?motion>|<person_[ab]>|<m\d+_\d+>")


class MotionSequenceError(ValueError):
    """A token sequence that is not a well-formed motion span."""


# helper functions


def as_codes(codes: Any, what: str, K: int, D: int) -> np.ndarray:
    """`codes` as an (L, D) int64 array with 0 <= k < K and L >= 1, or a ValueError naming `what`."""
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().cpu().numpy()
    arr = np.asarray(codes)
    if arr.ndim != 2 or arr.shape[1] != D or arr.shape[0] < 1:
        raise ValueError(f"{what} must have shape (L, D={D}) with L >= 1, got shape {arr.shape}")
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{what} must hold integer codes, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= K:
        raise ValueError(f"{what} codes must be in [0, K={K}), got [{arr.min()}, {arr.max()}]")
    return arr.astype(np.int64)


@dataclass(frozen=True)
class MotionTokenIds:
    """Where the motion tokens sit in one tokenizer's vocabulary.

    Code ids are contiguous, depth-major: code k of depth d is `code_base + d * K + k`, so mapping
    codes to ids and masking one depth are arithmetic and slices, not dictionary look-ups.
    """

    code_base: int
    motion_start: int
    motion_end: int
    person_a: int
    person_b: int

    def person(self, p: str) -> int:
        return self.person_a if p == "a" else self.person_b

    def markers(self) -> list[int]:
        return [self.motion_start, self.motion_end, self.person_a, self.person_b]


@dataclass(kw_only=True)
class MotionVocab:
    """The motion vocabulary for a tokenizer with K codes at each of D depths (see module docstring).

    Built from the tokenizer config (`from_tokenizer_config`), bound to an LLM tokenizer by `add_to`
    (new model) or `bind` (a tokenizer saved after `add_to`); saved as JSON next to checkpoints.
    """

    codebook_size: int = 512  # K: codes per depth, the RQ-VAE's `codebook_size`
    depth: int = 4  # D: depths per step, the RQ-VAE's `depths` (body, then relation codes)
    step_markers: bool = True  # a person marker before each person's D codes (module docstring)
    ids: MotionTokenIds | None = field(default=None, compare=False)  # set by add_to / bind

    def __post_init__(self) -> None:
        for name in ("codebook_size", "depth"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"MotionVocab.{name} must be a positive int, got {value!r}")
        if not isinstance(self.step_markers, bool):
            raise ValueError(f"MotionVocab.step_markers must be a bool, got {self.step_markers!r}")

    @classmethod
    def from_tokenizer_config(cls, config: Any, **kwargs: Any) -> MotionVocab:
        """From a `molam_ros.tokenizer.config.TokenizerConfig` (K = codebook_size, D = its depths, D + R)."""
        return cls(codebook_size=config.codebook_size, depth=config.depths, **kwargs)

    # --- token strings

    def code_token(self, d: int, k: int) -> str:
        return f"<m{d}_{k}>"

    def tokens(self) -> list[str]:
        """All new token strings in id order: the four markers, then D * K codes, depth-major."""
        codes = [self.code_token(d, k) for d in range(self.depth) for k in range(self.codebook_size)]
        return [MOTION_START, MOTION_END, PERSON_A, PERSON_B, *codes]

    @property
    def num_tokens(self) -> int:
        return 4 + self.depth * self.codebook_size

    def tokens_per_step(self, persons: int = 2) -> int:
        """Span tokens per time step for `persons` people (markers included)."""
        return persons * (self.depth + int(self.step_markers))

    def span_length(self, steps: int, persons: int = 2) -> int:
        """Tokens of a whole span of `steps` steps: size `max_new_tokens` of a generation with it."""
        header = 0 if self.step_markers else persons
        return 2 + header + steps * self.tokens_per_step(persons)

    # --- binding to an LLM tokenizer and model

    def require_ids(self) -> MotionTokenIds:
        """The token ids of a bound vocabulary; RuntimeError before `add_to` or `bind`."""
        if self.ids is None:
            raise RuntimeError(
                "MotionVocab is not bound to a tokenizer; call add_to(tokenizer, model) or bind()"
            )
        return self.ids

    def bind(self, tokenizer: Any) -> MotionTokenIds:
        """Look up the motion tokens in a tokenizer that already has them (saved after `add_to`)."""
        names = self.tokens()
        ids = tokenizer.convert_tokens_to_ids(names)
        unk = getattr(tokenizer, "unk_token_id", None)
        missing = [
            n for n, i in zip(names, ids, strict=True) if i is None or (i == unk and n != tokenizer.unk_token)
        ]
        if missing:
            raise ValueError(
                f"tokenizer lacks {len(missing)} motion tokens (first: {missing[:3]}); "
                f"call MotionVocab.add_to(tokenizer, model) on a fresh backbone first"
            )
        code_ids = ids[4:]
        base = code_ids[0]
        if code_ids != list(range(base, base + len(code_ids))):
            raise ValueError(
                "the motion code tokens are not contiguous in this tokenizer; add them with add_to()"
            )
        self.ids = MotionTokenIds(
            code_base=base, motion_start=ids[0], motion_end=ids[1], person_a=ids[2], person_b=ids[3]
        )
        return self.ids

    def add_to(
        self, tokenizer: Any, model: Any | None = None, *, seed: int = 0, noise: float = 0.02
    ) -> MotionTokenIds:
        """Add the motion tokens to `tokenizer`, grow `model`'s embeddings to match, bind; return the ids.

        Tokens are added as special tokens: never split or merged with text, and dropped by
        `decode(..., skip_special_tokens=True)` when text is shown to a user. New embedding rows
        (input and, when not tied, output) start at the mean of the existing rows plus Gaussian noise
        of `noise` times the per-dimension std, from a generator seeded with `seed`: the mean keeps
        new tokens from dominating the softmax before training (the reason transformers'
        `mean_resizing` exists), the noise makes them distinguishable, the seed makes runs repeatable.
        Calling it again (or on a tokenizer that has the tokens) adds nothing and re-binds.
        """
        tokenizer.add_tokens(self.tokens(), special_tokens=True)
        ids = self.bind(tokenizer)
        if model is not None:
            old_in = model.get_input_embeddings().weight.shape[0]
            need = len(tokenizer)
            if need > old_in:
                out = model.get_output_embeddings()
                old_out = out.weight.shape[0] if out is not None else 0
                model.resize_token_embeddings(need, mean_resizing=False)
                gen = torch.Generator().manual_seed(seed)
                self._init_rows(model.get_input_embeddings().weight, old_in, gen, noise)
                new_out = model.get_output_embeddings()
                if new_out is not None and new_out.weight is not model.get_input_embeddings().weight:
                    self._init_rows(new_out.weight, old_out, gen, noise)
        return ids

    @staticmethod
    def _init_rows(weight: torch.Tensor, start: int, gen: torch.Generator, noise: float) -> None:
        with torch.no_grad():
            old = weight[:start].float()
            mean, std = old.mean(0), old.std(0)
            n = weight.shape[0] - start
            eps = torch.randn(n, weight.shape[1], generator=gen)
            weight[start:] = (mean + noise * std * eps).to(weight.dtype)

    def trainable_token_indices(self) -> list[int]:
        """Ids of every motion token: peft's `LoraConfig(trainable_token_indices=...)` trains these rows.

        peft handles tied input/output embeddings; at inference, resize the base model the same way
        (`add_to`) before loading the adapter.
        """
        ids = self.require_ids()
        return ids.markers() + list(range(ids.code_base, ids.code_base + self.depth * self.codebook_size))

    # --- ids of single tokens

    def code_id(self, d: int, k: int) -> int:
        return self.require_ids().code_base + d * self.codebook_size + k

    def is_motion_token(self, token_id: int) -> bool:
        ids = self.require_ids()
        return token_id in ids.markers() or self.code_of(token_id) is not None

    def code_of(self, token_id: int) -> tuple[int, int] | None:
        """(depth, code) of a code token id, None for any other id."""
        i = token_id - self.require_ids().code_base
        if 0 <= i < self.depth * self.codebook_size:
            return divmod(i, self.codebook_size)
        return None

    # --- codes <-> token ids

    def codes_to_token_ids(self, codes_a: Any | None, codes_b: Any | None = None) -> list[int]:
        """One motion span, `<motion>` to `</motion>`, for one or two people's (L, D) codes.

        Two people must have the same number of steps L (pad or crop the shorter first).
        """
        ids = self.require_ids()
        K, D = self.codebook_size, self.depth
        given = {p: c for p, c in zip(PERSONS, (codes_a, codes_b), strict=True) if c is not None}
        if not given:
            raise ValueError("codes_to_token_ids needs codes_a, codes_b or both")
        arrays = {p: as_codes(c, f"codes_{p}", K, D) for p, c in given.items()}
        lengths = {p: a.shape[0] for p, a in arrays.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"codes_a and codes_b must have the same number of steps, got {lengths}")
        L = next(iter(lengths.values()))
        offsets = ids.code_base + np.arange(D, dtype=np.int64) * K  # (D,)
        parts = []
        for p, a in arrays.items():
            cols = [] if not self.step_markers else [np.full((L, 1), ids.person(p), dtype=np.int64)]
            parts.extend([*cols, a + offsets])  # (L, 1) marker, (L, D) code ids
        body = np.concatenate(parts, axis=1).reshape(-1)  # (L, tokens_per_step) -> step-major
        header = [] if self.step_markers else [ids.person(p) for p in arrays]
        return [ids.motion_start, *header, *body.tolist(), ids.motion_end]

    def codes_to_text(self, codes_a: Any | None, codes_b: Any | None = None) -> str:
        """The span as token strings, for chat messages (the tokenizer maps each back to one id)."""
        names = self.tokens()
        ids = self.require_ids()
        first = {ids.motion_start: 0, ids.motion_end: 1, ids.person_a: 2, ids.person_b: 3}
        out = []
        for i in self.codes_to_token_ids(codes_a, codes_b):
            out.append(names[first[i]] if i in first else names[4 + i - ids.code_base])
        return "".join(out)

    # --- persistence

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "format": _FORMAT,
            "codebook_size": self.codebook_size,
            "depth": self.depth,
            "step_markers": self.step_markers,
        }
        if self.ids is not None:
            d["ids"] = dict(vars(self.ids))
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MotionVocab:
        if d.get("format") != _FORMAT:
            raise ValueError(
                f"motion vocab format {d.get('format')!r} is not {_FORMAT}; re-create the checkpoint"
            )
        known = {"format", "codebook_size", "depth", "step_markers", "ids"}
        if set(d) - known:
            raise ValueError(f"unknown motion vocab keys {sorted(set(d) - known)}")
        ids = MotionTokenIds(**d["ids"]) if "ids" in d else None
        return cls(
            codebook_size=d["codebook_size"], depth=d["depth"], step_markers=d["step_markers"], ids=ids
        )

    def save(self, directory: str | Path) -> Path:
        """Write `motion_vocab.json` into a checkpoint directory; returns the file."""
        path = Path(directory) / VOCAB_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, tokenizer: Any | None = None) -> MotionVocab:
        """Read `motion_vocab.json` (a file or its directory); with `tokenizer`, bind and check the ids.

        A tokenizer whose motion ids differ from the saved ones is refused: the checkpoint's
        embedding rows belong to the saved ids.
        """
        path = Path(path)
        if path.is_dir():
            path = path / VOCAB_FILE
        if not path.is_file():
            raise FileNotFoundError(f"no motion vocabulary at {path}")
        vocab = cls.from_dict(json.loads(path.read_text()))
        if tokenizer is not None:
            saved = vocab.ids
            bound = vocab.bind(tokenizer)
            if saved is not None and saved != bound:
                raise ValueError(f"tokenizer's motion token ids {bound} differ from the saved {saved}")
        return vocab
