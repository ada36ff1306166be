"""`molam t2m train|eval`: text to two-person motion, an actor generator in lockstep with a reactor
(llm/pair_generator.py).

Kept out of molam_ros/cli.py so `molam --help` stays instant (torch loads only when a command runs).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from molam_ros import paths


def _captioned(data: Path, tok: Path, val_clips: int, train_clips: int = 0) -> tuple[Any, ...]:
    """(lagged codes, train indices, val indices, captions) of a dataset (llm/pair_generator.py)."""
    import numpy as np

    from molam_ros.data.dataset import MotionDataset
    from molam_ros.llm.pair_generator import clip_captions, lagged_partner
    from molam_ros.llm.reaction_codes import encode_reaction_codes

    codes = lagged_partner(encode_reaction_codes(data, tok))
    train = codes.indices("train")
    if train_clips:
        train = sorted(np.random.default_rng(0).permutation(train)[:train_clips].tolist())
    val = (codes.indices("val") or codes.indices("test"))[:val_clips]
    return codes, train, val, clip_captions(MotionDataset(data), codes, sorted(train + val))


def _embed(data: Path) -> Any:
    from molam_ros.cli_reactor import _embedder
    from molam_ros.llm.pair_generator import cached_embedder

    embed = _embedder()
    if embed is None:
        raise SystemExit("the sentence encoder is not installed here (scripts/setup.sh): captions need it")
    return cached_embedder(embed, Path(data) / "caption_vectors.npz")


def cmd_train(args: argparse.Namespace) -> int:
    from molam_ros.llm.reaction_codes import reaction_targets
    from molam_ros.llm.small_reactor import SmallReactorConfig, reactor_shape
    from molam_ros.llm.small_reactor_train import ReactorTrainConfig, train_small_reactor
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.engines import TorchEngine
    from molam_ros.tokenizer.rqvae import checkpoint_identity

    tok = args.tokenizer or default_tokenizer_dir()
    engine = TorchEngine(tok, threads=1)
    codes, train, val, captions = _captioned(args.data, tok, args.val_clips, args.train_clips)
    targets = reaction_targets(args.data, tok, codes, sorted(train + val), person=0)
    model = SmallReactorConfig.for_engine(
        engine,
        **reactor_shape(args.preset),
        text_dim=384,
        modes=args.modes,
        horizon=args.horizon,
        flow=args.flow,
    )
    config = ReactorTrainConfig(
        steps=args.steps,
        lr=args.lr,
        text_share=args.text_share,
        minutes=args.minutes,
        threads=args.threads,
        rollouts=args.rollouts,
        placement_weight=args.placement_weight,
        relax=args.relax,
        choice_weight=args.choice_weight,
        onset_share=args.onset_share,
    )
    info = {
        "kind_detail": "actor_generator",
        "tokenizer": checkpoint_identity(tok),
        "data": [str(args.data)],
        "train_clips": len(train),
        "preset": args.preset,
    }
    last = train_small_reactor(
        codes,
        targets,
        args.out,
        model=model,
        train=config,
        embed=_embed(args.data),
        info=info,
        resume=args.resume,
        init=args.init,
        captions=captions,
    )
    print(json.dumps(last))
    return 0


def t2m_table(args: argparse.Namespace, run: Path, split: str) -> tuple[list[str], list[dict[str, Any]]]:
    """The t2m table (markdown lines) of the actor generator in `run` on `args.clips` clips of
    `split`, with its baselines, and each clip's caption and verdict."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from molam_ros.cli_reactor import _classifiers
    from molam_ros.data.dataset import MotionDataset
    from molam_ros.llm.pair_generator import PairConfig, generate_pair, motion_energy, recognised
    from molam_ros.llm.reaction_codes import actor_first_pair
    from molam_ros.llm.reactor_ship import streaming_reactors
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.engines import TorchEngine

    torch.set_num_threads(args.threads)
    tok = args.tokenizer or default_tokenizer_dir()
    engine = TorchEngine(tok)
    ds = MotionDataset(args.data)
    embed = _embed(args.data)
    actor = streaming_reactors(
        [run], engine, embed, tokenizer=tok, guidance=args.guidance, temperature=args.temperature
    )[Path(run).name]
    torch.manual_seed(0)  # an actor generator that samples (--flow) gives the same table every run
    reactors = streaming_reactors(
        args.reactor or [paths.shipped_llm_reactor_dir()], engine, None, tokenizer=tok
    )
    classifier, _ = _classifiers(ds, args.data)
    cfg = PairConfig(steps=args.steps)
    T = cfg.steps * engine.stride
    picked = [(i, c) for i, c in ((i, ds.load(i)) for i in ds.ids(split)) if c.num_people == 2 and c.texts]
    ids, clips = [i for i, _ in picked[: args.clips]], [c for _, c in picked[: args.clips]]
    rng = np.random.default_rng(0)
    asked = [str(c.meta.get("interaction")) for c in clips]
    captions = [c.texts[int(rng.integers(len(c.texts)))] for c in clips]
    rows: dict[str, list[np.ndarray]] = {"recorded (ceiling)": [], "both standing": []}
    for i, c in zip(ids, clips, strict=True):
        rows["recorded (ceiling)"].append(actor_first_pair(ds, i, min(T, c.num_frames)))
    rows["both standing"] = [generate_pair_still(engine.stride, cfg)] * len(clips)
    rows["nearest training caption's recorded pair"] = _nearest_recorded(ds, captions, embed, T, args.lookup)
    per_clip = []
    for name, reactor in reactors.items():
        told, untold = f"generated, reactor {name}", f"generated without the caption, reactor {name}"
        rows[told], rows[untold] = [], []
        for i, text in tqdm(list(zip(ids, captions, strict=True)), desc=f"t2m {name}", unit="clip"):
            rows[told].append(generate_pair(actor, reactor, engine, text, cfg))
            rows[untold].append(generate_pair(actor, reactor, engine, None, cfg))
            said = classifier.predict(rows[told][-1])
            per_clip.append({"clip": i, "caption": text, "reactor": name, "recognised_as": said})
        for rec, want in zip(per_clip[-len(ids) :], asked, strict=True):
            rec["asked"] = want
    common = max(sorted(set(asked)), key=asked.count)  # ties: the first name, every run the same
    lines = [
        f"{len(clips)} {split} clips of {args.data}, {cfg.steps} steps, one caption each, guidance "
        f"{actor.guidance:g}",
        "",
        "| pairs | recognised as asked | energy x recorded |",
        "|---|---|---|",
    ]
    rec = np.mean([motion_energy(p) for p in rows["recorded (ceiling)"]])
    for name, pairs in rows.items():
        energy = np.mean([motion_energy(p) for p in pairs]) / rec
        lines.append(f"| {name} | {recognised(classifier, pairs, asked):.0%} | {energy:.2f} |")
    share = asked.count(common) / len(asked)
    lines.append(f"| always the most common interaction ({common}) | {share:.0%} | - |")
    for name in reactors:  # which interactions come out, and which never do
        mine = [r for r in per_clip if r["reactor"] == name]
        counts = {k: [0, 0] for k in sorted(set(asked))}
        for r in mine:
            counts[r["asked"]][1] += 1
            counts[r["asked"]][0] += r["recognised_as"] == r["asked"]
        parts = ", ".join(f"{k} {hit}/{n}" for k, (hit, n) in counts.items())
        lines += ["", f"recognised per interaction (reactor {name}): {parts}"]
    return lines, per_clip


def cmd_eval(args: argparse.Namespace) -> int:
    lines, per_clip = t2m_table(args, args.run or paths.shipped_t2m_actor_dir(), args.split)
    print("\n".join(lines))
    if args.json:
        args.json.write_text(json.dumps({"rows": lines, "per_clip": per_clip}, indent=1))
    return 0


def cmd_ship(args: argparse.Namespace) -> int:
    """fp16 copy of a run into the package with its guidance, measured once on the test split."""
    import hashlib

    from molam_ros.cli_describer import dataset_record
    from molam_ros.llm.reactor_weights import load_small_reactor, save_small_reactor

    net, info = load_small_reactor(args.run)
    info["guidance"] = args.guidance if args.guidance is not None else info.get("guidance")
    if args.temperature is not None and net.flow is not None:
        info["temperature"] = args.temperature
    out = args.out or paths.shipped_t2m_actor_dir()
    keep = {k: v for k, v in info.items() if k not in ("kind", "version", "model")}
    save_small_reactor(net, out, keep, half=True)
    args.guidance = args.temperature = None  # the shipped copy's own, just written
    lines, _ = t2m_table(args, out, "test")
    manifest = {
        "what": "the actor generator of text to two-person motion (llm/pair_generator.py), float16",
        "files_sha256": {
            n: hashlib.sha256((out / n).read_bytes()).hexdigest()
            for n in ("config.json", "model.safetensors")
        },
        "tokenizer": info.get("tokenizer"),
        "guidance": info["guidance"],
        "data": dataset_record(args.data),
        "commands": args.command or [],
        "test": lines,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print("\n".join(lines))
    print(f"shipped {out} (manifest.json: sha256, commands, the test table)")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """One caption -> a two-person motion file (and a render), on the shipped models by default."""
    import sys
    import time

    from molam_ros.agent.guard import check_request
    from molam_ros.agent.intent import MAX_CHARS

    refusal = check_request(args.text, MAX_CHARS)  # every text path goes through the guard first
    if refusal is not None:
        print(f"molam: refused: {refusal.reason}", file=sys.stderr)
        return 2
    import torch

    from molam_ros.cli_reactor import _embedder
    from molam_ros.data.clip import MotionClip
    from molam_ros.llm.motion_io import save_positions
    from molam_ros.llm.pair_generator import PairConfig, generate_pair
    from molam_ros.llm.reactor_ship import streaming_reactors
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.engines import TorchEngine

    torch.set_num_threads(args.threads)
    embed = _embedder()
    if embed is None:
        raise SystemExit("the sentence encoder is not installed here (scripts/setup.sh): captions need it")
    tok = args.tokenizer or default_tokenizer_dir()
    engine = TorchEngine(tok)
    run = args.run or paths.shipped_t2m_actor_dir()
    actor = next(
        iter(
            streaming_reactors(
                [run], engine, embed, tokenizer=tok, guidance=args.guidance, temperature=args.temperature
            ).values()
        )
    )
    torch.manual_seed(args.seed)  # an actor generator that samples (--flow): another seed, another motion
    reactor_dir = args.reactor or paths.shipped_llm_reactor_dir()
    reactor = next(iter(streaming_reactors([reactor_dir], engine, None, tokenizer=tok).values()))
    t0 = time.perf_counter()
    pair = generate_pair(actor, reactor, engine, args.text, PairConfig(steps=args.steps))
    seconds = time.perf_counter() - t0
    out = save_positions(args.out / "motion.npz", pair, text=args.text)
    print(
        f"generated {pair.shape[1] / 30:.1f} s of two people in {seconds:.1f} s "
        f"(actor {run}, reactor {reactor_dir}, guidance {actor.guidance:g}): {out}"
    )
    if args.render:
        from molam_ros.data.render import render_clip, render_strip

        clip = MotionClip(name="t2m", positions=pair, texts=[args.text])
        print(f"rendered {render_clip(clip, args.out / 'motion.gif', progress=False)}")
        print(f"rendered {render_strip(clip, args.out / 'motion.png', num_frames=6)}")
    return 0


def _nearest_recorded(ds: Any, captions: list[str], embed: Any, frames: int, lookup: int) -> list[Any]:
    """For each caption, the recorded pair of the training clip (of the first `lookup`) whose caption
    is nearest in the sentence encoder's space: what looking the text up, generating nothing, gives."""
    from molam_ros.llm.reaction_codes import actor_first_pair

    owners, texts = [], []
    for clip_id in ds.ids("train")[:lookup]:
        clip = ds.load(clip_id)
        if clip.num_people == 2:
            owners += [clip_id] * len(clip.texts)
            texts += list(clip.texts)
    bank = embed(texts)
    best = (embed(captions) @ bank.T).argmax(1)
    return [actor_first_pair(ds, owners[k], frames) for k in best]


def generate_pair_still(stride: int, cfg: Any) -> Any:
    """Both people standing where generation starts them, the whole time: what a classifier makes of
    no motion (the floor of the table)."""
    import numpy as np

    from molam_ros.data.standing import standing_pair

    return np.stack(standing_pair(cfg.distance, cfg.steps * stride))


TEMPERATURE_HELP = "an actor generator that samples (--flow): its starting noise (0: none); default: its own"


def add_commands(groups: Any, fmt: type) -> None:
    """Register `molam t2m train|eval|ship` on molam_ros/cli.py's parser."""
    d = groups.add_parser(
        "t2m",
        help="text to two-person motion (an actor generator and a reactor): train, measure",
        formatter_class=fmt,
    )
    cmds = d.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        from molam_ros.cli_describer import dataset_arguments

        dataset_arguments(p)
        p.add_argument("--threads", type=int, default=2)

    p = cmds.add_parser("train", formatter_class=fmt, help="train the actor generator on captioned clips")
    common(p)
    p.add_argument("--out", type=Path, default=paths.cache_root() / "t2m" / "actor", help="run directory")
    p.add_argument("--preset", default="small", choices=["small", "base", "llm"])
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--text-share", type=float, default=0.9, help="share of windows given their caption")
    p.add_argument("--rollouts", type=int, default=2, help="own-output passes (exposure bias)")
    p.add_argument("--placement-weight", type=float, default=10.0)
    p.add_argument("--train-clips", type=int, default=0, help="0: all")
    p.add_argument("--val-clips", type=int, default=200)
    p.add_argument("--minutes", type=float, default=0.0, help="time budget (0: none); stops cleanly")
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--init", type=Path, help="start from this actor generator's weights (widened to --modes)")
    for flag, kind, default, text in (  # the reactor's recipe options (llm/small_reactor.py)
        ("--modes", int, 1, "K next-step proposals and a learnt choice (1: plain regression)"),
        ("--horizon", int, 1, "steps predicted in training (a look-ahead head; 1: off)"),
        ("--flow", int, 0, "width of a head that samples each step (llm/flow_head.py; 0: regression)"),
        ("--relax", float, 0.05, "with --modes: weight of the proposals not nearest"),
        ("--choice-weight", float, 0.01, "with --modes: weight of the choice's cross-entropy"),
        ("--onset-share", float, 0.0, "share of windows cut from a clip's first step (where a pair starts)"),
    ):
        p.add_argument(flag, type=kind, default=default, help=text)
    p.set_defaults(func=cmd_train)

    p = cmds.add_parser("eval", formatter_class=fmt, help="generate from held-out captions; classify")
    common(p)
    p.add_argument(
        "run", type=Path, nargs="?", default=None, help="actor generator directory (default: the shipped one)"
    )
    p.add_argument(
        "--reactor", type=Path, nargs="*", help="reactors in lockstep (default: the shipped LLM one)"
    )
    p.add_argument("--split", default="val", choices=["train", "val", "test"])
    p.add_argument("--clips", type=int, default=60)
    p.add_argument("--steps", type=int, default=40, help="steps generated per pair (x 4 frames)")
    p.add_argument(
        "--guidance",
        type=float,
        help="caption guidance scale g (llm/small_reactor.py; 1: none); default: the run's",
    )
    p.add_argument("--temperature", type=float, help=TEMPERATURE_HELP)
    p.add_argument("--lookup", type=int, default=2000, help="training clips the lookup baseline searches")
    p.add_argument("--json", type=Path, help="write every clip's caption and verdict here")
    p.set_defaults(func=cmd_eval)

    p = cmds.add_parser(
        "generate",
        formatter_class=fmt,
        help="one caption -> a two-person motion file (the shipped actor generator and LLM reactor)",
        epilog="Writes OUT/motion.npz (positions (2, T, 22, 3) at 30 fps, the actor first, Y up) and with "
        "--render motion.gif and motion.png. The caption goes through the request guard first.",
    )
    p.add_argument("text", help='what the two people do, e.g. "two people shake hands politely"')
    p.add_argument("--out", type=Path, default=Path("t2m_out"), help="output directory")
    p.add_argument("--render", action="store_true", help="also write motion.gif and motion.png")
    p.add_argument("--steps", type=int, default=40, help="steps generated (x 4 frames at 30 fps)")
    p.add_argument("--run", type=Path, help="actor generator directory (default: the shipped one)")
    p.add_argument("--reactor", type=Path, help="reactor directory (default: the shipped LLM reactor)")
    p.add_argument("--guidance", type=float, help="caption guidance scale (default: the actor's own)")
    p.add_argument("--temperature", type=float, help=TEMPERATURE_HELP)
    p.add_argument("--seed", type=int, default=0, help="with an actor that samples: which motion")
    p.add_argument("--tokenizer", type=Path, help="tokenizer the models were trained on (default: shipped)")
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(func=cmd_generate)

    p = cmds.add_parser("ship", formatter_class=fmt, help="fp16 copy into the package, measured once on test")
    common(p)
    p.add_argument("run", type=Path, help="actor generator directory (molam t2m train --out)")
    p.add_argument("--out", type=Path, help="default: molam_ros/models/t2m_actor")
    p.add_argument("--guidance", type=float, help="caption guidance scale chosen on validation clips")
    p.add_argument("--temperature", type=float, help=TEMPERATURE_HELP + "; kept with the copy")
    p.add_argument(
        "--reactor", type=Path, nargs="*", help="reactors in lockstep (default: the shipped LLM one)"
    )
    p.add_argument("--clips", type=int, default=100)
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--lookup", type=int, default=2000)
    p.add_argument("--command", action="append", help="the command(s) that made the run, for the manifest")
    p.set_defaults(func=cmd_ship)
    logging.getLogger("molam_ros.llm.small_reactor_train").setLevel(logging.INFO)


__all__ = ["add_commands"]
