"""The `molam` command: one entry point for data, training, export, benchmarks and the demo.

Every subcommand imports its heavy dependencies lazily, so `molam --help` answers at once.
Run `molam <group> --help` for the commands of a group.
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
    from molam_ros.data.synth import INTERACTIONS, generate_dataset

    if args.count < 1:
        raise SystemExit("--count must be at least 1")
    start = time.perf_counter()
    info = write_dataset(
        args.out,
        generate_dataset(args.count, args.seed),
        total=args.count,
        manifest={"source": "synth", "seed": args.seed, "created_by": "molam data synth"},
    )
    elapsed = time.perf_counter() - start
    print(
        f"wrote {info['count']} clips ({info['frames'] / 30.0:.0f} s of motion, "
        f"{len(info['interactions'])}/{len(INTERACTIONS)} interaction types) to {args.out} "
        f"in {elapsed:.1f} s; splits {info['splits']}"
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


# --- molam demo ------------------------------------------------------------------------------


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job on the embedded defaults (grows with the project; see README)."""
    out = Path(args.out)
    data_dir = out / "data"
    _cmd_data_synth(argparse.Namespace(out=data_dir, count=args.count, seed=args.seed))
    _cmd_data_stats(argparse.Namespace(dataset=data_dir, quiet=True))
    from molam_ros.data.dataset import MotionDataset

    ds = MotionDataset(data_dir)
    clip_id = next((i for i in ds.ids() if ds.load(i).meta.get("interaction") == args.interaction), None)
    render_args = argparse.Namespace(
        pybullet=None, dataset=data_dir, id=clip_id, out=out / "interaction.gif", format="gif",
        max_frames=None, strip=None, strip_frames=6,
    )  # fmt: skip
    return _cmd_data_render(render_args)


# --- parser ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
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
    p.set_defaults(func=_cmd_data_synth)

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

    p = groups.add_parser(
        "demo",
        help="the main job on the embedded defaults: a small dataset and a rendered interaction",
        formatter_class=fmt,
    )
    p.add_argument("--out", type=Path, default=DEFAULT_DEMO_DIR, help="output directory")
    p.add_argument("--count", type=int, default=48, help="clips in the demo dataset")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--interaction", default="handshake", help="interaction type to render")
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
