"""Training examples of stages 2 and 3: dataset clips -> RQ-VAE codes -> tokenized `Example`s.

Stage 1 (the tokenizer) is frozen by the time the LLM trains, so every clip is encoded once and the
codes are cached (`encode_dataset_codes`); the LLM stages then only slice integer arrays.

Person order. Codes are cached in the dataset's order (person a = index 0), which is the order the
captions use ("person A waves person B over"), so text tasks read the clip as stored. A reaction,
though, always generates person b from person a (the streaming layout): when the clip's actor is its
second person (`meta["actor"] == 1`) the reactor would be person a. For those clips the cache also
holds the pair swapped, under `clip_id + SWAPPED`, with the features recomputed from the swapped
positions, so the actor is person a AND person b is expressed in the actor's canonical frame, exactly
what a live partner stream gives. Reactions use those codes; no caption is ever attached to them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from molam_ros.data.conversations import reasoning_pairs as _reasoning_pairs
from molam_ros.llm.prompts import Example, MotionCodes, PromptConfig, Task, Turn, build_example
from molam_ros.llm.reaction_codes import checkpoint_digest
from molam_ros.llm.vocab import MotionVocab

SWAPPED = "@actor_first"  # cache key suffix of a clip's codes with its two people swapped (docstring)
_CACHE_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class ExampleConfig:
    """Which examples to build and how long they may be (lengths bound the context and the step time)."""

    max_steps: int = 48  # token steps per motion span (48 x l=4 frames = 6.4 s at 30 fps): ~500 tokens
    min_steps: int = 2  # clips / slices shorter than this give no example
    tasks: tuple[str, ...] = tuple(t.value for t in Task if t is not Task.CONVERSATION)
    # Share of each task's examples kept per epoch (missing: 1.0). A compute budget spent where it
    # matters: on a CPU the `small` preset keeps every reaction and fewer of the rest.
    task_weights: dict[str, float] = field(default_factory=dict)
    prompt: PromptConfig = PromptConfig()

    def __post_init__(self) -> None:
        if self.min_steps < 1 or self.max_steps < self.min_steps:
            raise ValueError("ExampleConfig needs 1 <= min_steps <= max_steps")
        for t in self.tasks:
            Task.parse(t)
        for t, w in self.task_weights.items():
            Task.parse(t)
            if not 0.0 <= w <= 1.0:
                raise ValueError(f"task weight of {t} must be in [0, 1], got {w}")


# helper functions


def _encode_clip(engine: Any, positions: np.ndarray) -> np.ndarray:
    """(P, T, 22, 3) positions -> (P, L, D) int16 codes, T cropped to a multiple of the stride."""
    from molam_ros.motion.layout import layout_of, pair_to_features

    features, _ = pair_to_features(positions, layout=layout_of(int(engine.feature_dim)))  # (P, T, F)
    T = features.shape[1] // engine.stride * engine.stride
    return engine.encode(features[:, :T].astype(np.float32)).astype(np.int16)  # (P, T/l, D)


# stage 1 output: codes


def encode_dataset_codes(
    dataset_dir: str | Path,
    tokenizer_checkpoint: str | Path,
    cache_path: str | Path,
    *,
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Codes of every clip of a dataset, `{clip_id: (P, L, D) int array}` (see the module docstring
    for the `SWAPPED` entries), read from `cache_path` (.npz) when it was made by the same checkpoint
    for the same clip ids, otherwise encoded with the torch engine and written there.
    """
    from molam_ros.data.dataset import MotionDataset
    from molam_ros.tokenizer.engines import TorchEngine

    dataset = MotionDataset(dataset_dir)
    checkpoint = Path(tokenizer_checkpoint)
    key = {"format": _CACHE_FORMAT, "checkpoint": checkpoint_digest(checkpoint), "clips": dataset.ids()}
    key_str = json.dumps(key, sort_keys=True)
    cache = Path(cache_path)
    if cache.is_file():
        with np.load(cache) as z:
            if "__key__" in z and str(z["__key__"]) == key_str:
                return {k: z[k] for k in z.files if k != "__key__"}
    engine = TorchEngine(checkpoint)
    codes: dict[str, np.ndarray] = {}
    for clip_id in tqdm(dataset.ids(), desc="encoding clips", unit="clip", disable=not progress):
        clip = dataset.load(clip_id)
        if clip.num_frames < engine.stride:
            continue
        codes[clip_id] = _encode_clip(engine, clip.positions)
        if clip.positions.shape[0] == 2 and clip.meta.get("actor") == 1:
            codes[clip_id + SWAPPED] = _encode_clip(engine, clip.positions[::-1])
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez_compressed(tmp, __key__=np.asarray(key_str), **codes)
    tmp.replace(cache)  # atomic: a crashed run never leaves a half cache that looks valid
    return codes


# stage 2: motion-text pairs of every task


