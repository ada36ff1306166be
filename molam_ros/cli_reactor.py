"""`molam reactor train|eval`: the small reactor (llm/small_reactor.py), trained and measured.

Kept out of molam_ros/cli.py so `molam --help` stays instant (torch loads only when a command runs).
The sentence encoder (agent/encoder.py) is handed to the core as a plain function: the llm layer
never imports the agent layer.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any


def default_reactor_dir() -> Path:
    """Where `molam reactor train` writes by default: the cache's reactor/small."""
    from molam_ros.paths import cache_root

    return cache_root() / "reactor" / "small"


def default_eval_reactor() -> Path:
    """What `molam reactor eval` measures when no checkpoint is named (paths.default_reactor_dir)."""
    from molam_ros.paths import default_reactor_dir as default

    return default()


def _embedder() -> Any:
    """The shipped sentence encoder as a texts -> vectors function, or None when it is missing."""
    from molam_ros.agent.encoder import EncoderUnavailableError, shared_encoder

    try:
        enc = shared_encoder()
    except EncoderUnavailableError as e:
        logging.getLogger(__name__).warning("no instructions: %s", e)
        return None
    return enc.encode


def _codes(data: list[Path], tokenizer: Path, max_clips: int | None, steering: int = 0) -> Any:
    from molam_ros.llm.reaction_codes import ReactionCodes, encode_reaction_codes

    parts = [encode_reaction_codes(d, tokenizer, max_clips=max_clips, mismatched=steering) for d in data]
    if len(parts) == 1:
        return parts[0]
    import numpy as np

    offs = [p.offsets[:-1] + sum(len(q.a) for q in parts[:k]) for k, p in enumerate(parts)]
    return ReactionCodes(
        a=np.concatenate([p.a for p in parts]),
        b=np.concatenate([p.b for p in parts]),
        offsets=np.concatenate([*offs, [sum(len(p.a) for p in parts)]]),
        clip_ids=[c for p in parts for c in p.clip_ids],
        splits=[s for p in parts for s in p.splits],
        interactions=[s for p in parts for s in p.interactions],
        styles=[s for p in parts for s in p.styles],
        instructed=[s for p in parts for s in p.instructed],
    )


def cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from molam_ros.llm.reaction_codes import reaction_targets
    from molam_ros.llm.small_reactor import SmallReactorConfig
    from molam_ros.llm.small_reactor_train import ReactorTrainConfig, train_small_reactor
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.engines import TorchEngine
    from molam_ros.tokenizer.rqvae import checkpoint_identity

    tok = args.tokenizer or default_tokenizer_dir()
    engine = TorchEngine(tok, threads=1)
    if len(args.data) != 1:
        raise SystemExit("molam reactor train takes one --data directory")
    codes = _codes(args.data, tok, args.max_clips, args.steering)
    train = codes.indices("train")
    if args.train_clips:
        train = sorted(np.random.default_rng(0).permutation(train)[: args.train_clips].tolist())
    val = codes.indices("val")[: args.val_clips] or codes.indices("test")[: args.val_clips]
    targets = reaction_targets(args.data[0], tok, codes, sorted(train + val))
    model = SmallReactorConfig(
        codebook_size=int(engine.model.config.codebook_size),
        depth=engine.num_quantizers,
        stride=engine.stride,
        feature_dim=engine.feature_dim,
        width=args.width,
        layers=args.layers,
        heads=args.heads,
        context_steps=args.context_steps,
        text_dim=0 if args.no_text else 384,
        dropout=args.dropout,
    )
    config = ReactorTrainConfig(
        steps=args.steps,
        batch=args.batch,
        crop_steps=args.crop_steps,
        lr=args.lr,
        b_noise=args.b_noise,
        text_share=args.text_share,
        eval_every=args.eval_every,
        minutes=args.minutes,
        seed=args.seed,
        threads=args.threads,
    )
    info = {
        "tokenizer": checkpoint_identity(tok),
        "data": [str(d) for d in args.data],
        "train_clips": len(train),
    }
    last = train_small_reactor(
        codes,
        targets,
        args.out,
        model=model,
        train=config,
        embed=None if args.no_text else _embedder(),
        info=info,
        resume=args.resume,
    )
    print(json.dumps(last))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from molam_ros.data.dataset import MotionDataset
    from molam_ros.llm.reaction_eval import ReactionEvalConfig, eval_clips, evaluate_reactors, format_rows
    from molam_ros.llm.reaction_instructions import reactor_instruction
    from molam_ros.llm.small_reactor import SmallStreamingReactor, load_small_reactor
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.engines import TorchEngine
    from molam_ros.tokenizer.rqvae import check_pairing

    torch.set_num_threads(args.threads)
    tok = args.tokenizer or default_tokenizer_dir()
    engine = TorchEngine(tok)
    ds = MotionDataset(args.data)
    cfg = ReactionEvalConfig(
        clips=args.clips,
        steps=args.steps,
        given_steps=args.given_steps,
        anchor_pull=args.anchor_pull,
        direct=args.direct,
    )
    clips = eval_clips(ds, args.split, cfg, engine.stride)
    embed = _embedder()
    reactors = {}
    for ckpt in args.checkpoint or [default_eval_reactor()]:
        net, info = load_small_reactor(ckpt)
        check_pairing(info.get("tokenizer"), tok, f"the small reactor {ckpt}")
        reactors[Path(ckpt).name] = SmallStreamingReactor(
            net, engine, embed=embed, anchor_pull=info.get("anchor_pull")
        )
    rng = np.random.default_rng(0)
    instructions = {}
    if args.instructions == "clip":
        instructions = {c.clip_id: reactor_instruction(c.meta, rng) for c in clips}
    classifier, steer = _classifiers(ds, args.data) if args.classifiers else (None, None)
    rows = evaluate_reactors(
        reactors, engine, clips, cfg, instructions=instructions, classifier=classifier, steer_classifier=steer
    )
    print(format_rows(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


def _classifiers(ds: Any, data: Path, clips: int = 2000) -> tuple[Any, Any]:
    """The pair and the reactor-only classifiers of a dataset, trained once on the first `clips`
    clips of its training split and kept in <data>/classifiers/."""
    import itertools

    from molam_ros.llm.interaction_classifier import InteractionClassifier
    from molam_ros.llm.reactor_classifier import ReactorClassifier

    out = []
    for cls, name in ((InteractionClassifier, "pair"), (ReactorClassifier, "reactor")):
        path = Path(data) / "classifiers" / f"{name}.npz"
        if path.is_file():
            out.append(cls.load(path))
            continue
        clf = cls().fit(list(itertools.islice(ds.iter_split("train"), clips)), split=None)
        path.parent.mkdir(parents=True, exist_ok=True)
        clf.save(path)
        out.append(clf)
    return out[0], out[1]


def cmd_ship(args: argparse.Namespace) -> int:
    from molam_ros.data.dataset import MotionDataset
    from molam_ros.llm.reactor_ship import ship_small_reactor
    from molam_ros.paths import default_tokenizer_dir, shipped_reactor_dir
    from molam_ros.tokenizer.engines import TorchEngine

    engine = TorchEngine(args.tokenizer or default_tokenizer_dir(), threads=args.threads)
    ds = MotionDataset(args.data)
    manifest = ship_small_reactor(
        args.run,
        ds,
        engine,
        args.out or shipped_reactor_dir(),
        commands=args.command or [],
        clips=args.clips,
        classifiers=_classifiers(ds, args.data),
        anchor_pull=args.anchor_pull,
        embed=_embedder(),
    )
    from molam_ros.llm.reaction_eval import format_rows

    print(format_rows(manifest["eval"]["rows"]))
    print(f"wrote {args.out or shipped_reactor_dir()} ({manifest['dtype']}: {manifest['why_dtype']})")
    return 0


def add_commands(groups: Any, fmt: type) -> None:
    """Register `molam reactor train|eval` on molam_ros/cli.py's parser."""
    r = groups.add_parser(
        "reactor", help="the small reactor: train it, measure it against baselines", formatter_class=fmt
    )
    cmds = r.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = cmds.add_parser(
        "train", formatter_class=fmt, help="train a small reactor on reaction codes of datasets"
    )
    p.add_argument(
        "--data", type=Path, nargs="+", required=True, help="molam dataset directories (two-person clips)"
    )
    p.add_argument("--tokenizer", type=Path, help="tokenizer checkpoint (default: the shipped one)")
    p.add_argument("--out", type=Path, default=default_reactor_dir(), help="run directory")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=48)
    p.add_argument("--crop-steps", type=int, default=40, help="window length in steps")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument(
        "--b-noise", type=float, default=0.2, help="noise (std) on the reactor's own input (exposure bias)"
    )
    p.add_argument("--text-share", type=float, default=0.5, help="share of windows with an instruction")
    p.add_argument("--no-text", action="store_true", help="no instruction input at all")
    p.add_argument(
        "--steering",
        type=int,
        default=0,
        help="add N steering pairs per dataset (one clip's actor, another's reactor and its instruction)",
    )
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--context-steps", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--max-clips", type=int, help="encode only the first N clips of each dataset")
    p.add_argument("--train-clips", type=int, default=6000, help="N random training clips (0: all)")
    p.add_argument("--val-clips", type=int, default=400, help="validation clips for the held-out loss")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument(
        "--minutes", type=float, default=0.0, help="stop cleanly after this long (--resume continues)"
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.set_defaults(func=cmd_train)

    p = cmds.add_parser(
        "eval", formatter_class=fmt, help="closed-loop reaction quality next to still/mirror/recorded"
    )
    p.add_argument(
        "checkpoint", type=Path, nargs="*", help="small reactor directories (default: the cache's)"
    )
    p.add_argument("--data", type=Path, required=True, help="molam dataset with held-out clips")
    p.add_argument("--split", default="test")
    p.add_argument("--tokenizer", type=Path, help="tokenizer checkpoint (default: the shipped one)")
    p.add_argument("--clips", type=int, default=94)
    p.add_argument("--steps", type=int, default=40, help="scored steps per clip")
    p.add_argument("--given-steps", type=int, default=1, help="recorded reactor steps given first")
    p.add_argument(
        "--anchor-pull",
        type=float,
        help="placement smoothing (ego.follow_anchor); default: the reactor's own",
    )
    p.add_argument(
        "--direct", action="store_true", help="place the reactor's features, not its decoded codes"
    )
    p.add_argument(
        "--instructions",
        choices=("none", "clip"),
        default="none",
        help="react unprompted, or with the clip's instruction (reaction_instructions.py)",
    )
    p.add_argument(
        "--classifiers",
        action="store_true",
        help="add 'recognised' and 'steer' (classifiers fitted once on --data's training split, kept there)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path, help="write the rows here")
    p.set_defaults(func=cmd_eval)

    p = cmds.add_parser(
        "ship", formatter_class=fmt, help="package a run as the shipped default, with its figures"
    )
    p.add_argument("run", type=Path, help="trained run directory (molam reactor train --out)")
    p.add_argument("--data", type=Path, required=True, help="dataset whose test split is measured")
    p.add_argument("--out", type=Path, help="default: molam_ros/models/reactor")
    p.add_argument("--tokenizer", type=Path, help="tokenizer checkpoint (default: the shipped one)")
    p.add_argument("--clips", type=int, default=94)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--command", action="append", help="the command(s) that made the run (recorded)")
    p.add_argument(
        "--anchor-pull",
        type=float,
        required=True,
        help="placement smoothing shipped with it, chosen on VALIDATION clips (reactor eval --split val)",
    )
    p.set_defaults(func=cmd_ship)
