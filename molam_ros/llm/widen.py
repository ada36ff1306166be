"""Models that read codes, carried over to a tokenizer with relation codes after the same body codes.

A tokenizer whose relation codes were trained alone on top of another (`molam tokenizer train
--init OLD --relation-codes R --freeze-body`) writes the same D body codes as OLD for every clip, and
R relation codes after them. A reactor, actor generator or describer trained on OLD's codes reads
D + R codes through it once its code tables gain R depths; with those rows at zero it computes
exactly what it computed before, and what changes is only what the tokenizer decodes (the partner's
place, from the relation codes). Training it further (`--init`) lets it learn to read them.

Why not retrain: every code-reading model would need retraining (about 3 hours of this CPU) before
the tokenizer could ship; widened, they ship with it at once, and each is retrained when its turn
comes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from molam_ros.llm.reactor_weights import widened_code_table
from molam_ros.tokenizer.rqvae import checkpoint_identity, read_checkpoint_info


def _check_same_body(info: dict[str, Any], tokenizer: str | Path, src: Path) -> dict[str, Any]:
    """The new tokenizer's config; raises unless `src` was trained on the codes it starts with."""
    tok = read_checkpoint_info(tokenizer)
    extra = tok.get("extra", {})
    frozen = extra.get("train_config", {}).get("freeze_body")
    recorded = info.get("tokenizer") or {}
    if not frozen or extra.get("init", {}).get("sha256") != recorded.get("sha256"):
        raise ValueError(
            f"{tokenizer} does not start with the codes {src} was trained on: widening needs a tokenizer "
            f"trained with --init <the one {src} names> --freeze-body (its body codes are then the same)"
        )
    return tok["config"]


def widen(src: str | Path, tokenizer: str | Path, out: str | Path) -> Path:
    """Write `src` (a small reactor, actor generator or describer) widened to `tokenizer`'s depths."""
    src = Path(src)
    info = json.loads((src / "config.json").read_text())
    new_config = _check_same_body(info, tokenizer, src)
    depth = int(new_config["num_quantizers"]) + int(new_config.get("relation_quantizers", 0))
    kind, meta = info.get("kind"), {k: v for k, v in info.items() if k not in ("kind", "version", "model")}
    meta |= {"tokenizer": checkpoint_identity(tokenizer), "widened_from": info.get("tokenizer")}
    if kind == "small_reactor":
        from molam_ros.llm.reactor_trunk import load_trainable, trainable_state
        from molam_ros.llm.reactor_weights import load_small_reactor, save_small_reactor
        from molam_ros.llm.small_reactor import SmallReactorNet

        net, _ = load_small_reactor(src)
        c = net.config
        new = SmallReactorNet(dataclasses.replace(c, depth=depth))
        state = trainable_state(net)
        state["code.weight"] = widened_code_table(state["code.weight"], 1, c.depth, depth, c.codebook_size)
        load_trainable(new, state)
        return save_small_reactor(new, out, meta, half=_is_half(src))
    if kind == "motion_describer":
        from molam_ros.llm.describer import MotionDescriber, load_describer, save_describer
        from molam_ros.llm.reactor_trunk import load_trainable, trainable_state

        net, _ = load_describer(src)
        c = net.config
        new = MotionDescriber(dataclasses.replace(c, depth=depth), info["vocab"])
        state = trainable_state(net)
        state["code.weight"] = widened_code_table(state["code.weight"], 2, c.depth, depth, c.codebook_size)
        load_trainable(new, state)
        meta = {k: v for k, v in meta.items() if k not in ("vocab", "backbone_identity")}
        return save_describer(new, out, meta, half=_is_half(src))
    raise ValueError(f"{src}: {kind!r} is not a model that reads codes (small_reactor, motion_describer)")


def _is_half(src: Path) -> bool:
    """Whether `src` stores float16 weights (kept so: what ships stays fp16)."""
    from safetensors import safe_open

    with safe_open(str(src / "model.safetensors"), "pt") as f:
        return any(f.get_slice(k).get_dtype() == "F16" for k in f.keys())
