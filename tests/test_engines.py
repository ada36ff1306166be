"""Tokenizer engines: the ONNX export agrees with torch, every backend gives the same results,
streaming through an engine equals the whole-sequence pass, and the fallback chain works."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.config import PRESETS, preset
from molam_ros.tokenizer.engines import EngineConfig, OnnxRuntimeEngine, TorchEngine, create_engine
from molam_ros.tokenizer.export import export_onnx, read_manifest
from molam_ros.tokenizer.rqvae import RQVAE, save_checkpoint

F = PRESETS["tiny"].feature_dim  # the default (ego) layout


@pytest.fixture(
    scope="module",
    params=[(0, "conv"), (2, "conv"), (2, "step")],
    ids=["body-codes", "relation-codes", "relation-codes-step-net"],
)
def checkpoint(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny tokenizer whose codebooks have seen data (a few training-mode passes), and stats;
    without and with relation codes (D + R codes per step through every graph), from conv stacks or
    per-step MLPs."""
    torch.manual_seed(0)
    relation_quantizers, relation_net = request.param
    model = RQVAE(preset("tiny", relation_quantizers=relation_quantizers, relation_net=relation_net))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            # 512 latents per pass for 64 codes: codes seeded apart, few near-ties between backends
            model(torch.randn(16, 32 * model.stride, F))
    model.eval()
    rng = np.random.default_rng(0)
    stats = FeatureStats(
        mean=rng.normal(size=F).astype(np.float32), std=rng.uniform(0.5, 2, F).astype(np.float32), count=100
    )
    return save_checkpoint(model, tmp_path_factory.mktemp("ckpt"), stats=stats)


