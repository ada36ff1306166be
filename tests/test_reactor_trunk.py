"""The reactor on a pretrained trunk (llm/reactor_trunk.py): the backbone's first layers, frozen,
with LoRA; trained, saved without the frozen layers, loaded back, refused on another backbone."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from molam_ros.llm.backbone import make_tiny_backbone
from molam_ros.llm.reactor_trunk import LlmTrunk, frozen_names
from molam_ros.llm.reactor_weights import load_small_reactor, save_small_reactor
from molam_ros.llm.small_reactor import REACTOR_PRESETS, SmallReactorNet, reactor_shape
from molam_ros.llm.small_reactor_train import ReactorTrainConfig, train_small_reactor
from tests.test_small_reactor import D, F, K, L, fake_embed, tiny_config, toy_data

WIDTH = 32


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A random 3-layer LLaMA directory, 32 wide: what the trunk reads from the shipped SmolLM2."""
    return str(make_tiny_backbone(tmp_path_factory.mktemp("trunk") / "bb", hidden=WIDTH, layers=3, heads=2))


def trunk_config(backbone: str, **kw):
    return tiny_config(width=WIDTH, layers=2, heads=2, backbone=backbone, lora_rank=4, **kw)


def test_the_trunk_is_the_backbones_first_layers_frozen_with_lora(backbone) -> None:
    from transformers import AutoModel

    net = SmallReactorNet(trunk_config(backbone))
    full = AutoModel.from_pretrained(backbone, local_files_only=True)
    ours = net.trunk.model.base_model.model
    assert len(ours.layers) == 2 and len(full.layers) == 3
    mine = dict(ours.layers[1].named_parameters())
    for name, p in full.layers[1].named_parameters():
        assert torch.equal(mine[name.replace("proj.weight", "proj.base_layer.weight")], p), name
    frozen = frozen_names(net)
    assert frozen and all(n.startswith("trunk.") and "lora_" not in n for n in frozen)
    trained = {n for n, p in net.named_parameters() if p.requires_grad}
    assert any("lora_A" in n for n in trained) and {"code.weight", "prev.weight", "out.weight"} <= trained
    # LoRA starts at zero: the trunk computes what the pretrained layers compute
    x = torch.randn(2, 5, WIDTH)
    with torch.no_grad():
        net.trunk.eval()
        assert torch.allclose(net.trunk(x), full.__class__.forward(ours, inputs_embeds=x).last_hidden_state)
    with pytest.raises(ValueError, match="3 layers"):
        LlmTrunk(backbone, 4, 4)
    with pytest.raises(ValueError, match="wide"):
        SmallReactorNet(tiny_config(width=64, heads=2, backbone=backbone))


def test_the_trunk_reactor_is_causal(backbone) -> None:
    net = SmallReactorNet(trunk_config(backbone)).eval()
    a, b = torch.randint(0, K, (1, 8, D)), torch.randn(1, 8, L * F)
    y1 = net(a, b)
    a2, b2 = a.clone(), b.clone()
    a2[:, 5:], b2[:, 5:] = (a2[:, 5:] + 1) % K, b2[:, 5:] + 1.0
    y2 = net(a2, b2)
    assert torch.allclose(y1[:, :5], y2[:, :5], atol=1e-5)
    assert not torch.allclose(y1[:, 5:], y2[:, 5:])


def test_training_lowers_the_loss_and_leaves_the_backbone_as_loaded(backbone, tmp_path) -> None:
    """The learnable rule of test_small_reactor, through the frozen trunk: the held-out loss falls to a
    fifth and below holding the last step, while the backbone's own weights do not move."""
    codes, targets = toy_data()
    cfg = ReactorTrainConfig(
        steps=300, batch=8, crop_steps=8, lr=3e-3, warmup=10, b_noise=0.1, eval_every=150,
        eval_batches=2, threads=1, bf16=False,
    )  # fmt: skip
    first = train_small_reactor(
        codes,
        targets,
        tmp_path / "r1",
        model=trunk_config(backbone),
        train=ReactorTrainConfig(**{**cfg.to_dict(), "steps": 1, "eval_every": 1}),
        embed=fake_embed,
        progress=False,
    )
    last = train_small_reactor(
        codes,
        targets,
        tmp_path / "r",
        model=trunk_config(backbone),
        train=cfg,
        embed=fake_embed,
        progress=False,
    )
    assert last["val_loss"] < first["val_loss"] / 5, (first, last)
    assert last["val_loss"] < last["val_hold_last"] / 3, last
    net, info = load_small_reactor(tmp_path / "r")
    fresh = SmallReactorNet(trunk_config(backbone))
    for n in frozen_names(fresh):
        assert torch.equal(dict(net.named_parameters())[n], dict(fresh.named_parameters())[n]), n
    saved = load_file(str(tmp_path / "r" / "model.safetensors"))
    assert not set(saved) & frozen_names(net) and any("lora_B" in k for k in saved)
    assert any(float(v.abs().max()) > 0 for k, v in saved.items() if "lora_B" in k)  # the adapters learnt


