"""Bad clips through the tokenizer: a clear error or a finite encoding, never a crash or NaN codes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molam_ros.data.pybullet_clips import load_pybullet_clip
from molam_ros.data.synth import generate_clip
from molam_ros.motion.layout import pair_to_features
from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.config import PRESETS
from molam_ros.tokenizer.reconstruct import reconstruct_positions
from molam_ros.tokenizer.rqvae import RQVAE


@pytest.fixture(scope="module")
def model_and_stats() -> tuple[RQVAE, FeatureStats]:
    torch.manual_seed(0)
    feats, _ = pair_to_features(generate_clip(1).positions)
    return RQVAE(PRESETS["tiny"]).eval(), FeatureStats.from_features([feats])


def test_nan_short_and_wrong_joint_counts_are_clear_errors(model_and_stats) -> None:
    model, stats = model_and_stats
    pos = generate_clip(2).positions.astype(np.float64)
    nan = pos.copy()
    nan[1, 10, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        reconstruct_positions(model, stats, nan)
    with pytest.raises(ValueError, match="shorter than one step"):
        reconstruct_positions(model, stats, pos[:, :3])
    with pytest.raises(ValueError, match="22"):
        reconstruct_positions(model, stats, pos[:, :, :17])


@pytest.mark.parametrize("name", ["humanoid3d_backflip", "humanoid3d_roll", "humanoid3d_getup_facedown"])
def test_upside_down_and_lying_people_encode_finitely(model_and_stats, name: str) -> None:
    model, stats = model_and_stats
    pos = load_pybullet_clip(name).positions
    feats, _ = pair_to_features(pos)
    codes = model.encode(stats.normalize(torch.from_numpy(feats[:, : feats.shape[1] // 4 * 4])))
    assert codes.min() >= 0 and codes.max() < PRESETS["tiny"].codebook_size
    out = reconstruct_positions(model, stats, pos)
    assert out.shape == (1, pos.shape[1] // 4 * 4, 22, 3) and np.all(np.isfinite(out))