def _crop(n: int, max_steps: int, rng: np.random.Generator) -> slice:
    """A random window of at most max_steps steps inside n steps."""
    if n <= max_steps:
        return slice(0, n)
    start = int(rng.integers(0, n - max_steps + 1))
    return slice(start, start + max_steps)


def _steps(frame_start: int, frame_end: int, stride: int, n: int) -> slice:
    """Frames [start, end) as a slice of token steps (a step belongs where its frames start)."""
    lo = min(frame_start // stride, n)
    hi = min(max(-(-frame_end // stride), lo), n)
    return slice(lo, hi)


def stage2_turns(
    dataset: Any,
    codes: dict[str, np.ndarray],
    *,
    stride: int,
    rng: np.random.Generator,
    split: str = "train",
    config: ExampleConfig | None = None,
) -> Iterator[Turn]:
    """One `Turn` per task per clip of `split` (editing only where two clips differ only in style).

    The cheap, inspectable half of `stage2_examples` (tests check the tasks and people here).
    """
    config = config or ExampleConfig()
    tasks = {Task.parse(t) for t in config.tasks}
    ids = [i for i in dataset.ids(split) if i in codes]
    metas = {i: dataset.load(i).meta for i in ids}
    texts = {i: dataset.load(i).texts for i in ids}
    for clip_id in ids:
        c = codes[clip_id]  # (P, L, D)
        meta, L = metas[clip_id], c.shape[1]
        if L < config.min_steps:
            continue
        two = c.shape[0] == 2
        win = _crop(L, config.max_steps, rng)
        both = MotionCodes(a=c[0, win], b=c[1, win]) if two else MotionCodes(a=c[0, win])
        caption = texts[clip_id][int(rng.integers(len(texts[clip_id])))] if texts[clip_id] else None
        if caption is not None and Task.TEXT_TO_MOTION in tasks and two:
            yield Turn(task=Task.TEXT_TO_MOTION, text=caption, answer=both)
        if caption is not None and Task.MOTION_TO_TEXT in tasks:
            yield Turn(task=Task.MOTION_TO_TEXT, motion=both, answer=caption)
        if Task.REACTION in tasks and two:
            r = codes.get(clip_id + SWAPPED, c) if meta.get("actor") == 1 else c  # actor is person a
            rw = slice(win.start, min(win.stop, r.shape[1]))
            yield Turn(task=Task.REACTION, motion=MotionCodes(a=r[0, rw]), answer=MotionCodes(b=r[1, rw]))
        if Task.PREDICTION in tasks and win.stop - win.start >= 2 * config.min_steps:
            cut = win.start + (win.stop - win.start) // 2
            head, tail = slice(win.start, cut), slice(cut, win.stop)
            given = MotionCodes(a=c[0, head], b=c[1, head]) if two else MotionCodes(a=c[0, head])
            rest = MotionCodes(a=c[0, tail], b=c[1, tail]) if two else MotionCodes(a=c[0, tail])
            yield Turn(task=Task.PREDICTION, motion=given, answer=rest)
        if Task.REASONING in tasks and two:
            pairs = _reasoning_pairs(meta)
            inter = next((s for s in meta.get("segments", []) if s.get("kind") == "interaction"), None)
            if pairs and inter is not None:
                sl = _steps(int(inter["start"]), int(inter["end"]), stride, L)
                sl = slice(sl.start, min(sl.stop, sl.start + config.max_steps))
                if sl.stop - sl.start >= config.min_steps:
                    q, a = pairs[int(rng.integers(len(pairs)))]
                    yield Turn(
                        task=Task.REASONING, text=q, motion=MotionCodes(a=c[0, sl], b=c[1, sl]), answer=a
                    )
        if Task.EDITING in tasks and two:
            yield from _editing_turns(clip_id, metas, codes, config, rng)


def _editing_turns(
    clip_id: str,
    metas: dict[str, dict[str, Any]],
    codes: dict[str, np.ndarray],
    config: ExampleConfig,
    rng: np.random.Generator,
) -> Iterator[Turn]:
    """An edit from this clip to the same scene in another style, else the same interaction in one.

    Edit variants (molam_ros/data/edit_variants.py: same seed, another style, `edit_of` naming the
    source) are real "the same motion, changed" pairs, in both directions. Without one, the nearest
    thing is another clip of the same interaction in another style; the instruction names the
    target style either way.
    """
    meta = metas[clip_id]
    kind, style = meta.get("interaction"), meta.get("style")
    if kind is None or style is None:
        return
    source = meta.get("edit_of", clip_id)
    family = [
        i
        for i, m in metas.items()
        if i != clip_id and (i == source or m.get("edit_of") == source) and m.get("style") != style
    ]
    others = family or [
        i
        for i, m in metas.items()
        if i != clip_id and m.get("interaction") == kind and m.get("style") not in (None, style)
    ]
    if not others:
        return
    target = others[int(rng.integers(len(others)))]
    src, dst = codes[clip_id], codes[target]
    ws, wd = _crop(src.shape[1], config.max_steps, rng), _crop(dst.shape[1], config.max_steps, rng)
    yield Turn(
        task=Task.EDITING,
        text=f"make it {metas[target]['style']}",
        motion=MotionCodes(a=src[0, ws], b=src[1, ws]),
        answer=MotionCodes(a=dst[0, wd], b=dst[1, wd]),
    )


def stage2_examples(
    dataset: Any,
    codes: dict[str, np.ndarray],
    tokenizer: Any,
    vocab: MotionVocab,
    rng: np.random.Generator,
    *,
    stride: int,
    split: str = "train",
    config: ExampleConfig | None = None,
) -> Iterator[Example]:
    """Tokenized motion-text pairs of every task (one per task per clip), phrasings drawn from `rng`."""
    config = config or ExampleConfig()
    for turn in stage2_turns(dataset, codes, stride=stride, rng=rng, split=split, config=config):
        if rng.random() >= config.task_weights.get(turn.task.value, 1.0):
            continue
        yield build_example(
            turn.task,
            tokenizer=tokenizer,
            vocab=vocab,
            config=config.prompt,
            rng=rng,
            text=turn.text,
            motion=turn.motion,
            answer=turn.answer,
        )


# stage 3: conversations


def _resolve(
    ref: Any, codes: dict[str, np.ndarray], stride: int, max_steps: int, *, swapped: bool = False
) -> dict[str, np.ndarray]:
    """A `MotionRef` (clip, frames [start, end), persons) as {person: (L, D) codes}, cropped to max_steps."""
    key = ref.clip + SWAPPED if swapped else ref.clip
    if key not in codes:
        raise KeyError(f"conversation refers to clip {ref.clip!r}, which has no codes (not in the dataset?)")
    c = codes[key]
    end = c.shape[1] * stride if ref.end is None else int(ref.end)
    sl = _steps(int(ref.start), end, stride, c.shape[1])
    sl = slice(sl.start, min(sl.stop, sl.start + max_steps))
    if sl.stop <= sl.start:
        raise ValueError(f"motion ref {ref} holds no whole token step")
    persons = tuple(ref.persons)
    if swapped:
        persons = tuple("b" if p == "a" else "a" for p in persons)
    return {p: c["ab".index(p), sl] for p in persons}


def conversation_turns(
    conversation: Any, codes: dict[str, np.ndarray], *, stride: int, max_steps: int
) -> list[Turn]:
    """`Conversation` (molam_ros.data.conversations) -> prompt `Turn`s, motion refs resolved to codes.

    A reaction turn whose given person is b (the clip's actor is its second person) reads the
    swapped codes, so the given partner is person a in the span, as the layout requires.
    """
    turns = []
    for t in conversation.turns:
        task = Task.parse(t.task)
        motion = answer = None
        swapped = task is Task.REACTION and t.motion is not None and tuple(t.motion.persons) == ("b",)
        if t.motion is not None:
            m = _resolve(t.motion, codes, stride, max_steps, swapped=swapped)
            motion = MotionCodes(a=m.get("a"), b=m.get("b"))
        if isinstance(t.answer, str):
            answer = t.answer
        elif t.answer is not None:
            m = _resolve(t.answer, codes, stride, max_steps, swapped=swapped)
            answer = MotionCodes(a=m.get("a"), b=m.get("b"))
            if task is Task.REACTION and motion is not None:
                n = min(motion.steps, answer.steps)  # refs of the two people may round differently
                motion, answer = MotionCodes(a=motion.a[:n]), MotionCodes(b=answer.b[:n])
        turns.append(Turn(task=task, text=t.text, motion=motion, answer=answer))
    return turns


def stage3_examples(
    conversations: Iterable[Any],
    codes: dict[str, np.ndarray],
    tokenizer: Any,
    vocab: MotionVocab,
    rng: np.random.Generator,
    *,
    stride: int,
    config: ExampleConfig | None = None,
) -> Iterator[Example]:
    """One tokenized multi-turn example per conversation (loss on every assistant answer).

    Conversations that do not fit (too long, a ref to a missing clip) are skipped rather than
    stopping a long run; the number skipped is in `stage3_examples.skipped` of the last call.
    """
    config = config or ExampleConfig()
    skipped: list[str] = []
    for conv in conversations:
        try:
            turns = conversation_turns(conv, codes, stride=stride, max_steps=config.max_steps)
            yield build_example(
                Task.CONVERSATION,
                tokenizer=tokenizer,
                vocab=vocab,
                config=config.prompt,
                rng=rng,
                turns=turns,
            )
        except (KeyError, ValueError) as e:
            skipped.append(f"{getattr(conv, 'id', '?')}: {e}")
    _SKIPPED[:] = skipped


_SKIPPED: list[str] = []


def skipped_conversations() -> Sequence[str]:
    """Why conversations of the last `stage3_examples` pass were skipped (id: reason)."""
    return tuple(_SKIPPED)
