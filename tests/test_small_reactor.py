"""The small reactor: shapes, causality, a training run that must lower the loss, save/load, streaming."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from molam_ros.llm.reaction_codes import ReactionCodes, ReactionTargets, decoded_targets, runtime_partner
from molam_ros.llm.reaction_instructions import REACTOR_PARTS, all_instructions, reactor_instruction
from molam_ros.llm.reactor_weights import load_small_reactor, save_small_reactor
from molam_ros.llm.small_reactor import SmallReactorConfig, SmallReactorNet
from molam_ros.llm.small_reactor_train import ReactorTrainConfig, _lr, own_inputs, train_small_reactor
from molam_ros.llm.small_streaming import SmallStreamingReactor
from molam_ros.paths import shipped_tokenizer_dir
from molam_ros.tokenizer.engines import TorchEngine

K, D, L, F = 16, 3, 2, 5


def tiny_config(text_dim: int = 8, **kw) -> SmallReactorConfig:
    base = dict(
        codebook_size=K,
        depth=D,
        stride=L,
        feature_dim=F,
        width=32,
        layers=2,
        heads=2,
        context_steps=12,
        text_dim=text_dim,
        dropout=0.0,
    )
    return SmallReactorConfig(**{**base, **kw})


def toy_data(clips: int = 12, steps: int = 16, seed: int = 0) -> tuple[ReactionCodes, ReactionTargets]:
    """A learnable rule: the reactor's features at step t are a fixed function of the actor's codes at t."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, K, (clips * steps, D)).astype(np.int16)
    table = rng.normal(size=(K, L * F)).astype(np.float32)
    feats = table[a[:, 0]].reshape(-1, F).astype(np.float16)  # (clips * steps * L, F)
    codes = ReactionCodes(
        a=a,
        b=a.copy(),
        offsets=np.arange(clips + 1) * steps,
        clip_ids=[f"c{i}" for i in range(clips)],
        splits=["train"] * (clips - 2) + ["val"] * 2,
        interactions=["wave"] * clips,
        styles=["calm"] * clips,
    )
    targets = ReactionTargets(feats, np.arange(clips + 1) * steps * L, {i: i for i in range(clips)})
    return codes, targets


def shipped_engine_and_tiny_config() -> tuple[TorchEngine, SmallReactorConfig]:
    """The shipped tokenizer's engine and a tiny reactor shape that fits it (K, D, l, F)."""
    engine = TorchEngine(shipped_tokenizer_dir(), threads=1)
    bound = ("codebook_size", "depth", "stride", "feature_dim")
    shape = {k: v for k, v in tiny_config().to_dict().items() if k not in bound}
    return engine, SmallReactorConfig.for_engine(engine, **shape)


def fake_embed(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 8), np.float32)
    for i, t in enumerate(texts):
        out[i, hash(t) % 8] = 1.0
    return out


def test_the_model_is_causal() -> None:
    torch.manual_seed(0)
    net = SmallReactorNet(tiny_config()).eval()
    a = torch.randint(0, K, (1, 8, D))
    b = torch.randn(1, 8, L * F)
    y1 = net(a, b)
    a2, b2 = a.clone(), b.clone()
    a2[:, 5:] = (a2[:, 5:] + 1) % K  # the actor's future
    b2[:, 5:] += 1.0  # the reactor's later inputs
    y2 = net(a2, b2)
    assert torch.allclose(y1[:, :5], y2[:, :5], atol=1e-5)
    assert not torch.allclose(y1[:, 5:], y2[:, 5:])


def test_training_lowers_the_loss(tmp_path) -> None:
    """A few hundred steps on a learnable rule must cut the held-out loss to a fifth and beat holding
    the last step (this fails if the model cannot see the actor's current step, or the targets are
    misaligned by a step)."""
    codes, targets = toy_data()
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
        bf16=False,
    )
    first = train_small_reactor(
        codes,
        targets,
        tmp_path / "r",
        model=tiny_config(),
        train=ReactorTrainConfig(**{**cfg.to_dict(), "steps": 1, "eval_every": 1}),
        embed=fake_embed,
        progress=False,
    )
    last = train_small_reactor(
        codes, targets, tmp_path / "r2", model=tiny_config(), train=cfg, embed=fake_embed, progress=False
    )
    assert last["val_loss"] < first["val_loss"] / 5, (first, last)
    assert last["val_loss"] < last["val_hold_last"] / 3, last


