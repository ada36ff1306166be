"""Backbone loading: local causal LM directories only, clear errors, the GGUF converted once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
import torch

import molam_ros.llm.backbone as bb
from molam_ros.llm.backbone import (
    SOURCE_FILE,
    BackboneError,
    check_backbone_dir,
    convert_gguf,
    default_backbone_dir,
    load_backbone,
    make_tiny_backbone,
)


def _config_dir(root: Path, name: str, config: dict) -> Path:
    d = root / name
    d.mkdir()
    (d / "config.json").write_text(json.dumps(config))
    return d


def test_missing_dir_and_hub_ids_are_refused(tmp_path: Path) -> None:
    for path in (tmp_path / "nope", "HuggingFaceTB/SmolLM2-135M-Instruct"):
        with pytest.raises(BackboneError, match="only loaded from local paths, never downloaded"):
            load_backbone(path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(BackboneError, match="is a file, not a model directory"):
        load_backbone(tmp_path / "file.txt")
    with pytest.raises(BackboneError, match="must be a str or Path"):
        load_backbone(3)  # type: ignore[arg-type]


def test_non_causal_lm_dirs_are_refused(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError, match="no config.json"):
        check_backbone_dir(tmp_path / "empty")
    gguf = tmp_path / "gguf_only"
    gguf.mkdir()
    (gguf / "m.Q4.gguf").write_bytes(b"GGUF")
    with pytest.raises(BackboneError, match="convert one with .*convert_gguf"):
        check_backbone_dir(gguf)
    bad_json = _config_dir(tmp_path, "bad_json", {})
    (bad_json / "config.json").write_text("{not json")
    with pytest.raises(BackboneError, match="not valid JSON"):
        check_backbone_dir(bad_json)
    cases = {
        "bert": ({"model_type": "bert", "architectures": ["BertForMaskedLM"]}, "not a causal LM"),
        "t5": ({"model_type": "t5", "architectures": ["T5ForConditionalGeneration"]}, "not a causal LM"),
        "clip": ({"model_type": "clip"}, "not a causal LM"),
        "typeless": ({"hidden_size": 8}, "not a causal LM"),
        "encdec": ({"model_type": "llama", "is_encoder_decoder": True}, "decoder-only"),
    }
    for name, (config, message) in cases.items():
        with pytest.raises(BackboneError, match=message):
            load_backbone(_config_dir(tmp_path, name, config))


def test_loads_any_local_causal_lm(tmp_path: Path) -> None:
    d = make_tiny_backbone(tmp_path / "tiny")
    model, tok = load_backbone(str(d), dtype=torch.float32, device="cpu")
    assert not model.training and model.dtype == torch.float32
    assert tok.pad_token is not None and tok.chat_template
    no_tokenizer = tmp_path / "no_tok"
    no_tokenizer.mkdir()
    for f in d.iterdir():
        if f.name in ("config.json", "model.safetensors", "generation_config.json"):
            (no_tokenizer / f.name).write_bytes(f.read_bytes())
    with pytest.raises(BackboneError, match="no usable tokenizer"):
        load_backbone(no_tokenizer)


@pytest.fixture()
def fake_gguf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A fake shipped GGUF and a fake conversion that counts its calls (no 20 s de-quantisation)."""
    gguf = tmp_path / "pkg" / bb.DEFAULT_GGUF_FILE
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF v1")
    calls = {"n": 0}

    def fake_convert(src: Path, out: Path) -> Path:
        calls["n"] += 1
        time.sleep(0.05)  # long enough for concurrent callers to pile up on the lock
        out.mkdir(parents=True)
        (out / "config.json").write_text("{}")
        (out / SOURCE_FILE).write_text(json.dumps(bb._source_record(src)))
        return out

    monkeypatch.setattr(bb, "shipped_gguf_path", lambda: gguf)
    monkeypatch.setattr(bb, "convert_gguf", fake_convert)
    return {"gguf": gguf, "calls": calls, "cache": tmp_path / "cache"}


def test_default_dir_converts_once_even_concurrently(
    fake_gguf: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = fake_gguf["cache"]
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(default_backbone_dir(cache))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fake_gguf["calls"]["n"] == 1
    assert len(set(results)) == 1 and results[0] == cache / "backbones" / bb.DEFAULT_BACKBONE
    # $MOLAM_CACHE is the default cache root.
    monkeypatch.setenv("MOLAM_CACHE", str(cache))
    assert default_backbone_dir() == results[0] and fake_gguf["calls"]["n"] == 1


def test_default_dir_replaces_a_stale_conversion(fake_gguf: dict) -> None:
    cache = fake_gguf["cache"]
    first = default_backbone_dir(cache)
    (first / "old_weights.bin").write_text("x")
    fake_gguf["gguf"].write_bytes(b"GGUF v2, a new package release")  # another size: another source
    again = default_backbone_dir(cache)
    assert again == first and fake_gguf["calls"]["n"] == 2
    assert not (again / "old_weights.bin").exists()
    assert [p.name for p in (cache / "backbones").iterdir() if not p.name.endswith(".lock")] == [again.name]


def test_failed_conversion_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import transformers

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", boom)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    out = tmp_path / "out" / "model"
    with pytest.raises(RuntimeError, match="disk full"):
        convert_gguf(gguf, out)
    assert list((tmp_path / "out").iterdir()) == []
    with pytest.raises(BackboneError, match="does not exist"):
        convert_gguf(tmp_path / "missing.gguf", out)
    out.mkdir()
    with pytest.raises(BackboneError, match="already exists"):
        convert_gguf(gguf, out)


@pytest.mark.slow
def test_default_backbone_converts_and_reloads_fast() -> None:
    """The shipped SmolLM2 GGUF, converted once into the cache ($MOLAM_CACHE or ~/.cache/molam)."""
    directory = default_backbone_dir()
    assert (directory / "model.safetensors").is_file() and (directory / SOURCE_FILE).is_file()
    config = json.loads((directory / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and "quantization_config" not in config
    t0 = time.perf_counter()
    model, tok = load_backbone(directory)
    load_s = time.perf_counter() - t0
    assert load_s < 10.0, f"reloading the converted backbone took {load_s:.1f} s"
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    assert len(tok) == 49152 and tok.eos_token == "<|im_end|>"
    ids = tok.apply_chat_template(
        [{"role": "user", "content": "Say hi."}], add_generation_prompt=True, return_tensors="pt"
    )["input_ids"]
    out = model.generate(ids, max_new_tokens=4, do_sample=False, pad_token_id=tok.pad_token_id)
    assert out.shape[1] > ids.shape[1]
