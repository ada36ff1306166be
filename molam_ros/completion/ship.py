"""Package a trained completion model as the shipped default (molam_ros/models/completion).

`molam completion ship CKPT --data GEN REAL` measures the checkpoint on the held-out (test) splits in
fp32 and rounded to fp16, next to the baselines (completion/evaluate.py), keeps fp16 when none of
the model's figures gets worse by more than `tolerance_mm`, and writes:

    model.safetensors   the weights (fp16 or fp32; loading casts them back to fp32)
    config.json         the checkpoint's config and training metadata (model.py's format)
    manifest.json       sha256 of each file, dtype, the commands that trained it, the datasets and
                        what of them it trained on, the figures (shipped and fp32), training time
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from molam_ros.completion.evaluate import evaluate
from molam_ros.completion.model import CONFIG_FILE, WEIGHTS_FILE, load_checkpoint, read_info, save_checkpoint
from molam_ros.completion.streams import load_streams
from molam_ros.tokenizer.ship import training_data

MANIFEST = "manifest.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def measure(checkpoint: str | Path, data: list[Path], split: str = "test") -> dict[str, Any]:
    """The figures of a checkpoint on the `split` splits of `data` (evaluate's dict), baselines fitted
    on the train splits. `split="val"` is for choosing a recipe; "test" is for reporting one."""
    train = [load_streams(d, "train") for d in data]
    tests = [load_streams(d, split) for d in data]
    return evaluate(load_checkpoint(checkpoint), train, tests)


def _model_figures(results: dict[str, Any]) -> dict[str, float]:
    """{"<dataset> | <set / yaw> | <figure>": value} of the model's rows, for the fp16 comparison."""
    out = {}
    for label, row in results.items():
        for key, methods in row.items():
            if isinstance(methods, dict):
                for name, value in methods["model"].items():
                    out[f"{label} | {key} | {name}"] = value
    return out


def ship(
    checkpoint: str | Path,
    out: str | Path,
    *,
    data: list[Path],
    commands: list[str],
    tolerance_mm: float = 0.5,
) -> dict[str, Any]:
    """Write the shipped completion model into `out` (module docstring); returns its manifest."""
    checkpoint, out = Path(checkpoint), Path(out)
    info = read_info(checkpoint)
    fp32 = measure(checkpoint, data)
    with tempfile.TemporaryDirectory() as tmp:
        half = Path(tmp) / "fp16"
        save_checkpoint(load_checkpoint(checkpoint).half(), half, extra=info.get("extra"))
        fp16 = measure(half, data)
        a, b = _model_figures(fp32), _model_figures(fp16)
        worse = [
            f"{k} {a[k]:.1f} -> {b[k]:.1f}" for k in a if k.endswith("_mm") and b[k] > a[k] + tolerance_mm
        ]
        source = checkpoint if worse else half
        out.mkdir(parents=True, exist_ok=True)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            shutil.copyfile(source / name, out / name)
    extra = info.get("extra", {})
    manifest = {
        "what": "the default sparse-to-full body completion of molam_ros (head + hands -> 22 joints)",
        "dtype": "float32" if worse else "float16",
        "why_dtype": f"fp16 changed: {worse}" if worse else f"fp16 within {tolerance_mm} mm of fp32",
        "files": {n: sha256(out / n) for n in (WEIGHTS_FILE, CONFIG_FILE)},
        "config": info["config"],
        "steps": extra.get("steps"),
        "train_seconds_1_thread": extra.get("train_seconds"),
        "train_cpu_seconds": extra.get("train_cpu_seconds"),
        "commands": commands,
        "data": [str(d) for d in data],
        "training_data": training_data(data),
        "figures": fp32 if worse else fp16,
        "figures_fp32": fp32,
        "torch": torch.__version__,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest
