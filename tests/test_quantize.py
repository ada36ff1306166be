"""Int8 weights for CPU inference (llm/quantize.py): same interface, finite outputs, close to float."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.llm.depth_head import DepthHeadConfig
from molam_ros.llm.model import MotionLM
from molam_ros.llm.quantize import quantize
from molam_ros.llm.streaming import StreamingConfig, StreamingReactor
from molam_ros.llm.vocab import MotionVocab


@pytest.fixture(scope="module")
def mlm(tiny_llm_env: dict[str, Path]) -> MotionLM:
    vocab = MotionVocab(codebook_size=16, depth=2)
    return MotionLM.create(tiny_llm_env["backbone"], vocab, DepthHeadConfig(width=16, layers=1)).eval()


def test_int8_streams_like_float(mlm: MotionLM) -> None:
    q = quantize(copy.deepcopy(mlm), "int8")
    assert q.info["quantization"] == "int8"
    assert any("quantized" in type(m).__module__ for m in q.lm.modules())
    codes = np.random.default_rng(0).integers(0, 16, size=(12, 2))
    ref = StreamingReactor(mlm, StreamingConfig(method="head")).react(codes)
    out = StreamingReactor(q, StreamingConfig(method="head")).react(codes)
    assert out.shape == ref.shape and ((out >= 0) & (out < 16)).all()
    # Hidden states of the same input stay close (int8 per-tensor weights, float activations).
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.inference_mode():
        h_ref = mlm.decoder(input_ids=ids).last_hidden_state
        h_q = q.decoder(input_ids=ids).last_hidden_state
    rel = (h_q - h_ref).norm() / h_ref.norm()
    assert rel < 0.1, rel


def test_none_is_unchanged_and_bad_requests_are_refused(mlm: MotionLM) -> None:
    assert quantize(mlm, "none") is mlm
    with pytest.raises(ValueError, match="quantization must be one of"):
        quantize(mlm, "int4")
    training = copy.deepcopy(mlm).train()
    with pytest.raises(ValueError, match="inference only"):
        quantize(training, "int8")
