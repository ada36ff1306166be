"""Procedural two-person interactions: the default training data of molam_ros.

It is over 500 lines because it is one choreography library: the 14 interactions, the styles, the
solo segments and the solo actions are short functions over the same Scene and tracks, read side by
side (the pose machinery they share is in synth_poses.py); splitting them by interaction would
scatter the timing conventions they must agree on.

Each clip is one interaction (handshake, hug, push, ...) between an actor, who initiates, and a
reactor, whose motion is a function of the actor's: the reactor answers after a style-dependent
reaction delay from the actor's cue, on the matching side (hand, dodge direction), at the right
distance and towards the right place. Solo segments (idle sway, walking in, looking around,
stepping back, walking away) come before and after the interaction, as in real behaviour; the
segment meta names the action. With `SynthConfig(solo_actions=p)` (`molam data synth
--solo-actions p`) a solo segment is, with chance p, one of the solo actions of `SOLO_ACTIONS`
instead: crouching, picking something up, reaching up/sideways/forward, turning on the spot, side
and back steps, shadow-boxing jabs, quick gestures. They are off by default, so the default
dataset stays the one the shipped tokenizer was trained on.

Motion is built on the SMPL skeleton as local joint rotations plus a root path (see
`synth_poses`), so bone lengths are exact; every person has their own height. Clips are 30 fps,
3-10 s, placed at a random position and heading in the world, and are deterministic by seed.

    clip = generate_clip(seed=3, interaction="handshake", style="friendly")
    for clip in generate_dataset(1000, seed=0): ...
    for clip in generate_dataset(1000, seed=0, config=SynthConfig(solo_actions=0.5)): ...
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from molam_ros.data.captions import make_captions
from molam_ros.data.clip import TARGET_FPS, MotionClip
from molam_ros.data.synth_poses import (
    LEFT,
    RIGHT,
    SIDE_SIGN,
    Body,
    Stage,
    Track,
    forward_dir,
    left_dir,
    make_body,
    move,
    ramp,
    solve,
    window,
    wrap_angle,
)
from molam_ros.motion.rotations import quat_mul, quat_rotate, yaw_quat
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS

J = JOINT_INDEX
FPS = TARGET_FPS
MIN_SECONDS, MAX_SECONDS = 3.0, 10.0
_ALLOC = int(MAX_SECONDS * FPS) + 60  # frames allocated while composing, cropped afterwards


@dataclass(frozen=True)
class SynthConfig:
    """Options of the generator. The defaults make the clips the shipped tokenizer was trained on:
    an option at its default draws nothing from the random streams, so the clips stay the same.

    solo_actions: chance that the solo segment before the interaction, and apart from it the one
        after it, is a solo action of `SOLO_ACTIONS` (crouching, picking up, reaching, turning on
        the spot, side and back steps, shadow-boxing, quick gestures) instead of idling, walking
        in, looking around, stepping back or walking away.
    """

    solo_actions: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.solo_actions <= 1.0:
            raise ValueError(f"solo_actions is a chance in [0, 1], got {self.solo_actions}")

    def non_default(self) -> dict[str, float]:
        """The options that differ from the defaults, for a clip's meta."""
        return {"solo_actions": self.solo_actions} if self.solo_actions != 0.0 else {}


# ---------------------------------------------------------------------------------------------
# styles


@dataclass(frozen=True)
class Style:
    """How an interaction is performed; every field visibly changes the motion."""

    name: str
    tempo: float  # duration multiplier of gestures and walks (> 1 is slower)
    amplitude: float  # size of gestures, bows, pushes
    reaction_delay: float  # seconds from the actor's cue to the reactor's answer
    hesitation: float  # pause (s) in the middle of a gesture or an approach; 0 = none
    bounce: float  # vertical bounce while interacting, metres (playful)
    lean: float  # torso pitch while interacting, rad (forward +)
    head_down: float  # neck pitch while interacting, rad (down +)
    sway: float  # idle sway multiplier
    swing_time: float  # seconds per step
    adverbs: tuple[str, ...]
    manners: tuple[str, ...]

    @property
    def keywords(self) -> tuple[str, ...]:
        """Words of which every caption of this style contains at least one."""
        return self.adverbs + self.manners


STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style(
            name="friendly",
            tempo=1.0,
            amplitude=1.0,
            reaction_delay=0.35,
            hesitation=0.0,
            bounce=0.0,
            lean=0.06,
            head_down=-0.05,
            sway=1.0,
            swing_time=0.36,
            adverbs=("warmly", "cheerfully", "kindly"),
            manners=("in a friendly way", "warmly", "with a friendly smile"),
        ),
        Style(
            name="hesitant",
            tempo=1.3,
            amplitude=0.65,
            reaction_delay=0.8,
            hesitation=0.55,
            bounce=0.0,
            lean=-0.02,
            head_down=0.22,
            sway=0.6,
            swing_time=0.42,
            adverbs=("hesitantly", "shyly", "timidly"),
            manners=("with some hesitation", "hesitantly", "a bit shyly"),
        ),
        Style(
            name="aggressive",
            tempo=0.7,
            amplitude=1.3,
            reaction_delay=0.15,
            hesitation=0.0,
            bounce=0.0,
            lean=0.16,
            head_down=0.05,
            sway=0.5,
            swing_time=0.3,
            adverbs=("aggressively", "angrily", "forcefully"),
            manners=("in an aggressive way", "aggressively", "with force"),
        ),
        Style(
            name="playful",
            tempo=0.85,
            amplitude=1.15,
            reaction_delay=0.25,
            hesitation=0.0,
            bounce=0.03,
            lean=0.04,
            head_down=-0.08,
            sway=1.8,
            swing_time=0.32,
            adverbs=("playfully", "jokingly", "cheekily"),
            manners=("in a playful way", "playfully", "just for fun"),
        ),
        Style(
            name="calm",
            tempo=1.35,
            amplitude=0.8,
            reaction_delay=0.55,
            hesitation=0.0,
            bounce=0.0,
            lean=0.0,
            head_down=0.05,
            sway=0.4,
            swing_time=0.44,
            adverbs=("calmly", "formally", "politely"),
            manners=("in a calm, formal way", "calmly", "with formal politeness"),
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# the scene every interaction writes into


@dataclass
class Scene:
    """Two tracks in the interaction frame: actor at the origin facing +Z, reactor at (0, D) facing -Z."""

    rng: np.random.Generator
    style: Style
    a: Track  # actor
    b: Track  # reactor
    hand: int  # actor's side: LEFT or RIGHT
    dist: float = 1.0  # root distance at the start of the interaction
    info: dict = field(default_factory=dict)  # facts for captions and meta (variant, direction, ...)
    jobs: list[Callable[[Stage], None]] = field(default_factory=list)

    @property
    def t(self) -> np.ndarray:
        return np.arange(self.a.T) / self.a.fps

    def dur(self, seconds: float) -> float:
        """A duration in the style's tempo, with a little per-gesture jitter."""
        return seconds * self.style.tempo * self.rng.uniform(0.9, 1.1)

    def delay(self) -> float:
        return self.style.reaction_delay * self.rng.uniform(0.8, 1.25)

    def pause(self) -> float:
        # Always draw, also when the style never pauses: the random stream then stays the same across
        # styles, so (seed, interaction) with another style keeps every style-independent choice
        # (variant, direction, solo segments) and only the manner changes (editing conversations).
        u = self.rng.uniform(0.7, 1.3)
        return self.style.hesitation * u

    @property
    def amp(self) -> float:
        return self.style.amplitude


def _avg_scale(sc: Scene) -> float:
    return 0.5 * (sc.a.body.height + sc.b.body.height) / 1.7


def _reach(body: Body, y: float, frac: float) -> float:
    """Horizontal distance from the body's root at which its hand reaches height y, centred."""
    r = frac * body.arm_length
    dy = y - body.shoulder_height
    lat = 0.5 * body.shoulder_width
    return float(np.sqrt(max(r * r - dy * dy - lat * lat, 0.05**2)))


def _meeting(sc: Scene, y_frac: float, frac: float, key: str = "meet") -> float:
    """Distance at which both people reach a point at y_frac of their mean height between them.

    The height is clamped into what both arms can reach with at least 0.2 m of forward reach, so a
    tall and a short person still meet (the point moves up or down, not out of reach).
    """
    bodies = (sc.a.body, sc.b.body)
    y = y_frac * 0.5 * (bodies[0].height + bodies[1].height)
    lo, hi = -np.inf, np.inf
    for b in bodies:
        span = np.sqrt(max((frac * b.arm_length) ** 2 - (0.5 * b.shoulder_width) ** 2 - 0.2**2, 0.0))
        lo, hi = max(lo, b.shoulder_height - span), min(hi, b.shoulder_height + span)
    y = float(np.clip(y, lo, hi)) if lo <= hi else 0.5 * (lo + hi)
    ra, rb = _reach(bodies[0], y, frac), _reach(bodies[1], y, frac)
    sc.info[key] = (ra, rb, y)
    return max(ra + rb, 0.55 * _avg_scale(sc))


def _meet_point(sc: Scene) -> tuple[float, float]:
    """(z, y) of the meeting point in the scene frame; any extra distance is shared by both arms."""
    ra, rb, y = sc.info["meet"]
    return ra + 0.5 * (sc.dist - ra - rb), y


# ---------------------------------------------------------------------------------------------
# interactions: each writes the actor's and the reactor's channels from t0 and returns the end time


def _handshake(sc: Scene, t0: float) -> float:
    A, B, s, t = sc.a, sc.b, sc.hand, sc.t
    ra, y = _meet_point(sc)
    M = np.array([0.0, y, ra])
    fwd, pole = (0.05, -0.45, 0.6), (0.6, -1.0, -0.4)
    ta = t0 + sc.dur(0.2)
    ea = A.hand(s, ta, ta + sc.dur(0.7), fwd, pole, pause=sc.pause())
    A.reach(s, ea - sc.dur(0.4), ea, 1.0)
    tb = ta + sc.delay() + sc.dur(0.2)
    eb = B.hand(s, tb, tb + sc.dur(0.6), fwd, pole)
    B.reach(s, eb - sc.dur(0.35), eb, 1.0)
    tc = max(ea, eb)
    f = 2.2 / sc.style.tempo
    te = tc + sc.rng.integers(2, 5) / f
    pump = 0.035 * sc.amp * np.sin(2 * np.pi * f * (t - tc)) * window(t, tc, tc + 0.1, te - 0.1, te)
    A.hand_world[s] = M + pump[:, None] * np.array([0.0, 1.0, 0.0])
    B.hand_world[s] = A.hand_world[s]
    bowish = 0.25 if sc.style.name == "calm" else 0.08
    for tr in (A, B):
        tr.lean(tc - 0.3, tc + 0.1, pitch=bowish)
        tr.look(tc - 0.3, tc + 0.1, pitch=0.15)
    tr_ = te + sc.dur(0.15)
    A.rest(s, tr_, tr_ + sc.dur(0.6))
    B.rest(s, tr_ + 0.05, tr_ + sc.dur(0.6))
    for tr in (A, B):
        tr.lean(tr_, tr_ + sc.dur(0.5))
        tr.look(tr_, tr_ + sc.dur(0.5))
    return tr_ + sc.dur(0.6)


def _fist_bump(sc: Scene, t0: float) -> float:
    A, B, s = sc.a, sc.b, sc.hand
    ra, y = _meet_point(sc)
    fwd, pole = (0.0, -0.3, 0.6), (0.8, -1.0, -0.2)
    ta = t0 + sc.dur(0.2)
    ea = A.hand(s, ta, ta + sc.dur(0.5), fwd, pole, pause=sc.pause())
    eb = B.hand(s, ta + sc.delay(), ta + sc.delay() + sc.dur(0.5), fwd, pole)
    tc = max(ea, eb) + sc.dur(0.15)
    A.hand_world[s] = (0.0, y, ra - 0.04)
    B.hand_world[s] = (0.0, y, ra + 0.04)
    A.reach(s, tc - sc.dur(0.25), tc, 1.0)
    B.reach(s, tc - sc.dur(0.25), tc, 1.0)
    A.rest(s, tc + 0.1, tc + sc.dur(0.6))
    B.rest(s, tc + 0.12, tc + sc.dur(0.6))
    return tc + sc.dur(0.7)


def _wave(sc: Scene, t0: float) -> float:
    A, B, s, t = sc.a, sc.b, sc.hand, sc.t
    up, pole = (0.32, 0.55 + 0.1 * sc.amp, 0.22), (1.0, -0.7, -0.2)
    f = 2.0 / sc.style.tempo
    end = t0
    cue = t0 + sc.dur(0.2)
    for tr, t_start in ((A, cue), (B, None)):
        if t_start is None:  # the reactor answers once the actor's hand is up
            t_start = cue + sc.delay()
        e = tr.hand(s, t_start, t_start + sc.dur(0.5), up, pole, pause=sc.pause())
        if tr is A:
            cue = e
        we = e + sc.rng.integers(2, 5) / f
        tr.hand_off[s, :, 0] += (
            0.2 * sc.amp * np.sin(2 * np.pi * f * (t - e)) * window(t, e - 0.1, e + 0.1, we - 0.1, we)
        )
        tr.look(t_start, e, yaw=0.0, pitch=-0.05)
        end = max(end, tr.rest(s, we, we + sc.dur(0.5)))
    return end


def _hug(sc: Scene, t0: float) -> float:
    A, B, t = sc.a, sc.b, sc.t
    D = sc.dist
    dh = 0.4 * _avg_scale(sc) + sc.info.get("bonus", 0.0)
    step_b = sc.rng.uniform(0.0, 0.15)
    ta = t0 + sc.dur(0.2)
    opened, pole_a, pole_b = (0.6, 0.0, 0.55), (1.0, -0.5, -0.2), (1.0, 0.3, -0.2)
    p = sc.pause()
    for side in (LEFT, RIGHT):
        A.hand(side, ta, ta + sc.dur(0.6), opened, pole_a, pause=p)
    tc = A.go(ta + sc.dur(0.25), ta + sc.dur(0.25) + sc.dur(0.9), (0.0, D - dh - step_b), pause=p)
    tb = ta + sc.delay()
    for side in (LEFT, RIGHT):
        B.hand(side, tb, min(tb + sc.dur(0.6), tc - 0.1), opened, pole_b)
    B.go(tb + 0.2, max(tc, tb + 0.6), (0.0, D - step_b))
    hold = sc.dur(sc.rng.uniform(1.0, 1.8))
    tr_ = tc + hold
    for tr in (A, B):
        tr.lean(tc - 0.35, tc + 0.1, pitch=0.14)
        tr.look(tc - 0.35, tc + 0.1, yaw=0.5, pitch=0.1)
        for side in (LEFT, RIGHT):
            tr.reach(side, tc - 0.4, tc + 0.05, 1.0)
            tr.rest(side, tr_, tr_ + sc.dur(0.6))
        tr.lean(tr_, tr_ + sc.dur(0.5))
        tr.look(tr_, tr_ + sc.dur(0.5))
    back = A.go(tr_ + 0.3, tr_ + 0.3 + sc.dur(0.8), (0.0, D - step_b - 0.85 * _avg_scale(sc)))
    pat = 0.0 if sc.style.name in ("calm", "aggressive", "hesitant") else 0.03 * sc.amp
    pat_y = pat * np.abs(np.sin(2 * np.pi * 1.6 * (t - tc))) * window(t, tc + 0.2, tc + 0.3, tr_ - 0.2, tr_)

    def job(st: Stage) -> None:
        pa, pb, qa, qb = st.positions[0], st.positions[1], st.world_quats[0], st.world_quats[1]
        sa, sb = A.body.height / 1.7, B.body.height / 1.7
        for side in (LEFT, RIGHT):
            sg = SIDE_SIGN[side]
            # Actor's arms go under (around the waist), the reactor's over (around the shoulders).
            A.hand_world[side] = pb[:, J["spine2"]] + quat_rotate(
                qb[:, J["spine2"]], [-sg * 0.13 * sb, 0.0, -0.1 * sb]
            )
            B.hand_world[side] = pa[:, J["spine3"]] + quat_rotate(
                qa[:, J["spine3"]], [-sg * 0.12 * sa, 0.1, -0.1 * sa]
            )
            B.hand_world[side, :, 1] += pat_y

    sc.jobs.append(job)
    return back


def _push(sc: Scene, t0: float) -> float:
    A, B = sc.a, sc.b
    D = sc.dist
    ta = t0 + sc.dur(0.15)
    guard, pole = (0.0, -0.15, 0.5), (0.8, -1.0, -0.3)
    p = sc.pause()
    for side in (LEFT, RIGHT):
        A.hand(side, ta, ta + sc.dur(0.4), guard, pole, pause=p)
    tc = ta + sc.dur(0.75) + p
    step = 0.2 * sc.amp * _avg_scale(sc)
    A.go(ta + sc.dur(0.2) + p, tc, (0.0, step))
    A.lean(tc - 0.3, tc, pitch=0.12 * sc.amp)
    for side in (LEFT, RIGHT):
        A.reach(side, tc - sc.dur(0.2), tc, 1.0)
        A.reach(side, tc + 0.25, tc + 0.55, 0.0)
        A.rest(side, tc + 0.45, tc + 1.1)
    A.lean(tc + 0.3, tc + 0.9)
    # The shove throws the reactor back in proportion to its force (the actor's amplitude).
    push_d = (0.3 + 0.35 * sc.amp) * sc.rng.uniform(0.85, 1.15) * _avg_scale(sc)
    B.go(tc + 0.02, tc + 0.4 + 0.35 * push_d, (0.0, D + push_d))
    B.lean(tc, tc + 0.15, pitch=-0.3 * sc.amp)
    B.lean(tc + 0.35, tc + 0.8, pitch=0.12)
    B.lean(tc + 0.9, tc + 1.4)
    B.look(tc, tc + 0.2, pitch=-0.25)
    B.look(tc + 0.5, tc + 1.0, pitch=0.05)
    for side in (LEFT, RIGHT):
        B.hand(side, tc + 0.05, tc + 0.3, (0.55, 0.1, 0.25), (0.3, -1.0, -0.5))
        B.rest(side, tc + 0.6, tc + 1.2)

    def job(st: Stage) -> None:
        pb, qb = st.positions[1], st.world_quats[1]
        sb = B.body.height / 1.7
        for side in (LEFT, RIGHT):
            off = [-SIDE_SIGN[side] * 0.12 * sb, -0.06, 0.14 * sb]
            A.hand_world[side] = pb[:, J["spine3"]] + quat_rotate(qb[:, J["spine3"]], off)

    sc.jobs.append(job)
    return tc + 1.5


def _punch(sc: Scene, t0: float) -> float:
    A, B, s = sc.a, sc.b, sc.hand
    variant = "dodge" if sc.rng.random() < 0.55 else "block"
    sc.info["variant"] = variant
    sc.info["react"] = "dodges to the side" if variant == "dodge" else "blocks it with the forearms"
    guard, pole = (-0.2, 0.12, 0.55), (0.4, -1.0, 0.0)
    ta = t0 + sc.dur(0.15)
    for side in (LEFT, RIGHT):
        A.hand(side, ta, ta + sc.dur(0.4), guard, pole)
    tp = ta + sc.dur(0.8) + sc.pause()
    A.go(ta + sc.dur(0.3), tp, (0.0, 0.15 * _avg_scale(sc)))
    dp = 0.2 * np.sqrt(sc.style.tempo)
    A.reach(s, tp, tp + dp, 1.0)
    A.lean(tp, tp + dp, pitch=0.1, yaw=-SIDE_SIGN[s] * 0.35)
    A.reach(s, tp + dp + 0.08, tp + dp + 0.35, 0.0)
    A.lean(tp + dp + 0.08, tp + dp + 0.4)
    end = tp + dp + 0.35 + sc.dur(0.5)
    for side in (LEFT, RIGHT):
        A.rest(side, end, end + sc.dur(0.5))
    # The reactor reads the wind-up: its answer starts a reaction time after the punch starts.
    tr_ = tp + 0.05 + 0.2 * sc.style.reaction_delay
    ip = A.at(tp)
    if variant == "dodge":
        lat = SIDE_SIGN[s] * 0.22 * _avg_scale(sc)  # away from the incoming fist, reactor's frame
        i = B.at(tr_)
        B.go(tr_, tr_ + 0.25, B.pos[i] + B.local_to_world(i, (lat, -0.05)))
        B.lean(tr_, tr_ + 0.25, pitch=-0.1, roll=-SIDE_SIGN[s] * 0.4)
        B.lean(tp + dp + 0.4, tp + dp + 0.9)
        B.go(tp + dp + 0.5, tp + dp + 1.1, B.pos[i])
        ahead = 0.05
    else:
        for side in (LEFT, RIGHT):
            B.hand(side, tr_, tr_ + 0.2, (-0.25, 0.35, 0.45), (0.3, -1.0, 0.2))
            B.rest(side, tp + dp + 0.6, tp + dp + 1.1)
        B.lean(tr_, tr_ + 0.2, pitch=-0.08)
        B.look(tr_, tr_ + 0.2, pitch=0.2)
        B.lean(tp + dp + 0.6, tp + dp + 1.0)
        B.look(tp + dp + 0.6, tp + dp + 1.0)
        ahead = 0.24

    def job(st: Stage) -> None:
        head_b = st.positions[1, ip, J["head"]]
        head_a = st.positions[0, ip, J["head"]]
        d = head_a - head_b
        d[1] = 0.0
        A.hand_world[s] = head_b + ahead * d / max(np.linalg.norm(d), 1e-6) - [0.0, 0.03, 0.0]

    sc.jobs.append(job)
    return end + sc.dur(0.5)


def _high_five(sc: Scene, t0: float) -> float:
    A, B, s = sc.a, sc.b, sc.hand
    ra, y = _meet_point(sc)
    up, pole = (0.2, 0.8, 0.3), (1.0, -0.5, -0.3)
    ta = t0 + sc.dur(0.2)
    ea = A.hand(s, ta, ta + sc.dur(0.5), up, pole, pause=sc.pause())
    tb = ta + sc.delay()
    eb = B.hand(s, tb, tb + sc.dur(0.5), up, pole)
    tc = max(ea, eb) + sc.dur(0.2)
    A.hand_world[s] = (0.0, y, ra - 0.03)
    B.hand_world[s] = (0.0, y, ra + 0.03)
    for tr in (A, B):
        tr.reach(s, tc - sc.dur(0.2), tc, 1.0)
        tr.reach(s, tc + 0.05, tc + 0.35, 0.0)
        tr.rest(s, tc + 0.3, tc + sc.dur(0.8))
    if sc.style.name == "playful":
        B.jump(tc - 0.1, tc + 0.2, 0.06)
    return tc + sc.dur(0.9)


def _bow_once(sc: Scene, tr: Track, t: float, depth: float) -> float:
    down, hold, up = sc.dur(0.6), sc.dur(0.5), sc.dur(0.6)
    i = tr.at(t)
    home = tr.pos[i].copy()
    tr.tilt(t, t + down, pitch=0.6 * depth)
    tr.lean(t, t + down, pitch=0.4 * depth)
    tr.look(t, t + down, pitch=0.25)
    tr.go(t, t + down, home - 0.1 * depth * forward_dir(tr.yaw[i]) * tr.body.height / 1.7)
    e = t + down + hold + sc.pause()
    tr.tilt(e, e + up)
    tr.lean(e, e + up)
    tr.look(e, e + up)
    tr.go(e, e + up, home)
    return e + up


def _bow(sc: Scene, t0: float) -> float:
    depth = sc.rng.uniform(0.5, 0.8) * sc.amp + (0.2 if sc.style.name == "calm" else 0.0)
    ea = _bow_once(sc, sc.a, t0 + sc.dur(0.2), depth)
    depth_b = depth * sc.rng.uniform(0.8, 1.1) * (0.75 if sc.style.name == "hesitant" else 1.0)
    eb = _bow_once(sc, sc.b, t0 + sc.dur(0.5) + sc.delay(), depth_b)
    sc.info["depth"] = float(depth)
    return max(ea, eb) + 0.2


def _hand_over(sc: Scene, t0: float) -> float:
    A, B, s = sc.a, sc.b, sc.hand
    ra, y = _meet_point(sc)
    hold, fwd, pole = (-0.15, -0.5, 0.45), (0.0, -0.4, 0.7), (0.7, -1.0, -0.3)
    A.hand_local[s] = hold  # holding the object from the start
    A.pole[s] = pole
    ta = t0 + sc.dur(0.2)
    ea = A.hand(s, ta, ta + sc.dur(0.7), fwd, pole, pause=sc.pause())
    A.reach(s, ea - sc.dur(0.4), ea, 1.0)
    tb = ta + sc.dur(0.3) + sc.delay()
    eb = B.hand(s, tb, tb + sc.dur(0.6), fwd, pole)
    B.reach(s, eb - sc.dur(0.35), eb, 1.0)
    A.hand_world[s] = (0.0, y, ra - 0.035)
    B.hand_world[s] = (0.0, y, ra + 0.035)
    tc = max(ea, eb) + sc.dur(0.1) + 0.35
    A.rest(s, tc, tc + sc.dur(0.7))
    B.reach(s, tc + 0.1, tc + 0.1 + sc.dur(0.6), 0.0)
    e = B.hand(s, tc + 0.1, tc + 0.1 + sc.dur(0.6), hold, pole)
    B.look(tc + 0.1, e, pitch=0.4)
    B.look(e + sc.dur(0.6), e + sc.dur(1.0))
    B.rest(s, e + sc.dur(0.7), e + sc.dur(1.2))
    return e + sc.dur(1.2)


def _keep_gap(path: np.ndarray, leader: np.ndarray, gap: float) -> np.ndarray:
    """Push each point of `path` (T, 2) out to `gap` from `leader` (T, 2), keeping its bearing.

    Where the follower would stand exactly on the leader the bearing of the previous frame is kept.
    """
    out = path.copy()
    last = np.array([0.0, 1.0])
    for i in range(len(out)):
        d = out[i] - leader[i]
        n = float(np.hypot(d[0], d[1]))
        if n > 1e-3:
            last = d / n
        if n < gap:
            out[i] = leader[i] + last * gap
    return out


def _lead_follow(sc: Scene, t0: float) -> float:
    A, B, t = sc.a, sc.b, sc.t
    fps, T = A.fps, A.T
    heading = float(sc.rng.choice([-1.0, 1.0]) * sc.rng.uniform(1.3, 2.3))
    speed = 1.1 / sc.style.tempo
    ta = t0 + sc.dur(0.2)
    A.look(ta - 0.2, ta + 0.2, yaw=0.3 * np.sign(heading))
    A.go(ta, ta + sc.dur(0.6), yaw=heading)
    A.look(ta + 0.3, ta + 0.8)
    tw = ta + sc.dur(0.45)
    l1 = sc.rng.uniform(1.4, 2.4)
    p1 = l1 * forward_dir(heading)
    t1 = A.go(tw, tw + 0.5 + l1 / speed, p1, pause=sc.pause())
    end_a = t1
    if sc.rng.random() < 0.5:
        h2 = heading + sc.rng.choice([-1.0, 1.0]) * sc.rng.uniform(0.4, 0.9)
        l2 = sc.rng.uniform(0.7, 1.3)
        A.go(t1 - 0.3, t1 + 0.3, yaw=h2)
        end_a = A.go(t1, t1 + 0.4 + l2 / speed, p1 + l2 * forward_dir(h2))
    # The reactor walks the actor's trail a fixed time behind, never closer than a social gap.
    lag = sc.rng.uniform(1.0, 1.4) * sc.style.tempo
    tf = ta + sc.delay() + sc.dur(0.3)
    src = np.clip(np.arange(T) - lag * fps, 0, T - 1)
    trail = np.stack([np.interp(src, np.arange(T), A.pos[:, k]) for k in (0, 1)], -1)
    w = ramp(t, tf, tf + 1.0)[:, None]
    path = (1 - w) * B.pos[B.at(t0)] + w * trail
    path[: B.at(t0)] = B.pos[: B.at(t0)]
    gap = 0.95 * _avg_scale(sc)
    path = _keep_gap(path, A.pos, gap)
    k = np.ones(15) / 15
    path = np.stack([np.convolve(np.pad(path[:, c], 7, mode="edge"), k, mode="valid") for c in (0, 1)], -1)
    path = _keep_gap(path, A.pos, 0.97 * gap)
    i0 = B.at(t0)
    B.pos[i0:] = path[i0:]
    vel = np.gradient(B.pos, axis=0) * fps
    spd = np.linalg.norm(vel, axis=-1)
    to_a = A.pos - B.pos
    face = np.arctan2(to_a[:, 0], to_a[:, 1])
    walk = np.arctan2(vel[:, 0], vel[:, 1])
    yaw = np.where(spd > 0.25, walk, face)
    yaw = np.unwrap(np.concatenate([[B.yaw[i0]], yaw[i0:]]))[1:]
    yaw = np.convolve(np.pad(yaw, 7, mode="edge"), k, mode="valid")
    B.yaw[i0:] = yaw
    end_b = float(t[np.nonzero(spd > 0.05)[0].max()]) if np.any(spd > 0.05) else end_a
    # The leader turns back to the follower at the end.
    ie = A.at(end_a + 0.2)
    to_b = B.pos[min(B.at(end_b), T - 1)] - A.pos[ie]
    A.go(end_a + 0.2, end_a + 0.2 + sc.dur(0.7), yaw=float(np.arctan2(to_b[0], to_b[1])))
    sc.info["heading"] = heading
    return max(end_a + 0.9, end_b) + 0.2


_DANCE = ("arm_up", "arm_out", "both_up", "step", "twist", "sway", "arm_wave")


def _dance_move(sc: Scene, tr: Track, kind: str, side: int, sign: float, t: float, d: float) -> None:
    go, hold = 0.45 * d, 0.1 * d
    amp = sc.amp
    if kind in ("arm_up", "arm_out", "arm_wave", "both_up"):
        target = {
            "arm_up": ((0.15, 0.92, 0.15), (1.0, 0.0, -0.5)),
            "arm_out": ((0.95, 0.12 * amp, 0.1), (0.0, -1.0, -0.5)),
            "arm_wave": ((0.55, 0.5, 0.35), (1.0, -0.6, -0.2)),
            "both_up": ((0.3, 0.85, 0.15), (1.0, 0.0, -0.4)),
        }[kind]
        sides = (LEFT, RIGHT) if kind == "both_up" else (side,)
        for sd in sides:
            tr.hand(sd, t, t + go, *target)
            tr.rest(sd, t + go + hold, t + d)
        if kind == "arm_wave":
            tt = sc.t
            tr.hand_off[side, :, 1] += (
                0.15 * amp * np.sin(2 * np.pi * 2.0 * (tt - t)) * window(tt, t, t + go, t + go + hold, t + d)
            )
    elif kind == "step":
        i = tr.at(t)
        tr.go(t, t + go + hold, tr.pos[i] + tr.local_to_world(i, (sign * 0.28 * amp, 0.0)))
    elif kind == "twist":
        tr.lean(t, t + go, yaw=sign * 0.5 * amp)
        tr.lean(t + go + hold, t + d)
    else:  # sway
        tr.lean(t, t + go, roll=sign * 0.25 * amp)
        tr.tilt(t, t + go, roll=-sign * 0.08 * amp)
        tr.lean(t + go + hold, t + d)
        tr.tilt(t + go + hold, t + d)


def _mirror(sc: Scene, t0: float) -> float:
    n = int(sc.rng.integers(3, 6))
    lag = 0.2 + 0.6 * sc.style.reaction_delay
    t = t0 + sc.dur(0.2)
    step_side = 1.0
    kinds = []
    for _ in range(n):
        kind = str(sc.rng.choice(_DANCE))
        side = int(sc.rng.integers(2)) if kind != "arm_wave" else sc.hand
        sign = float(sc.rng.choice([-1.0, 1.0]))
        if kind == "step":
            sign, step_side = step_side, -step_side  # alternate so the dancers stay in place
        d = sc.dur(0.8)
        _dance_move(sc, sc.a, kind, side, sign, t, d)
        # The mirror image: the other arm, the opposite local direction, a beat later.
        _dance_move(sc, sc.b, kind, 1 - side, -sign, t + lag, d)
        kinds.append(kind)
        t += d + sc.dur(0.15)
    sc.info["moves"] = kinds
    return t + lag + 0.2


def _beckon(sc: Scene, t0: float) -> float:
    A, B, s, t = sc.a, sc.b, sc.hand, sc.t
    D = sc.dist
    d_end = sc.rng.uniform(0.9, 1.2) * _avg_scale(sc)
    ta = t0 + sc.dur(0.2)
    e = A.hand(s, ta, ta + sc.dur(0.4), (0.05, -0.12, 0.75), (0.7, -1.0, -0.3), pause=sc.pause())
    f = 1.3 / sc.style.tempo
    we = e + sc.rng.integers(2, 5) / f
    curl = 0.5 - 0.5 * np.cos(2 * np.pi * f * (t - e))
    env = window(t, e - 0.05, e + 0.05, we - 0.1, we)
    A.hand_off[s, :, 2] -= 0.35 * sc.amp * curl * env
    A.hand_off[s, :, 1] += 0.15 * sc.amp * curl * env
    A.rest(s, we, we + sc.dur(0.5))
    tb = e + 0.5 / f + sc.delay()
    speed = 1.0 / sc.style.tempo
    arrive = B.go(tb, tb + 0.6 + (D - d_end) / speed, (0.0, d_end), pause=sc.pause())
    return max(arrive, we + 0.5) + 0.3


def _point_look(sc: Scene, t0: float) -> float:
    A, B, s = sc.a, sc.b, sc.hand
    D = sc.dist
    phi = sc.rng.uniform(0.35, 2.2)
    el = sc.rng.uniform(-0.25, 0.35)
    out = np.array([np.sin(phi) * np.cos(el), np.sin(el), np.cos(phi) * np.cos(el)])
    side = "right" if s == RIGHT else "left"
    sc.info["dir"] = (f"front {side}" if phi < 0.7 else side) if phi < 1.9 else f"back {side}"
    ta = t0 + sc.dur(0.2)
    A.look(ta, ta + sc.dur(0.4), pitch=-0.6 * el, yaw=SIDE_SIGN[s] * min(phi, 1.3) * 0.8)
    e = A.hand(s, ta, ta + sc.dur(0.6), 0.98 * out, (0.0, -1.0, -0.5), pause=sc.pause())
    lower = e + sc.dur(sc.rng.uniform(1.2, 1.8))
    A.rest(s, lower, lower + sc.dur(0.6))
    A.look(lower - 0.3, lower + 0.2)
    # The reactor looks at the far point the actor indicates (head, then chest, then feet).
    world = np.array([SIDE_SIGN[s] * out[0], out[2]])
    target = np.array([SIDE_SIGN[s] * 0.5 * A.body.shoulder_width, 0.0]) + 5.0 * world / np.linalg.norm(world)
    rel = float(wrap_angle(np.arctan2(target[0], target[1] - D) - np.pi))
    body = rel - np.sign(rel) * 0.8 if abs(rel) > 1.2 else 0.0
    tb = e - sc.dur(0.2) + sc.delay()
    if body:
        B.go(tb + 0.1, tb + 0.1 + sc.dur(0.8), yaw=np.pi + body)
    rest_rel = rel - body
    B.lean(tb, tb + sc.dur(0.5), yaw=0.35 * rest_rel)
    B.look(tb, tb + sc.dur(0.4), pitch=-0.6 * el, yaw=float(np.clip(0.65 * rest_rel, -1.2, 1.2)))
    back = lower + 0.3 + sc.delay()
    B.lean(back, back + sc.dur(0.5))
    B.look(back, back + sc.dur(0.5))
    if body:
        B.go(back, back + sc.dur(0.8), yaw=np.pi)
    return back + sc.dur(0.9)


def _kick(sc: Scene, t0: float) -> float:
    A, B, s = sc.a, sc.b, sc.hand
    D = sc.dist
    ta = t0 + sc.dur(0.15)
    guard, pole = (-0.2, 0.12, 0.55), (0.4, -1.0, 0.0)
    for side in (LEFT, RIGHT):
        A.hand(side, ta, ta + sc.dur(0.4), guard, pole)
    tk = ta + sc.dur(0.6) + sc.pause()
    up = 0.18 + 0.12 * np.sqrt(sc.style.tempo)
    body = A.body
    tgt = np.array([SIDE_SIGN[s] * 0.08 * body.height / 1.7, 0.5 * body.height * min(sc.amp, 1.2) / 1.2, 0.0])
    tgt[2] = 0.78 * body.leg_length
    A.kick_target[s] = tgt
    A.kick_w[s] = 0.0
    move(A.kick_w[s], tk, tk + up, 1.0, A.fps)
    move(A.kick_w[s], tk + up + 0.1, tk + up + 0.45, 0.0, A.fps)
    A.tilt(tk, tk + up, pitch=-0.25, roll=SIDE_SIGN[s] * 0.1)
    A.tilt(tk + up + 0.1, tk + up + 0.5)
    end = tk + up + 0.5 + sc.dur(0.4)
    for side in (LEFT, RIGHT):
        A.rest(side, end, end + sc.dur(0.5))
    # The reactor jumps back as soon as it sees the kick coming.
    tj = tk + 0.08 + 0.2 * sc.style.reaction_delay
    flight = 0.32
    back = (0.35 + 0.15 * sc.amp) * _avg_scale(sc)
    B.go(tj - 0.05, tj + flight, (0.0, D + back))
    B.jump(tj, tj + flight, 0.1 * _avg_scale(sc))
    B.lean(tj - 0.1, tj + 0.15, pitch=0.2)
    B.lean(tj + 0.7, tj + 1.2)
    for side in (LEFT, RIGHT):
        B.hand(side, tj - 0.1, tj + 0.15, (0.5, 0.25, 0.35), (0.5, -1.0, -0.3))
        B.hand(side, tj + 0.5, tj + 0.8, (-0.2, 0.12, 0.55), (0.4, -1.0, 0.0))
        B.rest(side, tj + 1.2, tj + 1.7)
    return max(end + 0.5, tj + 1.7)


# ---------------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class Interaction:
    """One interaction type: roles, how close the people stand, how to choreograph it."""

    key: str
    description: str
    actor_role: str
    reactor_role: str
    contact: str  # "none", "hands" (wrists may meet) or "body" (arms wrap the partner)
    distance: Callable[[Scene], float]  # root distance when the interaction starts
    build: Callable[[Scene, float], float]
    walk_in: bool = True  # whether a walk-in prelude makes sense


def _uniform(lo: float, hi: float) -> Callable[[Scene], float]:
    return lambda sc: sc.rng.uniform(lo, hi) * _avg_scale(sc)


INTERACTIONS: dict[str, Interaction] = {
    i.key: i
    for i in (
        Interaction("handshake", "two people shake hands", "offers a hand", "shakes it", "hands",
                    lambda sc: _meeting(sc, 0.6, 0.9), _handshake),
        Interaction("wave", "one waves, the other waves back", "waves", "waves back", "none",
                    _uniform(1.6, 3.0), _wave),
        Interaction("hug", "one walks into a hug, the other hugs back", "hugs", "hugs back", "body",
                    _uniform(1.0, 1.2), _hug),
        Interaction("push", "one pushes, the other stumbles back", "pushes", "stumbles back", "hands",
                    _uniform(0.8, 0.9), _push),
        Interaction("punch", "one punches, the other dodges or blocks", "punches", "dodges", "hands",
                    _uniform(0.95, 1.05), _punch),
        Interaction("high_five", "two people high-five", "raises a hand", "high-fives", "hands",
                    lambda sc: _meeting(sc, 0.95, 0.9), _high_five),
        Interaction("bow", "one bows, the other bows back", "bows", "bows back", "none",
                    _uniform(1.6, 2.3), _bow),
        Interaction("hand_over", "one hands an object to the other", "gives", "takes", "hands",
                    lambda sc: _meeting(sc, 0.62, 0.88), _hand_over),
        Interaction("lead_follow", "one walks off, the other follows", "leads", "follows", "none",
                    _uniform(1.0, 1.4), _lead_follow, walk_in=False),
        Interaction("mirror", "one dances, the other mirrors the moves", "dances", "mirrors", "none",
                    _uniform(1.3, 1.8), _mirror),
        Interaction("beckon", "one beckons, the other approaches", "beckons", "approaches", "none",
                    _uniform(2.2, 3.2), _beckon, walk_in=False),
        Interaction("point_look", "one points somewhere, the other looks there", "points", "looks", "none",
                    _uniform(1.3, 2.0), _point_look),
        Interaction("kick", "one kicks, the other jumps back", "kicks", "jumps back", "none",
                    _uniform(1.3, 1.45), _kick),
        Interaction("fist_bump", "two people bump fists", "offers a fist", "bumps it", "hands",
                    lambda sc: _meeting(sc, 0.62, 0.88), _fist_bump),
    )
}  # fmt: skip


# ---------------------------------------------------------------------------------------------
# solo actions: things people do on their own before or after an interaction (each returns its end)

# Solo actions that move the hands or the head forward; they need room in front (before an
# interaction they are only drawn with room; after it the person first turns away from the partner).
FORWARD_SOLO = ("pick_up", "shadow_box", "reach_forward")
SOLO_ACTIONS = (
    "crouch",
    "pick_up",
    "reach_up",
    "reach_side",
    "reach_forward",
    "turn_around",
    "side_step",
    "step_back",
    "shadow_box",
    "gesture",
)
# Weights of the solo actions in the draw (the others 1): turning on the spot, side steps and
# crouching are where recorded people differ most from the rest of the generator.
SOLO_WEIGHT = {"turn_around": 2, "side_step": 2, "crouch": 2}
# Solo actions both people may do at once also when they stand close (nothing moves forward).
SHARED_SOLO = ("reach_up", "reach_side", "turn_around", "side_step", "step_back", "gesture")
# After the interaction "step_back" is the postlude's own (back, not forth), so not a solo action.
POST_SOLO = tuple(k for k in SOLO_ACTIONS if k != "step_back")
SOLO_POST_MIN = 2.0  # seconds left in the clip after the interaction for a solo action there
GUARD, GUARD_POLE = (-0.2, 0.12, 0.55), (0.4, -1.0, 0.0)


def _crouch(sc: Scene, tr: Track, t: float) -> float:
    """Squat down (pelvis well below 3/4 of standing height), hold, and stand back up."""
    s, rng = tr.body.height / 1.7, sc.rng
    depth = rng.uniform(0.3, 0.42) * s
    t1 = t + sc.dur(0.6)
    t2 = t1 + rng.uniform(0.4, 1.4)
    t3 = t2 + sc.dur(0.65)
    tr.height -= depth * window(sc.t, t, t1, t2, t3)
    tr.tilt(t, t1, pitch=0.35)
    tr.lean(t, t1, pitch=0.15)
    tr.look(t, t1, pitch=-0.25)
    for side in (LEFT, RIGHT):  # arms forward for balance
        tr.hand(side, t, t1, (0.12, -0.35, 0.75), (0.5, -1.0, -0.3))
        tr.rest(side, t2, t3)
    tr.tilt(t2, t3)
    tr.lean(t2, t3)
    tr.look(t2, t3)
    return t3


def _pick_up(sc: Scene, tr: Track, t: float) -> float:
    """Bend forward at the hips with bent knees and reach down to the floor, then straighten up."""
    b, rng = tr.body, sc.rng
    s = b.height / 1.7
    bend = rng.uniform(1.3, 1.7)  # torso pitch: pelvis plus spine
    phi = 0.2  # the arm hangs this far forward of vertical
    reach = 0.97 * b.arm_length
    drop = rng.uniform(0.3, 0.45) * s
    # Keep the wrist above the floor. The spine bends progressively (pelvis, then three spine
    # joints), so the shoulders pivot by about 0.7 of the torso pitch, around the pelvis.
    sh = b.pelvis_height - 0.015 * s + (b.shoulder_height - b.pelvis_height) * np.cos(0.7 * bend)
    drop = float(np.clip(sh - reach * np.cos(phi) - 0.08 * s, 0.0, drop))
    both = rng.random() < 0.35
    pick = sc.hand if rng.random() < 0.8 else 1 - sc.hand
    t1 = t + sc.dur(0.75)
    t2 = t1 + sc.dur(rng.uniform(0.25, 0.5))
    t3 = t2 + sc.dur(0.75)
    tr.height -= drop * window(sc.t, t, t1, t2, t3)
    tr.tilt(t, t1, pitch=0.45 * bend)
    tr.lean(t, t1, pitch=0.55 * bend)
    tr.look(t, t1, pitch=-0.15)
    a = bend + phi
    down = np.array([0.1, -np.cos(a), np.sin(a)])
    down = down / np.linalg.norm(down)
    for side in (LEFT, RIGHT):
        k = 0.97 if (both or side == pick) else 0.75
        tr.hand(side, t + 0.1, t1, k * down, (0.5, 0.0, -1.0))
        tr.rest(side, t2, t3)
    tr.tilt(t2, t3)
    tr.lean(t2, t3)
    tr.look(t2, t3)
    return t3


def _reach_out(sc: Scene, tr: Track, t: float, where: str) -> float:
    """Reach up, sideways or forward with one or both hands, hold, and lower them."""
    rng = sc.rng
    target, pole = {
        "up": ((0.15, 0.97, 0.12), (1.0, 0.0, -0.3)),
        "side": ((0.97, 0.12, 0.12), (0.0, -1.0, -0.3)),
        "forward": ((0.05, 0.12, 0.97), (1.0, -1.0, 0.0)),
    }[where]
    sides = (LEFT, RIGHT) if rng.random() < 0.45 else (sc.hand,)
    t1 = t + sc.dur(0.55)
    t2 = t1 + rng.uniform(0.3, 0.8)
    t3 = t2 + sc.dur(0.55)
    for side in sides:
        tr.hand(side, t, t1, target, pole)
        tr.rest(side, t2, t3)
    tr.lean(t, t1, pitch=-0.08 if where == "up" else 0.1)
    tr.look(t, t1, pitch=-0.35 if where == "up" else 0.0)
    tr.lean(t2, t3)
    tr.look(t2, t3)
    return t3


def _turn(sc: Scene, tr: Track, t: float, back: bool, quick: bool = False) -> float:
    """Turn on the spot by 90-170 degrees (the feet step round), look, and optionally turn back.

    quick: a brisk 75-110 degree turn with no pause (turning away to make room).
    """
    rng = sc.rng
    i = tr.at(t)
    face = float(tr.yaw[i])
    ang = rng.choice([-1.0, 1.0]) * (rng.uniform(1.3, 1.9) if quick else rng.uniform(1.6, 3.0))
    t1 = tr.go(t, t + sc.dur(0.45 + 0.15 * abs(ang)), yaw=face + ang)
    t2 = t1 + (0.05 if quick else rng.uniform(0.3, 0.7))
    if not back:
        return t2
    return tr.go(t2, t2 + sc.dur(0.45 + 0.15 * abs(ang)), yaw=face)


def _side_step(sc: Scene, tr: Track, t: float, back: bool, until: float) -> float:
    """Step sideways 0.35-0.8 m (and back again), one to three times (footwork) while before `until`."""
    rng = sc.rng
    i = tr.at(t)
    home = tr.pos[i].copy()
    sgn = rng.choice([-1.0, 1.0])
    for k in range(int(rng.integers(1, 4))):
        if k and t > until:
            break
        off = sgn * rng.uniform(0.35, 0.8) * tr.body.height / 1.7
        d = sc.dur(0.35 + abs(off) / 0.9)
        t = tr.go(t, t + d, home + tr.local_to_world(i, (off, 0.0))) + rng.uniform(0.1, 0.3)
        t = tr.go(t, t + d, home) + rng.uniform(0.1, 0.3)
        sgn = -sgn if rng.random() < 0.5 else sgn
    if back:
        return t
    off = sgn * rng.uniform(0.35, 0.8) * tr.body.height / 1.7
    return tr.go(t, t + sc.dur(0.35 + abs(off) / 0.9), home + tr.local_to_world(i, (off, 0.0))) + 0.2


def _step_back(sc: Scene, tr: Track, t: float, until: float) -> float:
    """Step backwards 0.3-0.6 m, then forward again to the same place, once or twice (before `until`)."""
    rng = sc.rng
    i = tr.at(t)
    home = tr.pos[i].copy()
    for k in range(int(rng.integers(1, 3))):
        if k and t > until:
            break
        back = rng.uniform(0.3, 0.6) * tr.body.height / 1.7
        d = sc.dur(0.3 + back / 0.9)
        t = tr.go(t, t + d, home - back * forward_dir(tr.yaw[i])) + rng.uniform(0.15, 0.4)
        t = tr.go(t, t + d, home) + 0.1
    return t


def _shadow_box(sc: Scene, tr: Track, t: float, until: float) -> float:
    """Guard up, then 3-6 quick jabs in the air (wrists at 2-4 m/s), then hands down."""
    rng, s = sc.rng, tr.body.height / 1.7
    t1 = t + 0.3
    for side in (LEFT, RIGHT):
        tr.hand(side, t, t1, GUARD, GUARD_POLE)
    n = int(rng.integers(3, 7))
    side = int(rng.integers(2))
    tj = t1 + 0.1
    i = tr.at(t)
    home = tr.pos[i].copy()
    for k in range(n):
        if k >= 2 and tj > until:
            break
        if rng.random() < 0.5:  # footwork: a quick shuffle sideways or back between jabs
            shift = tr.local_to_world(i, (rng.uniform(-0.3, 0.3), rng.uniform(-0.25, 0.0)))
            tr.go(tj - 0.05, tj + 0.3, home + shift)
        out = rng.uniform(0.11, 0.15)
        tr.hand(side, tj, tj + out, (-0.05, rng.uniform(0.05, 0.2), 0.97))
        tr.hand(side, tj + out + 0.04, tj + out + 0.2, GUARD)
        tr.spine[:, 1] += (
            -SIDE_SIGN[side] * 0.25 * window(sc.t, tj - 0.03, tj + out, tj + out + 0.04, tj + out + 0.22)
        )
        tj += rng.uniform(0.26, 0.4)
        side = 1 - side if rng.random() < 0.8 else side
    crouch = 0.04 * s * window(sc.t, t, t1, tj, tj + 0.3)
    tr.height -= crouch
    tr.go(tj, tj + 0.45, home)
    for side in (LEFT, RIGHT):
        tr.rest(side, tj, tj + 0.45)
    return tj + 0.45


def _gesture(sc: Scene, tr: Track, t: float) -> float:
    """Quick, emphatic hand gestures: hands up in front, shaken or chopped at 2.5-3.5 Hz."""
    rng = sc.rng
    sides = (LEFT, RIGHT) if rng.random() < 0.4 else (sc.hand,)
    f = rng.uniform(2.5, 3.5)
    amp = rng.uniform(0.18, 0.28)
    axis = rng.choice([0, 1])  # side to side or up and down
    t1 = t + sc.dur(0.35)
    te = t1 + int(rng.integers(2, 5)) / f
    w = window(sc.t, t1 - 0.05, t1 + 0.08, te - 0.08, te)
    for k, side in enumerate(sides):
        tr.hand(side, t, t1, (0.3, -0.1, 0.5), (1.0, -1.0, -0.3))
        tr.hand_off[side, :, axis] += amp * np.sin(2 * np.pi * f * (sc.t - t1) + k * np.pi) * w
        tr.rest(side, te, te + sc.dur(0.45))
    return te + sc.dur(0.45)


def _solo(sc: Scene, tr: Track, kind: str, t: float, roomy: bool, back: bool, until: float) -> float:
    """Perform one solo action from t; returns its end.

    back: end where and as it started (before an interaction); until: repeated moves (footwork,
    jabs) stop repeating after this time, which keeps preludes short.
    """
    if kind in FORWARD_SOLO and not roomy:  # turn away from the partner first, then back
        face = float(tr.yaw[tr.at(t)])
        t = _turn(sc, tr, t, back=False, quick=True)
        end = _solo(sc, tr, kind, t, True, back, until)
        if back:
            end = tr.go(end + 0.05, end + 0.05 + sc.dur(0.6), yaw=face)
        return end
    if kind == "crouch":
        return _crouch(sc, tr, t)
    if kind == "pick_up":
        return _pick_up(sc, tr, t)
    if kind.startswith("reach_"):
        return _reach_out(sc, tr, t, kind[len("reach_") :])
    if kind == "turn_around":
        return _turn(sc, tr, t, back)
    if kind == "side_step":
        return _side_step(sc, tr, t, back, until)
    if kind == "step_back":
        return _step_back(sc, tr, t, until)
    if kind == "shadow_box":
        return _shadow_box(sc, tr, t, until)
    return _gesture(sc, tr, t)


def _roomy(sc: Scene, t: float) -> bool:
    """Whether the two people stand far enough apart for a solo action reaching forward."""
    i = sc.a.at(t)
    return bool(np.linalg.norm(sc.a.pos[i] - sc.b.pos[i]) > 1.45 * _avg_scale(sc))


# ---------------------------------------------------------------------------------------------
# solo segments


def _solo_plan(seed: int, chance: float) -> tuple[tuple[float, float] | None, tuple[float, float] | None]:
    """Draws for the solo actions before and after the interaction: None, or (kind, who) in [0, 1).

    They come from a random stream of their own, fixed by the seed alone: with the option off the
    main stream is not touched (the clips stay as they were), and the same scene in another style
    has the same plan, so edit variants keep their layout.
    """
    if chance <= 0.0:
        return None, None
    u = np.random.default_rng([seed, 17, 0x5010]).random((2, 3))
    pre, post = ((float(k), float(w)) if on < chance else None for on, k, w in u)
    return pre, post


def _weighted(kinds: Sequence[str], u: float) -> str:
    """The solo action at u in [0, 1) of `kinds` weighted by SOLO_WEIGHT."""
    pool = [k for k in kinds for _ in range(SOLO_WEIGHT.get(k, 1))]
    return pool[min(int(u * len(pool)), len(pool) - 1)]


def _solo_prelude(sc: Scene, draw: tuple[float, float]) -> tuple[float, str, str]:
    """A solo action before the interaction by one person or both, who end where and as they began."""
    # Forward-reaching actions only with room in front: turning away first would make the prelude
    # long enough to cut the interaction off at the end of the clip.
    roomy = _roomy(sc, 0.0)
    kind = _weighted([k for k in SOLO_ACTIONS if roomy or k not in FORWARD_SOLO], draw[0])
    who = ("actor", "actor", "reactor", "both")[min(int(draw[1] * 4), 3)]
    if who == "both" and not (roomy or kind in SHARED_SOLO):
        who = "actor"
    people = {"actor": (sc.a,), "reactor": (sc.b,), "both": (sc.a, sc.b)}[who]
    t0 = sc.rng.uniform(0.3, 0.8)
    t0 = max(_solo(sc, tr, kind, t0, roomy, True, t0 + 1.6) for tr in people) + 0.2
    return t0, kind, who


def _solo_postlude(sc: Scene, t_end: float, draw: tuple[float, float]) -> tuple[float, str, str]:
    """A solo action after the interaction; it is cut off where the clip ends (MAX_SECONDS)."""
    kind = _weighted(POST_SOLO, draw[0])
    who = ("actor", "reactor", "both")[min(int(draw[1] * 3), 2)]
    # Both at once only with actions that keep clear of the partner: whether there is room after
    # the interaction depends on the style (how far a push sends the reactor), the layout must not.
    if who == "both" and kind not in SHARED_SOLO:
        who = "actor"
    people = {"actor": (sc.a,), "reactor": (sc.b,), "both": (sc.a, sc.b)}[who]
    t = t_end + sc.rng.uniform(0.1, 0.4)
    roomy = _roomy(sc, t)
    until = MAX_SECONDS - 1.5  # repeated moves (footwork, jabs) stop repeating here
    return max(_solo(sc, tr, kind, t, roomy, False, until) for tr in people) + 0.2, kind, who


def _prelude(sc: Scene, spec: Interaction, solo: tuple[float, float] | None = None) -> tuple[float, str, str]:
    """Solo motion before the interaction; returns (interaction start, kind, who).

    solo: the draws of a planned solo action (`_solo_plan`), or None for the other kinds.
    """
    if solo is not None:
        return _solo_prelude(sc, solo)
    A, B, rng = sc.a, sc.b, sc.rng
    kinds = ["idle", "look_around", "turn_to_face"] + (["walk_in"] * 3 if spec.walk_in else [])
    kind = str(rng.choice(kinds))
    who = str(rng.choice(["actor", "actor", "reactor", "both"]))
    t0 = rng.uniform(0.3, 0.8)
    if kind == "walk_in":
        speed = 1.15 / sc.style.tempo
        extra = rng.uniform(0.7, 1.8) * (0.6 if who == "both" else 1.0)
        walkers = {"actor": (A,), "reactor": (B,), "both": (A, B)}[who]
        t_walk = 0.5 + extra / speed
        for tr in walkers:
            end = tr.pos[0].copy()
            i = 0
            tr.pos[:] = end - extra * forward_dir(tr.yaw[i])
            tr.go(t0, t0 + t_walk, end, pause=sc.pause() * 0.5)
        t0 = t0 + t_walk + sc.style.hesitation * 0.5 + 0.2
    elif kind == "look_around":
        tr = A if who != "reactor" else B
        sgn = rng.choice([-1.0, 1.0])
        tr.look(t0, t0 + 0.5, yaw=sgn * 0.8, pitch=-0.05)
        tr.look(t0 + 0.8, t0 + 1.4, yaw=-sgn * 0.6)
        tr.look(t0 + 1.7, t0 + 2.1)
        t0 += 2.2
        who = "actor" if tr is A else "reactor"
    elif kind == "turn_to_face":
        tr = A if who != "reactor" else B
        face = tr.yaw[0]
        tr.yaw[:] = face + rng.choice([-1.0, 1.0]) * rng.uniform(1.4, 2.8)
        t0 = tr.go(t0, t0 + sc.dur(0.9), yaw=face) + 0.2
        who = "actor" if tr is A else "reactor"
    else:
        t0 += rng.uniform(0.2, 0.8)
        who = "both"
    return t0, kind, who


def _postlude(
    sc: Scene, t_end: float, budget: float, solo: tuple[float, float] | None = None
) -> tuple[float, str, str]:
    """Solo motion after the interaction; returns (clip end, kind, who).

    solo: the draws of a planned solo action (`_solo_plan`) where there is time for it
    (`_solo_post_fits`), or None for the other kinds.
    """
    if solo is not None:
        return _solo_postlude(sc, t_end, solo)
    A, B, rng = sc.a, sc.b, sc.rng
    kind = str(rng.choice(["idle", "step_back", "walk_away", "look_around"]))
    who = str(rng.choice(["actor", "reactor", "both"]))
    t = t_end + rng.uniform(0.1, 0.4)
    people = {"actor": (A,), "reactor": (B,), "both": (A, B)}[who]
    if budget < 1.2:
        kind = "idle"
    if kind == "step_back":
        end = t
        for tr in people:
            i = tr.at(t)
            back = rng.uniform(0.3, 0.6) * tr.body.height / 1.7
            end = max(end, tr.go(t, t + sc.dur(0.9), tr.pos[i] - back * forward_dir(tr.yaw[i])))
        end += 0.3
    elif kind == "walk_away":
        tr = people[0]
        who = "actor" if tr is A else "reactor"
        i = tr.at(t)
        heading = tr.yaw[i] + rng.choice([-1.0, 1.0]) * rng.uniform(1.6, 3.0)
        tr.go(t, t + sc.dur(0.6), yaw=heading)
        dist = rng.uniform(0.8, 1.6)
        end = tr.go(t + sc.dur(0.4), t + 0.9 + dist / 1.1, tr.pos[i] + dist * forward_dir(heading)) + 0.2
    elif kind == "look_around":
        tr = people[0]
        who = "actor" if tr is A else "reactor"
        sgn = rng.choice([-1.0, 1.0])
        tr.look(t, t + 0.5, yaw=sgn * 0.7)
        tr.look(t + 0.8, t + 1.3, yaw=-sgn * 0.5)
        end = t + 1.5
    else:
        end = t + rng.uniform(0.4, 1.2)
        who = "both"
    return end, kind, who


def _add_life(sc: Scene, t_start: float, t_end: float) -> None:
    """Idle sway, breathing and the style's posture and bounce during the interaction."""
    t, st = sc.t, sc.style
    inter = window(t, t_start - 0.3, t_start + 0.2, t_end - 0.2, t_end + 0.3)
    for tr in (sc.a, sc.b):
        ph = sc.rng.uniform(0, 2 * np.pi, size=4)
        f = sc.rng.uniform(0.18, 0.32)
        lat = 0.008 * st.sway * np.sin(2 * np.pi * f * t + ph[0])
        tr.pos_off += lat[:, None] * left_dir(tr.yaw)
        tr.spine[:, 2] += 0.025 * st.sway * np.sin(2 * np.pi * f * t + ph[0] + 0.5)
        tr.spine[:, 0] += 0.012 * np.sin(2 * np.pi * 0.25 * t + ph[1]) + st.lean * inter
        tr.neck[:, 1] += 0.05 * st.sway * np.sin(2 * np.pi * 0.13 * t + ph[2])
        tr.neck[:, 0] += st.head_down * inter
        if st.bounce > 0:
            tr.height += st.bounce * np.abs(np.sin(2 * np.pi * 1.1 * t + ph[3])) * inter


# ---------------------------------------------------------------------------------------------
# assembling a clip


def min_person_distance(positions: np.ndarray, contact: str) -> float:
    """Smallest distance between the two people's joints, ignoring joints allowed to touch."""
    keep = [j for j in range(NUM_JOINTS) if j not in contact_joints(contact)]
    a, b = positions[0][:, keep], positions[1][:, keep]
    d = np.linalg.norm(a[:, :, None] - b[:, None], axis=-1)
    return float(d.min())


def contact_joints(contact: str) -> tuple[int, ...]:
    """Joints excluded from the interpenetration check for a contact class."""
    arms = tuple(J[n] for n in ("left_elbow", "right_elbow", "left_wrist", "right_wrist"))
    if contact == "hands":
        return arms
    if contact == "body":
        return arms + tuple(
            J[n] for n in ("left_shoulder", "right_shoulder", "left_collar", "right_collar", "head")
        )
    return ()


MIN_GAP = {"none": 0.18, "hands": 0.15, "body": 0.08}  # metres between the nearest checked joints


def _scene(
    seed: int, key: str, style: Style, bonus: float, solo_pre: tuple[float, float] | None
) -> tuple[Scene, Interaction, tuple[float, str, str], float]:
    """The scene up to the end of the interaction: (scene, spec, (start, prelude kind, who), end)."""
    rng = np.random.default_rng([seed, 17])
    spec = INTERACTIONS[key]
    heights = rng.uniform(1.5, 1.9, size=2)
    bodies = [make_body(h, rng) for h in heights]
    tracks = [
        Track(b, _ALLOC, FPS, swing_time=style.swing_time, step_arc=0.07 * b.height / 1.7) for b in bodies
    ]
    hand = RIGHT if rng.random() < 0.8 else LEFT
    sc = Scene(rng, style, tracks[0], tracks[1], hand)
    sc.info["bonus"] = bonus
    sc.dist = spec.distance(sc) + bonus
    sc.a.place((0.0, 0.0), 0.0)
    sc.b.place((0.0, sc.dist), np.pi)
    pre = _prelude(sc, spec, solo_pre)
    return sc, spec, pre, spec.build(sc, pre[0])


@functools.lru_cache(maxsize=64)
def _interaction_end(seed: int, key: str, style: str, solo_pre: tuple[float, float] | None) -> float:
    return _scene(seed, key, STYLES[style], 0.0, solo_pre)[3]


def _solo_post_fits(seed: int, key: str, solo_pre: tuple[float, float] | None) -> bool:
    """Whether the scene leaves SOLO_POST_MIN seconds after the interaction in every style.

    A slow style ends the interaction later; were the solo action after it left out only there,
    the same scene in another style would have another layout and make no edit variant.
    """
    return all(MAX_SECONDS - _interaction_end(seed, key, st, solo_pre) >= SOLO_POST_MIN for st in STYLES)


def _compose(seed: int, key: str, style: Style, bonus: float, config: SynthConfig):
    solo_pre, solo_post = _solo_plan(seed, config.solo_actions)
    sc, spec, (t0, pre_kind, pre_who), t_end = _scene(seed, key, style, bonus, solo_pre)
    if solo_post is not None and not _solo_post_fits(seed, key, solo_pre):
        solo_post = None
    budget = MAX_SECONDS - t_end
    t_clip, post_kind, post_who = _postlude(sc, t_end, budget, solo_post)
    t_clip = float(np.clip(t_clip, MIN_SECONDS, MAX_SECONDS))
    _add_life(sc, t0, t_end)
    local, root, pos = solve([sc.a, sc.b], sc.jobs)
    T = int(round(t_clip * FPS))
    return (
        sc,
        spec,
        local[:, :T],
        root[:, :T],
        pos[:, :T],
        (t0, t_end, t_clip),
        (pre_kind, pre_who),
        (post_kind, post_who),
    )


def generate_clip(
    seed: int, interaction: str | None = None, style: str | None = None, config: SynthConfig | None = None
) -> MotionClip:
    """One two-person interaction clip, fully determined by (seed, interaction, style, config).

    interaction/style: keys of INTERACTIONS/STYLES; None draws them from the seed.
    config: the generator's options (`SynthConfig`); None is the defaults.
    Positions are world metres, Y up, floor at y=0, 30 fps; `local_quats` are the rotations the
    positions were made from. meta records roles, style, handedness, segments and the seed, and
    the options that are not at their defaults (so the clip can be made again, `edit_variants`).
    """
    config = config or SynthConfig()
    rng = np.random.default_rng(seed)
    keys, styles = sorted(INTERACTIONS), sorted(STYLES)
    key = str(rng.choice(keys)) if interaction is None else interaction
    sname = str(rng.choice(styles)) if style is None else style
    if key not in INTERACTIONS:
        raise ValueError(f"unknown interaction {key!r}; choose from {keys}")
    if sname not in STYLES:
        raise ValueError(f"unknown style {sname!r}; choose from {styles}")
    st = STYLES[sname]
    actor = 1 if rng.random() < 0.25 else 0
    heading, shift = rng.uniform(-np.pi, np.pi), rng.uniform(-3.0, 3.0, size=2)

    # Too close somewhere (a big person, a deep bow): move the people apart and compose again.
    bonus = 0.0
    for _ in range(3):
        sc, spec, local, root, pos, times, pre, post = _compose(seed, key, st, bonus, config)
        gap = min_person_distance(pos, spec.contact)
        if gap >= MIN_GAP[spec.contact]:
            break
        bonus += MIN_GAP[spec.contact] - gap + 0.05

    # Order people so the actor is at index `actor`, then place the scene somewhere in the world.
    order = [0, 1] if actor == 0 else [1, 0]
    local, root, pos = local[order], root[order], pos[order]
    rq = yaw_quat(np.asarray(heading))
    local = local.copy()
    local[:, :, 0] = quat_mul(np.broadcast_to(rq, local[:, :, 0].shape), local[:, :, 0])
    move3 = np.array([shift[0], 0.0, shift[1]])
    pos = quat_rotate(np.broadcast_to(rq, pos.shape[:-1] + (4,)), pos) + move3

    t0, t_end, t_clip = times
    T = pos.shape[1]
    i0, i1 = min(int(round(t0 * FPS)), T), min(int(round(t_end * FPS)), T)
    who = {"actor": actor, "reactor": 1 - actor, "both": "both"}
    segments = [
        {"start": 0, "end": i0, "kind": "solo", "action": pre[0], "person": who[pre[1]]},
        {"start": i0, "end": i1, "kind": "interaction", "interaction": key, "actor": actor},
        {"start": i1, "end": T, "kind": "solo", "action": post[0], "person": who[post[1]]},
    ]
    segments = [s for s in segments if s["end"] > s["start"]]
    hand = "right" if sc.hand == RIGHT else "left"
    extra = {k: v for k, v in sc.info.items() if isinstance(v, str)}
    texts = make_captions(sc.rng, key, st.adverbs, st.manners, actor, hand, extra, pre, post, count=4)
    meta = {
        "source": "synth",
        "interaction": key,
        "description": spec.description,
        "style": sname,
        "actor": actor,
        "reactor": 1 - actor,
        "handedness": hand,
        "contact": spec.contact,
        "segments": segments,
        "seed": int(seed),
        "heights": [float(sc.a.body.height), float(sc.b.body.height)][:: 1 if actor == 0 else -1],
        "distance": float(sc.dist),
        "min_gap": float(gap),
    }
    meta.update(extra)
    meta.update(config.non_default())
    return MotionClip(
        name=f"synth_{seed:08d}_{key}", positions=pos, fps=FPS, texts=texts, meta=meta, local_quats=local
    )


def dataset_schedule(count: int) -> list[tuple[str, str]]:
    """(interaction, style) of each clip of `generate_dataset`: every pair comes up in turn.

    Clip i has interaction i mod n and style (i mod n + i div n) mod m, so each round of n clips
    shifts the styles by one and n x m clips hold every pair (with 14 interactions and 5 styles,
    any 70 consecutive clips).
    """
    keys, styles = sorted(INTERACTIONS), sorted(STYLES)
    n = len(keys)
    return [(keys[i % n], styles[(i % n + i // n) % len(styles)]) for i in range(count)]


def generate_dataset(count: int, seed: int = 0, config: SynthConfig | None = None) -> Iterator[MotionClip]:
    """`count` clips balanced over interaction types and styles (`dataset_schedule`)."""
    rng = np.random.default_rng(seed)
    for key, style in dataset_schedule(count):
        yield generate_clip(int(rng.integers(2**31 - 1)), key, style, config)
