"""The shipped small reactor: files match the manifest, it pairs with the shipped tokenizer, it streams."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from molam_ros.llm.reactor_weights import load_small_reactor
from molam_ros.llm.small_streaming import SmallStreamingReactor
from molam_ros.paths import default_reactor_dir, shipped_reactor_dir, shipped_tokenizer_dir
from molam_ros.tokenizer.engines import TorchEngine
from molam_ros.tokenizer.rqvae import check_pairing


def test_manifest_and_pairing() -> None:
    d = shipped_reactor_dir()
    manifest = json.loads((d / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == digest, name
        assert (d / name).stat().st_size < 25 * 2**20
    assert manifest["commands"] and manifest["eval"]["clips"] >= 47
    rows = manifest["eval"]["rows"]
    assert {"small_reactor", "still", "mirror", "recorded"} <= set(rows)
    net, info = load_small_reactor(d)
    check_pairing(info["tokenizer"], shipped_tokenizer_dir(), "the shipped small reactor")
    assert default_reactor_dir() == d
    assert info["anchor_pull"] == manifest["anchor_pull"]


def test_it_reacts_to_a_stream() -> None:
    engine = TorchEngine(shipped_tokenizer_dir(), threads=1)
    net, info = load_small_reactor(shipped_reactor_dir())
    r = SmallStreamingReactor(net, engine, anchor_pull=info["anchor_pull"])
    a = np.random.default_rng(0).integers(0, net.config.codebook_size, (30, net.config.depth))
    out = r.react(a)
    assert out.shape == a.shape and out.min() >= 0 and out.max() < net.config.codebook_size
    feats = engine.decode(out[None].astype(np.int64))
    assert np.isfinite(feats).all()
