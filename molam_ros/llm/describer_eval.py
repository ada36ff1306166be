"""`molam describer eval`: does a caption name the clip's interaction and style, next to baselines.

Each held-out clip's caption is judged by llm/caption_labels.py (regular expressions written from
the generator's templates, sharing nothing with the model). Rows measured in the same run on the
same clips:

- the describer (the LLM's motion-to-text), and the labels line it writes first where it does;
- nearest training clip: the first caption of the training clip whose code histogram (each person's
  codes of every depth, counted) is closest in cosine: a model-free reader of the same codes, what
  the LLM has to beat;
- most common caption: a describer that always names the training split's most frequent
  interaction and style (chance, as the data is balanced);
- recorded captions: the clip's own first caption, the judge's ceiling (a caption the judge cannot
  read counts against every row alike).
"""

from __future__ import annotations

import collections
import time
from typing import Any

import numpy as np
from tqdm import tqdm

from molam_ros.llm.caption_labels import caption_labels
from molam_ros.llm.describer import MotionDescriber
from molam_ros.llm.describer_train import CaptionedCodes


def code_histogram(codes: np.ndarray, codebook_size: int) -> np.ndarray:
    """(L, 2, D) codes -> unit vector of code counts per person and depth (2 * D * K)."""
    L, P, D = codes.shape
    index = (np.arange(P * D).reshape(1, P, D) * codebook_size + codes.astype(np.int64)).ravel()
    h = np.bincount(index, minlength=P * D * codebook_size).astype(np.float32)
    return h / max(1e-9, float(np.linalg.norm(h)))


def nearest_captions(
    data: CaptionedCodes, rows: list[int], codebook_size: int, max_steps: int, window: int = 0
) -> list[str]:
    """The first caption of each row's nearest training clip by code histogram (module docstring);
    `window` > 0: each row read as its live window (CaptionedCodes.window), the bank as before."""
    train = data.indices("train")
    bank = np.stack([code_histogram(data.codes[i][:max_steps], codebook_size) for i in train])
    out = []
    for i in rows:
        query = data.window(i, window) if window else data.codes[i][:max_steps]
        score = bank @ code_histogram(query, codebook_size)
        out.append(data.captions[train[int(np.argmax(score))]][0])
    return out


def _score(captions: list[str], data: CaptionedCodes, rows: list[int]) -> dict[str, Any]:
    got = [caption_labels(c) for c in captions]
    kind = [g[0] == data.interactions[i] for g, i in zip(got, rows, strict=True)]
    style = [g[1] == data.styles[i] for g, i in zip(got, rows, strict=True)]
    both = [k and s for k, s in zip(kind, style, strict=True)]
    return {"interaction": float(np.mean(kind)), "style": float(np.mean(style)), "both": float(np.mean(both))}


def evaluate_describer(
    net: MotionDescriber,
    data: CaptionedCodes,
    *,
    split: str = "val",
    clips: int = 200,
    batch: int = 16,
    progress: bool = True,
    window: int = 0,
) -> dict[str, Any]:
    """The describer's captions of the split's first `clips` clips, scored with the baselines.
    `window` > 0: each clip is read as a live question right after its interaction reads it, the last
    `window` steps up to the interaction's end (CaptionedCodes.window), instead of from its start."""
    rows = data.indices(split)[:clips]
    if not rows:
        raise ValueError(f"no captioned two-person clips in split {split!r}")
    t0 = time.perf_counter()
    answers: list[tuple[str, str]] = []
    for s in tqdm(range(0, len(rows), batch), desc="describing", unit="batch", disable=not progress):
        read = [data.window(i, window) if window else data.codes[i] for i in rows[s : s + batch]]
        answers += net.answers(read)
    captions = [caption or labels for labels, caption in answers]
    seconds = time.perf_counter() - t0
    train = data.indices("train")
    common = collections.Counter((data.interactions[i], data.styles[i]) for i in train).most_common(1)[0][0]
    c = net.config
    table = {
        "describer (LLM)": _score(captions, data, rows),
        **({"its labels line": _score([a[0] for a in answers], data, rows)} if net.config.label_line else {}),
        "nearest training clip (codes)": _score(
            nearest_captions(data, rows, c.codebook_size, c.max_steps, window), data, rows
        ),
        "most common caption": {
            "interaction": float(np.mean([data.interactions[i] == common[0] for i in rows])),
            "style": float(np.mean([data.styles[i] == common[1] for i in rows])),
            "both": float(np.mean([(data.interactions[i], data.styles[i]) == common for i in rows])),
        },
        "recorded captions (judge's ceiling)": _score([data.captions[i][0] for i in rows], data, rows),
    }
    per_clip = [
        {
            "clip": data.clip_ids[i],
            "interaction": data.interactions[i],
            "style": data.styles[i],
            "labels": answer[0],
            "caption": cap,
        }
        for i, cap, answer in zip(rows, captions, answers, strict=True)
    ]
    return {
        "split": split,
        "window": window,
        "clips": len(rows),
        "seconds": round(seconds, 1),
        "table": table,
        "per_clip": per_clip,
    }


def format_describer_report(report: dict[str, Any], examples: int = 6) -> str:
    """Markdown table of the shares with the clip count, and a few captions to read."""
    n = report["clips"]
    lines = [
        f"{n} held-out clips ({report['split']} split"
        + (
            f", each its last {report['window']} steps up to the interaction's end"
            if report.get("window")
            else ""
        )
        + f"), {report['seconds']:.0f} s to describe them",
        "",
        "| captioner | interaction named | style named | both |",
        "|---|---|---|---|",
    ]
    for name, r in report["table"].items():
        lines.append(f"| {name} | {r['interaction']:.0%} | {r['style']:.0%} | {r['both']:.0%} |")
    lines += ["", "examples (clip: interaction, style -> caption):"]
    for row in report["per_clip"][:examples]:
        lines.append(
            f"- {row['clip']}: {row['interaction']}, {row['style']} -> [{row['labels']}] {row['caption']}"
        )
    return "\n".join(lines)


__all__ = ["code_histogram", "evaluate_describer", "format_describer_report", "nearest_captions"]
