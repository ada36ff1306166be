"""The `molam` command: one entry point for data, training, export, benchmarks and the demo.

Every subcommand imports its heavy dependencies lazily, so `molam --help` answers at once.
Run `molam <group> --help` for the commands of a group.

It is over 500 lines because it is the argument definitions of every command with their help
texts, each a few lines of argparse calling one core function; the LLM's and the coordinator's
model-loading commands already live in cli_llm.py and cli_agent.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

DEFAULT_DEMO_DIR = Path("out/demo")


# --- molam data ------------------------------------------------------------------------------


def _cmd_data_synth(args: argparse.Namespace) -> int:
    from molam_ros.data.dataset import write_dataset
    from molam_ros.data.edit_variants import with_edit_variants
    from molam_ros.data.synth import INTERACTIONS, SynthConfig, generate_dataset

    if args.count < 1:
        raise SystemExit("--count must be at least 1")
    if not 0.0 <= args.edit_variants <= 1.0:
        raise SystemExit("--edit-variants must be between 0 and 1")
    if not 0.0 <= args.solo_actions <= 1.0:
        raise SystemExit("--solo-actions must be between 0 and 1")
    start = time.perf_counter()
    config = SynthConfig(solo_actions=args.solo_actions)
    clips = generate_dataset(args.count, args.seed, config)
    info = write_dataset(
        args.out,
        with_edit_variants(clips, args.edit_variants, seed=args.seed, count=args.count),
        total=args.count,
        manifest={"source": "synth", "seed": args.seed, "created_by": "molam data synth"}
        | config.non_default(),
    )
    elapsed = time.perf_counter() - start
    print(
        f"wrote {info['count']} clips ({info['frames'] / 30.0:.0f} s of motion, "
        f"{len(info['interactions'])}/{len(INTERACTIONS)} interaction types, "
        f"{info.get('edit_variants', 0)} edit variants) to {args.out} "
        f"in {elapsed:.1f} s; splits {info['splits']}"
    )
    return 0


def _cmd_data_real(args: argparse.Namespace) -> int:
    from molam_ros.data.real_clips import write_real_dataset

    if args.variants < 1:
        raise SystemExit("--variants must be at least 1")
    start = time.perf_counter()
    if not 0.0 <= args.tilt <= 1.0:
        raise SystemExit("--tilt must be in [0, 1]")
    info = write_real_dataset(args.out, variants=args.variants, seed=args.seed, tilt_share=args.tilt)
    held = [s["name"] for s in info["sources"] if s["split"] == "test"]
    print(
        f"wrote {info['count']} clips ({info['frames'] / 30.0:.0f} s) from {len(info['sources'])} real "
        f"recordings to {args.out} in {time.perf_counter() - start:.1f} s; splits {info['splits']}; "
        f"held out (never trained on): {', '.join(held)}"
    )
    return 0


def _cmd_data_conversations(args: argparse.Namespace) -> int:
    import numpy as np

    from molam_ros.data.conversations import build_conversations, save_conversations, task_counts
    from molam_ros.data.dataset import MotionDataset

    if args.count is not None and args.count < 1:
        raise SystemExit("--count must be at least 1")
    convs = build_conversations(
        MotionDataset(args.data), args.split, np.random.default_rng(args.seed), args.count
    )
    if not convs:
        raise SystemExit(f"no conversations: split {args.split!r} of {args.data} has no two-person clips")
    save_conversations(convs, args.out)
    counts = ", ".join(f"{task} {n}" for task, n in task_counts(convs).items())
    turns = sum(len(c.turns) for c in convs)
    print(
        f"wrote {len(convs)} conversations ({turns} turns: {counts}) from split {args.split!r} to {args.out}"
    )
    return 0


def _source_clips(args: argparse.Namespace):
    """(clip iterator, split of each clip or None, count) for a real dataset in its published layout."""
    from molam_ros.data.dataset import SPLITS
    from molam_ros.data.errors import DatasetFormatError

    splits = [args.split] if args.split else list(SPLITS)
    if args.source == "pybullet":
        from molam_ros.data.pybullet_clips import list_pybullet_clips, load_pybullet_clip

        names = list_pybullet_clips()
        return (load_pybullet_clip(n) for n in names), None, len(names)  # no published split: hash
    if args.root is None:
        raise SystemExit(f"--root is required for --source {args.source}")
    if args.source == "interhuman":
        from molam_ros.data.interhuman import InterHuman

        reader = InterHuman(args.root)
    elif args.source == "humanml3d":
        from molam_ros.data.humanml3d import HumanML3D

        reader = HumanML3D(args.root)
    else:
        from molam_ros.data.interx import InterX

        if args.body_model is None:
            raise SystemExit("--body-model DIR (your licensed SMPL-X model) is required for --source interx")
        reader = InterX(args.root, args.body_model)
    ids: dict[str, list[str]] = {}
    for split in splits:
        try:
            ids[split] = reader.split_ids(split)
        except DatasetFormatError as e:
            if args.split:  # asked for by name: its absence is an error
                raise
            print(f"molam: skipping split {split!r}: {e}", file=sys.stderr)
    if not ids:
        raise SystemExit(f"no split files found under {args.root}")
    splits = list(ids)
    split_by_id = {i: split for split, members in ids.items() for i in members}

    def clips():
        for split in splits:
            for clip_id in ids[split]:
                if args.source == "humanml3d":
                    # Each captioned segment of a HumanML3D clip becomes a clip of its own.
                    clip = reader.load(clip_id)
                    yield clip
                    yield from reader.segments(clip)
                else:
                    yield reader.load(clip_id)

    def split_of(clip) -> str:
        return split_by_id[clip.name.split("#", 1)[0]]

    return clips(), split_of, sum(len(v) for v in ids.values())


def _cmd_data_import(args: argparse.Namespace) -> int:
    from molam_ros.data.dataset import write_dataset

    clips, split_of, count = _source_clips(args)
    info = write_dataset(
        args.out,
        clips,
        total=count,
        split_of=split_of,
        manifest={
            "source": args.source,
            "imported_from": str(args.root or "pybullet"),
            "created_by": "molam data import",
        },
    )
    print(f"imported {info['count']} clips from {args.source} to {args.out}; splits {info['splits']}")
    return 0


def _load_clip_arg(args: argparse.Namespace):
    """The clip a render command names: a dataset id, a clip file, or a shipped pybullet clip."""
    if args.pybullet:
        from molam_ros.data.pybullet_clips import load_pybullet_clip

        return load_pybullet_clip(args.pybullet)
    if args.dataset is None:
        raise SystemExit("name a dataset directory (with --id) or --pybullet NAME")
    from molam_ros.data.dataset import MotionDataset

    ds = MotionDataset(args.dataset)
    clip_id = args.id
    if clip_id is None:
        ids = ds.ids("test") or ds.ids()
        clip_id = ids[0]
    return ds.load(clip_id)


def _cmd_data_render(args: argparse.Namespace) -> int:
    from molam_ros.data.render import render_clip, render_strip

    clip = _load_clip_arg(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = args.format or (out.suffix.lstrip(".") if out.suffix else "gif")
    render_clip(clip, out, fmt=fmt, max_frames=args.max_frames)
    print(f"rendered {clip.name} ({clip.num_frames} frames) to {out}")
    strip = Path(args.strip) if args.strip else out.with_suffix(".png")
    render_strip(clip, strip, num_frames=args.strip_frames)
    print(f"wrote a {args.strip_frames}-frame strip to {strip}")
    if clip.texts:
        print(f"caption: {clip.texts[0]}")
    return 0


def _cmd_data_stats(args: argparse.Namespace) -> int:
    from molam_ros.data.dataset import MotionDataset
    from molam_ros.data.summary import format_summary, summarize

    print(format_summary(summarize(MotionDataset(args.dataset), progress=not args.quiet)))
    return 0


# --- molam tokenizer / export / bench ---------------------------------------------------------


def _cmd_tokenizer_train(args: argparse.Namespace) -> int:
    import dataclasses
    import json

    from molam_ros.motion.layout import layout_of
    from molam_ros.tokenizer.config import preset
    from molam_ros.tokenizer.train import TrainConfig, train

    overrides = {
        k: v for k, v in vars(args).items() if k in {f.name for f in dataclasses.fields(TrainConfig)}
    }
    if "dataset_weights" in overrides:
        overrides["dataset_weights"] = tuple(overrides["dataset_weights"])
    train_config = TrainConfig(**overrides)
    start = time.perf_counter()
    summary = train(
        args.data,
        args.out,
        model_config=preset(
            args.preset,
            feature_dim=layout_of(args.layout).dim,
            relation_quantizers=args.relation_codes,
            relation_net=args.relation_net,
            relation_width=args.relation_width,
        ),
        train_config=train_config,
        resume=args.out if args.resume else None,
        init=args.init,
        loss_weights={
            k: v
            for k, v in (("rel_weight", args.rel_weight), ("traj_weight", args.traj_weight))
            if v is not None
        },
    )
    print(json.dumps(summary, indent=1, default=str))
    print(f"trained preset {args.preset!r} in {time.perf_counter() - start:.0f} s; checkpoint in {args.out}")
    return 0


def _add_optional_checkpoint(p: argparse.ArgumentParser) -> None:
    """The tokenizer checkpoint positional of eval, reconstruct and export: the shipped one if left out."""
    p.add_argument(
        "checkpoint", type=Path, nargs="?", help="tokenizer checkpoint directory (default: the shipped one)"
    )


def _format_eval(title: str, m: dict) -> str:
    per_person = " / ".join(f"{v:.1f}" for v in m["mpjpe_mm_per_person"])
    lines = [
        f"{title}: {m['clips']} clips, {m['frames']} person-frames"
        + (f", {m['skipped']} too short" if m["skipped"] else ""),
        f"  MPJPE global     {m['mpjpe_mm']:.1f} mm (per person: {per_person})",
        f"  MPJPE root-rel.  {m['rel_mpjpe_mm']:.1f} mm",
        f"  root error       {m['root_mm']:.1f} mm",
        *(
            [f"  b from true a    {m['b_from_true_a_mm']:.1f} mm (placement smoothing {m['pull']:g})"]
            if m.get("b_from_true_a_mm") == m.get("b_from_true_a_mm")
            else []
        ),
        f"  foot contacts    {m['contact_accuracy']:.1%} correct",
    ]
    for c in m["codebook"]:
        lines.append(
            f"  depth {c['depth']}          perplexity {c['perplexity']:.0f}, codes used {c['used']:.0%}"
        )
    return "\n".join(lines)


def _cmd_tokenizer_eval(args: argparse.Namespace) -> int:
    import json

    from molam_ros.data.dataset import MotionDataset
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.evaluate import evaluate
    from molam_ros.tokenizer.rqvae import load_checkpoint

    model, config, stats = load_checkpoint(args.checkpoint or default_tokenizer_dir())
    pull = {} if args.pull is None else {"pull": args.pull}
    results = {}
    for root in args.data or []:
        ds = MotionDataset(root)
        results[f"{ds.label} ({args.split})"] = evaluate(
            model, stats, ds.iter_split(args.split), depth=args.depth, **pull
        )
    if not results and not args.long_stream:
        raise SystemExit("nothing to evaluate: give --data DIR [DIR ...] and/or --long-stream MINUTES")
    for title, metrics in results.items():
        print(_format_eval(title, metrics))
    if args.long_stream:
        from dataclasses import asdict

        from molam_ros.tokenizer.long_stream import format_rows, stream_errors, walk_and_turn_stream

        rows = stream_errors(model, stats, walk_and_turn_stream(args.long_stream))
        print(format_rows(rows))
        results["long stream"] = [asdict(r) for r in rows]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


def _cmd_tokenizer_reconstruct(args: argparse.Namespace) -> int:
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.reconstruct import reconstruct_dataset
    from molam_ros.tokenizer.rqvae import load_checkpoint

    model, _, stats = load_checkpoint(args.checkpoint or default_tokenizer_dir())
    summary = reconstruct_dataset(model, stats, args.data, args.out, split=args.split)
    print(f"wrote {summary['clips']} reconstructed clips to {args.out} ({len(summary['skipped'])} too short)")
    return 0


def _cmd_tokenizer_ship(args: argparse.Namespace) -> int:
    import json

    from molam_ros.tokenizer.ship import ship

    manifest = ship(
        args.checkpoint,
        args.out,
        data=args.data,
        commands=args.command or [],
        minutes=args.long_stream,
        train_seconds=args.train_seconds,
    )
    print(json.dumps({k: manifest[k] for k in ("dtype", "why_dtype", "files", "steps")}, indent=1))
    print(f"shipped to {args.out}")
    return 0


def _cmd_tokenizer_widen(args: argparse.Namespace) -> int:
    from molam_ros.llm.widen import widen

    out = widen(args.model, args.tokenizer, args.out)
    print(f"{args.model} widened to the codes of {args.tokenizer}: {out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from molam_ros.paths import default_tokenizer_dir
    from molam_ros.tokenizer.export import export_onnx

    manifest = export_onnx(args.checkpoint or default_tokenizer_dir(), args.out)
    for graph, check in manifest["checks"].items():
        diff, codes = check["max_abs_diff"], check["code_mismatch"]
        print(f"{graph:<14} onnxruntime vs torch: max |diff| {diff:.1e}, codes differ {codes:.1%}")
    if args.format == "tensorrt":
        from molam_ros.tokenizer.tensorrt_engine import build_tensorrt

        report = build_tensorrt(
            args.out, max_batch=args.max_batch, max_frames=args.max_frames, fp16=not args.no_fp16
        )
        for graph, r in report["graphs"].items():
            print(f"{graph:<14} TensorRT {r['precision']}: {r['why']}")
    print(f"exported to {args.out}")
    return 0


def _cmd_bench_tokenizer(args: argparse.Namespace) -> int:
    import tempfile

    from molam_ros.runtime.bench import bench_tokenizer, format_table
    from molam_ros.tokenizer.export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        from molam_ros.paths import default_tokenizer_dir

        args.checkpoint = args.checkpoint or default_tokenizer_dir()
        export_dir = args.export
        if export_dir is None:
            export_dir = Path(tmp) / "export"
            export_onnx(args.checkpoint, export_dir)
        rows, skipped = bench_tokenizer(
            args.checkpoint,
            export_dir,
            steps=args.steps,
            repeats=args.repeats,
            threads=args.threads,
            torch_devices=tuple(args.device),
        )
    print(format_table(rows, skipped))
    return 0


def _cmd_bench_reaction(args: argparse.Namespace) -> int:
    from molam_ros.ros.bench_reaction import format_report, run_bench

    bringup_args = {
        "profile": args.profile,
        "engine": args.engine,
        "model_dir": args.model_dir,
        "dataset": args.dataset,
        "clip_id": args.clip_id,
        "mode": args.mode,
        "person_id": args.person_id or ("operator" if args.mode == "teleop" else ""),
    }
    print(format_report(run_bench(bringup_args, args.seconds, warmup=args.warmup), args.seconds))
    return 0


def _cmd_bench_sim(args: argparse.Namespace) -> int:
    """The simulated robot's figures for teleoperation and reaction streams (molam_ros/sim/bench.py)."""
    try:  # optional extra: one clear line instead of a traceback
        from molam_ros.sim.bench import bench, summarize
    except ImportError as e:
        print(f"molam bench sim needs MuJoCo: pip install 'molam_ros[sim]' ({e})", file=sys.stderr)
        return 2
    import json
    from dataclasses import asdict
    from typing import Any

    from molam_ros.data.dataset import MotionDataset
    from molam_ros.runtime.profiles import load_profile
    from molam_ros.runtime.safety import SafetyConfig
    from molam_ros.sim.collision_guard import CollisionGuardConfig

    guard_kw: dict[str, float] = {}
    if args.lookahead is not None:
        guard_kw["lookahead"] = args.lookahead
    if args.position_margin is not None:  # the guard's QP keeps the same margin as the filter
        guard_kw["position_margin"] = args.position_margin
    guard_config = CollisionGuardConfig(**guard_kw) if guard_kw else None
    margin = SafetyConfig.position_margin if args.position_margin is None else args.position_margin

    cols = ("clips", "minutes", "acc", "jerk", "tracking_p99", "tracking_max", "collisions_per_min",
            "limit_steps", "hand_mm", "elbow_mm")  # fmt: skip
    guards = {"off": (False,), "on": (True,), "both": (False, True)}[args.guard]
    vel = "published (the safety filter's)" if args.published else "central differences"
    print(f"tracker noise {args.noise} m; split {args.split}; collision guard {args.guard}; velocities {vel}")
    print(f"position margin {margin} rad; guard {guard_config or CollisionGuardConfig()}")
    print("| data | profile | stream | " + " | ".join(cols) + " |")
    print("|---|---|---|" + "---|" * len(cols))
    log = args.jsonl.open("a") if args.jsonl else None

    def record(profile: str, root: Path) -> Any:
        def write(cid: str, kind: str, fig: Any) -> None:
            if log is not None:  # one line per clip and stream, as it is measured
                row = {"data": root.name, "profile": profile, "clip": cid, "stream": kind, **asdict(fig)}
                log.write(json.dumps(row) + "\n")
                log.flush()

        return write

    shard, shards = (int(x) for x in args.shard.split("/"))
    for root in args.data:
        ds = MotionDataset(root)
        clips = []
        for i, cid in enumerate(ds.ids(args.split)[: args.limit or None]):
            if i % shards != shard:
                continue
            clip = ds.load(cid)
            two = len(clip.positions) > 1
            actor = int(clip.meta.get("actor", 0)) if two else 0
            clips.append((cid, clip.positions[actor], clip.positions[1 - actor] if two else None))
        notes = []
        for name in args.profile:
            figs = bench(
                load_profile(name),
                clips,
                noise=args.noise,
                guards=guards,
                published=args.published,
                streams=tuple(args.streams),
                on_figures=record(name, root),
                position_margin=args.position_margin,
                guard_config=guard_config,
            )
            for kind, figures in figs.items():
                row = summarize(figures)
                if row:
                    cells = [f"{row[c]:.3g}" if isinstance(row[c], float) else str(row[c]) for c in cols]
                    print(f"| {Path(root).name} | {name} | {kind} | " + " | ".join(cells) + " |", flush=True)
                    if row["pairs"] or row["limit_joints"]:
                        notes.append(
                            f"{name} {kind}: collisions {row['pairs']}; at a limit {row['limit_joints']}"
                        )
        for note in notes:  # which links collided, which joints sat at a limit (clips)
            print(note)
    return 0


