"""Reaction quality in closed loop, as the live pipeline runs it, next to baselines from the same clips.

For each held-out two-person clip (actor first), step by step as `runtime/pipeline.py` does:

1. the actor's l frames become ego features whose partner is the reactor where it last stood (the
   generated one, not the recording), and the streaming encoder turns them into the step's codes;
2. the reactor under test (anything with `reset`, `set_instruction` and `step(codes_a)`: the small
   reactor, the LLM's StreamingReactor) writes the reactor's codes; how it starts is `start`:
   "recorded": the first `given_steps` are the recorded reactor's, so every reactor starts from the
   same pose and place; "standing": its first step is a body standing still where the recorded
   reactor starts, facing as it does (data/standing.py: what the node gives a robot, knowing where it
   stands, not what it was about to do); "front": the same body 1.8 m in front of the actor, facing
   them (the node's default, `start_position: front`); "none": no first step, the actor's first step with no
   partner and the reactor's first input zeros (what the node did before it gave one);
3. the streaming decoder turns them into frames, placed by their relation to the actor's actual
   frames, smoothed as live (`ego.follow_anchor` with the pipeline's default pull).

The measures, each in the actor's canonical frame and each also computed for the baselines (a
reactor that stands still, a mirror image of the actor, the recorded reactor's own codes decoded as
the tokenizer's ceiling, and the recording itself where a measure has a ceiling):

- mpjpe: mean joint error against the recorded reactor (mm);
- pose: root-relative joint error (mm), the body's shape whatever its placement;
- dist / facing: error of the distance to the actor (mm) and of the angle between the reactor's
  facing and the direction to the actor (degrees);
- contact: share of clips whose interaction has contact ("hands", "body") where a reactor hand comes
  within `contact_radius` of the actor's body at some frame;
- energy: mean joint speed divided by the recorded reactor's (1.0 = as lively as the recording);
- partner ratio: the reactor's MPJPE against its own clip's recorded reactor divided by its MPJPE
  against another clip's recorded reactor (mismatched partner, moved to start at the same place); a
  reactor that ignores the actor scores about 1, one that answers this actor less;
- recognised: share of clips whose interaction a classifier trained on the dataset's training split
  names from the pair (actor, reactor);
- steer: the same actor, the reactor instructed to do another interaction's part ("bow back" to a
  person who waves): share of clips where a classifier that sees only the reactor
  (llm/reactor_classifier.py) names the instructed interaction. Its ceiling (the "recorded" row) is
  that classifier's accuracy on the recorded reactors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from tqdm import tqdm

from molam_ros.data.standing import facing_towards, place_in_front, standing_frames
from molam_ros.llm.reaction_baselines import mirror_reactor, still_reactor
from molam_ros.llm.reaction_codes import reaction_pair
from molam_ros.llm.reaction_instructions import REACTOR_PARTS, reactor_instruction
from molam_ros.motion import ego
from molam_ros.motion.canonical import canonicalize, facing_angle
from molam_ros.motion.skeleton import JOINT_INDEX as J

HANDS = [J["left_wrist"], J["right_wrist"]]
CONTACT_KINDS = ("hands", "body")
STARTS = ("recorded", "standing", "front", "none")


class Reactor(Protocol):
    def reset(self) -> None: ...
    def set_instruction(self, text: str | None) -> None: ...
    def step(self, codes_a: np.ndarray, codes_b: np.ndarray | None = None) -> np.ndarray: ...


@dataclass(frozen=True, kw_only=True)
class ReactionEvalConfig:
    """Which part of each clip is scored."""

    clips: int = 94
    steps: int = 40  # scored steps per clip (40 x 4 frames = 5.3 s at 30 fps)
    given_steps: int = 1  # with start "recorded": the recorded reactor's first steps, given to every reactor
    start: str = "recorded"  # how a reactor under test starts: "recorded", "standing" or "none" (docstring)
    contact_radius: float = 0.10
    anchor_pull: float | None = None  # None: the reactor's own (its `anchor_pull`), else the pipeline's 0.04
    direct: bool = False  # place a reactor's own features (`last_features`) instead of decoding its codes

    def __post_init__(self) -> None:
        if self.start not in STARTS:
            raise ValueError(f"start must be one of {STARTS}, got {self.start!r}")


@dataclass
class EvalClip:
    """One held-out clip in the actor's canonical frame."""

    clip_id: str
    actor: np.ndarray  # (T, 22, 3)
    reactor: np.ndarray  # (T, 22, 3) recorded
    interaction: str
    style: str
    contact: str
    meta: dict[str, Any]


