"""`molam chat` and `molam plan`: the coordinator from the command line (molam_ros/agent/).

    molam chat --out out/chat                         # a terminal conversation with the whole system
    printf 'wave at her\\nmake that faster\\n' | molam chat --out out/chat    # scripted: one line a turn
    molam plan "walk up to her, then wave"            # the plan only, as JSON (no model is run)

Kept apart from molam_ros/cli.py so `molam --help` stays instant (the model loads only here).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any


def _config(args: argparse.Namespace) -> Any:
    from molam_ros.agent.config import load_config

    config = load_config(args.config)
    if args.planner:
        config = dataclasses.replace(config, planner=args.planner)
    return config


def _lines(stream: Any, interactive: bool) -> Any:
    """The user's turns: prompted lines on a terminal, plain lines from a pipe or a file."""
    while True:
        if interactive:
            print("you> ", end="", flush=True)
        line = stream.readline()
        if not line:
            return
        line = line.strip()
        if line:
            yield line


def _write_turn(out: Path, k: int, turn: Any, render: bool) -> list[Path]:
    """turn_KK.npz (positions, codes, the plan) and, with `render`, turn_KK.gif."""
    import numpy as np

    from molam_ros.llm.motion_io import save_positions

    motion = turn.motion
    written = []
    if motion is None or motion.positions is None:
        return written
    path = save_positions(
        out / f"turn_{k:02d}.npz",
        motion.positions,
        codes=np.asarray(motion.codes),
        plan=np.array(turn.plan.model_dump_json() if turn.plan else ""),
        request=np.array(turn.request),
    )
    written.append(path)
    if render:
        from molam_ros.data.clip import MotionClip
        from molam_ros.data.render import render_clip

        clip = MotionClip(name=f"turn {k}", positions=motion.positions, texts=[turn.request])
        written.append(render_clip(clip, out / f"turn_{k:02d}.gif", max_frames=150, progress=False))
    return written


def cmd_chat(args: argparse.Namespace) -> int:
    from molam_ros.agent.coordinator import build_coordinator
    from molam_ros.agent.reaction_setup import build_text_to_pair
    from molam_ros.cli_llm import load_model

    config = _config(args)
    mlm, codec = load_model(args)
    t2m = build_text_to_pair({"t2m_actor_dir": args.t2m_actor or ""}, Path(mlm.info["tokenizer_checkpoint"]))
    coordinator = build_coordinator(config, mlm, codec, text_to_pair=t2m)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"molam chat ({config.planner} planner); an empty line or Ctrl-D ends it")
    k = 0
    for line in _lines(sys.stdin, interactive):
        k += 1
        turn = coordinator.handle(line)
        print(f"molam> {turn.reply}", flush=True)
        if turn.plan is not None:
            print(f"       plan: {' -> '.join(turn.plan.kinds())} ({turn.seconds:.1f} s)", flush=True)
        if args.out:
            for path in _write_turn(args.out, k, turn, render=not args.no_render):
                print(f"       wrote {path}", flush=True)
    return 0


def cmd_plan(args: argparse.Namespace) -> int:
    from molam_ros.agent.coordinator import Coordinator

    coordinator = Coordinator(_config(args), executor=None)
    coordinator.live = lambda: args.live
    turn = coordinator.handle(args.request)
    if turn.plan is None:
        print(turn.reply, file=sys.stderr)
        return 1
    print(json.dumps(turn.plan.model_dump(exclude_none=True), indent=2))
    return 0


def add_commands(groups: Any, fmt: type) -> None:
    """Register `chat` and `plan` on the parsers of molam_ros/cli.py."""
    from molam_ros.cli_llm import add_model_args

    p = groups.add_parser(
        "chat",
        formatter_class=fmt,
        help="a conversation with the whole system: text in, replies out, each turn's motion to --out",
        description="Reads one request per line (from the terminal, or from standard input when it is "
        "piped). Each turn: the guard, a plan (config/coordinator.yaml), the plan run on the "
        "motion-language model, the reply printed, the motion written to --out as turn_KK.npz and .gif.",
    )
    p.add_argument("--out", type=Path, help="directory for each turn's motion file and render")
    p.add_argument("--no-render", action="store_true", help="motion files only, no GIFs")
    p.add_argument(
        "--t2m-actor",
        help="actor generator for generate steps (default: the shipped one where it pairs with the "
        "LLM's tokenizer; none: the LLM writes them)",
    )
    p.add_argument("--config", type=Path, help="coordinator YAML (default: config/coordinator.yaml)")
    p.add_argument("--planner", choices=("rules", "backbone", "openai"), help="override the config's planner")
    add_model_args(p)
    p.set_defaults(func=cmd_chat)

    p = groups.add_parser(
        "plan",
        formatter_class=fmt,
        help="print the plan the coordinator makes for a request (JSON; nothing is generated)",
    )
    p.add_argument("request", help="what a user would say, e.g. 'walk up to her, then wave'")
    p.add_argument("--live", action="store_true", help="plan as if a partner were being tracked")
    p.add_argument("--config", type=Path, help="coordinator YAML (default: config/coordinator.yaml)")
    p.add_argument("--planner", choices=("rules", "backbone", "openai"), help="override the config's planner")
    p.set_defaults(func=cmd_plan)
