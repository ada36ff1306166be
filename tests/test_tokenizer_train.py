"""Tokenizer training (loss goes down, checkpoints, resume) and evaluation on one- and two-person clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.data.dataset import MotionDataset, clip_features
from molam_ros.data.pybullet_clips import list_pybullet_clips, load_pybullet_clip
from molam_ros.tokenizer import PRESETS, RQVAE, TrainConfig, evaluate, load_checkpoint, preset, train
from molam_ros.tokenizer.train import lr_at

# Small enough for a second or two of CPU per run, large enough for the loss to drop visibly.
FAST = TrainConfig(
    steps=40,
    batch_size=8,
    window=32,
    lr=3e-3,
    min_lr=3e-4,
    warmup_steps=5,
    eval_every=20,
    checkpoint_every=20,
)


@pytest.fixture(scope="module")
def run(generator_clips: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("tok_run")
    summary = train(generator_clips, out, model_config=PRESETS["tiny"], train_config=FAST, progress=False)
    return out, summary


def _recon_loss(model: RQVAE, x: torch.Tensor) -> float:
    with torch.no_grad():
        return float(model.eval()(x)[1]["recon"])


def test_training_reduces_loss_and_writes_checkpoint(generator_clips: Path, run: tuple[Path, dict]) -> None:
    out, summary = run
    assert summary["steps"] == FAST.steps and summary["trained_steps"] == FAST.steps
    for name in ("model.safetensors", "config.json", "optimizer.pt", "train_log.jsonl"):
        assert (out / name).is_file()
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [20, 40] and all(np.isfinite(e["mpjpe_mm"]) for e in log)

    ds = MotionDataset(generator_clips)
    stats = ds.stats()
    feats = clip_features(ds.load(ds.ids("train")[0]))[:, :64]  # (2, 64, 262)
    x = stats.normalize(torch.from_numpy(feats))
    torch.manual_seed(FAST.seed)  # the same initial weights as the run
    before = _recon_loss(RQVAE(PRESETS["tiny"]), x)
    model, config, _ = load_checkpoint(out)
    assert config == PRESETS["tiny"]
    assert _recon_loss(model, x) < 0.7 * before


def test_resume_continues_the_step_counter(
    generator_clips: Path, run: tuple[Path, dict], tmp_path: Path
) -> None:
    out, _ = run
    more = TrainConfig(**{**FAST.__dict__, "steps": FAST.steps + 10})
    with pytest.warns(UserWarning, match="architecture"):
        summary = train(
            generator_clips,
            tmp_path,
            model_config=preset("tiny", width=48),
            train_config=more,
            resume=out,
            progress=False,
        )
    assert summary["steps"] == FAST.steps + 10 and summary["trained_steps"] == 10
    info = json.loads((tmp_path / "config.json").read_text())
    assert info["extra"]["step"] == FAST.steps + 10 and info["config"] == PRESETS["tiny"].to_dict()
    # Nothing left to do: resuming a finished run trains no step.
    assert (
        train(generator_clips, tmp_path, train_config=more, resume=tmp_path, progress=False)["trained_steps"]
        == 0
    )


def test_bad_training_settings_raise(generator_clips: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="multiple of the tokenizer stride"):
        train(
            generator_clips,
            tmp_path,
            model_config=PRESETS["tiny"],
            train_config=TrainConfig(window=30),
            progress=False,
        )
    with pytest.raises(ValueError, match="no train clip has"):
        train(
            generator_clips,
            tmp_path,
            model_config=PRESETS["tiny"],
            train_config=TrainConfig(window=4000),
            progress=False,
        )
    with pytest.raises(ValueError, match="min_lr"):
        TrainConfig(lr=1e-4, min_lr=1e-3)
    with pytest.raises(ValueError, match="not loss weights"):  # the architecture is not a loss weight
        train(
            generator_clips,
            tmp_path,
            model_config=PRESETS["tiny"],
            loss_weights={"width": 64.0},
            progress=False,
        )


def test_lr_schedule() -> None:
    tc = TrainConfig(steps=100, warmup_steps=10, lr=1.0, min_lr=0.1)
    assert lr_at(0, tc) == pytest.approx(0.1) and lr_at(9, tc) == pytest.approx(1.0)
    assert lr_at(10, tc) == pytest.approx(1.0) and lr_at(100, tc) == pytest.approx(0.1)
    assert all(lr_at(s, tc) >= lr_at(s + 1, tc) for s in range(10, 100))


def test_evaluate_one_and_two_person_clips(generator_clips: Path, run: tuple[Path, dict]) -> None:
    model, _, stats = load_checkpoint(run[0])
    ds = MotionDataset(generator_clips)
    pair = ds.load(ds.ids("val")[0])
    solo = load_pybullet_clip(list_pybullet_clips()[0])
    short = np.zeros(
        (1, 3, PRESETS["tiny"].feature_dim), dtype=np.float32
    )  # shorter than l: skipped, counted
    m = evaluate(model, stats, [pair, solo, short])
    assert m["clips"] == 2 and m["skipped"] == 1
    assert len(m["mpjpe_mm_per_person"]) == 2 and all(v > 0 for v in m["mpjpe_mm_per_person"])
    assert 0 <= m["contact_accuracy"] <= 1
    assert len(m["codebook"]) == PRESETS["tiny"].num_quantizers
    assert all(
        0 < c["used"] <= 1 and 1 <= c["perplexity"] <= PRESETS["tiny"].codebook_size for c in m["codebook"]
    )
    solo_only = evaluate(model, stats, [solo])
    assert len(solo_only["mpjpe_mm_per_person"]) == 1
    assert solo_only["mpjpe_mm"] == pytest.approx(solo_only["mpjpe_mm_per_person"][0])
    assert len(evaluate(model, stats, [pair], depth=1)["codebook"]) == 1