@pytest.fixture(scope="module")
def export_dir(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("export")
    export_onnx(checkpoint, out)
    return out


def _features(stats: FeatureStats, frames: int, batch: int = 1, seed: int = 1) -> np.ndarray:
    z = np.random.default_rng(seed).standard_normal((batch, frames, F)).astype(np.float32)
    return stats.denormalize(z).astype(np.float32)


def test_export_checks_agree_with_torch(export_dir: Path) -> None:
    manifest = read_manifest(export_dir)
    for graph, check in manifest["checks"].items():
        assert check["code_mismatch"] == 0.0, graph
        assert check["max_abs_diff"] < 1e-4, graph
    assert {p.name for p in export_dir.glob("*.onnx")} == {
        "encoder.onnx", "decoder.onnx", "encoder_step.onnx", "decoder_step.onnx"
    }  # fmt: skip


def _untied_mismatches(model: RQVAE, x: np.ndarray, codes: np.ndarray, other: np.ndarray) -> list[str]:
    """Steps whose codes differ where the torch model sees no tie between the two codes.

    Codes are an argmin over distances; where two codes are within float rounding of each other
    (measured here: equal to 1e-7, codes seeded alike in a tiny codebook) backends may pick either,
    and the later depths then quantize a different residual. So each differing step is judged at its
    first differing depth, from the residual both agree on: the two codes' scores must tie.
    """
    with torch.no_grad():
        z = model.encoder(torch.from_numpy(np.ascontiguousarray(x)))  # (B, T', C)
    z = z.reshape(-1, z.shape[-1])
    a, b = codes.reshape(len(z), -1), other.reshape(len(z), -1)
    C, D = model.config.code_dim, model.config.num_quantizers
    bad = []
    for n in np.flatnonzero((a != b).any(-1)):
        d = int(np.argmax(a[n] != b[n]))
        # Body depths quantize the first C latents; relation depths (d >= D) the rest, on their own.
        vq, zn, first = (model.quantizer, z[n, :C], 0) if d < D else (model.relation_quantizer, z[n, C:], D)
        residual = zn - vq.decode(torch.from_numpy(a[n, first:d])) if d > first else zn
        book = vq.codebooks[d - first]
        scores = book.embed_sq - 2.0 * (book.embed @ residual)  # (K,): the argmin that picks the code
        gap = float(abs(scores[a[n, d]] - scores[b[n, d]]))
        if gap > 1e-5 * float(scores.abs().max()):
            bad.append(f"step {n} depth {d}: codes {a[n, d]} vs {b[n, d]}, score gap {gap:.3g}")
    return bad


def test_torch_and_onnxruntime_give_the_same_results(checkpoint: Path, export_dir: Path) -> None:
    eng_t, eng_o = TorchEngine(checkpoint), OnnxRuntimeEngine(export_dir, threads=1)
    for seed in range(1, 4):
        x = _features(eng_t.stats, 12 * eng_t.stride, batch=2, seed=seed)
        codes_t, codes_o = eng_t.encode(x), eng_o.encode(x)
        assert codes_t.dtype == codes_o.dtype == np.int64
        bad = _untied_mismatches(eng_t.model, eng_t.stats.normalize(x).astype(np.float32), codes_t, codes_o)
        assert not bad, "onnxruntime and torch disagree beyond ties:\n" + "\n".join(bad)
        np.testing.assert_allclose(
            eng_t.decode(codes_t), eng_o.decode(codes_t), atol=1e-4 * np.abs(eng_t.stats.std).max()
        )


def test_untied_mismatches_are_found(checkpoint: Path) -> None:
    eng = TorchEngine(checkpoint)
    x = _features(eng.stats, 4 * eng.stride)
    xn = eng.stats.normalize(x).astype(np.float32)
    codes = eng.encode(x)
    with torch.no_grad():
        z = eng.model.encoder(torch.from_numpy(xn))[0, 1, : eng.model.config.code_dim]  # step 1's body latent
    book = eng.model.quantizer.codebooks[0]
    wrong = codes.copy()
    wrong[0, 1, 0] = int((book.embed_sq - 2.0 * (book.embed @ z)).argmax())  # the farthest code
    assert _untied_mismatches(eng.model, xn, codes, codes) == []
    assert len(_untied_mismatches(eng.model, xn, codes, wrong)) == 1


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_streaming_through_an_engine_equals_whole_sequence(
    checkpoint: Path, export_dir: Path, backend: str
) -> None:
    engine = create_engine(
        EngineConfig(backend=backend, checkpoint=str(checkpoint), export_dir=str(export_dir))
    )
    assert engine.name == backend
    l = engine.stride
    x = _features(engine.stats, 10 * l)
    whole_codes = engine.encode(x)
    whole_frames = engine.decode(whole_codes)
    enc, dec = engine.init_encoder_state(), engine.init_decoder_state()
    codes, frames = [], []
    for k in range(10):
        c, enc = engine.encode_step(x[:, k * l : (k + 1) * l], enc)
        f, dec = engine.decode_step(c, dec)
        codes.append(c)
        frames.append(f)
    np.testing.assert_array_equal(np.concatenate(codes, 1), whole_codes)
    scale = float(np.abs(engine.stats.std).max())
    np.testing.assert_allclose(np.concatenate(frames, 1), whole_frames, atol=1e-5 * scale * 10)


def test_bad_input_is_refused_clearly(export_dir: Path) -> None:
    engine = OnnxRuntimeEngine(export_dir)
    l = engine.stride
    with pytest.raises(ValueError, match="shape"):
        engine.encode(np.zeros((1, 4 * l, F - 1), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        engine.encode(np.full((1, 4 * l, F), np.nan, np.float32))
    with pytest.raises(ValueError, match="multiple"):
        engine.encode(np.zeros((1, 0, F), np.float32))
    with pytest.raises(ValueError, match="exactly"):
        engine.encode_step(np.zeros((1, l + 1, F), np.float32), engine.init_encoder_state())
    with pytest.raises(ValueError, match="codes"):
        engine.decode(np.zeros((1, 3, engine.depths + 1), np.int64))
    with pytest.raises(ValueError, match="integers"):
        engine.decode(np.zeros((1, 3, engine.depths), np.float32))
    with pytest.raises(ValueError, match="state"):
        engine.encode_step(np.zeros((1, l, F), np.float32), [])


def test_fallback_chain_is_followed_and_logged(
    checkpoint: Path, export_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401

        has_trt = torch.cuda.is_available()
    except ImportError:
        has_trt = False
    caplog.set_level(logging.INFO)
    engine = create_engine(
        EngineConfig(backend="tensorrt", checkpoint=str(checkpoint), export_dir=str(export_dir))
    )
    if not has_trt:
        assert engine.name == "onnxruntime"
        assert "tensorrt unavailable" in caplog.text and "fallback onnxruntime" in caplog.text
    # No export at all: the chain ends at torch.
    engine = create_engine(EngineConfig(backend="onnxruntime", checkpoint=str(checkpoint), export_dir=None))
    assert engine.name == "torch"
    with pytest.raises(RuntimeError, match="no tokenizer engine"):
        create_engine(EngineConfig(backend="onnxruntime", export_dir="/nonexistent", fallback=()))
    with pytest.raises(ValueError, match="unknown engine backend"):
        EngineConfig(backend="tflite")


def test_missing_or_foreign_export_is_named(tmp_path: Path, export_dir: Path) -> None:
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a molam tokenizer export"):
        read_manifest(tmp_path)


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="TensorRT needs an NVIDIA GPU; none on this machine"
)
def test_tensorrt_matches_onnxruntime(export_dir: Path) -> None:
    pytest.importorskip("tensorrt", reason="the tensorrt package is not installed")
    from molam_ros.tokenizer.tensorrt_engine import TensorRTEngine, build_tensorrt

    report = build_tensorrt(export_dir, max_frames=256)
    trt_engine, ort_engine = TensorRTEngine(export_dir), OnnxRuntimeEngine(export_dir)
    x = _features(ort_engine.stats, 16 * ort_engine.stride)
    agree = np.mean(trt_engine.encode(x) == ort_engine.encode(x))
    assert agree >= (0.995 if report["graphs"]["encoder"]["precision"] == "fp16" else 1.0)