# --- molam demo ------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job (molam_ros/ros/demo.py): replay -> reaction node -> bag -> render and summary."""
    from molam_ros.ros.demo import DemoConfig, parse_command, run_demo

    config = DemoConfig(
        out=args.out,
        model_dir=args.model_dir,
        data=args.data,
        clip_id=args.clip_id or "",
        motion_file=args.motion_file,
        bag=args.bag,
        bag_topic=args.bag_topic,
        profile=args.profile,
        engine=args.engine,
        seconds=args.seconds,
        commands=tuple(parse_command(c) for c in args.command) if args.command else DemoConfig.commands,
        instructions=tuple(args.instruction) if args.instruction else DemoConfig.instructions,
        prepare=not args.no_prepare,
        sim=False if args.no_sim else None,
        reactor=args.reactor,
    )
    try:
        run_demo(config)
    except (FileNotFoundError, RuntimeError, TimeoutError, ValueError, LookupError) as e:
        print(f"molam demo: {e}", file=sys.stderr)
        return 1
    return 0


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, but not the uninformative ones (None, False, required options)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, False, argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog="molam",
        description="molam_ros: a motion-language model that makes a robot or avatar react to a person.",
        formatter_class=fmt,
    )
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", required=True)

    data = groups.add_parser("data", help="make, inspect and render motion datasets", formatter_class=fmt)
    data_cmds = data.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    p = data_cmds.add_parser(
        "synth",
        help="write a procedural two-person interaction dataset (clips, captions, splits, stats)",
        formatter_class=fmt,
    )
    p.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    p.add_argument("--count", type=int, default=1000, help="number of clips, balanced over interaction types")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same dataset")
    p.add_argument(
        "--edit-variants",
        type=float,
        default=0.25,
        metavar="FRACTION",
        help="chance that a clip is followed by the same scene in another style (editing data; "
        "counted in --count, same split as its source)",
    )
    p.add_argument(
        "--solo-actions",
        type=float,
        default=0.0,
        metavar="FRACTION",
        help="chance that the solo part before the interaction, and apart from it the one after it, is a "
        "solo action: crouching, picking up, reaching, turning on the spot, side/back steps, "
        "shadow-boxing, quick gestures (0: the clips the shipped tokenizer saw)",
    )
    p.set_defaults(func=_cmd_data_synth)

    p = data_cmds.add_parser(
        "real",
        help="write the real recorded clips that ship in registry packages as a dataset "
        "(held-out clips whole, training clips augmented)",
        formatter_class=fmt,
    )
    p.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    p.add_argument("--variants", type=int, default=24, help="augmented copies of each training clip")
    p.add_argument("--seed", type=int, default=0, help="random seed of the augmentations")
    p.add_argument(
        "--tilt",
        type=float,
        default=0.0,
        help="share of each clip's variants also tilted about a horizontal axis (leaning, lying "
        "down, getting up: poses no standing clip reaches); 0 keeps the dataset as before",
    )
    p.set_defaults(func=_cmd_data_real)

    p = data_cmds.add_parser(
        "conversations",
        help="write multi-turn conversations about a dataset's clips (LLM stage 3 data, JSON Lines)",
        formatter_class=fmt,
    )
    p.add_argument("--data", type=Path, required=True, help="dataset directory (molam data synth)")
    p.add_argument("--out", type=Path, required=True, help="conversation file to write (.jsonl)")
    p.add_argument("--split", choices=("train", "val", "test"), default="train", help="clips to talk about")
    p.add_argument("--count", type=int, help="number of conversations (default: one per clip)")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same file")
    p.set_defaults(func=_cmd_data_conversations)

    p = data_cmds.add_parser(
        "import",
        help="convert a real dataset (InterHuman, Inter-X, HumanML3D, pybullet clips) into a molam dataset",
        formatter_class=fmt,
    )
    p.add_argument("--source", required=True, choices=("interhuman", "interx", "humanml3d", "pybullet"))
    p.add_argument("--root", type=Path, help="your local copy of the dataset, in its published layout")
    p.add_argument("--out", type=Path, required=True, help="molam dataset directory to write")
    p.add_argument("--split", choices=("train", "val", "test"), help="import only this split (default: all)")
    p.add_argument("--body-model", type=Path, help="Inter-X only: directory of your licensed SMPL-X model")
    p.set_defaults(func=_cmd_data_import)

    p = data_cmds.add_parser(
        "render", help="draw a clip as an animated GIF/MP4 and a PNG strip of frames", formatter_class=fmt
    )
    p.add_argument("dataset", nargs="?", type=Path, help="dataset directory (molam data synth)")
    p.add_argument("--id", help="clip id in the dataset (default: the first test clip)")
    p.add_argument(
        "--pybullet", metavar="NAME", help="render a shipped pybullet clip instead, e.g. humanoid3d_walk"
    )
    p.add_argument("--out", type=Path, required=True, help="output animation path (.gif or .mp4)")
    p.add_argument("--format", choices=("gif", "mp4"), help="animation format (default: from --out's suffix)")
    p.add_argument("--max-frames", type=int, help="render at most this many frames")
    p.add_argument("--strip", type=Path, help="PNG strip path (default: --out with .png)")
    p.add_argument("--strip-frames", type=int, default=6, help="frames in the PNG strip")
    p.set_defaults(func=_cmd_data_render)

    p = data_cmds.add_parser("stats", help="summarise a dataset directory", formatter_class=fmt)
    p.add_argument("dataset", type=Path, help="dataset directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_data_stats)

    # molam tokenizer
    tok = groups.add_parser(
        "tokenizer", help="train and evaluate the RQ-VAE motion tokenizer", formatter_class=fmt
    )
    tok_cmds = tok.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = tok_cmds.add_parser(
        "train",
        help="train a tokenizer on a molam dataset (checkpoints, resume)",
        epilog="Training settings not given keep the TrainConfig defaults (molam_ros/tokenizer/train.py).",
        formatter_class=fmt,
    )
    p.add_argument(
        "--preset", default="small", help="architecture preset: tiny, small (default model), base, paper"
    )
    p.add_argument(
        "--rel-weight",
        type=float,
        help="loss weight of the relation to the partner (TokenizerConfig.rel_weight; default: the preset's, "
        "or the checkpoint's with --resume, where a given weight wins)",
    )
    p.add_argument(
        "--traj-weight",
        type=float,
        help="loss weight of the integrated root's drift (TokenizerConfig.traj_weight; as --rel-weight)",
    )
    p.add_argument(
        "--data",
        type=Path,
        nargs="+",
        required=True,
        help="molam dataset directories (molam data synth / real / import); several are mixed",
    )
    p.add_argument(
        "--weights",
        dest="dataset_weights",
        type=float,
        nargs="+",
        default=argparse.SUPPRESS,
        help="share of the training crops from each --data (default: by their number of windows)",
    )
    p.add_argument(
        "--out", type=Path, required=True, help="checkpoint directory (model.safetensors + config.json)"
    )
    p.add_argument(
        "--layout",
        default="ego",
        choices=("ego", "intergen"),
        help="motion layout: ego (bounded, the default) or intergen (absolute, offline datasets)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    p.add_argument(
        "--relation-codes",
        type=int,
        default=0,
        metavar="R",
        help="R code depths of its own for the relation to the partner, after the D body depths (0: none)",
    )
    p.add_argument(
        "--relation-net",
        choices=("conv", "step"),
        default="conv",
        help="the relation codes' encoder/decoder: causal conv stacks, or an MLP per step (no state)",
    )
    p.add_argument("--relation-width", type=int, default=64, help="width of the relation codes' nets")
    p.add_argument("--init", type=Path, help="start from this tokenizer's weights and feature stats")
    p.add_argument(
        "--freeze-body",
        action="store_true",
        default=argparse.SUPPRESS,
        help="with --init: train the relation codes alone; the body codes stay those of --init",
    )
    # Training settings left out keep the TrainConfig defaults (molam_ros/tokenizer/train.py).
    p.add_argument("--steps", type=int, default=argparse.SUPPRESS, help="total optimiser steps")
    p.add_argument(
        "--batch-size", dest="batch_size", type=int, default=argparse.SUPPRESS, help="crops per step"
    )
    p.add_argument("--window", type=int, default=argparse.SUPPRESS, help="frames per crop, a multiple of l")
    p.add_argument("--lr", type=float, default=argparse.SUPPRESS, help="peak learning rate")
    p.add_argument(
        "--eval-every",
        dest="eval_every",
        type=int,
        default=argparse.SUPPRESS,
        help="steps between validations",
    )
    p.add_argument("--device", default=argparse.SUPPRESS, help="torch device (cpu, cuda, cuda:1)")
    p.add_argument("--seed", type=int, default=argparse.SUPPRESS, help="random seed")
    p.set_defaults(func=_cmd_tokenizer_train)
    p = tok_cmds.add_parser(
        "eval", help="MPJPE, foot contacts and codebook use on generator and real clips", formatter_class=fmt
    )
    _add_optional_checkpoint(p)
    p.add_argument(
        "--data", type=Path, nargs="+", help="molam datasets whose held-out split to evaluate (each labelled)"
    )
    p.add_argument("--split", default="test", choices=("train", "val", "test"), help="split of --data")
    p.add_argument(
        "--long-stream",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="also stream a person who walks 20 m and turns, for MINUTES, and print the error per minute",
    )
    p.add_argument("--depth", type=int, help="decode from the first DEPTH codebooks only")
    p.add_argument(
        "--pull",
        type=float,
        help="person b's placement smoothing per frame (ego.follow_anchor; 1: the anchor frame by frame; "
        "default: ego.DECODE_PULL, what the shipped reactors are placed with)",
    )
    p.add_argument("--json", type=Path, help="also write the metrics to this JSON file")
    p.set_defaults(func=_cmd_tokenizer_eval)
    p = tok_cmds.add_parser(
        "reconstruct",
        help="write each clip's reconstruction as a motion file (a molam dataset of positions)",
        formatter_class=fmt,
    )
    _add_optional_checkpoint(p)
    p.add_argument("--data", type=Path, required=True, help="molam dataset to reconstruct")
    p.add_argument("--out", type=Path, required=True, help="dataset directory to write")
    p.add_argument("--split", choices=("train", "val", "test"), help="only this split (default: all)")
    p.set_defaults(func=_cmd_tokenizer_reconstruct)
    p = tok_cmds.add_parser(
        "ship",
        help="package a checkpoint as the shipped default (fp16 if figures hold, manifest, data manifest)",
        formatter_class=fmt,
    )
    p.add_argument("checkpoint", type=Path, help="trained tokenizer checkpoint directory")
    p.add_argument("--data", type=Path, nargs="+", required=True, help="the datasets it trained on")
    p.add_argument("--out", type=Path, default=Path("molam_ros/models/tokenizer"), help="where to write")
    p.add_argument("--command", action="append", help="a command that trained it (repeat, in order)")
    p.add_argument("--long-stream", type=float, default=10.0, metavar="MINUTES", help="long-stream minutes")
    p.add_argument("--train-seconds", type=float, help="wall time of the training, for the manifest")
    p.set_defaults(func=_cmd_tokenizer_ship)
    p = tok_cmds.add_parser(
        "widen",
        help="carry a reactor, actor generator or describer over to a tokenizer with relation codes",
        description="A model trained on a tokenizer's codes, for a tokenizer trained with --init <that "
        "one> --relation-codes R --freeze-body (the same body codes, R more): its code tables gain R "
        "depths at zero, so it acts as before and only the decoded relation changes (llm/widen.py).",
        formatter_class=fmt,
    )
    p.add_argument("model", type=Path, help="the model's directory (config.json + model.safetensors)")
    p.add_argument("--tokenizer", type=Path, required=True, help="the tokenizer with relation codes")
    p.add_argument("--out", type=Path, required=True, help="where to write the widened model")
    p.set_defaults(func=_cmd_tokenizer_widen)

    # molam export
    p = groups.add_parser(
        "export",
        help="export a tokenizer checkpoint to ONNX graphs (and TensorRT engines)",
        formatter_class=fmt,
    )
    _add_optional_checkpoint(p)
    p.add_argument("--out", type=Path, required=True, help="export directory")
    p.add_argument(
        "--format", choices=("onnx", "tensorrt"), default="onnx", help="tensorrt also builds .plan engines"
    )
    p.add_argument("--max-batch", type=int, default=4, help="TensorRT: largest batch (people) in the profile")
    p.add_argument(
        "--max-frames", type=int, default=1024, help="TensorRT: longest whole sequence in the profile"
    )
    p.add_argument("--no-fp16", action="store_true", help="TensorRT: FP32 engines only")
    p.set_defaults(func=_cmd_export)

    # molam bench
    bench = groups.add_parser("bench", help="speed benchmarks", formatter_class=fmt)
    bench_cmds = bench.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = bench_cmds.add_parser(
        "sim",
        help="the simulated robot (optional MuJoCo extra): teleoperation and reaction streams executed",
        formatter_class=fmt,
    )
    p.add_argument("--data", type=Path, nargs="+", required=True, help="dataset directories (molam data ...)")
    p.add_argument("--split", default="test")
    p.add_argument("--profile", nargs="+", default=["unitree_g1", "unitree_h1"])
    p.add_argument("--limit", type=int, default=0, help="first N clips per dataset (0: all)")
    p.add_argument("--noise", type=float, default=0.01, help="teleop: tracker noise, m (Gaussian std)")
    p.add_argument(
        "--guard",
        choices=("off", "on", "both"),
        default="both",
        help="the self-collision guard (sim/collision_guard.py): every stream without it, with it, or both",
    )
    p.add_argument(
        "--published",
        action="store_true",
        help="the robot gets the velocities the node publishes (default: central differences of positions)",
    )
    streams = ("teleop_raw", "teleop_filtered", "teleop_ik", "reaction")  # sim/bench.py STREAMS
    p.add_argument("--streams", nargs="+", default=list(streams), choices=streams, help="streams measured")
    p.add_argument("--shard", default="0/1", help="K/N: only the clips i with i %% N == K (parallel runs)")
    p.add_argument("--jsonl", type=Path, help="append each clip's and stream's figures here as measured")
    p.add_argument(
        "--lookahead",
        type=float,
        help="s the guard looks ahead along each step (default: the node's collision_lookahead; 0: off)",
    )
    p.add_argument(
        "--position-margin",
        type=float,
        help="rad the safety filter (and the guard) keep from the joint limits (default: SafetyConfig's)",
    )
    p.set_defaults(func=_cmd_bench_sim)
    p = bench_cmds.add_parser(
        "tokenizer",
        help="per-step latency of every available tokenizer engine vs torch eager",
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", type=Path, help="tokenizer checkpoint (default: the shipped one)")
    p.add_argument("--export", type=Path, help="export directory (default: export to a temporary one)")
    p.add_argument("--steps", type=int, default=300, help="timed steps per round")
    p.add_argument("--repeats", type=int, default=5, help="rounds per engine")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of torch and onnxruntime")
    p.add_argument(
        "--device", nargs="*", default=[], help="torch devices timed after the CPU rows (e.g. cuda)"
    )
    p.set_defaults(func=_cmd_bench_tokenizer)

    p = bench_cmds.add_parser(
        "reaction",
        help="latency and real-time factor of the live reaction over DDS (replay node -> reaction node)",
        formatter_class=fmt,
    )
    p.add_argument("--seconds", type=float, default=60.0, help="measured stream after warm-up")
    p.add_argument("--profile", default="unitree_g1", help="output profile")
    p.add_argument("--engine", default="onnxruntime", help="tokenizer engine: torch, onnxruntime, tensorrt")
    p.add_argument("--model-dir", default="", help="models root (default: the molam cache)")
    p.add_argument(
        "--dataset", default="", help="replay this dataset's --clip-id (default: a procedural clip)"
    )
    p.add_argument("--clip-id", default="")
    p.add_argument(
        "--mode",
        default="reaction",
        choices=["reaction", "teleop"],
        help="teleop: no model, the operator drives",
    )
    p.add_argument(
        "--person-id", default="", help="replayed person and followed one (teleop default: operator)"
    )
    p.add_argument("--warmup", type=float, default=60.0, help="s allowed for the nodes to start stepping")
    p.set_defaults(func=_cmd_bench_reaction)

    from molam_ros.cli_llm import add_commands as add_llm_commands

    add_llm_commands(groups, bench_cmds, fmt)
    from molam_ros.cli_reactor import add_commands as add_reactor_commands

    add_reactor_commands(groups, fmt)
    from molam_ros.cli_describer import add_commands as add_describer_commands

    add_describer_commands(groups, fmt)
    from molam_ros.cli_t2m import add_commands as add_t2m_commands

    add_t2m_commands(groups, fmt)
    from molam_ros.bringup import add_command as add_bringup_command

    add_bringup_command(groups, fmt)
    from molam_ros.ros.say import add_command as add_say_command

    add_say_command(groups, fmt)
    from molam_ros.cli_agent import add_commands as add_agent_commands

    add_agent_commands(groups, fmt)
    from molam_ros.cli_completion import add_commands as add_completion_commands

    add_completion_commands(groups, fmt)

    p = groups.add_parser(
        "demo",
        help="the main job: a held-out person replayed over DDS, the reaction node reacting, a bag, "
        "a side-by-side render and the latency summary",
        formatter_class=fmt,
        description="Makes the default models first if the cache lacks them (about an hour on 2 CPU "
        "cores, once). While it runs, send your own commands from another terminal: molam say 'TEXT'.",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_DEMO_DIR, help="output directory")
    p.add_argument("--model-dir", type=Path, help="models root (tokenizer/ export/ llm/); default: the cache")
    p.add_argument("--data", type=Path, help="dataset of the person (default: <cache>/data/synth1000)")
    p.add_argument("--clip-id", help="held-out clip to replay (default: the first held-out handshake)")
    p.add_argument("--motion-file", type=Path, help="replay this motion .npz instead of a dataset clip")
    p.add_argument("--bag", type=Path, help="replay this MCAP bag of PersonPose instead of a dataset clip")
    p.add_argument("--bag-topic", default="", help="the bag's PersonPose topic (default: its only one)")
    p.add_argument("--profile", default="unitree_g1", help="output profile (config/profiles)")
    p.add_argument("--engine", default="onnxruntime", help="tokenizer engine: torch, onnxruntime, tensorrt")
    p.add_argument("--seconds", type=float, default=0.0, help="stream length; 0: the clip once, more: loop")
    p.add_argument(
        "--command",
        action="append",
        metavar="AT:TEXT",
        help="say TEXT at fraction AT of each run (repeatable; default: 0.65:'what is he doing?')",
    )
    p.add_argument(
        "--instruction",
        action="append",
        metavar="TEXT",
        help="one run of the same person per instruction, shown side by side (repeatable; default: "
        "'Be friendly.' and 'Be hesitant.'; '' reacts freely)",
    )
    p.add_argument("--no-prepare", action="store_true", help="fail instead of making missing models")
    p.add_argument(
        "--reactor",
        choices=("llm", "small", "llm_reactor"),
        default="llm_reactor",
        help="who writes the reaction (the node's reactor parameter): the LLM, the shipped small reactor, "
        "or the shipped LLM reactor (SmolLM2's first layers with LoRA); the LLM answers text",
    )
    p.add_argument(
        "--no-sim",
        action="store_true",
        help="no simulated robot (default: run it and draw its body where the [sim] extra is installed)",
    )
    p.set_defaults(func=_cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, ValueError) as e:
        # Bad input from the user: one clear line, no traceback.
        print(f"molam: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
