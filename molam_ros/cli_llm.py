"""The motion-language model's part of the `molam` command: `molam llm train|eval`, `molam generate`,
`molam bench llm`. Kept apart from molam_ros/cli.py so each stays readable, and outside the
`molam_ros.llm` package, whose import loads torch and transformers: `molam --help` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

TASKS = ("text_to_motion", "motion_to_text", "reaction", "prediction", "editing", "reasoning")


def stage_dir(stage: int) -> Path:
    """Where `make llm` puts the default checkpoints: the molam cache, `llm/stage2` and `llm/stage3`."""
    from molam_ros.paths import cache_root

    return cache_root() / "llm" / f"stage{stage}"


def default_checkpoint() -> Path:
    """Stage 3 if it was trained, else stage 2."""
    from molam_ros.paths import default_llm_dir

    return default_llm_dir()


def _backbone_for(args: argparse.Namespace) -> Path:
    from molam_ros.llm.backbone import default_backbone_dir, make_tiny_backbone
    from molam_ros.paths import cache_root

    if args.backbone is not None:
        return Path(args.backbone)
    if args.preset == "tiny":  # the tiny preset trains on a tiny random LLaMA, made once
        tiny = cache_root() / "backbones" / "tiny-llama"
        if not (tiny / "config.json").is_file():
            make_tiny_backbone(tiny)
        return tiny
    return default_backbone_dir()


def _conversations(args: argparse.Namespace) -> dict[str, list[Any]]:
    """{split: [Conversation]} from --conversations files, else built from the dataset's clips."""
    import numpy as np

    from molam_ros.data.conversations import build_conversations, load_conversations
    from molam_ros.data.dataset import MotionDataset

    if args.conversations:
        out: dict[str, list[Any]] = {"train": load_conversations(args.conversations)}
        if args.val_conversations:
            out["val"] = load_conversations(args.val_conversations)
        return out
    ds = MotionDataset(args.data)
    rng = np.random.default_rng(args.seed if args.seed is not None else 0)
    return {split: build_conversations(ds, split, rng) for split in ("train", "val")}


def cmd_llm_train(args: argparse.Namespace) -> int:
    from molam_ros.llm.train import preset, train
    from molam_ros.paths import default_tokenizer_dir

    overrides = {
        k: getattr(args, k)
        for k in ("steps", "batch_size", "lr", "head_lr", "seed")
        if getattr(args, k) is not None
    }
    config = preset(args.preset, stage=args.stage, **overrides)
    tokenizer = Path(args.tokenizer) if args.tokenizer else default_tokenizer_dir()
    if not (tokenizer / "config.json").is_file():
        raise SystemExit(f"no tokenizer checkpoint at {tokenizer}: train one first (make tokenizer)")
    out = Path(args.out) if args.out else stage_dir(args.stage)
    kwargs: dict[str, Any] = {}
    if args.stage == 2:
        kwargs["backbone_dir"] = _backbone_for(args)
    else:
        kwargs["init"] = Path(args.init) if args.init else stage_dir(2)
        kwargs["conversations"] = _conversations(args)
        print(
            f"stage 3 conversations: {', '.join(f'{k} {len(v)}' for k, v in kwargs['conversations'].items())}"
        )
    start = time.perf_counter()
    summary = train(
        config=config,
        data_dir=args.data,
        tokenizer_checkpoint=tokenizer,
        out_dir=out,
        resume=args.resume,
        device=args.device,
        **kwargs,
    )
    print(json.dumps(summary, indent=1, default=str))
    print(
        f"stage {args.stage} ({args.preset}) trained in {time.perf_counter() - start:.0f} s; "
        f"checkpoint in {out}"
    )
    return 0


def load_model(args: argparse.Namespace) -> tuple[Any, Any]:
    """(MotionLM, MotionCodec) of --checkpoint on --device (`add_model_args`); its tokenizer is the
    one its record names. A broken checkpoint raises `CheckpointError`, which `molam` prints as one line."""
    from molam_ros.llm.model import load_with_codec

    return load_with_codec(
        Path(args.checkpoint) if args.checkpoint else default_checkpoint(), device=args.device
    )


