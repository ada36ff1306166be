"""Relation codes: R code depths of their own for the partner's place, after the D body depths.

What they must keep: the body codes mean what they meant (codes cut to D decode as a tokenizer
without relation codes does; training the relation alone leaves them bit-identical), old
checkpoints load, and training the relation codes really lowers the relation's error.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.data.dataset import MotionDataset
from molam_ros.llm.reactor_weights import load_small_reactor, save_small_reactor, widened_code_table
from molam_ros.llm.small_reactor import SmallReactorConfig, SmallReactorNet
from molam_ros.llm.widen import widen
from molam_ros.motion import ego
from molam_ros.tokenizer import PRESETS, RQVAE, TokenizerConfig, TrainConfig, load_checkpoint, preset, train
from molam_ros.tokenizer.rqvae import checkpoint_identity
from molam_ros.tokenizer.train import _load_people, init_weights

REL = slice(ego.REL_POS.start, ego.REL_HEAD.stop)
FAST = TrainConfig(
    steps=40, batch_size=8, window=32, lr=3e-3, min_lr=3e-4, warmup_steps=5, eval_every=0, checkpoint_every=0
)


def smooth_motion(batch: int, frames: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, frames, PRESETS["tiny"].feature_dim, generator=g).cumsum(1) * 0.2
    return x - x.mean(1, keepdim=True)


@pytest.fixture(scope="module")
def body_run(generator_clips: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny tokenizer without relation codes: what the relation codes are added to."""
    out = tmp_path_factory.mktemp("body_run")
    train(generator_clips, out, model_config=PRESETS["tiny"], train_config=FAST, progress=False)
    return out