def test_save_load_resume_and_another_backbone_refused(backbone, tmp_path) -> None:
    codes, targets = toy_data()
    cfg = ReactorTrainConfig(steps=10, batch=4, crop_steps=6, eval_every=5, eval_batches=1, threads=1)
    model = trunk_config(backbone)
    train_small_reactor(
        codes, targets, tmp_path / "r", model=model, train=cfg, embed=fake_embed, progress=False
    )
    last = train_small_reactor(
        codes,
        targets,
        tmp_path / "r",
        model=model,
        train=ReactorTrainConfig(**{**cfg.to_dict(), "steps": 15}),
        embed=fake_embed,
        resume=True,
        progress=False,
    )
    assert last["step"] == 15
    net, info = load_small_reactor(tmp_path / "r")
    assert info["backbone_identity"] and info["model"]["backbone"] == backbone
    a, b = torch.randint(0, K, (2, 5, D)), torch.randn(2, 5, L * F)
    save_small_reactor(net, tmp_path / "half", {}, half=True)
    net2, _ = load_small_reactor(tmp_path / "half")
    assert torch.allclose(net(a, b), net2(a, b), atol=2e-2)
    cfg_file = tmp_path / "bb_changed" / "config.json"
    import shutil

    shutil.copytree(backbone, cfg_file.parent)
    info = json.loads((tmp_path / "half" / "config.json").read_text())
    info["model"]["backbone"] = str(cfg_file.parent)
    (tmp_path / "half" / "config.json").write_text(json.dumps(info))
    load_small_reactor(tmp_path / "half")  # an equal copy elsewhere is the same backbone
    changed = json.loads(cfg_file.read_text())
    changed["rms_norm_eps"] = 2 * changed["rms_norm_eps"]  # other weights' numbers
    cfg_file.write_text(json.dumps(changed))
    with pytest.raises(ValueError, match="another backbone"):
        load_small_reactor(tmp_path / "half")


def test_the_llm_preset_takes_the_backbones_width(backbone) -> None:
    shape = reactor_shape("llm", backbone=backbone, layers=2, width=None)
    assert shape == {"backbone": backbone, "layers": 2, "width": WIDTH, "heads": 2}
    assert reactor_shape("small", width=128) == {"width": 128, "layers": 4, "heads": 4}
    from molam_ros.cli import build_parser

    for name in REACTOR_PRESETS:  # the CLI's literal choices (it loads no torch for --help) agree
        assert build_parser().parse_args(["reactor", "train", "--data", "d", "--preset", name]).preset == name


def test_the_node_streams_with_an_llm_reactor(tiny_models, tiny_llm_env, tmp_path) -> None:
    """`reactor: llm_reactor` builds the pipeline on a trunk reactor (here on the tiny backbone) and
    streams finite motion within the robot's joint limits."""
    pytest.importorskip("rclpy")  # the node's parameter table
    from molam_ros.agent.reaction_setup import build_pipeline
    from molam_ros.llm.small_streaming import SmallStreamingReactor
    from tests.test_small_reactor import node_reactor, stream_checked

    out = tmp_path / "llm_reactor"
    shape = reactor_shape("llm", backbone=str(tiny_llm_env["backbone"]), layers=1)
    params = node_reactor(tiny_models, tiny_llm_env, out, tmp_path, **shape, lora_rank=4)
    params.update(reactor="llm_reactor", reactor_dir=str(out))
    pipeline, _ = build_pipeline(params)
    assert isinstance(pipeline.reactor, SmallStreamingReactor) and pipeline.reactor.net.trunk is not None
    assert len(stream_checked(pipeline, 40)) >= 5