def cmd_generate(args: argparse.Namespace) -> int:
    if args.text is not None:  # the guard of every other text path (agent/intent.py), before any loading
        from molam_ros.agent.guard import check_request
        from molam_ros.agent.intent import MAX_CHARS

        refusal = check_request(args.text, MAX_CHARS)
        if refusal is not None:
            print(f"molam: refused: {refusal.reason}", file=sys.stderr)
            return 2
    import numpy as np

    from molam_ros.llm.generate import Generator, SamplingConfig
    from molam_ros.llm.motion_io import load_positions, save_positions
    from molam_ros.llm.prompts import MotionCodes

    mlm, codec = load_model(args)
    sampling = SamplingConfig(
        temperature=args.temperature,
        top_k=args.top_k,
        seed=args.seed,
        max_steps=args.max_steps,
        min_steps=min(2, args.max_steps),
    )
    gen = Generator(mlm, method=args.method, sampling=sampling)
    motion, transform = None, None
    if args.motion:
        positions = load_positions(args.motion)
        codes, transform = codec.encode(positions)
        codes = codes[:, : args.max_steps]
        if args.task == "reaction":  # a second person in the file: the reactor's first step is given
            motion = MotionCodes(a=codes[0], b=codes[1, :1] if codes.shape[0] > 1 else None)
        else:
            motion = MotionCodes(a=codes[0], b=codes[1] if codes.shape[0] > 1 else None)
    t0 = time.perf_counter()
    result = gen.run(args.task, text=args.text, motion=motion)
    seconds = time.perf_counter() - t0
    out = Path(args.out) if args.out else None
    if result.text is not None:
        print(result.text)
        if out:
            out.mkdir(parents=True, exist_ok=True)
            (out / "answer.txt").write_text(result.text + "\n")
    if result.motion is not None:
        people = [c for c in (result.motion.a, result.motion.b) if c is not None]
        codes = np.stack(people)
        positions = codec.decode(codes, transform)
        print(
            f"generated {codes.shape[1]} steps ({positions.shape[1] / 30:.1f} s) of {len(people)} "
            f"person(s) in {seconds:.1f} s"
        )
        if out:
            save_positions(out / "motion.npz", positions)
            np.savez_compressed(out / "codes.npz", codes=codes)
            print(f"wrote {out / 'motion.npz'} and {out / 'codes.npz'}")
            if args.render:
                from molam_ros.data.clip import MotionClip
                from molam_ros.data.render import render_clip, render_strip

                title = args.text or args.task
                clip = MotionClip(name=args.task, positions=positions, texts=[title])
                render_clip(clip, out / "motion.gif", fmt="gif")
                render_strip(clip, out / "motion.png", num_frames=6)
                print(f"rendered {out / 'motion.gif'} and {out / 'motion.png'}")
    return 0


def cmd_bench_llm(args: argparse.Namespace) -> int:
    import torch

    from molam_ros.llm import bench

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.checkpoint or default_checkpoint().joinpath("molam_llm.json").is_file():
        mlm, _ = load_model(args)
    else:
        from molam_ros.llm.backbone import default_backbone_dir
        from molam_ros.llm.model import MotionLM
        from molam_ros.llm.vocab import MotionVocab

        print("no trained checkpoint: timing the default backbone with fresh motion tokens (K=512, D=4)")
        mlm = MotionLM.create(default_backbone_dir(), MotionVocab(codebook_size=512, depth=4)).eval()
    bench.main(mlm, steps=args.steps, repeats=args.repeats, quantize=args.quantize)
    return 0


def cmd_llm_eval(args: argparse.Namespace) -> int:
    from molam_ros.llm.evaluate import evaluate_model, format_report

    mlm, codec = load_model(args)
    report = evaluate_model(
        mlm,
        codec,
        args.data,
        split=args.split,
        clips=args.clips,
        method=args.method,
        classifier=args.classifier,
    )
    print(format_report(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))
    return 0


def add_model_args(p: argparse.ArgumentParser) -> None:
    """--checkpoint, --device and --method: the options of every command that runs the model."""
    p.add_argument(
        "--checkpoint", type=Path, help="LLM checkpoint (default: the cache's stage 3, else stage 2)"
    )
    p.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    p.add_argument(
        "--method",
        choices=("head", "tokens"),
        default="head",
        help="motion by the depth head (one forward per person-step) or token by token",
    )


