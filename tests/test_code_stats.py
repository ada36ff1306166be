"""Persistence of codes (llm/code_stats.py): the figures behind the depth head's context codes."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.llm.code_stats import depth_statistics, main

K = 8


def _streams(n: int, steps: int, stay: float, seed: int) -> list[np.ndarray]:
    """(steps, 2) streams: depth 0 keeps its code with probability `stay`, else jumps to another one
    uniformly; depth 1 is drawn afresh every step."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = np.zeros((steps, 2), dtype=np.int64)
        s[:, 1] = rng.integers(0, K, steps)
        s[0, 0] = rng.integers(0, K)
        for t in range(1, steps):
            s[t, 0] = s[t - 1, 0] if rng.random() < stay else (s[t - 1, 0] + rng.integers(1, K)) % K
        out.append(s)
    return out


def test_depth_statistics_recover_a_known_chain() -> None:
    stay = 0.7
    d0, d1 = depth_statistics(_streams(60, 300, stay, 0), _streams(20, 300, stay, 1), K)
    assert d0.repeat == pytest.approx(stay, abs=0.01)
    assert d1.repeat == pytest.approx(1 / K, abs=0.01)
    # Both depths use every code alike: ln K without context.
    assert d0.unigram_nats == pytest.approx(math.log(K), abs=0.01)
    # Given the previous code, depth 0's entropy is the chain's; depth 1 gains nothing.
    chain = -(stay * math.log(stay) + (1 - stay) * math.log((1 - stay) / (K - 1)))
    assert d0.previous_nats == pytest.approx(chain, abs=0.03)
    assert d1.previous_nats == pytest.approx(d1.unigram_nats, abs=0.02)
    assert d0.copy_boost == pytest.approx(math.log(stay * (K - 1) / (1 - stay)), abs=0.1)
    with pytest.raises(ValueError):
        depth_statistics([], _streams(1, 10, stay, 0), K)


def test_the_command_prints_one_line_per_depth(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from molam_ros.data.dataset import MotionDataset, write_dataset
    from molam_ros.data.synth import generate_dataset
    from molam_ros.tokenizer.config import PRESETS
    from molam_ros.tokenizer.rqvae import RQVAE, save_checkpoint

    data = tmp_path / "data"
    write_dataset(data, list(generate_dataset(12, seed=3)), progress=False)
    torch.manual_seed(0)
    ckpt = save_checkpoint(RQVAE(PRESETS["tiny"]).eval(), tmp_path / "tok", stats=MotionDataset(data).stats())
    assert main(["--data", str(data), "--tokenizer", str(ckpt)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("depth") and len(lines) == 1 + PRESETS["tiny"].num_quantizers
