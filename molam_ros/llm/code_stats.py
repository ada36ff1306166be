"""How persistent a person's codes are from one step to the next: the figures behind the depth head's
context codes and its copy prior (depth_head.py).

Per depth d, over every person's code stream of a dataset (the codes the LLM trains on):

- repeat: the share of steps whose depth-d code equals the same person's code one step earlier;
- unigram / previous: held-out cross-entropy in nats of the test split's codes under a model fitted
  on the train split, without context (code frequencies) and given the person's previous code at
  that depth (transition counts, smoothed towards the frequencies with weight `alpha`, so an unseen
  previous code falls back to them). Both add one pseudo-count per code;
- copy boost: the logit to add to the previous code, against an otherwise flat distribution over K
  codes, for it to come out with probability `repeat`: ln(repeat (K - 1) / (1 - repeat)).

    python -m molam_ros.llm.code_stats --data DATA_DIR --tokenizer TOKENIZER_CKPT

encodes the dataset once (kept in `--cache`, the same file format as the LLM's codes cache) and
prints one line per depth.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class DepthStats:
    """The persistence figures of one depth (module docstring)."""

    depth: int
    repeat: float
    unigram_nats: float
    previous_nats: float
    copy_boost: float


def _streams(codes: dict[str, np.ndarray], ids: Sequence[str]) -> list[np.ndarray]:
    """(L, D) code streams of every person of the given clips."""
    return [person for i in ids if i in codes for person in codes[i]]


def depth_statistics(
    train: Sequence[np.ndarray], test: Sequence[np.ndarray], codebook_size: int, *, alpha: float = 1.0
) -> list[DepthStats]:
    """Per-depth figures from (L, D) code streams of the train and test splits."""
    if not train or not test:
        raise ValueError("need code streams of both splits")
    K = codebook_size
    depth = train[0].shape[1]
    out = []
    for d in range(depth):
        counts = np.ones(K)
        pairs = np.zeros((K, K))
        for s in train:
            np.add.at(counts, s[:, d], 1)
            np.add.at(pairs, (s[:-1, d], s[1:, d]), 1)
        unigram = counts / counts.sum()
        previous = (pairs + alpha * K * unigram) / (pairs.sum(1, keepdims=True) + alpha * K)
        prev = np.concatenate([s[:-1, d] for s in test])
        cur = np.concatenate([s[1:, d] for s in test])
        repeat = float(np.mean(np.concatenate([s[1:, d] == s[:-1, d] for s in (*train, *test)])))
        boost = math.log(repeat * (K - 1) / (1 - repeat)) if 0 < repeat < 1 else math.nan
        out.append(
            DepthStats(
                depth=d,
                repeat=repeat,
                unigram_nats=float(-np.log(unigram[cur]).mean()),
                previous_nats=float(-np.log(previous[prev, cur]).mean()),
                copy_boost=boost,
            )
        )
    return out


def format_statistics(stats: Sequence[DepthStats]) -> str:
    lines = ["depth  repeat  unigram nats  given previous nats  copy boost"]
    for s in stats:
        rate = f"{100 * s.repeat:5.1f} %"
        lines.append(
            f"{s.depth:5d}  {rate}  {s.unigram_nats:12.2f}  {s.previous_nats:19.2f}  {s.copy_boost:10.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the persistence of a tokenizer's codes on a dataset, per depth."""
    from molam_ros.data.dataset import MotionDataset
    from molam_ros.llm.examples import SWAPPED, encode_dataset_codes
    from molam_ros.tokenizer.rqvae import read_checkpoint_info

    p = argparse.ArgumentParser(prog="python -m molam_ros.llm.code_stats", description=main.__doc__)
    p.add_argument("--data", type=Path, required=True, help="molam dataset directory (train and test splits)")
    p.add_argument("--tokenizer", type=Path, required=True, help="tokenizer checkpoint directory")
    p.add_argument("--cache", type=Path, help="codes cache (.npz; default: next to the tokenizer)")
    p.add_argument(
        "--alpha", type=float, default=1.0, help="smoothing of the transitions towards frequencies"
    )
    args = p.parse_args(argv)
    cache = args.cache or args.tokenizer / f"codes_{args.data.name}.npz"
    codes = encode_dataset_codes(args.data, args.tokenizer, cache)
    codes = {k: v for k, v in codes.items() if not k.endswith(SWAPPED)}
    ds = MotionDataset(args.data)
    K = int(read_checkpoint_info(args.tokenizer)["config"]["codebook_size"])
    stats = depth_statistics(
        _streams(codes, ds.ids("train")), _streams(codes, ds.ids("test")), K, alpha=args.alpha
    )
    print(format_statistics(stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
