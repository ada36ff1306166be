"""`python -m molam_ros.coordination.report`: what coordination does to a model's two-person motion.

For the first `clips` two-person clips of a held-out split:

- reaction: the recorded actor goes in as person a (the pair re-ordered so the actor is first), the
  reactor's first step is given (as `molam llm eval` does), the model writes the rest of person b;
- text-to-motion: the clip's first caption in, a two-person motion out;
- recorded: the clip itself, the reference of what the measures read on real (generator) data.

Each motion is measured (metrics.summarize: penetration, foot sliding, floor, facing, distance)
before and after `refine_reactor` with the clip's interaction, in person a's canonical frame
(floor at y = 0). The recorded clips are refined only over their interaction segment, generated
motion over all its frames (nothing says where its interaction is).

Composition: the generated text-to-motion pieces of all clips are concatenated as tokens and
decoded in one call (`decode_composed`), the recorded clips as positions (`compose_positions`),
each without and with join smoothing; the table gives the largest joint speed near the joins
against inside the pieces, and `--figure` draws the speed over time (one panel each).

    python -m molam_ros.coordination.report --checkpoint runs/llm --tokenizer runs/tok \\
        --data data/synth --clips 8 --figure coordination.png
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from molam_ros.coordination.compose import compose_positions, decode_composed, join_frames
from molam_ros.coordination.metrics import contact_exclusions, join_speeds, summarize
from molam_ros.coordination.refine import RefineConfig, refine_reactor

FPS = 30.0
SOURCES = ("recorded", "reaction", "text_to_motion")
COLUMNS = (  # (summary key, header, format)
    ("penetration_mean_mm", "penetration mean mm", "{:.1f}"),
    ("penetration_max_mm", "penetration max mm", "{:.1f}"),
    ("penetration_frames", "frames penetrating", "{:.0%}"),
    ("foot_sliding_mm", "foot sliding mm/frame", "{:.2f}"),
    ("floor_below_mm", "below floor mm", "{:.1f}"),
    ("floor_above_mm", "above floor mm", "{:.1f}"),
    ("facing_deg", "facing error deg", "{:.1f}"),
    ("distance_m", "distance m", "{:.2f}"),
)


def _interaction_mask(meta: dict[str, Any], T: int) -> np.ndarray | None:
    """(T,) frames of the clip's interaction segments, or None when the clip does not say."""
    segments = [s for s in meta.get("segments", []) if s.get("kind") == "interaction"]
    if not segments:
        return None
    mask = np.zeros(T, dtype=bool)
    for s in segments:
        mask[int(s["start"]) : int(s["end"])] = True
    return mask


def _mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean over clips of every measure, except penetration_max_mm: the largest of any clip."""
    out = {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
    out["penetration_max_mm"] = float(max(r["penetration_max_mm"] for r in rows))
    return out


def format_table(summary: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table: a row per source and stage (before/after refinement), a column per measure."""
    head = "| motion | refined | " + " | ".join(h for _, h, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 2)]
    for source, stages in summary.items():
        for stage, row in stages.items():
            cells = " | ".join(fmt.format(row[key]) for key, _, fmt in COLUMNS)
            lines.append(f"| {source} | {stage} | {cells} |")
    return "\n".join(lines)


def format_composition(composition: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown table of composition: joint speed (m/s) at joins against inside the pieces."""
    lines = [
        "| composed | smoothing | joins | max speed at joins m/s | max speed in pieces m/s | jump m |",
        "|---|---|---|---|---|---|",
    ]
    for what, stages in composition.items():
        for stage, r in stages.items():
            lines.append(
                f"| {what} | {stage} | {r['joins']:.0f} | {r['join'] * FPS:.2f} | {r['inside'] * FPS:.2f} | "
                f"{r['jump_m']:.3f} |"
            )
    return "\n".join(lines)


def _draw(curves: dict[str, dict[str, np.ndarray]], joins: dict[str, list[int]], path: Path) -> Path:
    """One panel per composition: largest joint speed per frame (m/s) without and with smoothing,
    the joins as dotted lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(curves), 1, figsize=(9, 3.2 * len(curves)), squeeze=False)
    for ax, (what, variants) in zip(axes[:, 0], curves.items(), strict=True):
        for name, speed in variants.items():
            ax.plot(np.arange(len(speed)) / FPS, speed * FPS, label=f"smoothing {name}", lw=1.2)
        for j in joins[what]:
            ax.axvline(j / FPS, color="grey", ls=":", lw=1)
        ax.set_ylabel("largest joint speed m/s")
        ax.set_title(f"{what} composed: joins (dotted) without and with smoothing")
        ax.legend()
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time s")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _speed_curve(positions: np.ndarray) -> np.ndarray:
    speed = np.zeros(positions.shape[1])
    speed[1:] = np.linalg.norm(np.diff(positions, axis=1), axis=-1).max(axis=(0, 2))
    return speed


