"""Package a trained small reactor as the shipped default (molam_ros/models/reactor).

`molam reactor ship RUN --data DATA --out molam_ros/models/reactor` measures the run's weights in
float32 and rounded to float16 in closed loop on held-out clips (llm/reaction_eval.py), keeps
float16 when its MPJPE is within `tolerance_mm` of float32, and writes:

    model.safetensors   the weights (fp16 or fp32; loading casts them back to fp32)
    config.json         the model's shape, the tokenizer it was trained on (sha256, layout), its
                        training settings and last held-out losses
    manifest.json       sha256 of each file, dtype and why, the commands that made it, training time
                        and steps, and the quality table measured on the weights it keeps
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

from molam_ros.llm.reaction_eval import (
    BASELINE_ROWS,
    ReactionEvalConfig,
    eval_clips,
    evaluate_reactors,
    own_instructions,
)
from molam_ros.llm.reactor_weights import load_small_reactor, reactor_settings, save_small_reactor
from molam_ros.llm.small_streaming import SmallStreamingReactor

MANIFEST = "manifest.json"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def row_name(path: Path, taken: set[str] | dict[str, Any]) -> str:
    """The row a reactor directory gets in a table: its name, or, where that is taken (two runs both
    called `out`, a run called `still`, a run beside the shipped reactor of its own kind), its parent's
    name with it, then a number; so no row silently replaces another."""
    path = Path(path)
    for name in (path.name, f"{path.parent.name}/{path.name}"):
        if name and name not in taken and name not in BASELINE_ROWS:
            return name
    n = 2
    while f"{path.name} ({n})" in taken:
        n += 1
    return f"{path.name} ({n})"


def streaming_reactors(
    dirs: list[Path],
    engine: Any,
    embed: Any = None,
    *,
    tokenizer: Path | None = None,
    guidance: float | None = None,
    partner_weight: float | None = None,
    temperature: float | None = None,
) -> dict[str, Any]:
    """Trained reactors by directory name, each with its own settings (or `guidance`, `partner_weight`,
    for those that have the partner-hidden input, `temperature`, for those that sample) and the sentence
    encoder (the steering measure instructs them); with `tokenizer`, each must have been trained on it."""
    from molam_ros.tokenizer.rqvae import check_pairing

    out = {}
    for d in dirs:
        net, info = load_small_reactor(d)
        if tokenizer is not None:
            check_pairing(info.get("tokenizer"), tokenizer, f"the small reactor {d}")
        settings = reactor_settings(info)
        if guidance is not None:
            settings["guidance"] = guidance
        if partner_weight is not None and net.no_partner is not None:
            settings["partner_weight"] = partner_weight
        if temperature is not None and net.flow is not None:
            settings["temperature"] = temperature
        out[row_name(Path(d), out)] = SmallStreamingReactor(net, engine, embed=embed, **settings)
    return out


def ship_small_reactor(
    run: str | Path,
    dataset: Any,
    engine: Any,
    out: str | Path,
    *,
    commands: list[str],
    clips: int = 94,
    tolerance_mm: float = 2.0,
    anchor_pull: float | None = None,
    guidance: float = 1.0,
    partner_weight: float | None = None,
    embed: Any = None,
    classifiers: tuple[Any, Any] | None = None,
    beside: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the shipped reactor into `out` (module docstring); returns the manifest. `beside`:
    other reactors (name -> streaming reactor) measured in the same run, rows of the same table.
    `partner_weight` (a reactor trained with the partner hidden): recorded with it, and with `embed`
    the manifest also holds the rows told each clip's own instruction, where it acts."""
    net, info = load_small_reactor(run)
    kind = "llm_reactor" if net.config.backbone else "small_reactor"
    if anchor_pull is not None:
        info["anchor_pull"] = anchor_pull
    info["guidance"] = guidance
    if partner_weight is not None:
        info["partner_weight"] = partner_weight
    cfg = ReactionEvalConfig(clips=clips)
    held_out = eval_clips(dataset, "test", cfg, engine.stride)
    with tempfile.TemporaryDirectory() as tmp:
        save_small_reactor(
            net,
            Path(tmp) / "half",
            {k: v for k, v in info.items() if k not in ("kind", "version", "model")},
            half=True,
        )
        half, _ = load_small_reactor(Path(tmp) / "half")
    check = ReactionEvalConfig(clips=min(clips, 20))
    few = held_out[: check.clips]
    both = evaluate_reactors(
        {
            "fp32": SmallStreamingReactor(net, engine, anchor_pull=anchor_pull),
            "fp16": SmallStreamingReactor(half, engine, anchor_pull=anchor_pull),
        },
        engine,
        few,
        check,
        progress=progress,
    )
    gap = both["fp16"]["mpjpe"] - both["fp32"]["mpjpe"]
    use_half = gap <= tolerance_mm
    keep = half if use_half else net
    pair, steer = classifiers if classifiers is not None else (None, None)
    shipped = SmallStreamingReactor(
        keep, engine, anchor_pull=anchor_pull, guidance=guidance, partner_weight=partner_weight, embed=embed
    )
    # The run's own row is named by its kind (what the manifest's readers look up); a reactor beside it
    # of the same name (the shipped one, measured again) keeps its row under another name.
    reactors = {(f"{name} (beside)" if name == kind else name): r for name, r in (beside or {}).items()}
    reactors[kind] = shipped
    rows = evaluate_reactors(
        reactors, engine, held_out, cfg, classifier=pair, steer_classifier=steer, progress=progress
    )
    told_rows = None
    if partner_weight is not None and embed is not None:
        told = own_instructions(held_out)
        told_rows = evaluate_reactors(
            reactors, engine, held_out, cfg, instructions=told, classifier=pair, progress=progress
        )
    out = Path(out)
    extra = {k: v for k, v in info.items() if k not in ("kind", "version", "model")}
    save_small_reactor(keep, out, extra, half=use_half)
    manifest = {
        "what": f"the default {kind.replace('_', ' ')} of molam_ros (llm/small_reactor.py"
        + (
            ", on the first layers of a pretrained LLM: llm/reactor_trunk.py)" if net.config.backbone else ")"
        ),
        "backbone": None
        if not net.config.backbone
        else {
            "name": net.config.backbone,
            "layers": net.config.layers,
            "identity": extra.get("backbone_identity"),
        },
        "dtype": "float16" if use_half else "float32",
        "why_dtype": f"fp16 MPJPE {gap:+.1f} mm vs fp32, {len(few)} test clips (allowed {tolerance_mm})",
        "files": {name: _sha(out / name) for name in ("model.safetensors", "config.json")},
        "tokenizer": info.get("tokenizer"),
        "anchor_pull": anchor_pull,
        "guidance": guidance,
        "partner_weight": partner_weight,
        "steps": info.get("step"),
        "train_seconds_2core_cpu": (info.get("last") or {}).get("seconds"),
        "held_out_losses": info.get("last"),
        "commands": commands,
        "eval": {"clips": len(held_out), "steps_per_clip": cfg.steps, "rows": rows, "told_rows": told_rows},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest
