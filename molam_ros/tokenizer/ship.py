"""Package a trained tokenizer as the shipped default: weights (fp16 where the figures hold), a
manifest with sha256 and figures, and the training-data manifest.

`molam tokenizer ship CKPT --data GEN REAL --out molam_ros/models/tokenizer` evaluates the checkpoint
in fp32 and rounded to fp16 on the held-out splits of the datasets, keeps fp16 when no figure gets
worse by more than `tolerance_mm`, measures the long stream on the weights it keeps, and writes:

    model.safetensors   the weights (fp16 or fp32; loading casts them back to the model's fp32)
    config.json         the checkpoint's config and feature stats (rqvae.save_checkpoint's format)
    manifest.json       sha256 of each file, dtype, the commands that trained it, the datasets, the
                        figures (fp32 and shipped), training time and steps
    training_data.json  every real clip trained on (package, file, licence, sha256) and the
                        generator's seed and count
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from molam_ros.data.dataset import MotionDataset
from molam_ros.tokenizer.evaluate import evaluate
from molam_ros.tokenizer.long_stream import stream_errors, walk_and_turn_stream
from molam_ros.tokenizer.rqvae import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_checkpoint,
    read_checkpoint_info,
    save_checkpoint,
)

MANIFEST = "manifest.json"
TRAINING_DATA = "training_data.json"
FIGURES = ("mpjpe_mm", "rel_mpjpe_mm", "root_mm")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def figures(checkpoint: Path, data: list[Path], minutes: float) -> dict[str, Any]:
    """Held-out figures of a checkpoint: per dataset (test split) and the long stream."""
    model, _, stats = load_checkpoint(checkpoint)
    out: dict[str, Any] = {}
    for root in data:
        ds = MotionDataset(root)
        m = evaluate(model, stats, ds.iter_split("test"))
        out[f"{ds.label} (test)"] = {k: v for k, v in m.items() if k != "codebook"} | {
            "codes_used": [c["used"] for c in m["codebook"]]
        }
    if minutes:
        out["long stream"] = [asdict(r) for r in stream_errors(model, stats, walk_and_turn_stream(minutes))]
    return out


def _worse(a: dict[str, Any], b: dict[str, Any], tolerance_mm: float) -> list[str]:
    """Which figures of b exceed a's by more than tolerance_mm."""
    bad = []
    for name, fa in a.items():
        if name == "long stream":
            continue
        for k in FIGURES:
            if b[name][k] > fa[k] + tolerance_mm:
                bad.append(f"{name} {k} {fa[k]:.1f} -> {b[name][k]:.1f}")
    return bad


def training_data(data: list[Path]) -> dict[str, Any]:
    """What the tokenizer trained on, from the datasets' manifests."""
    out: dict[str, Any] = {"datasets": []}
    for root in data:
        ds = MotionDataset(root)
        m = ds.manifest
        entry = {"label": ds.label, "splits": m.get("splits"), "count": m.get("count")}
        if m.get("source") == "synth":
            entry |= {"generator": "molam data synth", "seed": m.get("seed"), "clips": m.get("count")}
        if "sources" in m:
            entry |= {
                "augmentation": {"variants": m.get("variants"), "seed": m.get("seed")},
                "real_clips": [s for s in m["sources"] if s.get("split") == "train"],
                "held_out": [s for s in m["sources"] if s.get("split") != "train"],
            }
        out["datasets"].append(entry)
    return out


def ship(
    checkpoint: str | Path,
    out: str | Path,
    *,
    data: list[Path],
    commands: list[str],
    minutes: float = 10.0,
    tolerance_mm: float = 0.5,
    train_seconds: float | None = None,
) -> dict[str, Any]:
    """Write the shipped tokenizer into `out` (module docstring); returns its manifest."""
    checkpoint, out = Path(checkpoint), Path(out)
    info = read_checkpoint_info(checkpoint)
    fp32 = figures(checkpoint, data, 0.0)
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "fp16"
        model, _, stats = load_checkpoint(checkpoint)
        model.half()  # weights and codebooks rounded to fp16; loading casts them back to fp32
        save_checkpoint(model, half, stats=stats, extra=info.get("extra"))
        fp16 = figures(half, data, 0.0)
        worse = _worse(fp32, fp16, tolerance_mm)
        source = checkpoint if worse else half
        shipped = fp32 if worse else fp16
        if minutes:  # the long stream once, for the weights that ship
            shipped["long stream"] = figures(source, [], minutes)["long stream"]
        out.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            shutil.copyfile(source / name, out / name)
    (out / TRAINING_DATA).write_text(json.dumps(training_data(data), indent=1))
    manifest = {
        "what": "the default motion tokenizer of molam_ros (causal RQ-VAE, ego layout)",
        "dtype": "float32" if worse else "float16",
        "why_dtype": f"fp16 changed: {worse}" if worse else f"fp16 within {tolerance_mm} mm of fp32",
        "files": {n: sha256(out / n) for n in (WEIGHTS_FILE, CONFIG_FILE, TRAINING_DATA)},
        "config": info["config"],
        "layout": {"name": "ego", "dim": info["config"]["feature_dim"]},
        "steps": info.get("extra", {}).get("step"),
        "train_seconds_2core_cpu": train_seconds,
        "commands": commands,
        "data": [str(d) for d in data],
        "figures": shipped,
        "figures_fp32": fp32,
        "torch": torch.__version__,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest
