"""Text to two-person motion: an actor generator in lockstep with a reactor, both one step at a time.

Why this shape. The full LLM's text-to-motion task writes both people's codes from a caption, and
trained on this CPU it writes nothing any classifier recognises (0 of 16, README). The reaction
half already works step by step (the shipped reactors); what is missing is the person who starts
the interaction. The actor generator is the small reactor's network (llm/small_reactor.py) with
the roles swapped: it reads the reactor's codes and its own previous step and writes the actor's
next step, conditioned on the caption (the sentence encoder's vector, where the reactor reads an
instruction). The two run in lockstep, each reading the other as the live pipeline would:

    step t:  actor generator (reactor's step t - 1, caption) -> the actor's step t
             the actor's frames -> its codes, its partner the reactor where it last stood
             reactor (the actor's codes of step t)              -> the reactor's step t

so the actor reads the reactor one step behind (`lagged_partner`: what it is trained on), as a
person reads the robot. Both start standing (data/standing.py), facing each other `distance` apart,
as a node's reactor starts; each is placed by its decoded relation to the other (ego.follow_anchor).

Trained with `molam t2m train` on the dataset's captions (every window carries one of its clip's
captions with chance `text_share`, so the model also learns the unconditioned motion, and can be
guided); measured by `molam t2m eval`: the interaction classifier that judges the reaction table
names the generated pair's interaction, next to the same classifier on the recorded clips (ceiling),
the pair generated without the caption, and both people standing still.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from molam_ros.data.standing import FRONT_DISTANCE, standing_pair
from molam_ros.llm.reaction_codes import ReactionCodes
from molam_ros.motion import ego
from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.skeleton import bone_lengths


def lagged_partner(codes: ReactionCodes) -> ReactionCodes:
    """The actor generator's view of reaction codes: its input ("a") is the reactor's codes one step
    behind (step t reads the reactor's step t - 1, step 0 its step 0: both stand at the start), its
    own codes ("b") the actor's. Steering pairs are left out (their actor did not cause the reaction)."""
    keep = [i for i in range(len(codes)) if not codes.instructed[i]]
    codes = codes.subset(keep)
    a = np.empty_like(codes.b)
    for i in range(len(codes)):
        s, e = int(codes.offsets[i]), int(codes.offsets[i + 1])
        a[s + 1 : e] = codes.b[s : e - 1]
        a[s] = codes.b[s]
    return ReactionCodes(
        a=a,
        b=codes.a.copy(),
        offsets=codes.offsets,
        clip_ids=codes.clip_ids,
        splits=codes.splits,
        interactions=codes.interactions,
        styles=codes.styles,
    )


def clip_captions(dataset: Any, codes: ReactionCodes, indices: list[int]) -> dict[int, list[str]]:
    """Index -> the captions of that clip (the dataset's texts), for the clips that have any."""
    out = {}
    for i in indices:
        texts = [t.strip() for t in dataset.load(codes.clip_ids[i]).texts if t and t.strip()]
        if texts:
            out[i] = texts
    return out


def cached_embedder(embed: Any, path: Path, batch: int = 256) -> Any:
    """`embed` with its vectors kept in an .npz at `path`: the captions of 18k clips take minutes to
    embed on this CPU, and every run (and every --resume) needs the same ones."""
    table: dict[str, np.ndarray] = {}
    if path.is_file():
        with np.load(path) as z:
            table = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))

    def cached(texts: list[str]) -> np.ndarray:
        missing = sorted({t for t in texts if t not in table})
        if missing:  # in batches: one batch of 50k sentences took 16 GB in the encoder's attention
            chunks = range(0, len(missing), batch)
            for k in tqdm(chunks, desc="embedding captions", unit="batch", disable=len(chunks) < 4):
                vecs = np.asarray(embed(missing[k : k + batch]), dtype=np.float32)
                table.update(zip(missing[k : k + batch], vecs, strict=True))
            keys = sorted(table)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, texts=np.asarray(keys), vectors=np.stack([table[k] for k in keys]))
        return np.stack([table[t] for t in texts])

    return cached


@dataclass(frozen=True, kw_only=True)
class PairConfig:
    """How a pair is generated (module docstring)."""

    steps: int = 40  # 40 x 4 frames = 5.3 s at 30 fps
    distance: float = FRONT_DISTANCE  # m between the two at the start
    anchor_pull: float = 0.04  # placement smoothing of both (ego.follow_anchor)


