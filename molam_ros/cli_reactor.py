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

from molam_ros import paths


def default_reactor_dir() -> Path:
    """Where `molam reactor train` writes by default: the cache's reactor/small."""
    from molam_ros.paths import cache_root

    return cache_root() / "reactor" / "small"


# Groups of ego features (motion/ego.py) that `--blind` can hide from the reactor's previous-step input.
BLIND_GROUPS = {
    "relation": ("REL_POS", "REL_HEAD"),
    "velocity": ("YAW_VEL", "ROOT_VEL"),
}


def blind_ranges(groups: list[str]) -> tuple[tuple[int, int], ...]:
    """[start, stop) feature ranges of the named --blind groups."""
    from molam_ros.motion import ego

    return tuple((getattr(ego, n).start, getattr(ego, n).stop) for g in groups for n in BLIND_GROUPS[g])


def _embedder() -> Any:
    """The shipped sentence encoder as a texts -> vectors function, or None when it is missing."""
    from molam_ros.agent.encoder import EncoderUnavailableError, shared_encoder

    try:
        enc = shared_encoder()
    except EncoderUnavailableError as e:
        logging.getLogger(__name__).warning("no instructions: %s", e)
        return None
    return enc.encode


def _stored_embedder(path: Path) -> Any:
    """texts -> vectors from a file written by `molam reactor instruction-vectors`: for a machine
    without the sentence encoder package (a lent GPU gets 64 MiB; the encoder is 90 MB)."""
    import numpy as np

    with np.load(path) as z:
        table = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))

    def embed(texts: list[str]) -> Any:
        missing = [t for t in texts if t not in table]
        if missing:
            raise KeyError(f"{path} has no vector for {missing[:3]}: write it again with this version")
        return np.stack([table[t] for t in texts])

    return embed


def cmd_instruction_vectors(args: argparse.Namespace) -> int:
    import numpy as np

    from molam_ros.llm.reaction_instructions import all_instructions

    embed = _embedder()
    if embed is None:
        raise SystemExit("the sentence encoder is not installed here (scripts/setup.sh)")
    words = all_instructions()
    np.savez(args.out, texts=np.asarray(words), vectors=np.asarray(embed(words), dtype=np.float32))
    print(f"wrote {len(words)} instruction vectors to {args.out}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    import numpy as np

    from molam_ros.llm.reaction_codes import decoded_targets, encode_reaction_codes, reaction_targets
    from molam_ros.llm.small_reactor import SmallReactorConfig, reactor_shape
    from molam_ros.llm.small_reactor_train import ReactorTrainConfig, train_small_reactor
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.engines import TorchEngine
    from molam_ros.tokenizer.rqvae import checkpoint_identity

    tok = args.tokenizer or default_tokenizer_dir()
    engine = TorchEngine(tok, threads=1, device=args.device)
    if len(args.data) != 1:
        raise SystemExit("molam reactor train takes one --data directory")
    codes = encode_reaction_codes(
        args.data[0],
        tok,
        max_clips=args.max_clips,
        mismatched=args.steering,
        steering_onset=args.steering_onset,
    )
    train = codes.indices("train")
    if args.train_clips:
        train = sorted(np.random.default_rng(0).permutation(train)[: args.train_clips].tolist())
    val = codes.indices("val")[: args.val_clips] or codes.indices("test")[: args.val_clips]
    if args.targets == "decoded":
        targets = decoded_targets(engine, codes, sorted(train + val))
    else:
        targets = reaction_targets(args.data[0], tok, codes, sorted(train + val))
    shape = reactor_shape(
        args.preset, **{k: getattr(args, k) for k in ("width", "layers", "heads", "backbone", "lora_rank")}
    )
    model = SmallReactorConfig.for_engine(
        engine,
        **shape,
        context_steps=args.context_steps,
        blind=blind_ranges(args.blind),
        text_dim=0 if args.no_text else 384,
        dropout=args.dropout,
        modes=args.modes,
        horizon=args.horizon,
        flow=args.flow,
        plans=args.plans,
        partner_null=args.partner_drop > 0,
    )
    same = (
        "steps batch crop_steps lr b_noise text_share eval_every minutes seed threads rollouts rollout_share"
    )
    same += " placement_weight loss relax choice_weight steering_weight onset_share partner_drop device"
    same += " plan_share"
    config = ReactorTrainConfig(**{k: getattr(args, k) for k in same.split()})  # the flags of the same names
    info = {
        "tokenizer": checkpoint_identity(tok),
        "data": [str(d) for d in args.data],
        "train_clips": len(train),
        "targets": args.targets,
        "preset": args.preset,
    }
    last = train_small_reactor(
        codes,
        targets,
        args.out,
        model=model,
        train=config,
        embed=None
        if args.no_text
        else (_stored_embedder(args.instruction_vectors) if args.instruction_vectors else _embedder()),
        info=info,
        resume=args.resume,
        init=args.init,
    )
    print(json.dumps(last))
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    import torch

    from molam_ros.data.dataset import MotionDataset
    from molam_ros.llm.reaction_eval import (
        ReactionEvalConfig,
        eval_clips,
        evaluate_reactors,
        format_rows,
        own_instructions,
    )
    from molam_ros.llm.reactor_ship import streaming_reactors
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.engines import TorchEngine

    torch.set_num_threads(args.threads)
    tok = args.tokenizer or default_tokenizer_dir()
    engine = TorchEngine(tok)
    ds = MotionDataset(args.data)
    cfg = ReactionEvalConfig(
        clips=args.clips,
        steps=args.steps,
        given_steps=args.given_steps,
        start=args.start,
        anchor_pull=args.anchor_pull,
        direct=args.direct,
    )
    clips = eval_clips(ds, args.split, cfg, engine.stride)
    embed = _embedder()
    reactors = streaming_reactors(
        args.checkpoint or [paths.default_reactor_dir()],
        engine,
        embed,
        tokenizer=tok,
        guidance=args.guidance,
        partner_weight=args.partner_weight,
        temperature=args.temperature,
    )
    torch.manual_seed(0)  # reactors that sample (--flow) give the same rows every run
    instructions = own_instructions(clips) if args.instructions == "clip" else {}
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
    from molam_ros.llm.reactor_ship import ship_small_reactor, streaming_reactors
    from molam_ros.paths import default_tokenizer_dir, shipped_reactor_dir
    from molam_ros.tokenizer.engines import TorchEngine

    engine_dir = args.tokenizer or default_tokenizer_dir()
    engine = TorchEngine(engine_dir, threads=args.threads)
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
        guidance=args.guidance,
        partner_weight=args.partner_weight,
        embed=_embedder(),
        beside=streaming_reactors(args.beside or [], engine, _embedder(), tokenizer=engine_dir),
    )
    from molam_ros.llm.reaction_eval import format_rows

    print(format_rows(manifest["eval"]["rows"]))
    print(f"wrote {args.out or shipped_reactor_dir()} ({manifest['dtype']}: {manifest['why_dtype']})")
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from molam_ros.llm.reactor_bench import bench_reactor, format_rows
    from molam_ros.paths import default_tokenizer_dir

    reactors = args.checkpoint or [paths.default_reactor_dir()]
    rows = bench_reactor(
        reactors,
        args.tokenizer or default_tokenizer_dir(),
        args.device,
        steps=args.steps,
        repeats=args.repeats,
        threads=args.threads,
    )
    print(format_rows(rows, " ".join(str(r) for r in reactors)))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
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
    p.add_argument("--b-noise", type=float, default=0.2, help="noise (std) on the reactor's own input")
    p.add_argument("--text-share", type=float, default=0.5, help="share of windows with an instruction")
    p.add_argument("--no-text", action="store_true", help="no instruction input at all")
    p.add_argument(
        "--steering", type=int, default=0, help="add N steering pairs (an actor, another's reactor)"
    )
    # recipe options measured in the README (llm/small_reactor.py, small_reactor_train.py)
    for flag, kind, default, text in (
        ("--steering-weight", float, 1.0, "loss weight of the steering pairs' windows"),
        ("--steering-onset", int, None, "cut steering pairs' reactors to start N-2N frames in"),
        ("--onset-share", float, 0.0, "share of windows cut from a clip's first step (the live start)"),
        ("--partner-drop", float, 0.0, "share of windows with the person's codes hidden (instruction-led)"),
        ("--horizon", int, 1, "steps predicted in training (a look-ahead head; 1: off)"),
        ("--modes", int, 1, "K next-step proposals and a learnt choice (1: plain regression)"),
        ("--flow", int, 0, "width of a head that samples each step (llm/flow_head.py; 0: regression)"),
        ("--plans", int, 0, "K plans of a whole instructed reaction (llm/reaction_plan.py; 0: none)"),
        ("--plan-share", float, 0.5, "with --plans: share of the windows given their plan"),
        ("--relax", float, 0.05, "with --modes: weight of the proposals not nearest"),
        ("--choice-weight", float, 0.01, "with --modes: weight of the choice's cross-entropy"),
    ):
        p.add_argument(flag, type=kind, default=default, help=text)
    p.add_argument(
        "--preset",
        choices=("small", "base", "llm"),  # llm/small_reactor.py REACTOR_PRESETS
        default="small",
        help="size: small (the shipped shape, CPU minutes), base (a GPU) or llm (the pretrained "
        "backbone's first 4 layers with LoRA); --width etc. override",
    )
    p.add_argument("--width", type=int, help="transformer width (default: the preset's)")
    p.add_argument(
        "--layers",
        type=int,
        help="transformer blocks, or the backbone's first layers (default: the preset's)",
    )
    p.add_argument("--heads", type=int, help="attention heads (default: the preset's)")
    p.add_argument(
        "--backbone",
        help="a pretrained causal LM as the trunk: 'default' (the shipped SmolLM2) or a local model "
        "directory; its first --layers layers are used, frozen, with LoRA",
    )
    p.add_argument("--lora-rank", type=int, help="LoRA rank of a backbone trunk (default 16)")
    p.add_argument(
        "--targets",
        choices=("recorded", "decoded"),
        default="recorded",
        help="what is regressed: the recorded reactor's features (needs the motion files) or its codes "
        "decoded by the tokenizer (needs only the codes: a run that travels to a lent GPU)",
    )
    p.add_argument(
        "--rollouts",
        type=int,
        default=0,
        help="passes feeding the model's own predictions back as input (scheduled sampling; 0: off)",
    )
    p.add_argument("--rollout-share", type=float, default=0.5, help="share of windows reading them")
    p.add_argument(
        "--loss",
        choices=("mse", "l1"),
        default="mse",
        help="mse (the conditional mean) or l1 (the median: decisive where reactions differ)",
    )
    p.add_argument(
        "--blind",
        nargs="*",
        choices=sorted(BLIND_GROUPS),
        default=[],
        help="ego feature groups hidden from the reactor's previous-step input (llm/small_reactor.py)",
    )
    p.add_argument(
        "--placement-weight",
        type=float,
        default=1.0,
        help="loss weight of the 7 features that place the reactor (root and yaw velocity, the "
        "partner's position and heading); 1: plain MSE",
    )
    p.add_argument("--device", default="cpu", help="torch device for training: cpu or cuda")
    p.add_argument(
        "--instruction-vectors",
        type=Path,
        help="instruction embeddings written by `molam reactor instruction-vectors` (default: "
        "the sentence encoder, embedded now)",
    )
    p.add_argument("--context-steps", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--max-clips", type=int, help="encode only the first N clips of each dataset")
    p.add_argument("--train-clips", type=int, default=6000, help="N random training clips (0: all)")
    p.add_argument("--val-clips", type=int, default=400, help="validation clips for the held-out loss")
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument(
        "--minutes",
        type=float,
        default=0.0,
        help="time budget: the learning rate anneals over it and the run stops at its end "
        "(--resume starts a new budget)",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--init", type=Path, help="start from the weights of this run (same shape)")
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
    p.add_argument(
        "--start",
        choices=("recorded", "standing", "front", "none"),
        default="recorded",
        help="how each reactor starts: the recorded first step(s); a body standing where the recorded "
        "reactor starts (what the node gives a robot); the same 1.8 m in front of the actor (the node's "
        "default); nothing (zeros, the node before it gave a step)",
    )
    p.add_argument(
        "--given-steps", type=int, default=1, help="with --start recorded: recorded reactor steps given first"
    )
    for flag, text in (  # each reactor's own setting unless given (its config.json)
        ("--anchor-pull", "placement smoothing (ego.follow_anchor)"),
        ("--guidance", "instruction guidance scale g (llm/small_reactor.py; 1: none)"),
        ("--partner-weight", "told: w in [0, 1] (reactors trained with --partner-drop)"),
        ("--temperature", "starting noise of reactors that sample each step (--flow; 0: none)"),
    ):
        p.add_argument(flag, type=float, help=f"{text}; default: the reactor's own")
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
        "--beside", type=Path, nargs="+", help="reactors measured in the same run (e.g. the shipped one)"
    )
    p.add_argument(
        "--anchor-pull",
        type=float,
        required=True,
        help="placement smoothing shipped with it, chosen on VALIDATION clips (reactor eval --split val)",
    )
    p.add_argument(
        "--guidance",
        type=float,
        default=1.0,
        help="instruction guidance scale shipped with it, chosen on VALIDATION clips (1: none)",
    )
    p.add_argument(
        "--partner-weight",
        type=float,
        help="w shipped with it (--partner-drop reactors), chosen on VALIDATION",
    )
    p.set_defaults(func=cmd_ship)
    p = cmds.add_parser(
        "instruction-vectors",
        formatter_class=fmt,
        help="embed every training instruction once (for training where the sentence encoder is missing)",
    )
    p.add_argument("--out", type=Path, required=True, help="npz file to write")
    p.set_defaults(func=cmd_instruction_vectors)
    p = cmds.add_parser(
        "bench", formatter_class=fmt, help="time one live reaction step per reactor and device"
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        nargs="+",
        help="small or LLM reactors, the first the baseline (default: the shipped small reactor)",
    )
    p.add_argument("--tokenizer", type=Path, help="tokenizer checkpoint (default: the shipped one)")
    p.add_argument(
        "--device", nargs="+", default=["cpu"], help="torch devices; the first is the baseline (cpu cuda)"
    )
    p.add_argument("--steps", type=int, default=200, help="timed steps per round")
    p.add_argument("--repeats", type=int, default=5, help="rounds per device")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--json", type=Path, help="write the rows here")
    p.set_defaults(func=cmd_bench)
