"""Reaction training data as the live pipeline sees it: the actor's codes and the reactor's codes.

A reaction always generates person b (the reactor) from person a (the actor), so clips whose actor is
their second person are swapped. The two people's codes are NOT encoded the same way, on purpose:

- The reactor's codes are its ego features with the true actor as partner: what the decoder turns
  into the reactor's body and its placement relative to the actor (`ego.anchored_root`).
- The actor's codes are what the live pipeline encodes (`runtime/pipeline.py`): its partner is the
  reactor *where it last stood*, held over the step, because the reactor's frames of a step are
  generated after the actor's codes of that step. Encoding the training data the same way keeps
  training and use on the same inputs (`runtime_partner`).

Steering pairs (`mismatched`): the actor of one training clip with the reactor of another clip of a
different interaction, always trained with that reactor's instruction. Without them, every reactor in
the data does what the actor's motion calls for, so an instruction carries nothing the actor does not
already say and a model has no reason to follow it; with them, "wave back" while the person kicks
means wave (the steerability the quality table measures).

Onset alignment (`steering_onset`). In a steering pair nothing in the actor says when the reactor
starts: the generator's reactors start moving anywhere from 0.7 to 4 s into a clip (10th-90th
percentile, 300 training clips of synth20k), cued by their own actor. Trained on them unaligned, a
regression learns the mean over those start times, a slow smear that no classifier recognises
(steered reactors: 1 of 30 validation clips recognised as the instructed interaction). With
`steering_onset` = k frames, the other clip's reactor is cut so that its motion starts k frames
(plus up to k of jitter) into the pair: told, the reactor starts promptly, as a robot told "wave
at them" should. The cut is kept in the pair's id ("x+y@frames").

Codes of a whole dataset are packed into flat arrays with per-clip offsets (tens of thousands of
clips load in a second) and cached next to the data, keyed by the tokenizer's files and the clip ids.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from molam_ros.motion import ego
from molam_ros.motion.canonical import canonicalize

_CACHE_FORMAT = 1


def reaction_pair(positions: np.ndarray, actor: int) -> np.ndarray:
    """(2, T, 22, 3) positions with the actor first."""
    if positions.shape[0] != 2:
        raise ValueError(f"a reaction needs two people, got {positions.shape[0]}")
    return positions[::-1] if actor == 1 else positions


def runtime_partner(reactor: np.ndarray, stride: int) -> np.ndarray:
    """(T, 22, 3) the reactor as the live pipeline shows it to the actor's encoder.

    Frames of step s see the reactor's last frame of step s - 1 (step 0: its first frame, where the
    robot stands when the person arrives).
    """
    T = reactor.shape[0]
    idx = np.maximum((np.arange(T) // stride) * stride - 1, 0)
    return reactor[idx]


def reaction_features(pair: np.ndarray, stride: int) -> np.ndarray:
    """(2, T, 268) ego features: the actor's with the runtime partner, the reactor's with the actor."""
    canon, _ = canonicalize(pair)
    a = ego.person_to_ego(canon[0], runtime_partner(canon[1], stride))
    b = ego.person_to_ego(canon[1], canon[0])
    return np.stack([a, b])


@dataclass
class ReactionCodes:
    """Codes of many clips packed flat: clip i's steps are rows offsets[i]:offsets[i + 1]."""

    a: np.ndarray  # (N, D) int16 actor codes
    b: np.ndarray  # (N, D) int16 reactor codes
    offsets: np.ndarray  # (clips + 1,) int64
    clip_ids: list[str]
    splits: list[str]
    interactions: list[str]
    styles: list[str]
    instructed: list[bool] | None = None  # steering pairs: always trained with their instruction

    def __post_init__(self) -> None:
        if self.instructed is None:
            self.instructed = [False] * len(self.clip_ids)

    def __len__(self) -> int:
        return len(self.clip_ids)

    def clip(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        s, e = int(self.offsets[i]), int(self.offsets[i + 1])
        return self.a[s:e], self.b[s:e]

    def steps(self, i: int) -> int:
        return int(self.offsets[i + 1] - self.offsets[i])

    def indices(self, split: str) -> list[int]:
        return [i for i, s in enumerate(self.splits) if s == split]

    def subset(self, indices: list[int]) -> ReactionCodes:
        a, b, off = [], [], [0]
        for i in indices:
            ca, cb = self.clip(i)
            a.append(ca)
            b.append(cb)
            off.append(off[-1] + len(ca))
        D = self.a.shape[1]
        return ReactionCodes(
            a=np.concatenate(a) if a else np.zeros((0, D), np.int16),
            b=np.concatenate(b) if b else np.zeros((0, D), np.int16),
            offsets=np.asarray(off, dtype=np.int64),
            clip_ids=[self.clip_ids[i] for i in indices],
            splits=[self.splits[i] for i in indices],
            interactions=[self.interactions[i] for i in indices],
            styles=[self.styles[i] for i in indices],
            instructed=[self.instructed[i] for i in indices],
        )


def actor_first_pair(dataset: Any, clip_id: str, frames: int) -> np.ndarray:
    """(2, frames, 22, 3) the pair of a clip id in its actor's canonical frame, actor first; a
    steering pair "x+y" joins x's actor to y's reactor, "x+y@k" to y's reactor from its frame k on
    (module docstring)."""
    ids = clip_id.split("+")
    starts = [0] * len(ids)
    if "@" in ids[-1]:
        ids[-1], cut = ids[-1].split("@")
        starts[-1] = int(cut)
    clips = [dataset.load(i) for i in ids]
    pairs = [
        canonicalize(reaction_pair(c.positions[:, k : k + frames], int(c.meta.get("actor", 0))))[0]
        for c, k in zip(clips, starts, strict=True)
    ]
    return pairs[0] if len(pairs) == 1 else np.stack([pairs[0][0], pairs[1][1]])


def reaction_onset(reactor: np.ndarray, fps: float = 30.0) -> int | None:
    """The first frame at which a (T, 22, 3) reactor starts to move: its body (root-relative joints,
    mean speed over 0.15 m/s) or its root (planar speed over 0.3 m/s); None if it never does."""
    body = np.linalg.norm(np.diff(reactor - reactor[:, :1], axis=0), axis=-1).mean(-1) * fps
    root = np.linalg.norm(np.diff(reactor[:, 0, [0, 2]], axis=0), axis=-1) * fps
    moving = np.nonzero((body > 0.15) | (root > 0.3))[0]
    return int(moving[0]) if len(moving) else None


@dataclass
class ReactionTargets:
    """The reactor's normalised features of some clips of a ReactionCodes: clip i's frames are rows
    offsets[k]:offsets[k + 1] of `features` where k = row[i]."""

    features: np.ndarray  # (frames, F) float16, normalised by the tokenizer's stats
    offsets: np.ndarray
    row: dict[int, int]

    def clip(self, i: int) -> np.ndarray:
        k = self.row[i]
        return self.features[self.offsets[k] : self.offsets[k + 1]]


def reaction_targets(
    dataset_dir: str | Path,
    tokenizer_checkpoint: str | Path,
    codes: ReactionCodes,
    indices: list[int],
    *,
    progress: bool = True,
    person: int = 1,
) -> ReactionTargets:
    """The reactor's ego features (normalised, float16) of the given clips of `codes`, what the small
    reactor regresses; cached in the dataset directory by tokenizer and clip ids (features need IK:
    about 25 ms a clip, so they are computed once). `person` 0: the actor's instead, its partner the
    reactor at the same frames (what the actor generator of llm/pair_generator.py regresses)."""
    if person not in (0, 1):
        raise ValueError(f"person is 0 (the actor) or 1 (the reactor), got {person!r}")
    from molam_ros.data.dataset import MotionDataset
    from molam_ros.tokenizer.engines import TorchEngine

    checkpoint = Path(tokenizer_checkpoint)
    ids = [codes.clip_ids[i] for i in indices]
    digest = checkpoint_digest(checkpoint)
    fields = {
        "format": _CACHE_FORMAT,
        "checkpoint": digest,
        "clips": ids,
        **({"person": 0} if person == 0 else {}),
    }
    key = json.dumps(fields, sort_keys=True)
    name = hashlib.sha256(key.encode()).hexdigest()[:12]
    cache = Path(dataset_dir) / f"reaction_targets.{name}.npz"
    row = {i: k for k, i in enumerate(indices)}
    if cache.is_file():
        with np.load(cache) as z:
            if str(z["key"]) == key:
                return ReactionTargets(z["features"], z["offsets"], row)
    dataset = MotionDataset(dataset_dir)
    engine = TorchEngine(checkpoint, threads=1)
    feats, off = [], [0]
    for i in tqdm(indices, desc="reactor features", unit="clip", disable=not progress):
        T = codes.steps(i) * engine.stride
        canon, _ = canonicalize(actor_first_pair(dataset, codes.clip_ids[i], T))  # as reaction_features
        me = ego.person_to_ego(canon[person], canon[1 - person])
        feats.append(engine.stats.normalize(me).astype(np.float16))
        off.append(off[-1] + len(feats[-1]))
    out = ReactionTargets(np.concatenate(feats), np.asarray(off, dtype=np.int64), row)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez(tmp, key=np.asarray(key), features=out.features, offsets=out.offsets)
    tmp.replace(cache)
    return out


def decoded_targets(
    engine: Any, codes: ReactionCodes, indices: list[int], *, progress: bool = True
) -> ReactionTargets:
    """The reactor's features as the tokenizer decodes its codes (normalised, float16), in place of
    `reaction_targets`: they need no motion files and no IK, so a training run can travel with the
    codes alone (a lent GPU takes 64 MiB; the recorded targets of 18k clips are 1.4 GB). The reactor
    then regresses what its codes can say: the eval's `codes` row, about 45 mm from the recording."""
    feats, off = [], [0]
    for i in tqdm(indices, desc="decoding reactor codes", unit="clip", disable=not progress):
        _, b = codes.clip(i)
        raw = engine.decode(b[None].astype(np.int64))[0]
        feats.append(engine.stats.normalize(raw).astype(np.float16))
        off.append(off[-1] + len(feats[-1]))
    return ReactionTargets(
        np.concatenate(feats), np.asarray(off, dtype=np.int64), {i: k for k, i in enumerate(indices)}
    )


def checkpoint_digest(checkpoint: Path) -> str:
    """sha256 (16 hex digits) over a tokenizer checkpoint's files: new weights invalidate code caches."""
    h = hashlib.sha256()
    for name in ("config.json", "model.safetensors"):
        path = checkpoint / name
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def encode_reaction_codes(
    dataset_dir: str | Path,
    tokenizer_checkpoint: str | Path,
    cache_path: str | Path | None = None,
    *,
    progress: bool = True,
    max_clips: int | None = None,
    mismatched: int = 0,
    seed: int = 0,
    steering_onset: int | None = None,
) -> ReactionCodes:
    """Reaction codes of every two-person clip of a dataset (module docstring), and `mismatched`
    steering pairs made of its training clips, their reactors' onsets aligned to `steering_onset`
    frames where given; cached at `cache_path` (default: `reaction_codes.<tokenizer
    hash>[.m<N>s<seed>[o<onset>]].npz` inside the dataset directory).
    """
    from molam_ros.data.dataset import MotionDataset
    from molam_ros.tokenizer.engines import TorchEngine

    dataset = MotionDataset(dataset_dir)
    checkpoint = Path(tokenizer_checkpoint)
    ids = dataset.ids()[:max_clips] if max_clips else dataset.ids()
    digest = checkpoint_digest(checkpoint)
    onset = steering_onset if mismatched else None
    suffix = (f".m{mismatched}s{seed}" + (f"o{onset}" if onset is not None else "")) if mismatched else ""
    cache = Path(cache_path) if cache_path else Path(dataset_dir) / f"reaction_codes.{digest}{suffix}.npz"
    fields: dict[str, Any] = {"format": _CACHE_FORMAT, "checkpoint": digest, "clips": ids}
    if mismatched:
        fields.update(mismatched=mismatched, seed=seed)
        if onset is not None:
            fields["steering_onset"] = onset
    key = json.dumps(fields, sort_keys=True)
    if cache.is_file():
        with np.load(cache) as z:
            if str(z["key"]) == key:
                meta = json.loads(str(z["meta"]))
                return ReactionCodes(a=z["a"], b=z["b"], offsets=z["offsets"], **meta)
    engine = TorchEngine(checkpoint, threads=1)  # small convolutions: one thread is as fast, and
    # two busy-waiting threads crawl when another job shares the cores
    if int(engine.feature_dim) != ego.EGO_DIM:
        raise ValueError(
            f"reaction codes need an ego-layout tokenizer; {checkpoint} has {engine.feature_dim}"
        )
    split_of = {cid: split for split in ("train", "val", "test") for cid in dataset.ids(split)}
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    off = [0]
    meta: dict[str, list[Any]] = {
        "clip_ids": [],
        "splits": [],
        "interactions": [],
        "styles": [],
        "instructed": [],
    }
    if mismatched and cache_path is None:
        # the dataset's own clips come from (or go to) the plain cache: each steering variant then
        # costs only its pairs (the 20000 clips of synth20k take 11 min to encode on this CPU)
        plain = encode_reaction_codes(
            dataset_dir, checkpoint, progress=progress, max_clips=max_clips, mismatched=0
        )
        off = [int(o) for o in plain.offsets]
        a = [plain.a[off[i] : off[i + 1]] for i in range(len(plain))]
        b = [plain.b[off[i] : off[i + 1]] for i in range(len(plain))]
        for k in meta:
            meta[k] = list(getattr(plain, k))
        ids = []

    def add(pair: np.ndarray, clip_id: str, split: str, m: dict[str, Any], instructed: bool) -> None:
        codes = engine.encode(reaction_features(pair, engine.stride)).astype(np.int16)  # (2, L, D)
        a.append(codes[0])
        b.append(codes[1])
        off.append(off[-1] + codes.shape[1])
        for k, v in (
            ("clip_ids", clip_id),
            ("splits", split),
            ("interactions", str(m.get("interaction"))),
            ("styles", str(m.get("style"))),
            ("instructed", instructed),
        ):
            meta[k].append(v)

    for clip_id in tqdm(ids, desc="encoding reactions", unit="clip", disable=not progress):
        clip = dataset.load(clip_id)
        T = clip.num_frames // engine.stride * engine.stride
        if clip.num_people != 2 or T < 2 * engine.stride:
            continue
        add(actor_first_pair(dataset, clip_id, T), clip_id, split_of.get(clip_id, "train"), clip.meta, False)
    rng = np.random.default_rng(seed)
    train = [i for i, s in enumerate(meta["splits"]) if s == "train"]
    for _ in tqdm(
        range(mismatched), desc="steering pairs", unit="pair", disable=not progress or not mismatched
    ):
        x, y = (meta["clip_ids"][train[int(k)]] for k in rng.integers(len(train), size=2))
        cx, cy = dataset.load(x), dataset.load(y)
        if cx.meta.get("interaction") == cy.meta.get("interaction"):
            continue
        pair_id, cut = f"{x}+{y}", 0
        if onset is not None:
            start = reaction_onset(reaction_pair(cy.positions, int(cy.meta.get("actor", 0)))[1])
            lead = onset + int(rng.integers(onset + 1))
            cut = max(0, (start or 0) - lead)
            pair_id += f"@{cut}"
        T = min(cx.num_frames, cy.num_frames - cut) // engine.stride * engine.stride
        if T < 2 * engine.stride:
            continue
        # Both pairs are in their actor's first frame (origin, facing +Z): y's reactor stands where it
        # stood towards its own actor, now towards x's actor.
        add(actor_first_pair(dataset, pair_id, T), pair_id, "train", cy.meta, True)
    out = ReactionCodes(
        a=np.concatenate(a), b=np.concatenate(b), offsets=np.asarray(off, dtype=np.int64), **meta
    )
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + ".tmp.npz")
    np.savez_compressed(
        tmp, key=np.asarray(key), meta=np.asarray(json.dumps(meta)), a=out.a, b=out.b, offsets=out.offsets
    )
    tmp.replace(cache)  # atomic: a crashed run never leaves a half cache that looks valid
    return out