def coordination_report(
    checkpoint: str | Path,
    tokenizer: str | Path,
    data: str | Path,
    *,
    clips: int = 8,
    split: str = "test",
    max_steps: int = 40,
    method: str = "head",
    smooth_frames: int = 5,
    config: RefineConfig | None = None,
    figure: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Generate, measure, refine and measure again (module docstring); returns tables and numbers."""
    from molam_ros.data.dataset import MotionDataset
    from molam_ros.llm.generate import Generator, SamplingConfig
    from molam_ros.llm.model import load_motion_lm
    from molam_ros.llm.motion_io import MotionCodec
    from molam_ros.llm.prompts import MotionCodes, Task
    from molam_ros.motion.canonical import canonicalize

    t0 = time.perf_counter()
    ds = MotionDataset(data)
    ids = [i for i in ds.ids(split) if ds.load(i).num_people == 2][:clips]
    if not ids:
        raise ValueError(f"{data} has no two-person clips in split {split!r}")
    mlm = load_motion_lm(checkpoint)
    codec = MotionCodec.from_checkpoint(tokenizer)
    gen = Generator(mlm, method=method, sampling=SamplingConfig(max_steps=max_steps))
    rows: dict[str, dict[str, list[dict[str, float]]]] = {s: {"no": [], "yes": []} for s in SOURCES}
    per_clip: list[dict[str, Any]] = []
    t2m_pieces: list[np.ndarray] = []
    recorded_pieces: list[np.ndarray] = []

    def measure(source: str, positions: np.ndarray, interaction: str | None, active: Any = None) -> None:
        exclude = contact_exclusions(interaction)
        refined = refine_reactor(positions, interaction, config, active=active)
        rows[source]["no"].append(summarize(positions, exclude))
        rows[source]["yes"].append(summarize(refined, exclude))

    for clip_id in tqdm(ids, desc="coordination", unit="clip", disable=not progress):
        clip = ds.load(clip_id)
        meta = clip.meta
        interaction = meta.get("interaction")
        pair = clip.positions[::-1] if meta.get("actor") == 1 else clip.positions
        canon, _ = canonicalize(pair)
        measure("recorded", canon, interaction, _interaction_mask(meta, canon.shape[1]))
        recorded_pieces.append(canon)
        # reaction to the held-out actor, the reactor's first step given
        codes, _ = codec.encode(pair)
        codes = codes[:, :max_steps]
        b = gen.run(Task.REACTION, motion=MotionCodes(a=codes[0], b=codes[1, :1])).motion.b
        measure("reaction", codec.decode(np.stack([codes[0], b])), interaction)
        # text-to-motion from a held-out caption
        caption = clip.texts[0] if clip.texts else str(interaction)
        motion = gen.run(Task.TEXT_TO_MOTION, text=caption).motion
        piece = np.stack([motion.a, motion.b])
        t2m_pieces.append(piece)
        measure("text_to_motion", codec.decode(piece), interaction)
        per_clip.append(
            {"clip": clip_id, "interaction": interaction, "caption": caption, "t2m_steps": len(piece[0])}
        )

    summary = {s: {stage: _mean_rows(r) for stage, r in stages.items()} for s, stages in rows.items()}

    composition: dict[str, dict[str, dict[str, float]]] = {}
    curves: dict[str, dict[str, np.ndarray]] = {}
    joins = {
        "generated tokens": join_frames([p.shape[1] * codec.stride for p in t2m_pieces]),
        "recorded positions": join_frames([p.shape[1] for p in recorded_pieces]),
    }
    makers = {
        "generated tokens": lambda s: decode_composed(codec, t2m_pieces, smooth_frames=s),
        "recorded positions": lambda s: compose_positions(recorded_pieces, smooth_frames=s),
    }
    for what, make in makers.items():
        composition[what], curves[what] = {}, {}
        for stage, s in (("off", 0), (f"+/-{smooth_frames} frames", smooth_frames)):
            composed = make(s)
            speeds = join_speeds(composed, joins[what], window=smooth_frames)
            composition[what][stage] = {**speeds, "joins": len(joins[what])}
            curves[what][stage] = _speed_curve(composed)
    figure_path = _draw(curves, joins, Path(figure)) if figure else None
    return {
        "split": split,
        "clips": len(ids),
        "seconds": time.perf_counter() - t0,
        "summary": summary,
        "composition": composition,
        "table": format_table(summary),
        "composition_table": format_composition(composition),
        "figure": str(figure_path) if figure_path else None,
        "per_clip": per_clip,
    }


def format_report(report: dict[str, Any]) -> str:
    """Both tables with the context a reader needs."""
    text = (
        f"{report['clips']} two-person clips of the {report['split']} split, {report['seconds']:.0f} s; "
        "before/after refine_reactor, person a's canonical frame\n\n"
        f"{report['table']}\n\ncomposition (speed = largest per-frame joint displacement x 30)\n\n"
        f"{report['composition_table']}"
    )
    if report.get("figure"):
        text += f"\n\nfigure: {report['figure']}"
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m molam_ros.coordination.report",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="motion-language model checkpoint directory")
    parser.add_argument("--tokenizer", required=True, help="RQ-VAE tokenizer checkpoint directory")
    parser.add_argument(
        "--data", required=True, help="dataset directory (molam layout) with a held-out split"
    )
    parser.add_argument("--clips", type=int, default=8, help="two-person clips of the split to use")
    parser.add_argument("--split", default="test", help="dataset split")
    parser.add_argument("--max-steps", type=int, default=40, help="motion steps per generated motion")
    parser.add_argument("--method", default="head", choices=("head", "tokens"), help="generation method")
    parser.add_argument("--smooth-frames", type=int, default=5, help="half width of join smoothing, frames")
    parser.add_argument("--figure", type=Path, default=None, help="write the composition figure (PNG) here")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers (JSON) here")
    args = parser.parse_args(argv)
    if args.clips < 1:
        parser.error("--clips must be >= 1")
    report = coordination_report(
        args.checkpoint,
        args.tokenizer,
        args.data,
        clips=args.clips,
        split=args.split,
        max_steps=args.max_steps,
        method=args.method,
        smooth_frames=args.smooth_frames,
        figure=args.figure,
    )
    print(format_report(report))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
