"""A reactor's files: config.json and model.safetensors, written and read back, and weights carried
from one shape to another.

Kept apart from the model (llm/small_reactor.py) so that it stays readable in one sitting. A reactor
on a pretrained trunk (llm/reactor_trunk.py) saves only what training changed (adapters, inputs,
heads): the frozen layers come from the backbone at load time, and its identity, recorded at save
time, must match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from molam_ros.llm.reactor_trunk import backbone_identity, load_trainable, trainable_state
from molam_ros.llm.small_reactor import SmallReactorConfig, SmallReactorNet


def widened_code_table(table: torch.Tensor, groups: int, depth: int, new_depth: int, k: int) -> torch.Tensor:
    """(groups * depth * k, W) code embedding rows (group-major, then depth) -> (groups * new_depth * k, W),
    the new depths' rows at zero: a model reading codes of a tokenizer with relation codes after the
    body codes it was trained on computes what it computed (llm/widen.py)."""
    w = table.reshape(groups, depth, k, -1)
    pad = w.new_zeros(groups, new_depth - depth, k, w.shape[-1])
    return torch.cat([w, pad], dim=1).reshape(groups * new_depth * k, -1)


def widen_to_modes(state: dict[str, torch.Tensor], net: SmallReactorNet) -> dict[str, torch.Tensor]:
    """A single-mode reactor's weights as the start of a K-mode `net`: every proposal starts as the
    old output plus a little noise (so that they can part), the choice at zero (uniform). A look-ahead
    head, a sampling (flow) head, plans or a "no partner" input the old reactor lacks starts as `net`
    initialised it. Code depths
    the old reactor never read (a tokenizer with relation codes after the same body codes) start
    with zero embeddings, so the widened reactor first acts exactly as the old one."""
    K, out = net.config.modes, dict(state)
    c = net.config
    old_depth = out["code.weight"].shape[0] // c.codebook_size
    if old_depth < c.depth:
        out["code.weight"] = widened_code_table(out["code.weight"], 1, old_depth, c.depth, c.codebook_size)
    if net.no_partner is not None and "no_partner" not in out:
        out["no_partner"] = net.no_partner.detach()
    if net.flow is not None and not any(k.startswith("flow.") for k in out):  # starts untrained
        out.update({f"flow.{k}": v.detach() for k, v in net.flow.state_dict().items()})
    if net.plan is not None and not any(k.startswith("plan.") for k in out):  # starts untrained
        out.update({f"plan.{k}": v.detach() for k, v in net.plan.state_dict().items()})
        out["plan.vectors"] = torch.randn_like(net.plan.vectors) * out["code.weight"].std()  # its scale
    if net.ahead is not None and "ahead.weight" not in out:
        out["ahead.weight"], out["ahead.bias"] = net.ahead.weight.detach(), net.ahead.bias.detach()
    if K == 1 or state["out.weight"].shape[0] == net.out.weight.shape[0]:
        return out
    w, bias = state["out.weight"], state["out.bias"]
    out["out.weight"] = w.repeat(K, 1) + 0.01 * w.std() * torch.randn(K * w.shape[0], w.shape[1])
    out["out.bias"] = bias.repeat(K)
    out["choose.weight"] = torch.zeros_like(net.choose.weight)
    out["choose.bias"] = torch.zeros_like(net.choose.bias)
    return out


def save_small_reactor(
    net: SmallReactorNet, out: str | Path, info: dict[str, Any], *, half: bool = False
) -> Path:
    """config.json (shape + `info`: tokenizer identity, training figures; the backbone's identity
    for a trunk) and model.safetensors (float16 with `half`: what ships; without the frozen layers)."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if half else torch.float32
    save_file(
        {k: v.detach().to("cpu", dtype).contiguous() for k, v in trainable_state(net).items()},
        str(out / "model.safetensors"),
    )
    config = {"kind": "small_reactor", "version": 2, "model": net.config.to_dict(), **info}
    if net.config.backbone:
        config["backbone_identity"] = backbone_identity(net.config.backbone)
    (out / "config.json").write_text(json.dumps(config, indent=1))
    return out


def reactor_settings(info: dict[str, Any]) -> dict[str, float | None]:
    """The inference settings a trained reactor was chosen with on validation clips (its
    config.json: "anchor_pull", "guidance", "partner_weight", "temperature"), as SmallStreamingReactor
    keywords."""
    out = {"anchor_pull": info.get("anchor_pull"), "guidance": info.get("guidance")}
    if info.get("temperature") is not None:  # only reactors with a sampling (flow) head have one
        out["temperature"] = info["temperature"]
    if info.get("partner_weight") is not None:  # only reactors trained with the partner hidden have one
        out["partner_weight"] = info["partner_weight"]
    return out


def load_small_reactor(directory: str | Path) -> tuple[SmallReactorNet, dict[str, Any]]:
    """The network (float32, eval mode) and its config.json, or a clear error."""
    from safetensors.torch import load_file

    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise FileNotFoundError(
            f"{d} holds no small reactor (config.json and model.safetensors); train one: molam reactor train"
        )
    info = json.loads((d / "config.json").read_text())
    if info.get("kind") != "small_reactor" or info.get("version") != 2:
        raise ValueError(
            f"{d}/config.json is not a small reactor of this version (retrain: molam reactor train)"
        )
    config = SmallReactorConfig.from_dict(info["model"])
    if config.backbone and info.get("backbone_identity") != backbone_identity(config.backbone):
        raise ValueError(
            f"{d} was trained on another backbone than {config.backbone!r} is now (identity "
            f"{info.get('backbone_identity')} against {backbone_identity(config.backbone)}): retrain it"
        )
    net = SmallReactorNet(config)
    load_trainable(net, {k: v.float() for k, v in load_file(str(d / "model.safetensors")).items()})
    return net.eval(), info


__all__ = [
    "load_small_reactor",
    "reactor_settings",
    "save_small_reactor",
    "widen_to_modes",
    "widened_code_table",
]
