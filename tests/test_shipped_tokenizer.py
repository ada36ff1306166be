"""The tokenizer that ships in molam_ros/models/tokenizer: it is the default, its manifest holds, it
really is a trained model; `molam tokenizer ship` packages one; an LLM refuses another tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.data.dataset import write_dataset
from molam_ros.data.real_clips import write_real_dataset
from molam_ros.data.synth import generate_clip, generate_dataset
from molam_ros.paths import default_tokenizer_dir, shipped_tokenizer_dir
from molam_ros.tokenizer.config import PRESETS
from molam_ros.tokenizer.evaluate import position_errors
from molam_ros.tokenizer.reconstruct import reconstruct_positions
from molam_ros.tokenizer.rqvae import (
    RQVAE,
    CheckpointError,
    check_pairing,
    checkpoint_identity,
    load_checkpoint,
    save_checkpoint,
)
from molam_ros.tokenizer.ship import MANIFEST, TRAINING_DATA, sha256, ship

SHIPPED = shipped_tokenizer_dir()
needs_shipped = pytest.mark.skipif(
    not (SHIPPED / "config.json").is_file(), reason="no tokenizer ships in this checkout yet"
)


@needs_shipped
def test_the_shipped_tokenizer_is_the_default_and_its_manifest_holds() -> None:
    assert default_tokenizer_dir() == SHIPPED
    manifest = json.loads((SHIPPED / MANIFEST).read_text())
    for name, digest in manifest["files"].items():
        assert sha256(SHIPPED / name) == digest, name
        assert (SHIPPED / name).stat().st_size < 25 * 2**20
    assert manifest["layout"] == {"name": "ego", "dim": 268} and manifest["commands"]
    data = json.loads((SHIPPED / TRAINING_DATA).read_text())
    real = [d for d in data["datasets"] if "real_clips" in d]
    assert real and all(c["sha256"] and c["licence"] for c in real[0]["real_clips"])
    held_out = {c["name"] for c in real[0]["held_out"]}
    assert not held_out & {c["name"] for c in real[0]["real_clips"]}  # never trained on


@needs_shipped
def test_the_shipped_tokenizer_is_trained() -> None:
    """A fresh clip of the generator (a seed no split uses) comes back within centimetres."""
    model, config, stats = load_checkpoint(SHIPPED)
    assert config.feature_dim == 268
    pos = generate_clip(987_654).positions
    rec = reconstruct_positions(model, stats, pos)
    errs = position_errors(rec, pos[:, : rec.shape[1]])
    assert 1000 * errs["rel"].mean() < 40.0  # an untrained model is hundreds of mm off


def test_an_llm_refuses_codes_of_another_tokenizer(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = RQVAE(PRESETS["tiny"])
    stats_dir = tmp_path / "a"
    from molam_ros.motion.layout import pair_to_features
    from molam_ros.motion.normalization import FeatureStats

    stats = FeatureStats.from_features([pair_to_features(generate_clip(1).positions)[0]])
    save_checkpoint(model, stats_dir, stats=stats)
    recorded = checkpoint_identity(stats_dir)
    check_pairing(recorded, stats_dir, "the LLM")  # the same one: fine
    with torch.no_grad():
        next(model.parameters()).add_(1.0)
    save_checkpoint(model, tmp_path / "b", stats=stats)
    with pytest.raises(CheckpointError, match="another tokenizer.*sha256"):
        check_pairing(recorded, tmp_path / "b", "the LLM")
    check_pairing(None, tmp_path / "b", "an old LLM")  # nothing recorded: nothing to check


@pytest.mark.slow
def test_ship_packages_a_checkpoint(tmp_path: Path) -> None:
    gen, real, ckpt, out = tmp_path / "gen", tmp_path / "real", tmp_path / "ckpt", tmp_path / "out"
    write_dataset(gen, generate_dataset(12, 0), progress=False)
    write_real_dataset(real, variants=1, progress=False)
    from molam_ros.tokenizer.train import TrainConfig, train

    train([gen, real], ckpt, model_config=PRESETS["tiny"], train_config=TrainConfig(steps=30, batch_size=8,
          window=32, eval_every=0), progress=False)  # fmt: skip
    manifest = ship(ckpt, out, data=[gen, real], commands=["make tokenizer"], minutes=0.05)
    assert manifest["dtype"] in ("float16", "float32") and manifest["steps"] == 30
    for name, digest in manifest["files"].items():
        assert sha256(out / name) == digest
    model, config, _ = load_checkpoint(out)
    assert config == PRESETS["tiny"]
    if manifest["dtype"] == "float16":
        from safetensors.torch import load_file

        tensors = load_file(str(out / "model.safetensors")).values()
        assert all(t.dtype == torch.float16 for t in tensors if t.is_floating_point())
    figures = manifest["figures"]
    assert {"gen (test)", "real (test)", "long stream"} <= set(figures)  # each dataset by its name
    assert np.isfinite(figures["real (test)"]["rel_mpjpe_mm"])