def add_commands(groups: Any, bench_cmds: Any, fmt: type) -> None:
    """Register `llm`, `generate` and `bench llm` on the parsers of molam_ros/cli.py."""
    llm = groups.add_parser("llm", help="train and evaluate the motion-language model", formatter_class=fmt)
    cmds = llm.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    p = cmds.add_parser(
        "train",
        formatter_class=fmt,
        help="stage 2 (motion-text pairs of every task, LoRA merged at the end) or 3 (conversations)",
        epilog="Presets: tiny (random tiny LLaMA, tests), small (SmolLM2-135M, the default), base (a GPU). "
        "Several GPUs: accelerate launch -m molam_ros.cli llm train ...",
    )
    p.add_argument("--stage", type=int, choices=(2, 3), required=True)
    p.add_argument("--preset", default="small", help="tiny, small or base (molam_ros/llm/train.py PRESETS)")
    p.add_argument("--data", type=Path, required=True, help="molam dataset directory (molam data synth)")
    p.add_argument(
        "--tokenizer", type=Path, help="tokenizer checkpoint (default: the cache's tokenizer/small)"
    )
    p.add_argument("--out", type=Path, help="run directory (default: the cache's llm/stage2 or llm/stage3)")
    p.add_argument("--backbone", type=Path, help="stage 2: local causal LM directory (default: SmolLM2-135M)")
    p.add_argument("--init", type=Path, help="stage 3: the finished stage 2 run (default: the cache's)")
    p.add_argument(
        "--conversations", type=Path, help="stage 3: conversations .jsonl (default: built from --data)"
    )
    p.add_argument("--val-conversations", type=Path, help="stage 3: validation conversations .jsonl")
    p.add_argument("--steps", type=int, help="optimizer steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="examples per step (default: the preset's)")
    p.add_argument("--lr", type=float, help="LoRA learning rate (default: the preset's)")
    p.add_argument("--head-lr", type=float, help="depth head learning rate (default: the preset's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--resume", action="store_true", help="continue the run in --out")
    p.add_argument("--device", default="cpu", help="cpu or cuda (accelerate picks the GPU)")
    p.set_defaults(func=cmd_llm_train)

    p = cmds.add_parser(
        "eval",
        formatter_class=fmt,
        help="quality on held-out clips: reaction MPJPE vs baselines, caption and t2m accuracy",
    )
    p.add_argument("--data", type=Path, required=True, help="molam dataset (its --split is held out)")
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--clips", type=int, default=24, help="clips to evaluate (each task)")
    p.add_argument(
        "--classifier",
        type=Path,
        help="interaction classifier .npz (trained on --data and saved there if absent)",
    )
    p.add_argument("--json", type=Path, help="also write the report as JSON")
    add_model_args(p)
    p.set_defaults(func=cmd_llm_eval)

    p = groups.add_parser(
        "generate",
        formatter_class=fmt,
        help="run one task of the motion-language model",
        epilog="Motion files are .npz with positions (P, T, 22, 3) at 30 fps, or DATA_DIR:CLIP_ID. For "
        "reaction, person a is the partner; a second person's first step is taken as the reactor's start.",
    )
    p.add_argument("task", choices=TASKS)
    p.add_argument(
        "--text",
        help="caption (text_to_motion), instruction (reaction, editing) or question; checked by the request "
        "guard (agent/guard.py) first",
    )
    p.add_argument("--motion", help="input motion: a .npz file or DATA_DIR:CLIP_ID")
    p.add_argument("--out", type=Path, help="directory for motion.npz, codes.npz, answer.txt (and renders)")
    p.add_argument("--render", action="store_true", help="also write motion.gif and motion.png")
    p.add_argument("--max-steps", type=int, default=40, help="motion steps (of l frames) at most")
    p.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    p.add_argument("--top-k", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    add_model_args(p)
    p.set_defaults(func=cmd_generate)

    p = bench_cmds.add_parser(
        "llm",
        formatter_class=fmt,
        help="tokens/s and streaming reaction speed (real-time factor), depth head vs token by token",
    )
    p.add_argument("--steps", type=int, default=60, help="streaming steps per run")
    p.add_argument("--repeats", type=int, default=3, help="runs per method")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument(
        "--quantize",
        choices=("none", "int8"),
        default="int8",
        help="also time the step with int8 weights and compare it with float32 (none: skip)",
    )
    add_model_args(p)
    p.set_defaults(func=cmd_bench_llm)
