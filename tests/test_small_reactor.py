"""The small reactor: shapes, causality, a training run that must lower the loss, save/load, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molam_ros.llm.depth_head import DepthHeadConfig
from molam_ros.llm.reaction_codes import ReactionCodes, runtime_partner
from molam_ros.llm.reaction_instructions import REACTOR_PARTS, all_instructions, reactor_instruction
from molam_ros.llm.small_reactor import (
    ReactorSampling,
    SmallReactorConfig,
    SmallReactorNet,
    SmallStreamingReactor,
    load_small_reactor,
    save_small_reactor,
)
from molam_ros.llm.small_reactor_train import ReactorTrainConfig, train_small_reactor

K, D = 16, 3


def tiny_config(text_dim: int = 8) -> SmallReactorConfig:
    return SmallReactorConfig(
        codebook_size=K,
        depth=D,
        width=32,
        layers=2,
        heads=2,
        context_steps=12,
        text_dim=text_dim,
        dropout=0.0,
        head=DepthHeadConfig(width=32, layers=1, context=True),
    )


def toy_codes(clips: int = 12, steps: int = 16, seed: int = 0) -> ReactionCodes:
    """A learnable rule: the reactor's code at step t is the actor's code at step t shifted by 3."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, K, (clips * steps, D)).astype(np.int16)
    b = ((a.astype(np.int64) + 3) % K).astype(np.int16)
    splits = ["train"] * (clips - 2) + ["val"] * 2
    return ReactionCodes(
        a=a,
        b=b,
        offsets=np.arange(clips + 1) * steps,
        clip_ids=[f"c{i}" for i in range(clips)],
        splits=splits,
        interactions=["wave"] * clips,
        styles=["calm"] * clips,
    )


def fake_embed(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 8), np.float32)
    for i, t in enumerate(texts):
        out[i, hash(t) % 8] = 1.0
    return out


def test_hidden_is_causal() -> None:
    torch.manual_seed(0)
    net = SmallReactorNet(tiny_config()).eval()
    a = torch.randint(0, K, (1, 8, D))
    b = torch.randint(0, K, (1, 8, D))
    h1 = net.hidden(a, b)
    a2, b2 = a.clone(), b.clone()
    a2[:, 5:] = (a2[:, 5:] + 1) % K  # the actor's future
    b2[:, 4:] = (b2[:, 4:] + 1) % K  # the reactor's step 4 onward (h_4 must not see b_4)
    h2 = net.hidden(a2, b2)
    assert torch.allclose(h1[:, :5], h2[:, :5], atol=1e-5)
    assert not torch.allclose(h1[:, 5:], h2[:, 5:])


def test_training_lowers_the_loss(tmp_path) -> None:
    """A few hundred steps on a learnable rule must cut the held-out loss to a third (this fails if
    the model cannot see the actor's current step, or the targets are misaligned)."""
    codes = toy_codes()
    cfg = ReactorTrainConfig(
        steps=300,
        batch=8,
        crop_steps=8,
        lr=3e-3,
        warmup=10,
        b_noise=0.1,
        eval_every=150,
        eval_batches=2,
        threads=1,
    )
    first = train_small_reactor(
        codes,
        tmp_path / "r",
        model=tiny_config(),
        train=ReactorTrainConfig(**{**cfg.to_dict(), "steps": 1, "eval_every": 1}),
        embed=fake_embed,
        progress=False,
    )
    last = train_small_reactor(
        codes, tmp_path / "r2", model=tiny_config(), train=cfg, embed=fake_embed, progress=False
    )
    assert last["val_loss"] < first["val_loss"] / 3, (first, last)
    assert last["val_acc0"] > 0.5, last  # chance: 1/16


def test_resume_continues_and_save_load_round_trips(tmp_path) -> None:
    codes = toy_codes()
    cfg = ReactorTrainConfig(steps=20, batch=4, crop_steps=6, eval_every=10, eval_batches=1, threads=1)
    train_small_reactor(
        codes,
        tmp_path / "r",
        model=tiny_config(),
        train=ReactorTrainConfig(**{**cfg.to_dict(), "steps": 20}),
        embed=fake_embed,
        progress=False,
    )
    last = train_small_reactor(
        codes,
        tmp_path / "r",
        model=tiny_config(),
        train=ReactorTrainConfig(**{**cfg.to_dict(), "steps": 30}),
        embed=fake_embed,
        resume=True,
        progress=False,
    )
    assert last["step"] == 30
    lines = (tmp_path / "r" / "train_log.jsonl").read_text().splitlines()
    assert [__import__("json").loads(x)["step"] for x in lines] == [10, 20, 30]
    net, info = load_small_reactor(tmp_path / "r")
    assert info["step"] == 30
    net2 = SmallReactorNet(tiny_config())
    save_small_reactor(net, tmp_path / "copy", {})
    net2, _ = load_small_reactor(tmp_path / "copy")
    a = torch.randint(0, K, (2, 5, D))
    assert torch.allclose(net.hidden(a, a), net2.hidden(a, a))


def test_load_errors_are_clear(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="molam reactor train"):
        load_small_reactor(tmp_path)


def test_streaming_matches_the_window_and_checks_input() -> None:
    torch.manual_seed(0)
    net = SmallReactorNet(tiny_config())
    r = SmallStreamingReactor(net, ReactorSampling(), embed=fake_embed, instruction="wave back")
    a = np.random.default_rng(0).integers(0, K, (20, D))
    out = r.react(a, start_b=np.array([1, 2, 3]))
    assert out.shape == (20, D) and out.min() >= 0 and out.max() < K
    assert (out[0] == [1, 2, 3]).all()
    assert len(r.history) == net.config.context_steps  # a bounded window however long the stream
    again = SmallStreamingReactor(net, ReactorSampling(), embed=fake_embed, instruction="wave back").react(
        a, start_b=np.array([1, 2, 3])
    )
    assert (again == out).all()  # greedy decoding is deterministic
    with pytest.raises(ValueError, match="codes"):
        r.step(np.array([0, K, 0]))
    with pytest.raises(ValueError, match="codes"):
        r.step(np.array([0, 1]))
    guided = SmallStreamingReactor(
        net, ReactorSampling(guidance=2.0, temperature=0.8), embed=fake_embed, instruction="bow back"
    )
    assert guided.react(a).shape == (20, D)
    with pytest.raises(ValueError, match="sentence encoder"):
        SmallStreamingReactor(net, instruction="wave")


def test_instructions_and_runtime_partner() -> None:
    rng = np.random.default_rng(0)
    texts = {reactor_instruction({"interaction": "handshake", "style": "hesitant"}, rng) for _ in range(50)}
    assert texts <= set(all_instructions()) and len(texts) > 3
    assert any("hand" in t for t in texts)
    assert reactor_instruction({"interaction": "no such thing"}, rng) is None
    assert set(REACTOR_PARTS) >= {"handshake", "hug", "wave", "kick"}
    b = np.arange(12)[:, None, None] * np.ones((12, 22, 3))
    held = runtime_partner(b, 4)[:, 0, 0]
    assert held.tolist() == [0, 0, 0, 0, 3, 3, 3, 3, 7, 7, 7, 7]


def test_the_node_builds_and_streams_with_the_small_reactor(tiny_models, tiny_llm_env, tmp_path) -> None:
    """reactor: small -> the pipeline's steps come from the small reactor (paired with the tokenizer
    in use), and what it publishes is finite and inside the joint limits; a reactor trained on another
    tokenizer is refused with a clear message."""
    pytest.importorskip("rclpy")
    import shutil

    from molam_ros.agent.reaction_setup import build_pipeline
    from molam_ros.data.synth import generate_clip
    from molam_ros.llm.reaction_codes import encode_reaction_codes
    from molam_ros.motion.skeleton import JOINT_NAMES
    from molam_ros.ros.reaction_node import PARAMETERS
    from molam_ros.tokenizer.engines import TorchEngine
    from molam_ros.tokenizer.rqvae import checkpoint_identity

    tok = tiny_models / "tokenizer" / "small"
    engine = TorchEngine(tok)
    codes = encode_reaction_codes(tiny_llm_env["data"], tok, tmp_path / "codes.npz", progress=False)
    model = SmallReactorConfig(
        codebook_size=engine.model.config.codebook_size,
        depth=engine.num_quantizers,
        width=32,
        layers=1,
        heads=2,
        context_steps=8,
        text_dim=384,
        head=DepthHeadConfig(width=16, layers=1, context=True),
    )
    out = tiny_models / "reactor" / "small"
    train_small_reactor(
        codes,
        out,
        model=model,
        train=ReactorTrainConfig(steps=2, batch=2, crop_steps=4, eval_every=2, eval_batches=1, threads=1),
        info={"tokenizer": checkpoint_identity(tok)},
        progress=False,
    )
    params = {name: default for name, (default, _) in PARAMETERS.items()}
    params.update(model_dir=str(tiny_models), reactor="small", engine="torch", llm_quantization="none")
    pipeline, _ = build_pipeline(params)
    assert isinstance(pipeline.reactor, SmallStreamingReactor)
    profile = pipeline.profile
    clip = generate_clip(7, "wave", "friendly")
    chunks = []
    for i, pose in enumerate(clip.positions[clip.meta["actor"], :60]):
        stamp = 100.0 + i / 30.0
        pipeline.push_pose(stamp, pose, joint_names=JOINT_NAMES, now=stamp)
        chunks += pipeline.process(now=stamp)
    assert len(chunks) >= 10 and len(pipeline.reactor.history) == 8  # its window, however long the stream
    for c in chunks:
        assert np.isfinite(c.joint_positions).all() and np.isfinite(c.reactor).all()
        assert (c.joint_positions >= profile.lower - 1e-9).all() and (
            c.joint_positions <= profile.upper + 1e-9
        ).all()
    assert pipeline.command("wave back shyly") is None  # taken before the next step
    assert "characters" in pipeline.command("wave " * 1000)
    assert "control" in pipeline.command("wave\x00back")
    # a reactor paired with other tokenizer weights is refused
    other = tmp_path / "other"
    shutil.copytree(out, other)
    cfg = __import__("json").loads((other / "config.json").read_text())
    cfg["tokenizer"]["sha256"] = "0" * 64
    (other / "config.json").write_text(__import__("json").dumps(cfg))
    with pytest.raises(Exception, match="small reactor"):
        build_pipeline({**params, "reactor_dir": str(other)})
