"""`molam llm eval`: the quality table of a trained motion-language model on held-out generator clips.

For each of the first `clips` two-person clips of the split:

- reaction: the actor's recorded motion goes in as person a (the pair is re-ordered when the clip's
  actor is its second person, so person b is always the reactor, as in training and on a robot),
  streamed step by step with the live context bounds; the reactor's first step (4 frames, where it
  stands and how, what a robot knows of itself) is given, as the baselines get its first frame. The
  generated reactor is decoded and compared with the RECORDED reactor (ground-truth positions, so
  the tokenizer's own reconstruction error counts against the model), next to two baselines
  measured on the same clip (reaction_baselines.reaction_errors: a reactor that stands still, one that mirrors
  person a). All in person a's canonical frame.
- motion-to-text: the clip's codes in, a caption out; does it name the clip's interaction and style
  (caption_labels.py)?
- text-to-motion: one of the clip's captions in, a two-person motion out; does an interaction
  classifier trained on the generator's train split recognise the asked interaction? The
  classifier's own accuracy on the recorded held-out clips is printed beside it as the ceiling.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from molam_ros.llm.generate import Generator, SamplingConfig
from molam_ros.llm.interaction_classifier import InteractionClassifier
from molam_ros.llm.model import MotionLM
from molam_ros.llm.motion_io import MotionCodec
from molam_ros.llm.prompts import MotionCodes, Task
from molam_ros.llm.quality import QualityTable
from molam_ros.llm.reaction_baselines import reaction_errors
from molam_ros.motion.canonical import canonicalize


def _classifier(data_dir: Path, path: Path | None) -> InteractionClassifier:
    """The classifier saved at `path` (.npz), else trained on the dataset's train split (and saved there)."""
    from molam_ros.data.dataset import MotionDataset

    if path is not None and path.is_file():
        return InteractionClassifier.load(path)
    clf = InteractionClassifier().fit(MotionDataset(data_dir), split="train")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        clf.save(path)
    return clf


def evaluate_model(
    mlm: MotionLM,
    codec: MotionCodec,
    data_dir: str | Path,
    *,
    split: str = "test",
    clips: int = 24,
    method: str = "head",
    max_steps: int = 40,
    classifier: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the three tasks on held-out clips; returns the table (markdown) and per-clip results."""
    from molam_ros.data.dataset import MotionDataset

    data_dir = Path(data_dir)
    ds = MotionDataset(data_dir)
    ids = [i for i in ds.ids(split) if ds.load(i).num_people == 2][:clips]
    if not ids:
        raise ValueError(f"{data_dir} has no two-person clips in split {split!r}")
    clf = _classifier(data_dir, Path(classifier) if classifier else None)
    gen = Generator(mlm, method=method, sampling=SamplingConfig(max_steps=max_steps))
    table = QualityTable()
    per_clip: list[dict[str, Any]] = []
    stride = codec.stride
    t0 = time.perf_counter()
    for clip_id in tqdm(ids, desc="llm eval", unit="clip", disable=not progress):
        clip = ds.load(clip_id)
        meta = clip.meta
        row: dict[str, Any] = {
            "clip": clip_id,
            "interaction": meta.get("interaction"),
            "style": meta.get("style"),
        }
        # reaction: the actor first
        pair = clip.positions[::-1] if meta.get("actor") == 1 else clip.positions
        codes, _ = codec.encode(pair)
        codes = codes[:, :max_steps]
        b = gen.run(Task.REACTION, motion=MotionCodes(a=codes[0], b=codes[1, :1])).motion.b
        pred = codec.decode(np.stack([codes[0], b]))  # canonical frame of the decoded pair
        canon, _ = canonicalize(pair)
        T = min(pred.shape[1], canon.shape[1], codes.shape[1] * stride)
        errors = reaction_errors(canon[0, :T], canon[1, :T], pred[1, :T])
        table.add_reaction(errors)
        row["reaction_mm"] = errors
        # motion-to-text, in the clip's own order (the one its captions use)
        stored = codes if meta.get("actor") != 1 else codec.encode(clip.positions)[0][:, :max_steps]
        caption = gen.run(Task.MOTION_TO_TEXT, motion=MotionCodes(a=stored[0], b=stored[1])).text
        row["caption"] = caption
        row["caption_match"] = table.add_caption(
            caption, str(meta.get("interaction")), str(meta.get("style"))
        )
        # text-to-motion
        asked = clip.texts[0] if clip.texts else str(meta.get("interaction"))
        motion = gen.run(Task.TEXT_TO_MOTION, text=asked).motion
        positions = codec.decode(np.stack([motion.a, motion.b]))
        predicted = clf.predict(positions)
        row["t2m"] = {"asked": asked, "recognised_as": predicted}
        table.add_text_to_motion(predicted, str(meta.get("interaction")))
        per_clip.append(row)
    return {
        "split": split,
        "clips": len(ids),
        "method": method,
        "seconds": time.perf_counter() - t0,
        "classifier_accuracy_on_recorded": clf.accuracy(ds, split=split),
        "table": table.markdown(),
        "per_clip": per_clip,
    }


def format_report(report: dict[str, Any]) -> str:
    """The table plus the context a reader needs to trust it."""
    return (
        f"{report['clips']} held-out clips ({report['split']} split), motion by the {report['method']} "
        f"method, {report['seconds']:.0f} s\n\n{report['table']}\n\n"
        f"the interaction classifier recognises {report['classifier_accuracy_on_recorded']:.0%} of the "
        f"recorded {report['split']} clips (the ceiling of the t2m row)"
    )