def eval_clips(dataset: Any, split: str, cfg: ReactionEvalConfig, stride: int) -> list[EvalClip]:
    """The first `cfg.clips` two-person clips of a split, cut to `cfg.steps` steps."""
    out = []
    for cid in dataset.ids(split):
        clip = dataset.load(cid)
        if clip.num_people != 2:
            continue
        T = min(clip.num_frames, cfg.steps * stride) // stride * stride
        if T < (cfg.given_steps + 1) * stride:
            continue
        canon, _ = canonicalize(reaction_pair(clip.positions[:, :T], int(clip.meta.get("actor", 0))))
        m = clip.meta
        out.append(
            EvalClip(
                cid,
                canon[0],
                canon[1],
                str(m.get("interaction")),
                str(m.get("style")),
                str(m.get("contact", "none")),
                dict(m),
            )
        )
        if len(out) == cfg.clips:
            break
    return out


def own_instructions(clips: Sequence[EvalClip], seed: int = 0) -> dict[str, str | None]:
    """Each clip's own instruction (its reactor's part in words, seeded): what "told" rows are
    measured with, the same wordings in every command that reports them."""
    rng = np.random.default_rng(seed)
    return {c.clip_id: reactor_instruction(c.meta, rng) for c in clips}


def closed_loop(
    reactor: Reactor | None,
    engine: Any,
    clip: EvalClip,
    cfg: ReactionEvalConfig,
    instruction: str | None = None,
) -> np.ndarray:
    """The reactor's (T, 22, 3) frames in closed loop (module docstring); None: the recorded codes."""
    l = engine.stride
    a, b = clip.actor, clip.reactor
    T = a.shape[0]
    a_feats = ego.person_to_ego(a, b)
    b_codes = engine.encode(ego.person_to_ego(b, a)[None])[0]
    yaw_a = facing_angle(a)
    enc, dec = engine.init_encoder_state(1), engine.init_decoder_state(1)
    if reactor is not None:
        reactor.reset()
        reactor.set_instruction(instruction)
    last: np.ndarray | None = b[0]
    prev: tuple[float, np.ndarray] | None = None
    start = "recorded" if reactor is None else cfg.start
    given_steps = cfg.given_steps if start == "recorded" else int(start in ("standing", "front"))
    if start in ("standing", "front"):  # where the recorded reactor starts, or in front of the actor
        if start == "standing":
            place, yaw = b[0, 0, [0, 2]], float(facing_angle(b[:1])[0])
        else:  # the node's default (runtime/reactor_start.py)
            place = place_in_front(a)
            yaw = facing_towards(place, a[0, 0, [0, 2]])
        stand = standing_frames(place, yaw, l)
        b_codes = engine.encode(ego.person_to_ego(stand, a[:l])[None])[0][:1]
        last, prev = stand[-1], (float(facing_angle(stand[-1:])[0]), stand[-1, 0])
    elif start == "none":
        last = None
    pull = cfg.anchor_pull if cfg.anchor_pull is not None else getattr(reactor, "anchor_pull", None) or 0.04
    frames = []
    for s in range(T // l):
        f = slice(s * l, (s + 1) * l)
        feats = a_feats[f].copy()
        partner = None if last is None else np.broadcast_to(last, a[f].shape)
        feats[:, ego.REL_POS.start : ego.PARTNER.stop] = ego.relation(a[f], partner)
        codes_a, enc = engine.encode_step(feats[None], enc)
        given = b_codes[s] if reactor is None or s < given_steps else None
        codes_b = given if reactor is None else reactor.step(codes_a[0, 0], given)
        out, dec = engine.decode_step(np.asarray(codes_b, dtype=np.int64)[None, None], dec)
        direct = getattr(reactor, "last_features", None) if cfg.direct else None
        if direct is not None:
            out = np.asarray(direct)[None]
        yaw, root = ego.follow_anchor(out[0], yaw_a[f], a[f, 0], pull=pull, prev=prev)
        prev = (float(yaw[-1]), root[-1])
        body = ego.body_from_root(out[0], yaw, root)
        frames.append(body)
        last = body[-1]
    return np.concatenate(frames)


def _facing_to_partner(me: np.ndarray, partner: np.ndarray) -> np.ndarray:
    d = partner[:, 0] - me[:, 0]
    to = np.arctan2(d[:, 0], d[:, 2])
    return ego.wrap_angle(facing_angle(me) - to)


def clip_measures(
    actor: np.ndarray, ref: np.ndarray, pred: np.ndarray, fps: float, radius: float
) -> dict[str, float]:
    """Per-clip measures of one reactor (module docstring), all (T, 22, 3) in one frame."""
    T = min(len(ref), len(pred))
    a, r, p = actor[:T], ref[:T], pred[:T]
    err = np.linalg.norm(p - r, axis=-1)
    pose = np.linalg.norm((p - p[:, :1]) - (r - r[:, :1]), axis=-1)
    dist_p = np.linalg.norm((p[:, 0] - a[:, 0])[:, [0, 2]], axis=-1)
    dist_r = np.linalg.norm((r[:, 0] - a[:, 0])[:, [0, 2]], axis=-1)
    face = np.abs(ego.wrap_angle(_facing_to_partner(p, a) - _facing_to_partner(r, a)))
    hands = np.linalg.norm(p[:, HANDS, None] - a[:, None], axis=-1).min()
    speed = np.linalg.norm(np.diff(p, axis=0), axis=-1).mean() * fps
    return {
        "mpjpe": float(err.mean() * 1000),
        "pose": float(pose.mean() * 1000),
        "dist": float(np.abs(dist_p - dist_r).mean() * 1000),
        "facing": float(np.degrees(face.mean())),
        "touch": float(hands <= radius),
        "speed": float(speed),
    }


def bootstrap_interval(x: np.ndarray, level: float = 0.95, draws: int = 2000) -> tuple[float, float]:
    """The `level` percentile bootstrap interval of the mean of `x` over clips (resampled clips, a
    fixed seed: the same figures every run). Why: a few clips where a reactor walks the wrong way
    weigh hundreds of millimetres each, so two reactors 10 mm apart on 60 clips may not differ."""
    x = np.asarray(x, dtype=np.float64)
    means = x[np.random.default_rng(0).integers(0, len(x), (draws, len(x)))].mean(1)
    return float(np.quantile(means, (1 - level) / 2)), float(np.quantile(means, (1 + level) / 2))


# The rows every table has beside the reactors measured; a reactor may not take one of these names.
BASELINE_ROWS = ("still", "mirror", "codes", "recorded")


def evaluate_reactors(
    reactors: dict[str, Reactor],
    engine: Any,
    clips: Sequence[EvalClip],
    cfg: ReactionEvalConfig,
    *,
    instructions: dict[str, str | None] | None = None,
    classifier: Any = None,
    steer_classifier: Any = None,
    fps: float = 30.0,
    progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Rows {name: measures} for every reactor and the baselines ("still", "mirror", "codes" = the
    recorded reactor through the tokenizer, "recorded") on the same clips (module docstring).

    `instructions` maps clip ids to the instruction each reactor is given (None: none).
    """
    clash = sorted(set(reactors) & set(BASELINE_ROWS))
    if clash:
        raise ValueError(f"reactor names {clash} are the names of baseline rows {BASELINE_ROWS}; rename them")
    preds: dict[str, list[np.ndarray]] = {name: [] for name in (*BASELINE_ROWS[:3], *reactors, "recorded")}
    for clip in tqdm(clips, desc="reaction eval", unit="clip", disable=not progress):
        T = clip.actor.shape[0]
        preds["still"].append(still_reactor(clip.reactor[0], T))
        preds["mirror"].append(mirror_reactor(clip.actor, clip.reactor[0]))
        preds["codes"].append(closed_loop(None, engine, clip, cfg))
        preds["recorded"].append(clip.reactor)
        for name, reactor in reactors.items():
            text = (instructions or {}).get(clip.clip_id)
            preds[name].append(closed_loop(reactor, engine, clip, cfg, text))
    rows: dict[str, dict[str, float]] = {}
    n = len(clips)
    still = None
    contact = [i for i, c in enumerate(clips) if c.contact in CONTACT_KINDS]
    for name, ps in preds.items():
        m = [
            clip_measures(c.actor, c.reactor, p, fps, cfg.contact_radius)
            for c, p in zip(clips, ps, strict=True)
        ]
        row = {k: float(np.mean([x[k] for x in m])) for k in ("mpjpe", "pose", "dist", "facing")}
        per_clip = np.array([x["mpjpe"] for x in m])
        row["mpjpe_lo"], row["mpjpe_hi"] = bootstrap_interval(per_clip)
        still = per_clip if still is None else still  # "still" comes first
        if name != "still":  # paired with standing still on the same clips: negative is better
            row["vs_still"] = float(np.mean(per_clip - still))
            row["vs_still_lo"], row["vs_still_hi"] = bootstrap_interval(per_clip - still)
        row["contact"] = float(np.mean([m[i]["touch"] for i in contact])) if contact else float("nan")
        rec_speed = [
            clip_measures(c.actor, c.reactor, c.reactor, fps, cfg.contact_radius)["speed"] for c in clips
        ]
        row["energy"] = float(np.mean([x["speed"] for x in m]) / max(np.mean(rec_speed), 1e-9))
        # Mismatched partner: the same reactor stream against the recorded reactor of the next clip of
        # another interaction, moved on the floor to start where this clip's reactor starts (so where
        # a reactor stands at frame 0, which every reactor is given, tells nothing).
        mis = []
        for i, c in enumerate(clips):
            j = next(
                (k % n for k in range(i + 1, i + n) if clips[k % n].interaction != c.interaction), (i + 1) % n
            )
            other = clips[j].reactor + (c.reactor[0, 0] - clips[j].reactor[0, 0]) * np.array([1.0, 0.0, 1.0])
            T = min(len(other), len(ps[i]))
            mis.append(float(np.linalg.norm(ps[i][:T] - other[:T], axis=-1).mean() * 1000))
        row["partner_ratio"] = float(row["mpjpe"] / max(np.mean(mis), 1e-9))
        if classifier is not None:
            hits = [
                classifier.predict(np.stack([c.actor[: len(p)], p])) == c.interaction
                for c, p in zip(clips, ps, strict=True)
            ]
            row["recognised"] = float(np.mean(hits))
        rows[name] = row
    if steer_classifier is not None:
        for name, rate in steerability(reactors, engine, clips, cfg, steer_classifier, progress).items():
            rows[name]["steer"] = rate
    rows["_clips"] = {"clips": float(n), "contact_clips": float(len(contact))}
    return rows


def steer_target(clip: EvalClip, i: int) -> str:
    """Another interaction than the clip's, cycling through all of them over the clips."""
    labels = sorted(REACTOR_PARTS)
    k = labels.index(clip.interaction) if clip.interaction in labels else 0
    return labels[(k + 1 + i % (len(labels) - 1)) % len(labels)]


def steerability(
    reactors: dict[str, Reactor],
    engine: Any,
    clips: Sequence[EvalClip],
    cfg: ReactionEvalConfig,
    classifier: Any,
    progress: bool = True,
) -> dict[str, float]:
    """{name: share} of clips where the reactor, told another interaction's part, does that part
    (module docstring); "recorded": the classifier's accuracy on the recorded reactors."""
    rng = np.random.default_rng(0)
    hits = dict.fromkeys(reactors, 0)
    ceiling = 0
    for i, clip in enumerate(tqdm(clips, desc="steerability", unit="clip", disable=not progress)):
        target = steer_target(clip, i)
        text = reactor_instruction({"interaction": target}, rng, style_share=0.0)
        for name, reactor in reactors.items():
            pred = closed_loop(reactor, engine, clip, cfg, text)
            hits[name] += classifier.predict(np.stack([clip.actor[: len(pred)], pred])) == target
        ceiling += classifier.predict(np.stack([clip.actor, clip.reactor])) == clip.interaction
    out = {name: h / len(clips) for name, h in hits.items()}
    out["recorded"] = ceiling / len(clips)
    return out


COLUMNS = (
    ("mpjpe", "MPJPE mm", "{:.0f}"),
    ("mpjpe_lo", "95 % interval", "{:.0f}-{:.0f}"),  # with mpjpe_hi: over clips, bootstrap
    ("vs_still", "vs still (95 %)", "{:+.0f} ({:+.0f} to {:+.0f})"),  # paired with standing still
    ("pose", "pose mm", "{:.0f}"),
    ("dist", "distance mm", "{:.0f}"),
    ("facing", "facing deg", "{:.1f}"),
    ("contact", "contact", "{:.0%}"),
    ("energy", "energy x", "{:.2f}"),
    ("partner_ratio", "partner ratio", "{:.2f}"),
    ("recognised", "recognised", "{:.0%}"),
    ("steer", "steer", "{:.0%}"),
)


def _cell(row: dict[str, float], key: str, form: str) -> str:
    """One table cell: the value of `key`, or an interval (its _lo/_hi partners) where the format
    takes several; "-" where the row lacks it."""
    keys = {
        "mpjpe_lo": ("mpjpe_lo", "mpjpe_hi"),
        "vs_still": ("vs_still", "vs_still_lo", "vs_still_hi"),
    }.get(key, (key,))
    values = [row.get(k, float("nan")) for k in keys]
    return form.format(*values) if all(np.isfinite(v) for v in values) else "-"


def format_rows(rows: dict[str, dict[str, float]]) -> str:
    """A markdown table of `evaluate_reactors`' rows."""
    cols = [c for c in COLUMNS if any(c[0] in r for k, r in rows.items() if not k.startswith("_"))]
    lines = ["| reactor | " + " | ".join(c[1] for c in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, r in rows.items():
        if name.startswith("_"):
            continue
        cells = [_cell(r, key, form) for key, _, form in cols]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    meta = rows.get("_clips", {})
    lines.append(
        f"\n{int(meta.get('clips', 0))} held-out clips, {int(meta.get('contact_clips', 0))} with contact"
    )
    return "\n".join(lines)
