"""`molam completion train | eval | ship`: the sparse-to-full body completion from the command line.

    molam completion train --data ~/.cache/molam/data/synth1000 ~/.cache/molam/data/real --out DIR
    molam completion eval --data ~/.cache/molam/data/synth1000 ~/.cache/molam/data/real   # the shipped model
    molam completion ship DIR --data ~/.cache/molam/data/synth1000 ~/.cache/molam/data/real
    molam completion fold --data ~/.cache/molam/data/real --fold A --out DIR   # a validation fold

Kept apart from molam_ros/cli.py, which is long already; torch loads only when a command runs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _cmd_train(args: argparse.Namespace) -> int:
    from molam_ros.completion.model import CompletionConfig
    from molam_ros.completion.streams import Augment
    from molam_ros.completion.train import CompletionTrainConfig, train

    weights = tuple(args.weights) if args.weights else tuple([1.0] * len(args.data))
    config = CompletionTrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        weights=weights,
        group_weights=tuple(args.loss_weight),
        augment=Augment(
            tracker_noise=args.tracker_noise,
            reverse_rate=args.reverse_rate,
            arm_swing_rate=args.arm_swing_rate,
            arm_swing_turn=args.arm_swing_turn,
        ),
        seed=args.seed,
    )
    model = CompletionConfig(window=args.window, width=args.width, layers=args.layers)
    meta = train(args.data, args.out, model_config=model, config=config, progress=not args.quiet)
    print(f"wrote {args.out} ({meta['steps']} steps, {meta['train_seconds']:.0f} s)")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from molam_ros.completion.evaluate import format_tables
    from molam_ros.completion.ship import measure
    from molam_ros.paths import shipped_completion_dir

    checkpoint = args.checkpoint or shipped_completion_dir()
    results = measure(checkpoint, args.data, split=args.split)
    print(f"checkpoint {checkpoint}, {args.split} splits:")
    print(format_tables(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _cmd_ship(args: argparse.Namespace) -> int:
    from molam_ros.completion.evaluate import format_tables
    from molam_ros.completion.ship import ship

    data = " ".join(str(d) for d in args.data)
    command = f"molam completion ship {args.checkpoint} --data {data}"
    manifest = ship(args.checkpoint, args.out, data=args.data, commands=[*args.train_command, command])
    print(f"wrote {args.out} ({manifest['dtype']}: {manifest['why_dtype']})")
    print(format_tables(manifest["figures"]))
    return 0


def _cmd_fold(args: argparse.Namespace) -> int:
    from molam_ros.completion.folds import FOLDS, write_source_fold

    held_out = FOLDS[args.fold] if args.fold else args.hold_out
    info = write_source_fold(args.data, held_out, args.out)
    val = ", ".join(info["held_out_sources"])
    print(f"wrote {args.out}: {info['splits']['train']} train clips, val = {val}")
    return 0


def _group_weight(text: str) -> tuple[str, float]:
    """`legs=2` -> ("legs", 2.0), for --loss-weight."""
    from molam_ros.motion.sparse import JOINT_GROUPS

    group, sep, value = text.partition("=")
    if not sep or group not in JOINT_GROUPS:
        raise argparse.ArgumentTypeError(
            f"expected GROUP=WEIGHT with GROUP in {tuple(JOINT_GROUPS)}, got {text!r}"
        )
    try:
        weight = float(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r}: {value!r} is not a number") from e
    if not weight > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: the weight must be > 0")
    return group, weight


def add_commands(groups: Any, fmt: type) -> None:
    """`molam completion ...` under the top-level parser's subcommands."""
    from molam_ros.paths import shipped_completion_dir

    group = groups.add_parser(
        "completion",
        help="sparse VR tracking (head + hands) to the full body: train, eval, ship",
        formatter_class=fmt,
    )
    cmds = group.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = cmds.add_parser(
        "train", help="train the completion model on datasets' train splits", formatter_class=fmt
    )
    p.add_argument(
        "--data", type=Path, nargs="+", required=True, help="dataset directories (molam data synth/real)"
    )
    p.add_argument("--out", type=Path, required=True, help="checkpoint directory to write")
    p.add_argument("--steps", type=int, default=6000, help="training steps (batch 256)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument(
        "--weights", type=float, nargs="+", help="share of each batch per dataset (default: equal)"
    )
    p.add_argument("--window", type=int, default=16, help="frames of tracked points seen (30 fps)")
    p.add_argument("--width", type=int, default=384)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW, cosine to a tenth)")
    p.add_argument(
        "--loss-weight",
        type=_group_weight,
        nargs="+",
        default=[],
        metavar="GROUP=W",
        help="loss weight of joint groups (head, torso, arms, legs; others weigh 1), e.g. legs=2 torso=1.5",
    )
    p.add_argument(
        "--tracker-noise", type=float, default=0.0, metavar="M", help="std (m) of noise on the tracked points"
    )
    p.add_argument(
        "--reverse-rate", type=float, default=0.0, metavar="P", help="share of windows played backwards"
    )
    p.add_argument(
        "--arm-swing-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="share of windows with both arms turned about shoulder and elbow (hands where no clip "
        "took them, over the recorded legs)",
    )
    p.add_argument(
        "--arm-swing-turn",
        type=float,
        default=0.0,
        metavar="RAD",
        help="how far a swung upper arm also turns over a window (hands moving on their own)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)
    p = cmds.add_parser(
        "eval",
        help="MPJPE per joint group on the test (or val) splits, next to two baselines",
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", type=Path, help="checkpoint (default: the shipped model)")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="dataset directories")
    p.add_argument("--json", type=Path, help="also write the figures as JSON here")
    p.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="val: choose a recipe (the generator's val split, a fold's held-out sources); test: report it",
    )
    p.set_defaults(func=_cmd_eval)
    p = cmds.add_parser(
        "ship", help="package a checkpoint as the shipped default (fp16 check, manifest)", formatter_class=fmt
    )
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--data", type=Path, nargs="+", required=True, help="the datasets it trained on")
    p.add_argument("--out", type=Path, default=shipped_completion_dir(), help="where to write")
    p.add_argument(
        "--train-command", action="append", default=[], help="the command that trained it (for the manifest)"
    )
    p.set_defaults(func=_cmd_ship)
    p = cmds.add_parser(
        "fold",
        help="a leave-source-out validation fold of the real dataset (completion/folds.py)",
        formatter_class=fmt,
    )
    p.add_argument("--data", type=Path, required=True, help="the real dataset (molam data real)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--fold", choices=("A", "B"), help="one of the fixed folds (completion/folds.py FOLDS)"
    )
    which.add_argument("--hold-out", nargs="+", metavar="SOURCE", help="training sources to hold out")
    p.add_argument("--out", type=Path, required=True, help="fold dataset directory to write")
    p.set_defaults(func=_cmd_fold)
