"""`molam describer train|eval|ship`: motion to text with the LLM's first layers (llm/describer.py).

Kept out of molam_ros/cli.py so `molam --help` stays instant (torch loads only when a command runs).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from molam_ros import paths


def _load(run: Path, tokenizer: Path) -> tuple[Any, dict[str, Any]]:
    """The describer of `run` and its config.json; refused if trained on another tokenizer's codes."""
    from molam_ros.llm.describer import load_describer
    from molam_ros.tokenizer.rqvae import CheckpointError, check_pairing

    net, info = load_describer(run)
    try:
        check_pairing(info.get("tokenizer"), tokenizer, f"the describer {run}")
    except CheckpointError as e:
        raise SystemExit(str(e)) from e
    return net, info


def cmd_train(args: argparse.Namespace) -> int:
    import torch

    from molam_ros.llm.describer import DescriberConfig
    from molam_ros.llm.describer_train import (
        DescriberTrainConfig,
        captioned_codes,
        label_sets,
        train_describer,
    )

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer = args.tokenizer or paths.default_tokenizer_dir()
    data = captioned_codes(args.data, tokenizer)
    labels = label_sets(data)
    labelled = "None" not in {*labels[0], *labels[1]}  # clips without interaction/style in their meta
    model = DescriberConfig(
        layers=args.layers,
        lora_rank=args.lora_rank,
        max_steps=args.max_steps,
        aux_labels=labels if args.aux_weight > 0 and labelled else (),
        aux_weight=args.aux_weight,
        label_line=labelled and not args.no_label_line,
    )
    cfg = DescriberTrainConfig(
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        minutes=args.minutes,
        windows=args.windows,
        warmup=args.warmup,
    )
    from molam_ros.tokenizer.rqvae import checkpoint_identity

    info = {"tokenizer": checkpoint_identity(tokenizer), "data": str(args.data)}
    last = train_describer(data, args.out, model, cfg, info, resume=args.resume, init=args.init)
    print(json.dumps(last))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from molam_ros.llm.describer_eval import evaluate_describer, format_describer_report
    from molam_ros.llm.describer_train import captioned_codes

    tokenizer = args.tokenizer or paths.default_tokenizer_dir()
    net, _ = _load(args.run or paths.shipped_describer_dir(), tokenizer)
    report = evaluate_describer(
        net, captioned_codes(args.data, tokenizer), split=args.split, clips=args.clips, window=args.window
    )
    print(format_describer_report(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


def dataset_record(data: Path) -> dict[str, Any]:
    """What makes the training data again: the dataset's name and its dataset.json's provenance."""
    meta = (
        json.loads((Path(data) / "dataset.json").read_text())
        if (Path(data) / "dataset.json").is_file()
        else {}
    )
    keep = ("source", "seed", "count", "created_by", "splits")
    return {"name": Path(data).name, **{k: meta[k] for k in keep if k in meta}}


def cmd_ship(args: argparse.Namespace) -> int:
    """fp16 copy of a run into the package, measured once on the test split, with its manifest."""
    from molam_ros.llm.describer import save_describer
    from molam_ros.llm.describer_eval import evaluate_describer, format_describer_report
    from molam_ros.llm.describer_train import captioned_codes

    tokenizer = args.tokenizer or paths.default_tokenizer_dir()
    net, info = _load(args.run, tokenizer)
    out = args.out or paths.shipped_describer_dir()
    save_describer(
        net, out, {k: v for k, v in info.items() if k not in {"kind", "version", "model", "vocab"}}, half=True
    )
    shipped, _ = _load(out, tokenizer)
    report = evaluate_describer(
        shipped, captioned_codes(args.data, tokenizer), split="test", clips=args.clips
    )
    files = {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(out.iterdir()) if f.is_file()}
    files.pop("manifest.json", None)
    manifest = {
        "what": "motion describer: two people's codes -> caption (llm/describer.py)",
        "dtype": "float16",
        "files_sha256": files,
        "tokenizer": info.get("tokenizer"),
        "data": dataset_record(args.data),
        "commands": args.command or [],
        "train": info.get("train"),
        "train_figures": info.get("figures"),
        "test": {"clips": report["clips"], "table": report["table"]},
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    print(format_describer_report(report))
    print(f"wrote {out}")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Seconds to answer one clip: the describer, and the full LLM's motion-to-text on the same codes."""
    import time

    import numpy as np

    from molam_ros.data.synth import generate_clip
    from molam_ros.llm.describer_train import clip_codes
    from molam_ros.tokenizer.engines import TorchEngine

    tokenizer = args.tokenizer or paths.default_tokenizer_dir()
    net, _ = _load(args.run or paths.shipped_describer_dir(), tokenizer)
    engine = TorchEngine(tokenizer, threads=1)
    clips = [generate_clip(9_100_000 + k) for k in range(args.clips)]
    codes = [clip_codes(engine, c.positions, int(c.meta.get("actor", 0)))[-64:] for c in clips]
    answerers = {"describer": lambda k: net.describe([k])[0]}
    llm = args.llm or paths.default_llm_dir()
    if (llm / "molam_llm.json").is_file():
        from molam_ros.llm.generate import Generator, SamplingConfig
        from molam_ros.llm.model import load_motion_lm
        from molam_ros.llm.prompts import MotionCodes, Task

        gen = Generator(load_motion_lm(llm), sampling=SamplingConfig(max_text_tokens=net.config.max_tokens))
        answerers[f"full LLM ({llm.name})"] = lambda k: (
            gen.run(Task.MOTION_TO_TEXT, motion=MotionCodes(a=k[:, 0], b=k[:, 1])).text
        )
    rounds: dict[str, list[float]] = {name: [] for name in answerers}
    for _ in range(args.repeats):
        for name, answer in answerers.items():
            times = []
            for k in codes:
                t0 = time.perf_counter()
                answer(k)
                times.append(time.perf_counter() - t0)
            rounds[name].append(float(np.median(times)))
    first = float(np.median(rounds["describer"]))
    print(f"{args.clips} fresh generator clips (<= 64 steps each), median of {args.repeats} rounds' medians:")
    for name, values in rounds.items():
        m = float(np.median(values))
        print(
            f"  {name}: {m:.2f} s an answer (rounds {min(values):.2f}-{max(values):.2f}), "
            f"{m / first:.2f}x the describer"
        )
    return 0


def dataset_arguments(p: argparse.ArgumentParser) -> None:
    """--data and --tokenizer, as every command on captioned two-person clips takes them."""
    p.add_argument("--data", type=Path, required=True, help="molam dataset with captions (two-person clips)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer checkpoint (default: the shipped one)")


def add_commands(groups: Any, fmt: type) -> None:
    """Register `molam describer train|eval|ship|bench` on molam_ros/cli.py's parser."""
    d = groups.add_parser(
        "describer",
        help="motion to text with the LLM's first layers: train, measure, ship",
        formatter_class=fmt,
    )
    cmds = d.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    common = dataset_arguments

    p = cmds.add_parser("train", formatter_class=fmt, help="train a describer on a dataset's captioned clips")
    common(p)
    p.add_argument("--out", type=Path, default=paths.cache_root() / "describer", help="run directory")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--layers", type=int, default=4, help="the backbone's first N decoder layers")
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--max-steps", type=int, default=64, help="motion steps read per clip")
    p.add_argument(
        "--no-label-line", action="store_true", help="write the caption alone, without the labels line first"
    )
    p.add_argument(
        "--aux-weight", type=float, default=1.0, help="weight of the interaction/style head (0: none)"
    )
    p.add_argument("--minutes", type=float, default=0.0, help="time budget (0: none); stops cleanly")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--init", type=Path, help="start from this describer's weights (e.g. the shipped one)")
    p.add_argument(
        "--windows",
        type=float,
        default=0.0,
        help="share of examples that are windows holding the interaction",
    )
    p.add_argument("--warmup", type=int, default=100, help="learning-rate warm-up steps")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.set_defaults(func=cmd_train)

    p = cmds.add_parser("eval", formatter_class=fmt, help="caption held-out clips; score with baselines")
    common(p)
    p.add_argument("run", type=Path, nargs="?", default=None, help="describer directory (default: shipped)")
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--clips", type=int, default=200)
    p.add_argument(
        "--window",
        type=int,
        default=0,
        help="read each clip's last N steps up to its interaction's end (a live question; the node's "
        "answer_steps is 24), not the clip from its start",
    )
    p.add_argument("--json", type=Path, help="write the report with every caption here")
    p.set_defaults(func=cmd_eval)

    p = cmds.add_parser("ship", formatter_class=fmt, help="fp16 copy into the package, measured once on test")
    common(p)
    p.add_argument("run", type=Path, help="trained describer directory")
    p.add_argument("--out", type=Path, help="default: molam_ros/models/describer")
    p.add_argument("--clips", type=int, default=200)
    p.add_argument("--command", action="append", help="the command(s) that made the run, for the manifest")
    p.set_defaults(func=cmd_ship)
    p = cmds.add_parser("bench", formatter_class=fmt, help="seconds an answer takes, next to the full LLM's")
    p.add_argument("run", type=Path, nargs="?", default=None, help="describer directory (default: shipped)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer checkpoint (default: the shipped one)")
    p.add_argument(
        "--llm", type=Path, help="the full LLM to compare with (default: the cache's; absent: skipped)"
    )
    p.add_argument("--clips", type=int, default=8)
    p.add_argument("--repeats", type=int, default=3)
    p.set_defaults(func=cmd_bench)
    logging.getLogger("molam_ros.llm.describer_train").setLevel(logging.INFO)


__all__ = ["add_commands"]