def test_resume_continues_and_save_load_round_trips(tmp_path) -> None:
    codes, targets = toy_data()
    cfg = ReactorTrainConfig(steps=20, batch=4, crop_steps=6, eval_every=10, eval_batches=1, threads=1)
    train_small_reactor(
        codes, targets, tmp_path / "r", model=tiny_config(), train=cfg, embed=fake_embed, progress=False
    )
    last = train_small_reactor(
        codes,
        targets,
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
    save_small_reactor(net, tmp_path / "half", {}, half=True)
    net2, _ = load_small_reactor(tmp_path / "half")
    a, b = torch.randint(0, K, (2, 5, D)), torch.randn(2, 5, L * F)
    assert torch.allclose(net(a, b), net2(a, b), atol=2e-2)


def test_load_errors_are_clear(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="molam reactor train"):
        load_small_reactor(tmp_path)
    (tmp_path / "config.json").write_text('{"kind": "small_reactor", "version": 1}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="version"):
        load_small_reactor(tmp_path)


def test_streaming_with_the_shipped_tokenizer() -> None:
    """The streaming reactor on the real tokenizer: codes out, a bounded window, given first steps,
    deterministic, clear errors for bad codes and for a tokenizer it does not fit."""
    engine, cfg = shipped_engine_and_tiny_config()
    torch.manual_seed(0)
    net = SmallReactorNet(cfg)
    r = SmallStreamingReactor(net, engine, embed=fake_embed, instruction="wave back")
    a = np.random.default_rng(0).integers(0, cfg.codebook_size, (20, cfg.depth))
    start = np.arange(1, cfg.depth + 1)  # one given step: the D body codes, then the relation codes
    out = r.react(a, start_b=start)
    assert out.shape == (20, cfg.depth) and out.min() >= 0 and out.max() < cfg.codebook_size
    assert (out[0] == start).all()
    assert len(r.history) == cfg.context_steps  # a bounded window however long the stream
    again = SmallStreamingReactor(net, engine, embed=fake_embed, instruction="wave back").react(
        a, start_b=start
    )
    assert (again == out).all()
    with pytest.raises(ValueError, match="codes"):
        r.step(np.array([0, cfg.codebook_size] + [0] * (cfg.depth - 2)))
    with pytest.raises(ValueError, match="codes"):
        r.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="sentence encoder"):
        SmallStreamingReactor(net, engine, instruction="wave")
    with pytest.raises(ValueError, match="not trained together"):
        SmallStreamingReactor(SmallReactorNet(tiny_config()), engine)


def test_guidance_extrapolates_from_the_untold_prediction() -> None:
    """pred = u + g (c - u): g 1 is the told prediction, g 0 the untold one, g 2 twice as far; no
    instruction, no guidance; a bad scale is refused."""
    engine, cfg = shipped_engine_and_tiny_config()
    torch.manual_seed(0)
    net = SmallReactorNet(cfg).eval()
    with torch.no_grad():
        net.no_text.normal_()  # an untrained net's "untold" vector is zero; make told and untold differ
    a = torch.as_tensor(np.random.default_rng(1).integers(0, cfg.codebook_size, (1, 5, cfg.depth)))
    b = torch.randn(1, 5, cfg.step_dim)
    with torch.no_grad():
        told = net(a, b, torch.as_tensor(fake_embed(["wave back"])))[0, -1].numpy()
        untold = net(a, b)[0, -1].numpy()
    assert np.abs(told - untold).max() > 1e-3

    def guided(g: float | None, text: str | None = "wave back") -> np.ndarray:
        r = SmallStreamingReactor(net, engine, embed=fake_embed, instruction=text, guidance=g)
        with torch.no_grad():
            return r._predict(a, b)

    np.testing.assert_allclose(guided(None), told, atol=1e-5)
    np.testing.assert_allclose(guided(1.0), told, atol=1e-5)
    np.testing.assert_allclose(guided(0.0), untold, atol=1e-5)
    np.testing.assert_allclose(guided(2.0), 2 * told - untold, atol=1e-4)
    np.testing.assert_allclose(guided(3.0, None), untold, atol=1e-5)  # nothing told: nothing to guide
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="guidance"):
            SmallStreamingReactor(net, engine, guidance=bad)


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


def node_reactor(tiny_models, tiny_llm_env, out, work, **shape) -> dict:
    """A reactor of `shape` trained 2 steps on the tiny tokenizer's codes (encoded into `work`) into
    `out`; returns the node's parameters (every default, the tiny models, the torch engine)."""
    from molam_ros.llm.reaction_codes import encode_reaction_codes, reaction_targets
    from molam_ros.ros.reaction_node import PARAMETERS
    from molam_ros.tokenizer.rqvae import checkpoint_identity

    tok = tiny_models / "tokenizer" / "small"
    engine = TorchEngine(tok)
    codes = encode_reaction_codes(tiny_llm_env["data"], tok, work / "codes.npz", progress=False)
    model = SmallReactorConfig.for_engine(engine, **shape, context_steps=8, text_dim=384)
    targets = reaction_targets(tiny_llm_env["data"], tok, codes, list(range(len(codes))), progress=False)
    train_small_reactor(
        codes,
        targets,
        out,
        model=model,
        train=ReactorTrainConfig(steps=2, batch=2, crop_steps=4, eval_every=2, eval_batches=1, threads=1),
        info={"tokenizer": checkpoint_identity(tok)},
        progress=False,
    )
    params = {name: default for name, (default, _) in PARAMETERS.items()}
    params.update(model_dir=str(tiny_models), engine="torch", llm_quantization="none")
    return params


def stream_checked(pipeline, frames: int) -> list:
    """A generator clip's actor through the pipeline; every chunk finite and inside the joint limits."""
    from molam_ros.data.synth import generate_clip
    from molam_ros.motion.skeleton import JOINT_NAMES

    profile = pipeline.profile
    clip = generate_clip(7, "wave", "friendly")
    chunks = []
    for i, pose in enumerate(clip.positions[clip.meta["actor"], :frames]):
        stamp = 100.0 + i / 30.0
        pipeline.push_pose(stamp, pose, joint_names=JOINT_NAMES, now=stamp)
        chunks += pipeline.process(now=stamp)
    for c in chunks:
        assert np.isfinite(c.joint_positions).all() and np.isfinite(c.reactor).all()
        assert (c.joint_positions >= profile.lower - 1e-9).all() and (
            c.joint_positions <= profile.upper + 1e-9
        ).all()
    return chunks


def test_the_node_builds_and_streams_with_the_small_reactor(tiny_models, tiny_llm_env, tmp_path) -> None:
    """reactor: small -> the pipeline's steps come from the small reactor (paired with the tokenizer
    in use), and what it publishes is finite and inside the joint limits; a reactor trained on another
    tokenizer is refused with a clear message."""
    pytest.importorskip("rclpy")
    import shutil

    from molam_ros.agent.reaction_setup import build_pipeline

    out = tiny_models / "reactor" / "small"
    params = node_reactor(tiny_models, tiny_llm_env, out, tmp_path, width=32, layers=1, heads=2)
    params.update(reactor="small")
    pipeline, _ = build_pipeline(params)
    assert isinstance(pipeline.reactor, SmallStreamingReactor)
    chunks = stream_checked(pipeline, 60)
    assert len(chunks) >= 10 and len(pipeline.reactor.history) == 8  # its window, however long the stream
    assert pipeline.command("wave back shyly") is None  # taken before the next step
    # the node's diagnostics report the reactor's instruction (its absence crashed the node's timer)
    pipeline.reactor.set_instruction("wave back shyly")
    assert pipeline.reactor.instruction == "wave back shyly"
    pipeline.reactor.set_instruction("")
    assert pipeline.reactor.instruction is None
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
    with pytest.raises(ValueError, match="reactor must be one of llm, small, llm_reactor"):
        build_pipeline({**params, "reactor": "smal"})


def test_own_inputs_feed_predictions_back() -> None:
    """Scheduled sampling's inputs: step t reads the model's prediction for step t-1 (the first step
    keeps its recorded input); share 0 or no passes leaves the recorded inputs untouched."""
    torch.manual_seed(0)
    net = SmallReactorNet(tiny_config()).eval()
    a, b = torch.randint(0, K, (3, 6, D)), torch.randn(3, 6, L * F)
    assert own_inputs(net, a, b, None, 0, 1.0) is b
    assert torch.equal(own_inputs(net, a, b, None, 2, 0.0), b)
    one = own_inputs(net, a, b, None, 1, 1.0)
    assert torch.equal(one[:, 0], b[:, 0])
    assert torch.allclose(one[:, 1:], net(a, b)[:, :-1])
    two = own_inputs(net, a, b, None, 2, 1.0)
    assert torch.allclose(two[:, 1:], net(a, one)[:, :-1])


def test_training_with_rollouts_lowers_the_own_input_loss(tmp_path) -> None:
    """With rollouts the run logs the held-out loss on its own inputs too, and it must fall."""
    codes, targets = toy_data()
    cfg = ReactorTrainConfig(
        steps=200, batch=8, crop_steps=8, lr=3e-3, warmup=10, b_noise=0.05, rollouts=2,
        rollout_share=0.5, eval_every=100, eval_batches=2, threads=1, bf16=False,
    )  # fmt: skip
    train_small_reactor(codes, targets, tmp_path / "r", model=tiny_config(), train=cfg, progress=False)
    log = [__import__("json").loads(x) for x in (tmp_path / "r" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["val_own"] < log[-1]["val_hold_last"] / 3, log


def test_the_learning_rate_anneals_over_a_time_budget() -> None:
    cfg = ReactorTrainConfig(steps=1000, lr=1.0, warmup=1, minutes=1.0)
    assert _lr(10, cfg, 0.0) == pytest.approx(0.5 * (1 + np.cos(np.pi * 0.01)))
    assert _lr(10, cfg, 30.0) == pytest.approx(0.5)  # half the minutes gone: half way down
    assert _lr(10, cfg, 90.0) == pytest.approx(0.0)
    assert _lr(10, ReactorTrainConfig(steps=1000, lr=1.0, warmup=1), 1e6) > 0.99  # no budget: steps


def test_decoded_targets_are_the_tokenizers_reading_of_the_codes() -> None:
    engine = TorchEngine(shipped_tokenizer_dir(), threads=1)
    rng = np.random.default_rng(0)
    Kc, Dq = engine.model.config.codebook_size, engine.depths
    steps = [5, 3]
    b = rng.integers(0, Kc, (sum(steps), Dq)).astype(np.int16)
    codes = ReactionCodes(
        a=b.copy(), b=b, offsets=np.array([0, 5, 8]), clip_ids=["x", "y"], splits=["train", "val"],
        interactions=["wave", "hug"], styles=["calm", "calm"],
    )  # fmt: skip
    t = decoded_targets(engine, codes, [1, 0], progress=False)
    assert t.row == {1: 0, 0: 1} and t.features.dtype == np.float16
    want = engine.stats.normalize(engine.decode(b[5:8][None].astype(np.int64))[0])
    assert t.clip(1).shape == (3 * engine.stride, engine.feature_dim)
    assert np.allclose(t.clip(1), want, atol=2e-2 * max(1.0, float(np.abs(want).max())))


def test_reaction_step_bench_runs_and_compares(tmp_path) -> None:
    """`molam reactor bench` on the shipped models: one row per device, the first the baseline."""
    from molam_ros.llm.reactor_bench import bench_reactor, format_rows
    from molam_ros.paths import shipped_reactor_dir

    rows = bench_reactor(
        shipped_reactor_dir(), shipped_tokenizer_dir(), ["cpu", "cpu"], steps=5, warmup=1, repeats=2
    )
    assert [r["device"] for r in rows] == ["cpu", "cpu"] and rows[0]["ratio"] == 1.0
    assert all(r["median_ms"] > 0 and len(r["round_medians_ms"]) == 2 for r in rows)
    assert "budget use" in format_rows(rows)
    two = bench_reactor(
        [shipped_reactor_dir()] * 2, shipped_tokenizer_dir(), ["cpu"], steps=3, warmup=1, repeats=1
    )
    assert [r["reactor"] for r in two] == ["reactor", "reactor"] and two[0]["ratio"] == 1.0
    assert format_rows(two).splitlines()[2].startswith("reactor         cpu")


def test_stored_instruction_vectors(tmp_path) -> None:
    """Training where the sentence encoder is missing reads vectors embedded beforehand; an unknown
    text is a clear error, not a silent zero."""
    from molam_ros.cli_reactor import _stored_embedder

    words = all_instructions()[:3]
    np.savez(tmp_path / "v.npz", texts=np.asarray(words), vectors=fake_embed(words))
    embed = _stored_embedder(tmp_path / "v.npz")
    assert np.array_equal(embed(words[::-1]), fake_embed(words[::-1]))
    with pytest.raises(KeyError, match="write it again"):
        embed(["not an instruction we trained"])


def test_placement_weight_scales_only_the_placement_features() -> None:
    from molam_ros.llm.small_reactor_train import placement_weights
    from molam_ros.motion import ego

    assert placement_weights(ego.EGO_DIM, 1.0) is None
    w = placement_weights(ego.EGO_DIM, 10.0)
    assert w is not None and int((w == 10.0).sum()) == 7
    assert (w[ego.REL_POS] == 10).all() and (w[ego.ROOT_VEL] == 10).all() and (w[ego.RIC] == 1).all()
    with pytest.raises(ValueError, match="ego layout"):
        placement_weights(5, 10.0)
    torch.manual_seed(0)
    net = SmallReactorNet(tiny_config()).eval()
    a, bp, b = torch.randint(0, K, (2, 4, D)), torch.randn(2, 4, L * F), torch.randn(2, 4, L * F)
    plain = net.loss(a, bp, b)
    assert torch.allclose(net.loss(a, bp, b, weight=torch.ones(F)), plain)
    only_last = torch.zeros(F)
    only_last[-1] = float(F)
    err = ((net(a, bp) - b) ** 2).view(2, 4, L, F)
    assert torch.allclose(net.loss(a, bp, b, weight=only_last), err[..., -1].mean())
    assert torch.allclose(net.loss(a, bp, b, kind="l1"), (net(a, bp) - b).abs().mean())
    with pytest.raises(ValueError, match="loss"):
        ReactorTrainConfig(loss="huber")


def test_blind_inputs_are_unseen_and_survive_save_load(tmp_path) -> None:
    """Features named blind cannot change the prediction through the previous-step input; the
    config round-trips through config.json (JSON lists); `init` starts a new run from those weights."""
    torch.manual_seed(0)
    cfg = tiny_config(blind=((0, 2),))
    net = SmallReactorNet(cfg).eval()
    a, b = torch.randint(0, K, (1, 5, D)), torch.randn(1, 5, L * F)
    b2 = b.clone().view(1, 5, L, F)
    b2[..., 0:2] += 5.0
    assert torch.allclose(net(a, b), net(a, b2.view(1, 5, L * F)))
    b2[..., 3] += 5.0
    assert not torch.allclose(net(a, b), net(a, b2.view(1, 5, L * F)))
    save_small_reactor(net, tmp_path / "r", {})
    again, _ = load_small_reactor(tmp_path / "r")
    assert again.config.blind == ((0, 2),) and torch.allclose(again(a, b), net(a, b))
    codes, targets = toy_data()
    train_small_reactor(
        codes,
        targets,
        tmp_path / "from",
        model=tiny_config(),
        train=ReactorTrainConfig(steps=1, batch=2, crop_steps=4, eval_every=1, eval_batches=1, lr=0.0),
        init=tmp_path / "r",
        progress=False,
    )
    started, _ = load_small_reactor(tmp_path / "from")
    assert started.config.blind == () and torch.allclose(started.code.weight, net.code.weight)


def test_modes_commit_to_one_future_where_a_single_mode_averages() -> None:
    """Two equally likely futures (+1 or -1 for every feature) after the same input: the plain
    regression learns their mean (about 0), the K-mode reactor's chosen proposal is one of them
    (about +-1), and its proposals hold both. Fails if the nearest-proposal loss or the choice is lost."""
    torch.manual_seed(0)
    a = torch.zeros(64, 4, D, dtype=torch.long)
    b_prev = torch.zeros(64, 4, L * F)
    sign = torch.where(torch.rand(64, 1, 1) < 0.5, -1.0, 1.0)
    b = sign.expand(-1, 4, L * F)
    out = {}
    for modes in (1, 3):
        net = SmallReactorNet(tiny_config(text_dim=0, modes=modes))
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for _ in range(150):
            loss = net.loss(a, b_prev, b, relax=0.05, choice_weight=0.1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        with torch.no_grad():
            out[modes] = (net(a[:1], b_prev[:1])[0], net.proposals(a[:1], b_prev[:1])[0][0, 0])
    assert out[1][0].abs().mean() < 0.2, out[1][0]
    assert (out[3][0].abs() - 1).abs().mean() < 0.2, out[3][0]
    means = out[3][1].mean(-1)  # (K,) each proposal's mean feature
    assert means.max() > 0.8 and means.min() < -0.8, means


def test_widened_modes_start_as_the_single_mode_reactor(tmp_path) -> None:
    """A K-mode run started from a single-mode reactor (`--init --modes K`) predicts what it did,
    up to the proposals' small noise; K-mode weights round-trip through save and load."""
    from molam_ros.llm.reactor_weights import widen_to_modes

    torch.manual_seed(0)
    one = SmallReactorNet(tiny_config()).eval()
    three = SmallReactorNet(tiny_config(modes=3))
    three.load_state_dict(widen_to_modes(one.state_dict(), three))
    three.eval()
    a = torch.randint(0, K, (2, 5, D))
    b_prev = torch.randn(2, 5, L * F)
    with torch.no_grad():
        assert torch.allclose(one(a, b_prev), three(a, b_prev), atol=0.05)
    save_small_reactor(three, tmp_path / "m", {})
    back, _ = load_small_reactor(tmp_path / "m")
    assert back.config.modes == 3
    with torch.no_grad():
        assert torch.allclose(back(a, b_prev), three(a, b_prev), atol=1e-6)
    with pytest.raises(ValueError, match="modes"):
        tiny_config(modes=0)


def test_window_weights_make_a_weighted_mean() -> None:
    """`windows` (the steering pairs' weight) weighs each window's loss: with weights (3, 1) the loss
    is (3 e0 + e1) / 4, e_i the window's own loss; without weights the plain mean."""
    torch.manual_seed(0)
    for modes in (1, 2):
        net = SmallReactorNet(tiny_config(text_dim=0, modes=modes)).eval()
        a = torch.randint(0, K, (2, 3, D))
        b_prev, b = torch.randn(2, 3, L * F), torch.randn(2, 3, L * F)
        with torch.no_grad():
            e = [float(net.loss(a[i : i + 1], b_prev[i : i + 1], b[i : i + 1])) for i in range(2)]
            plain = float(net.loss(a, b_prev, b))
            weighted = float(net.loss(a, b_prev, b, windows=torch.tensor([3.0, 1.0])))
        assert plain == pytest.approx((e[0] + e[1]) / 2, rel=1e-5)
        assert weighted == pytest.approx((3 * e[0] + e[1]) / 4, rel=1e-5)


def test_horizon_trains_a_look_ahead_head_that_live_steps_do_not_need(tmp_path) -> None:
    """With horizon 3 the sampler's targets hold 3 steps, the look-ahead head learns the later steps
    where they are predictable (here each clip's reactor holds one random pose, so they equal the
    previous step), a horizon-1 reactor starts it (--init), and streaming steps return the next step
    only. Fails if the later steps are misaligned or the head is left out of the loss."""
    from molam_ros.llm.reactor_weights import widen_to_modes

    codes, _ = toy_data()
    rng = np.random.default_rng(1)
    steps = 16
    feats = np.repeat(rng.normal(size=(12, F)), steps * L, axis=0).astype(np.float16)
    targets = ReactionTargets(feats, np.arange(13) * steps * L, {i: i for i in range(12)})
    cfg = ReactorTrainConfig(
        steps=300, batch=8, crop_steps=8, lr=3e-3, warmup=10, eval_every=150, eval_batches=2, threads=1
    )
    train_small_reactor(
        codes,
        targets,
        tmp_path / "h",
        model=tiny_config(horizon=3),
        train=cfg,
        embed=fake_embed,
        progress=False,
    )
    net, _ = load_small_reactor(tmp_path / "h")
    assert net.config.horizon == 3 and net.ahead is not None
    f = torch.as_tensor(targets.clip(0).astype(np.float32).reshape(steps, -1))
    a = torch.as_tensor(codes.clip(0)[0].astype(np.int64))[None]
    with torch.no_grad():
        later = net.ahead(net._state(a[:, 1:9], f[None, 0:8], None))[0]  # steps t+1, t+2 from step t
    want = torch.cat([f[2:10], f[3:11]], dim=-1)
    assert float(((later - want) ** 2).mean()) < float((want**2).mean()) / 5
    one = SmallReactorNet(tiny_config())
    three = SmallReactorNet(tiny_config(horizon=3))
    three.load_state_dict(widen_to_modes(one.state_dict(), three))
    assert net(a[:, :4], f[None, :4]).shape == (1, 4, L * F)
    net.train()  # per-feature weights reach the look-ahead's steps too (each step's F features)
    b3 = torch.cat([f[1:9], f[2:10], f[3:11]], dim=-1)[None]
    w = torch.ones(F)
    plain = net.loss(a[:, 1:9], f[None, 0:8], b3, weight=w)
    w[0] = 3.0
    assert float(net.loss(a[:, 1:9], f[None, 0:8], b3, weight=w)) > float(plain)


def test_onset_share_cuts_windows_from_the_first_step() -> None:
    from molam_ros.llm.small_reactor_train import _Sampler

    codes, toy = toy_data(clips=6, steps=16)
    feats = np.random.default_rng(1).normal(size=toy.features.shape).astype(np.float16)  # all distinct
    targets = ReactionTargets(feats, toy.offsets, toy.row)
    step0 = np.stack([targets.clip(i)[:L].reshape(-1) for i in range(6)]).astype(np.float32)

    def starts(share: float) -> list[bool]:  # each window: does its first input read a clip's step 0?
        cfg = ReactorTrainConfig(batch=32, crop_steps=4, onset_share=share)
        b_prev = _Sampler(codes, targets, list(range(6)), cfg, None, 0, seed=0).batch()[1]
        return [bool(np.isclose(step0, row[0].numpy()).all(-1).any()) for row in b_prev]

    assert all(starts(1.0))
    assert sum(starts(0.0)) < 10  # cut anywhere: one window in 12 starts there
    with pytest.raises(ValueError, match="onset_share"):
        ReactorTrainConfig(onset_share=1.5)


def test_partner_weight_leans_on_the_instruction_alone(tmp_path) -> None:
    """pred = lead + w (told - lead), lead the prediction with the partner hidden; partner_drop hides
    it in training windows, needs the model's "no partner" input, and starts from a reactor without it."""
    from dataclasses import replace

    from molam_ros.llm.reactor_weights import widen_to_modes

    engine, plain_cfg = shipped_engine_and_tiny_config()
    cfg = replace(plain_cfg, partner_null=True)
    torch.manual_seed(0)
    plain = SmallReactorNet(plain_cfg).eval()
    net = SmallReactorNet(cfg).eval()
    net.load_state_dict(widen_to_modes(plain.state_dict(), net))  # --init from a reactor without it
    with torch.no_grad():
        net.no_partner.normal_()
    a = torch.as_tensor(np.random.default_rng(1).integers(0, cfg.codebook_size, (1, 5, cfg.depth)))
    b = torch.randn(1, 5, cfg.step_dim)
    text = torch.as_tensor(fake_embed(["hug them back"]))
    with torch.no_grad():
        told = net(a, b, text)[0, -1].numpy()
        lead = net(torch.full_like(a, -1), b, text)[0, -1].numpy()
        np.testing.assert_allclose(plain(a, b, text)[0, -1].numpy(), told, atol=1e-5)  # same weights
    assert np.abs(told - lead).max() > 1e-3

    def stepped(w: float, text: str | None = "hug them back") -> np.ndarray:
        r = SmallStreamingReactor(net, engine, embed=fake_embed, instruction=text, partner_weight=w)
        with torch.no_grad():
            return r._predict(a, b)

    np.testing.assert_allclose(stepped(1.0), told, atol=1e-5)
    np.testing.assert_allclose(stepped(0.0), lead, atol=1e-5)
    np.testing.assert_allclose(stepped(0.5), (told + lead) / 2, atol=1e-4)
    with torch.no_grad():
        np.testing.assert_allclose(stepped(0.0, None), net(a, b)[0, -1].numpy(), atol=1e-5)  # untold
    with pytest.raises(ValueError, match="partner_drop"):
        SmallStreamingReactor(plain, engine, partner_weight=0.5)
    with pytest.raises(ValueError, match="partner_weight"):
        SmallStreamingReactor(net, engine, partner_weight=1.5)
    codes, targets = toy_data()
    train = ReactorTrainConfig(steps=2, batch=4, crop_steps=4, eval_every=2, eval_batches=1, partner_drop=0.5)
    with pytest.raises(ValueError, match="partner_null"):
        train_small_reactor(codes, targets, tmp_path / "x", model=tiny_config(text_dim=0), train=train)
    last = train_small_reactor(
        codes, targets, tmp_path / "r", model=tiny_config(text_dim=0, partner_null=True), train=train
    )
    assert np.isfinite(last["val_loss"])
    assert load_small_reactor(tmp_path / "r")[0].no_partner is not None