def _codes(engine: Any, feats: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
    codes, state = engine.encode_step(feats[None].astype(np.float32), state)
    return np.asarray(codes[0, 0], dtype=np.int64), state


def _place(engine: Any, codes: np.ndarray, dec: Any, partner: np.ndarray, prev: Any, pull: float):
    """Decode one step's codes and place the body by its relation to `partner` (l, 22, 3)."""
    out, dec = engine.decode_step(np.asarray(codes, dtype=np.int64)[None, None], dec)
    yaw, root = ego.follow_anchor(out[0], facing_angle(partner), partner[:, 0], pull=pull, prev=prev)
    return ego.body_from_root(out[0], yaw, root), dec, (float(yaw[-1]), root[-1])


def generate_pair(
    actor: Any, reactor: Any, engine: Any, caption: str | None, cfg: PairConfig | None = None
) -> np.ndarray:
    """(2, steps * l, 22, 3) the actor and the reactor (Y up, the actor starting at the origin facing
    +Z), generated in lockstep from `caption` (None: no caption). `actor`, `reactor`: streaming
    reactors (llm/small_streaming.py SmallStreamingReactor) of the actor generator and the reactor."""
    return generate_pair_codes(actor, reactor, engine, caption, cfg)[0]


def generate_pair_codes(
    actor: Any, reactor: Any, engine: Any, caption: str | None, cfg: PairConfig | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """`generate_pair`'s positions and the (2, steps, D) codes behind them: the actor's as the live
    pipeline encodes them, the reactor's as it wrote them (what a plan's later steps continue)."""
    cfg = cfg or PairConfig()
    l = engine.stride
    a_body, b_body = standing_pair(cfg.distance, l)
    lengths = bone_lengths(a_body[0])
    fresh = engine.init_encoder_state(1)
    a_codes, _ = _codes(engine, ego.person_to_ego(a_body, b_body), fresh)
    b_codes, _ = _codes(engine, ego.person_to_ego(b_body, a_body), engine.init_encoder_state(1))
    actor.reset()
    actor.set_instruction(caption)
    reactor.reset()
    reactor.set_instruction(None)
    actor.step(b_codes, a_codes)  # both stand at step 0, given
    reactor.step(a_codes, b_codes)
    enc = engine.init_encoder_state(1)  # the actor's codes as the pipeline encodes them
    _, enc = _codes(engine, ego.person_to_ego(a_body, np.broadcast_to(b_body[-1], a_body.shape)), enc)
    dec_a, dec_b = engine.init_decoder_state(1), engine.init_decoder_state(1)
    _, dec_a = engine.decode_step(a_codes[None, None], dec_a)
    _, dec_b = engine.decode_step(b_codes[None, None], dec_b)
    prev_a = (float(facing_angle(a_body[-1:])[0]), a_body[-1, 0])
    prev_b = (float(facing_angle(b_body[-1:])[0]), b_body[-1, 0])
    people = [[a_body], [b_body]]
    codes = [[a_codes], [b_codes]]
    for _ in range(1, cfg.steps):
        own = actor.step(b_codes)  # the reactor's last step
        held = np.broadcast_to(people[1][-1][-1], a_body.shape)  # the reactor where it last stood
        a_now, dec_a, prev_a = _place(engine, own, dec_a, held, prev_a, cfg.anchor_pull)
        window = np.concatenate([people[0][-1][-1:], a_now])
        feats = ego.person_to_ego(window, np.broadcast_to(held[0], window.shape), lengths=lengths)[1:]
        a_codes, enc = _codes(engine, feats, enc)
        b_codes = np.asarray(reactor.step(a_codes), dtype=np.int64)
        b_now, dec_b, prev_b = _place(engine, b_codes, dec_b, a_now, prev_b, cfg.anchor_pull)
        people[0].append(a_now)
        people[1].append(b_now)
        codes[0].append(a_codes)
        codes[1].append(b_codes)
    return np.stack([np.concatenate(p) for p in people]), np.asarray(codes, dtype=np.int64)


def motion_energy(pair: np.ndarray, fps: float = 30.0) -> float:
    """Mean joint speed (m/s) of both people of a (2, T, 22, 3) pair: beside the recorded pairs', it
    says whether a generator is as lively as people are (guidance that overshoots shows as > 1)."""
    return float(np.linalg.norm(np.diff(pair, axis=1), axis=-1).mean() * fps)


def recognised(classifier: Any, pairs: list[np.ndarray], asked: list[str]) -> float:
    """Share of generated pairs whose interaction the classifier names as the one asked for."""
    hits = [classifier.predict(p) == want for p, want in zip(pairs, asked, strict=True)]
    return float(np.mean(hits)) if hits else float("nan")


__all__ = [
    "PairConfig",
    "cached_embedder",
    "clip_captions",
    "generate_pair",
    "generate_pair_codes",
    "lagged_partner",
    "motion_energy",
    "recognised",
]