def _pairs(model: RQVAE, stats, generator_clips: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """(normalised train features of the first two-person clip cut to the stride, its codes)."""
    f = next(
        f for f in _load_people(MotionDataset(generator_clips), "train", progress=False) if f.shape[0] == 2
    )
    f = f[:, : 32 * (f.shape[1] // 32)]
    x = stats.normalize(torch.from_numpy(np.ascontiguousarray(f)))
    with torch.no_grad():
        return x, model.encode(x)


def warmed(model: RQVAE) -> RQVAE:
    """Three training-mode passes (codebooks seeded, EMA steps), then eval mode."""
    model.train()
    for i in range(3):
        model(smooth_motion(4, 32, seed=i))
    return model.eval()


def test_codes_cut_to_the_body_depths_decode_as_without_relation_codes() -> None:
    torch.manual_seed(0)
    config = preset("tiny", relation_quantizers=2)
    model = warmed(RQVAE(config))
    x = smooth_motion(2, 32, seed=9)
    with torch.no_grad():
        codes = model.encode(x)
        assert codes.shape == (2, 8, config.num_quantizers + 2) == (2, 8, config.depths)
        full, body = model.decode(codes), model.decode(codes[..., : config.num_quantizers])
        # Only the relation rows come from the relation codes; without them the body decoder's stand.
        torch.testing.assert_close(full[..., : REL.start], body[..., : REL.start])
        torch.testing.assert_close(full[..., REL.stop :], body[..., REL.stop :])
        assert float((full[..., REL] - body[..., REL]).abs().max()) > 1e-3
        assert model.encode(x, depth=config.num_quantizers).shape[-1] == config.num_quantizers
    with pytest.raises(ValueError, match="1 <= d <= 5"):
        model.decode(torch.zeros(1, 2, 6, dtype=torch.long))


def test_a_per_step_relation_net_streams_without_state() -> None:
    """relation_net "step": the relation codes' nets add no streaming state, and streaming the codes
    one step at a time gives the whole pass's frames."""
    torch.manual_seed(0)
    body = RQVAE(preset("tiny", relation_quantizers=2))
    model = warmed(RQVAE(preset("tiny", relation_quantizers=2, relation_net="step")))
    assert model.encoder_state_shapes == body.encoder.net.state_shapes()
    assert model.decoder_state_shapes == body.decoder.net.state_shapes()
    x = smooth_motion(2, 32, seed=9)
    with torch.no_grad():
        codes = model.encode(x)
        whole = model.decode(codes)
        state, frames = model.init_decoder_state(2), []
        for t in range(codes.shape[1]):
            f, state = model.decode_step(codes[:, t : t + 1], state)
            frames.append(f)
    assert codes.shape[-1] == model.config.depths
    torch.testing.assert_close(torch.cat(frames, 1), whole, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="relation_net"):
        preset("tiny", relation_quantizers=2, relation_net="lstm")


def test_configs_before_relation_codes_load_and_bad_ones_are_refused() -> None:
    old = {k: v for k, v in PRESETS["tiny"].to_dict().items() if not k.startswith("relation_")}
    assert TokenizerConfig.from_dict(old) == PRESETS["tiny"]
    assert TokenizerConfig.from_dict(old).depths == PRESETS["tiny"].num_quantizers
    with pytest.raises(ValueError, match="missing"):
        TokenizerConfig.from_dict({**old, "relation_quantizers": 2})  # half of the new keys
    conv = {k: v for k, v in preset("tiny", relation_quantizers=2).to_dict().items() if k != "relation_net"}
    assert TokenizerConfig.from_dict(conv).relation_net == "conv"  # relation codes before the choice
    with pytest.raises(ValueError, match="relation features"):
        preset("tiny", feature_dim=262, relation_quantizers=2)  # intergen has no relation block
    with pytest.raises(ValueError, match="relation_quantizers"):
        preset("tiny", relation_quantizers=-1)
    cfg = preset("tiny", relation_quantizers=3)
    assert TokenizerConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_training_the_relation_alone_keeps_the_body_codes_and_lowers_its_error(
    generator_clips: Path, body_run: Path, relation_run: Path
) -> None:
    base, _, stats = load_checkpoint(body_run)
    x, body_codes = _pairs(base, stats, generator_clips)
    fresh = RQVAE(preset("tiny", relation_quantizers=2))
    init_weights(fresh, body_run)
    with torch.no_grad():
        before = float((fresh.eval().decode(fresh.encode(x))[..., REL] - x[..., REL]).abs().mean())

    model, config, stats_after = load_checkpoint(relation_run)
    np.testing.assert_array_equal(stats_after.mean, stats.mean)  # the body's normalisation, kept
    with torch.no_grad():
        codes = model.encode(x)
        after = float((model.decode(codes)[..., REL] - x[..., REL]).abs().mean())
    assert torch.equal(codes[..., : config.num_quantizers], body_codes)
    for name, tensor in base.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], tensor, rtol=0, atol=0, msg=name)
    assert after < 0.5 * before, (before, after)


@pytest.fixture(scope="module")
def relation_run(generator_clips: Path, body_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Relation codes (R = 2) trained alone on top of `body_run`."""
    out = tmp_path_factory.mktemp("relation_run")
    cfg = dataclasses.replace(FAST, steps=120, freeze_body=True)
    model_config = preset("tiny", relation_quantizers=2)
    train(generator_clips, out, model_config=model_config, train_config=cfg, init=body_run, progress=False)
    return out


def test_a_widened_reactor_reads_the_new_codes_and_acts_as_before(
    body_run: Path, relation_run: Path, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    tiny = PRESETS["tiny"]
    config = SmallReactorConfig(
        codebook_size=tiny.codebook_size, depth=tiny.num_quantizers, width=32, layers=1, heads=2,
        context_steps=8, text_dim=0,
    )  # fmt: skip
    net = SmallReactorNet(config).eval()
    old = save_small_reactor(net, tmp_path / "old", {"tokenizer": checkpoint_identity(body_run)})
    new_dir = widen(old, relation_run, tmp_path / "new")
    new, info = load_small_reactor(new_dir)
    assert new.config.depth == tiny.num_quantizers + 2
    assert info["tokenizer"] == checkpoint_identity(relation_run)
    a = torch.randint(0, tiny.codebook_size, (2, 5, new.config.depth))
    b_prev = torch.randn(2, 5, config.step_dim)
    with torch.no_grad():
        torch.testing.assert_close(new(a, b_prev), net(a[..., : tiny.num_quantizers], b_prev))
    # A tokenizer that does not start with the codes the model read is refused.
    with pytest.raises(ValueError, match="does not start with the codes"):
        widen(new_dir, relation_run, tmp_path / "again")


def test_widened_code_tables_keep_every_group_and_depth() -> None:
    K, W = 3, 2
    table = torch.arange(2 * 2 * K * W, dtype=torch.float32).reshape(2 * 2 * K, W)  # 2 people, D = 2
    wide = widened_code_table(table, groups=2, depth=2, new_depth=5, k=K).reshape(2, 5, K, W)
    torch.testing.assert_close(wide[:, :2], table.reshape(2, 2, K, W))
    assert float(wide[:, 2:].abs().sum()) == 0.0


def test_init_refuses_another_architecture(body_run: Path) -> None:
    with pytest.raises(ValueError, match="width"):
        init_weights(RQVAE(preset("tiny", width=48, relation_quantizers=2)), body_run)
    with pytest.raises(ValueError, match="freeze_body"):
        RQVAE(PRESETS["tiny"]).freeze_body()
