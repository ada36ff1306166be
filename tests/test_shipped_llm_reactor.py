"""The shipped LLM reactor (llm/reactor_trunk.py): files match the manifest and hold only what training
changed, it pairs with the shipped tokenizer and the default backbone, its test figures beat standing
still, and it streams."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from safetensors.torch import load_file

from molam_ros.llm.reactor_trunk import frozen_names
from molam_ros.llm.reactor_weights import load_small_reactor
from molam_ros.llm.small_streaming import SmallStreamingReactor
from molam_ros.paths import shipped_llm_reactor_dir, shipped_tokenizer_dir
from molam_ros.tokenizer.engines import TorchEngine
from molam_ros.tokenizer.rqvae import check_pairing


def test_manifest_pairing_and_figures() -> None:
    d = shipped_llm_reactor_dir()
    manifest = json.loads((d / "manifest.json").read_text())
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((d / name).read_bytes()).hexdigest() == digest, name
        assert (d / name).stat().st_size < 25 * 2**20
    assert manifest["commands"] and manifest["eval"]["clips"] >= 47
    assert manifest["backbone"]["name"] == "default" and manifest["backbone"]["layers"] >= 1
    rows = manifest["eval"]["rows"]
    assert {"llm_reactor", "still", "mirror", "recorded"} <= set(rows)
    # what the README states: below the mirror, and placed and posed no worse than standing still
    assert rows["llm_reactor"]["mpjpe"] < rows["mirror"]["mpjpe"]
    assert rows["llm_reactor"]["pose"] < rows["still"]["pose"]
    net, info = load_small_reactor(d)
    check_pairing(info["tokenizer"], shipped_tokenizer_dir(), "the shipped LLM reactor")
    assert net.trunk is not None and info["anchor_pull"] == manifest["anchor_pull"]
    saved = load_file(str(d / "model.safetensors"))
    assert not set(saved) & frozen_names(net)  # the backbone's own layers come from its package


def test_it_reacts_to_a_stream() -> None:
    engine = TorchEngine(shipped_tokenizer_dir(), threads=1)
    net, info = load_small_reactor(shipped_llm_reactor_dir())
    r = SmallStreamingReactor(net, engine, anchor_pull=info["anchor_pull"])
    a = np.random.default_rng(0).integers(0, net.config.codebook_size, (45, net.config.depth))
    out = r.react(a)  # longer than its 40-step window
    assert out.shape == a.shape and out.min() >= 0 and out.max() < net.config.codebook_size
    assert len(r.history) == net.config.context_steps
    assert np.isfinite(engine.decode(out[None].astype(np.int64))).all()
