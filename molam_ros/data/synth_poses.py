"""Pose machinery of the procedural two-person generator: bodies, control tracks and the solver.

It is over 500 lines because the body model, the control tracks, foot planning and the IK solver
form one pipeline from channels to joint positions whose pieces share the same frames and units.

An interaction in `synth.py` is written as a choreography of a few smooth control channels per
person (root path and heading, pelvis tilt, spine and neck angles, hand targets in the chest frame
or in the world, kicks, jumps). `solve` turns those channels into local joint rotations:

1. footsteps are planned from the root path (a foot steps when the body has moved away from it),
   so stance feet stay planted and swing feet follow an arc;
2. legs are solved with analytic two-bone IK onto the planned ankle positions, with the root height
   lowered while walking so the legs can reach;
3. a first forward-kinematics pass gives the torso of both people, which the interaction's
   "arm jobs" read to aim at the partner (hug around the back, push on the chest);
4. arms are solved with two-bone IK onto the blended hand targets, and a final FK pass gives
   positions. Rotations are the ground truth, so bone lengths never drift.

Everything is vectorised over (people, frames); only the footstep planner loops over frames, on
plain Python floats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.rotations import (
    axis_angle_to_quat,
    quat_between,
    quat_conjugate,
    quat_mul,
    quat_rotate,
    yaw_quat,
)
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS, REST_OFFSETS, rest_bone_lengths, scaled_offsets

J = JOINT_INDEX
LEFT, RIGHT = 0, 1
SIDE_SIGN = (1.0, -1.0)  # the person's left is +X in their own frame
HIPS, KNEES, ANKLES = (
    (J["left_hip"], J["right_hip"]),
    (J["left_knee"], J["right_knee"]),
    (
        J["left_ankle"],
        J["right_ankle"],
    ),
)
SHOULDERS, ELBOWS, WRISTS = (
    (J["left_shoulder"], J["right_shoulder"]),
    (J["left_elbow"], J["right_elbow"]),
    (
        J["left_wrist"],
        J["right_wrist"],
    ),
)
COLLARS = (J["left_collar"], J["right_collar"])
HEAD_TOP = 0.11  # metres from the head joint to the top of the skull (template body)

# Rest hand pose: hanging by the side, slightly out and forward, elbow pointing back. Hand targets
# are in units of arm length, relative to the shoulder, in "outward" coordinates (x away from the
# body's midline, y up, z forward) so one gesture serves both arms.
REST_HAND = (0.12, -0.95, 0.06)
REST_POLE = (0.3, 0.0, -1.0)


# ---------------------------------------------------------------------------------------------
# helper functions


def smoothstep(x: np.ndarray) -> np.ndarray:
    """C1 ease in [0, 1]; every channel change uses it so velocities start and end at zero."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def ramp(t: np.ndarray, t0: float, t1: float) -> np.ndarray:
    """0 before t0, smooth rise to 1 at t1."""
    return smoothstep((t - t0) / max(t1 - t0, 1e-6))


def window(t: np.ndarray, t0: float, t1: float, t2: float, t3: float) -> np.ndarray:
    """Smooth pulse: rises over [t0, t1], holds, falls over [t2, t3]."""
    return ramp(t, t0, t1) * (1.0 - ramp(t, t2, t3))


def wrap_angle(a: np.ndarray | float) -> np.ndarray | float:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def forward_dir(yaw: np.ndarray | float) -> np.ndarray:
    """World facing direction (x, z) for a heading angle (0 faces +Z)."""
    yaw = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.sin(yaw), np.cos(yaw)], axis=-1)


def left_dir(yaw: np.ndarray | float) -> np.ndarray:
    """World direction (x, z) of the person's left side."""
    yaw = np.asarray(yaw, dtype=np.float64)
    return np.stack([np.cos(yaw), -np.sin(yaw)], axis=-1)


def two_bone_ik(
    base: np.ndarray, target: np.ndarray, l1: np.ndarray, l2: np.ndarray, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Analytic two-bone IK: middle joint (elbow/knee) and reached end point.

    The chain bends in the plane spanned by base->target and `pole` (a direction); a target out of
    reach is clamped onto the reachable sphere along the same line (arm fully stretched).
    Shapes (..., 3); l1, l2 broadcast as (..., 1).
    """
    d = target - base
    dist = np.linalg.norm(d, axis=-1, keepdims=True)
    u = d / np.maximum(dist, 1e-9)
    dc = np.clip(dist, np.abs(l1 - l2) + 1e-4, (l1 + l2) * 0.9995)
    cos_a = np.clip((l1**2 + dc**2 - l2**2) / (2 * l1 * dc), -1.0, 1.0)
    sin_a = np.sqrt(1.0 - cos_a**2)
    v = pole - np.sum(pole * u, axis=-1, keepdims=True) * u
    vn = np.linalg.norm(v, axis=-1, keepdims=True)
    # Pole parallel to the reach: any perpendicular works; pick one deterministically.
    alt = np.cross(u, np.array([0.0, 1.0, 0.0]))
    alt = np.where(np.linalg.norm(alt, axis=-1, keepdims=True) < 1e-6, np.array([1.0, 0.0, 0.0]), alt)
    v = np.where(vn < 1e-6, alt, v)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
    mid = base + l1 * (cos_a * u + sin_a * v)
    return mid, base + dc * u


# ---------------------------------------------------------------------------------------------
# bodies


@dataclass
class Body:
    """One person's proportions, derived once from a height and per-bone jitter."""

    height: float
    offsets: np.ndarray  # (22, 3) scaled rest offsets
    pelvis_height: float  # pelvis above the floor standing straight (toe joints at y=0)
    ankle_height: float  # ankle joint above the floor with the foot flat
    ankle_rest: np.ndarray  # (2, 2) rest (lateral, forward) of each ankle relative to the pelvis
    arm: tuple[float, float]  # upper arm, forearm length
    leg: tuple[float, float]  # thigh, shin length
    shoulder_height: float
    shoulder_width: float

    @property
    def arm_length(self) -> float:
        return self.arm[0] + self.arm[1]

    @property
    def leg_length(self) -> float:
        return self.leg[0] + self.leg[1]


def template_height() -> float:
    """Standing height of the unscaled template (pelvis height + head joint + skull)."""
    off = REST_OFFSETS
    pelvis = -np.mean(
        [
            off[h, 1] + off[k, 1] + off[a, 1] + off[a + 3, 1]
            for h, k, a in zip(HIPS, KNEES, ANKLES, strict=True)
        ]
    )
    head = (
        off[J["spine1"], 1]
        + off[J["spine2"], 1]
        + off[J["spine3"], 1]
        + off[J["neck"], 1]
        + off[J["head"], 1]
    )
    return float(pelvis + head + HEAD_TOP)


def make_body(height: float, rng: np.random.Generator, jitter: float = 0.03) -> Body:
    """A body of the given standing height, with small independent limb proportions."""
    scale = height / template_height()
    lengths = rest_bone_lengths() * scale
    # Correlated jitter per limb group keeps left/right symmetric (people are roughly symmetric).
    groups = {
        "leg": (J["left_knee"], J["right_knee"], J["left_ankle"], J["right_ankle"]),
        "arm": (J["left_elbow"], J["right_elbow"], J["left_wrist"], J["right_wrist"]),
        "spine": (J["spine1"], J["spine2"], J["spine3"], J["neck"]),
    }
    for idx in groups.values():
        lengths[list(idx)] *= 1.0 + rng.uniform(-jitter, jitter)
    off = scaled_offsets(lengths)
    pel = -np.mean(
        [
            off[h, 1] + off[k, 1] + off[a, 1] + off[a + 3, 1]
            for h, k, a in zip(HIPS, KNEES, ANKLES, strict=True)
        ]
    )
    ankle_h = -np.mean([off[a + 3, 1] for a in ANKLES])
    ank = np.array(
        [[(off[h] + off[k] + off[a])[c] for c in (0, 2)] for h, k, a in zip(HIPS, KNEES, ANKLES, strict=True)]
    )
    sh = off[J["spine1"]] + off[J["spine2"]] + off[J["spine3"]]
    shl = sh + off[J["left_collar"]] + off[J["left_shoulder"]]
    shr = sh + off[J["right_collar"]] + off[J["right_shoulder"]]
    arm = (float(np.mean(lengths[list(ELBOWS)])), float(np.mean(lengths[list(WRISTS)])))
    leg = (float(np.mean(lengths[list(KNEES)])), float(np.mean(lengths[list(ANKLES)])))
    return Body(
        height=float(height),
        offsets=off,
        pelvis_height=float(pel),
        ankle_height=float(ankle_h),
        ankle_rest=ank,
        arm=arm,
        leg=leg,
        shoulder_height=float(pel + 0.5 * (shl[1] + shr[1])),
        shoulder_width=float(shl[0] - shr[0]),
    )


# ---------------------------------------------------------------------------------------------
# control tracks


def move(arr: np.ndarray, t0: float, t1: float, value, fps: float) -> None:
    """Ease `arr` from its value at t0 to `value` at t1 and hold it afterwards (in place).

    Channels are written in time order by the choreography; a later move starts from wherever the
    earlier ones left the channel, so motions chain without bookkeeping.
    """
    T = arr.shape[0]
    i0 = int(np.clip(round(t0 * fps), 0, T - 1))
    i1 = int(np.clip(round(t1 * fps), i0, T - 1))
    v0 = arr[i0].copy()
    value = np.asarray(value, dtype=np.float64)
    n = i1 - i0
    if n > 0:
        s = smoothstep(np.arange(1, n + 1) / n).reshape((-1,) + (1,) * (arr.ndim - 1))
        arr[i0 + 1 : i1 + 1] = v0 + s * (value - v0)
    arr[i1:] = value


@dataclass
class Track:
    """Per-frame control channels of one person (T frames), filled by the choreography."""

    body: Body
    T: int
    fps: float
    swing_time: float = 0.36  # seconds per step swing (style dependent)
    step_arc: float = 0.07  # swing foot lift, metres
    pos: np.ndarray = field(init=False)  # (T, 2) root x, z
    yaw: np.ndarray = field(init=False)  # (T,) heading, 0 faces +Z
    height: np.ndarray = field(init=False)  # (T,) added pelvis height (crouch < 0, jump > 0)
    pelvis: np.ndarray = field(init=False)  # (T, 2) pelvis pitch (forward +), roll (to the right +)
    spine: np.ndarray = field(init=False)  # (T, 3) pitch, yaw (to the left +), roll, summed over 3 joints
    neck: np.ndarray = field(init=False)  # (T, 2) pitch (down +), yaw (to the left +)
    hand_local: np.ndarray = field(
        init=False
    )  # (2, T, 3) chest-frame hand target, arm lengths, outward coords
    hand_off: np.ndarray = field(init=False)  # (2, T, 3) additive oscillations of hand_local
    pole: np.ndarray = field(init=False)  # (2, T, 3) elbow direction hint, chest frame, outward coords
    hand_world: np.ndarray = field(init=False)  # (2, T, 3) world hand target
    hand_w: np.ndarray = field(init=False)  # (2, T) blend weight towards hand_world
    pos_off: np.ndarray = field(init=False)  # (T, 2) additive root sway (does not trigger steps)
    kick_target: np.ndarray = field(init=False)  # (2, T, 3) world ankle target of a kick
    kick_w: np.ndarray = field(init=False)  # (2, T)
    flights: list[tuple[float, float]] = field(default_factory=list)  # jumps, both feet airborne

    def __post_init__(self) -> None:
        T = self.T
        self.pos = np.zeros((T, 2))
        self.yaw = np.zeros(T)
        self.height = np.zeros(T)
        self.pelvis = np.zeros((T, 2))
        self.spine = np.zeros((T, 3))
        self.neck = np.zeros((T, 2))
        self.hand_local = np.broadcast_to(np.array(REST_HAND), (2, T, 3)).copy()
        self.hand_off = np.zeros((2, T, 3))
        self.pole = np.broadcast_to(np.array(REST_POLE), (2, T, 3)).copy()
        self.hand_world = np.zeros((2, T, 3))
        self.hand_w = np.zeros((2, T))
        self.pos_off = np.zeros((T, 2))
        self.kick_target = np.zeros((2, T, 3))
        self.kick_w = np.zeros((2, T))

    # -- channel helpers; each returns the time at which its motion ends, so calls chain -----
    def place(self, xz, yaw: float) -> None:
        """Put the person somewhere from the first frame on."""
        self.pos[:] = xz
        self.yaw[:] = yaw

    def at(self, t: float) -> int:
        return int(np.clip(round(t * self.fps), 0, self.T - 1))

    def go(self, t0: float, t1: float, xz=None, yaw: float | None = None, pause: float = 0.0) -> float:
        """Move the root to `xz` and/or turn to `yaw` over [t0, t1] (steps follow automatically).

        `pause` > 0 stops half-way for that long (hesitation) and returns the delayed end time.
        """
        if pause > 0 and xz is not None:
            mid = 0.5 * (self.pos[self.at(t0)] + np.asarray(xz))
            tm = 0.5 * (t0 + t1)
            move(self.pos, t0, tm, mid, self.fps)
            t0, t1 = tm + pause, t1 + pause
        if xz is not None:
            move(self.pos, t0, t1, xz, self.fps)
        if yaw is not None:
            cur = self.yaw[self.at(t0)]
            move(self.yaw, t0, t1, cur + wrap_angle(yaw - cur), self.fps)
        return t1

    def hand(self, side: int, t0: float, t1: float, target, pole=None, pause: float = 0.0) -> float:
        """Move one hand's chest-frame target (arm lengths, outward coords); optional hesitation."""
        target = np.asarray(target, dtype=np.float64)
        if pause > 0:
            tm = t0 + 0.45 * (t1 - t0)
            cur = self.hand_local[side, self.at(t0)]
            move(self.hand_local[side], t0, tm, cur + 0.45 * (target - cur), self.fps)
            t0, t1 = tm + pause, t1 + pause
        move(self.hand_local[side], t0, t1, target, self.fps)
        if pole is not None:
            move(self.pole[side], t0, t1, pole, self.fps)
        return t1

    def rest(self, side: int, t0: float, t1: float) -> float:
        move(self.hand_w[side], t0, t1, 0.0, self.fps)
        return self.hand(side, t0, t1, REST_HAND, REST_POLE)

    def reach(self, side: int, t0: float, t1: float, weight: float) -> float:
        """Blend a hand towards (weight 1) or away from (0) its world target."""
        move(self.hand_w[side], t0, t1, weight, self.fps)
        return t1

    def lean(self, t0: float, t1: float, pitch: float = 0.0, yaw: float = 0.0, roll: float = 0.0) -> float:
        move(self.spine, t0, t1, (pitch, yaw, roll), self.fps)
        return t1

    def look(self, t0: float, t1: float, pitch: float = 0.0, yaw: float = 0.0) -> float:
        move(self.neck, t0, t1, (pitch, yaw), self.fps)
        return t1

    def tilt(self, t0: float, t1: float, pitch: float = 0.0, roll: float = 0.0) -> float:
        move(self.pelvis, t0, t1, (pitch, roll), self.fps)
        return t1

    def jump(self, t0: float, t1: float, lift: float) -> None:
        """Both feet leave the floor over [t0, t1]; the root rises on a parabola and dips on landing."""
        t = np.arange(self.T) / self.fps
        s = np.clip((t - t0) / (t1 - t0), 0.0, 1.0)
        self.height += lift * 4.0 * s * (1.0 - s)
        crouch = 0.06 * self.body.height / 1.7
        self.height -= crouch * (window(t, t0 - 0.2, t0 - 0.02, t0 - 0.02, t0 + 0.05))
        self.height -= crouch * (window(t, t1 - 0.05, t1 + 0.05, t1 + 0.1, t1 + 0.35))
        self.flights.append((t0, t1))

    def local_to_world(self, i: int, v) -> np.ndarray:
        """A vector (x left, z forward) in the person's frame at frame i, in world (x, z)."""
        v = np.asarray(v, dtype=np.float64)
        return v[0] * left_dir(self.yaw[i]) + v[1] * forward_dir(self.yaw[i])


# ---------------------------------------------------------------------------------------------
# the solver


def plan_feet(track: Track) -> tuple[np.ndarray, np.ndarray]:
    """Planned ankle positions (2, T, 3) and foot headings (2, T) from the root path.

    A foot stays planted until, looking one swing ahead, the body has moved more than a threshold
    away from where that foot belongs (or turned), then it swings to where it will belong half a
    step later. Jumps swing both feet together. The loop is over frames, on Python floats.
    """
    T, fps, b = track.T, track.fps, track.body
    yaw = track.yaw
    fwd, lft = forward_dir(yaw), left_dir(yaw)
    home = np.stack(
        [track.pos + b.ankle_rest[f, 0] * lft + b.ankle_rest[f, 1] * fwd for f in (0, 1)]
    )  # (2,T,2)
    hx, hz = home[..., 0].tolist(), home[..., 1].tolist()
    yl = yaw.tolist()
    swing = max(int(round(track.swing_time * fps)), 4)
    flights = sorted(
        (int(round(a * fps)), max(int(round(c * fps)), int(round(a * fps)) + 2)) for a, c in track.flights
    )
    thresh, yaw_thresh = 0.09 * b.height / 1.7, 0.35
    plant = [[hx[0][0], hz[0][0]], [hx[1][0], hz[1][0]]]
    pyaw = [yl[0], yl[0]]
    events: list[tuple[int, int, int, list[float], list[float], float, float, float]] = []
    busy, last = -1, 1
    fi = 0
    for i in range(T):
        if fi < len(flights) and i >= flights[fi][0]:
            i0, i1 = flights[fi]
            i1 = min(i1, T - 1)
            for f in (0, 1):
                tgt = [hx[f][i1], hz[f][i1]]
                events.append((f, i0, i1, plant[f], tgt, pyaw[f], yl[i1], 0.5 * track.step_arc))
                plant[f], pyaw[f] = tgt, yl[i1]
            busy = i1
            fi += 1
            continue
        if i < busy:
            continue
        j = min(i + swing, T - 1)
        err = []
        for f in (0, 1):
            d = ((hx[f][j] - plant[f][0]) ** 2 + (hz[f][j] - plant[f][1]) ** 2) ** 0.5
            dy = abs((yl[j] - pyaw[f] + np.pi) % (2 * np.pi) - np.pi)
            err.append(max(d / thresh, dy / yaw_thresh))
        # Alternate feet: the foot that did not step last goes first unless the other is far worse.
        f = 1 - last if err[1 - last] >= 1.0 or err[1 - last] >= 0.7 * err[last] else last
        if err[f] < 1.0:
            continue
        jl = min(i + swing + swing // 2, T - 1)
        tgt = [hx[f][jl], hz[f][jl]]
        i1 = min(i + swing, T - 1)
        if i1 <= i:
            break
        events.append((f, i, i1, plant[f], tgt, pyaw[f], yl[jl], track.step_arc))
        plant[f], pyaw[f] = tgt, yl[jl]
        busy, last = i1, f

    ankle = np.zeros((2, T, 3))
    fyaw = np.zeros((2, T))
    for f in (0, 1):
        ankle[f, :, 0], ankle[f, :, 2], fyaw[f] = hx[f][0], hz[f][0], yl[0]
    for f, i0, i1, p0, p1, y0, y1, arc in events:
        n = i1 - i0
        s = np.arange(1, n + 1) / n
        e = smoothstep(s)
        p0a, p1a = np.array(p0), np.array(p1)
        ankle[f, i0 + 1 : i1 + 1, [0, 2]] = (p0a + e[:, None] * (p1a - p0a)).T
        ankle[f, i0 + 1 : i1 + 1, 1] = arc * np.sin(np.pi * s)
        fyaw[f, i0 + 1 : i1 + 1] = y0 + e * wrap_angle(y1 - y0)
        ankle[f, i1 + 1 :, [0, 2]] = p1a[:, None]
        ankle[f, i1 + 1 :, 1] = 0.0
        fyaw[f, i1 + 1 :] = y0 + wrap_angle(y1 - y0)
    ankle[..., 1] += b.ankle_height
    return ankle, fyaw


@dataclass
class Stage:
    """Result of the first FK pass (arms in T-pose): torso and legs of every person, world frame."""

    positions: np.ndarray  # (P, T, 22, 3)
    world_quats: np.ndarray  # (P, T, 22, 4)


ArmJob = Callable[[Stage], None]


def _stack(tracks: list[Track], name: str) -> np.ndarray:
    return np.stack([getattr(tr, name) for tr in tracks])


def solve(tracks: list[Track], arm_jobs: list[ArmJob] = ()) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local rotations (P, T, 22, 4), root positions (P, T, 3) and joint positions (P, T, 22, 3)."""
    P, T = len(tracks), tracks[0].T
    bodies = [tr.body for tr in tracks]
    offsets = np.stack([b.offsets for b in bodies])[:, None]  # (P, 1, 22, 3)
    # Root: heading, then pelvis tilt; height from the standing height, lowered with walking speed.
    yaw = _stack(tracks, "yaw")
    pel = _stack(tracks, "pelvis")
    root_q = quat_mul(yaw_quat(yaw), axis_angle_to_quat(np.stack([pel[..., 0], 0 * yaw, pel[..., 1]], -1)))
    pos = _stack(tracks, "pos") + _stack(tracks, "pos_off")
    vel = np.gradient(_stack(tracks, "pos"), axis=1) * tracks[0].fps
    speed = np.linalg.norm(vel, axis=-1)
    k = np.ones(9) / 9.0
    speed = np.stack([np.convolve(np.pad(s, 4, mode="edge"), k, mode="valid") for s in speed])
    scale = np.array([b.height / 1.7 for b in bodies])[:, None]
    stand = np.array([b.pelvis_height for b in bodies])[:, None]
    y = stand - 0.015 * scale - 0.07 * scale * np.clip(speed / 1.3, 0.0, 1.0) + _stack(tracks, "height")
    root_pos = np.stack([pos[..., 0], y, pos[..., 1]], -1)

    local = np.zeros((P, T, NUM_JOINTS, 4))
    local[..., 0] = 1.0
    local[:, :, 0] = root_q
    sp = _stack(tracks, "spine")
    sq = axis_angle_to_quat(np.stack([sp[..., 0], sp[..., 1], sp[..., 2]], -1) / 3.0)
    for j in ("spine1", "spine2", "spine3"):
        local[:, :, J[j]] = sq
    nk = _stack(tracks, "neck")
    nrot = np.stack([nk[..., 0], nk[..., 1], 0 * nk[..., 0]], -1)
    local[:, :, J["neck"]] = axis_angle_to_quat(0.6 * nrot)
    local[:, :, J["head"]] = axis_angle_to_quat(0.4 * nrot)

    # Legs: two-bone IK onto the planned ankles (or a kick target), knee bending forward.
    planned = [plan_feet(tr) for tr in tracks]
    ankle_t = np.stack([p[0] for p in planned], 0)  # (P, 2, T, 3)
    fyaw = np.stack([p[1] for p in planned], 0)  # (P, 2, T)
    kw = _stack(tracks, "kick_w")[..., None]
    ankle_t = (1 - kw) * ankle_t + kw * _stack(tracks, "kick_target")
    fwd3 = np.stack([np.sin(yaw), 0 * yaw, np.cos(yaw)], -1)
    for f in (0, 1):
        hip_j, knee_j, ank_j = HIPS[f], KNEES[f], ANKLES[f]
        off_k, off_a = offsets[:, :, knee_j], offsets[:, :, ank_j]  # (P,1,3)
        l1 = np.linalg.norm(off_k, axis=-1, keepdims=True)
        l2 = np.linalg.norm(off_a, axis=-1, keepdims=True)
        hip = root_pos + quat_rotate(root_q, offsets[:, :, hip_j])
        pole = fwd3 + 0.15 * SIDE_SIGN[f] * np.stack([np.cos(yaw), 0 * yaw, -np.sin(yaw)], -1)
        knee, ank = two_bone_ik(hip, ankle_t[:, f], l1, l2, pole)
        lq_hip = quat_between(
            np.broadcast_to(off_k, knee.shape), quat_rotate(quat_conjugate(root_q), knee - hip)
        )
        wq_hip = quat_mul(root_q, lq_hip)
        lq_knee = quat_between(
            np.broadcast_to(off_a, knee.shape), quat_rotate(quat_conjugate(wq_hip), ank - knee)
        )
        wq_knee = quat_mul(wq_hip, lq_knee)
        local[:, :, hip_j], local[:, :, knee_j] = lq_hip, lq_knee
        local[:, :, ank_j] = quat_mul(quat_conjugate(wq_knee), yaw_quat(fyaw[:, f] + 0.08 * SIDE_SIGN[f]))

    # First FK pass: torso and legs are final; arm jobs may aim at the partner's body now.
    stage_pos, stage_q = forward_kinematics(local, root_pos, offsets)
    stage = Stage(stage_pos, stage_q)
    for job in arm_jobs:
        job(stage)

    # Arms: chest-frame target blended with the world target, then two-bone IK.
    chest_q = stage_q[:, :, J["spine3"]]
    hl = _stack(tracks, "hand_local") + _stack(tracks, "hand_off")  # (P, 2, T, 3)
    hw = _stack(tracks, "hand_world")
    w = _stack(tracks, "hand_w")[..., None]
    poles = _stack(tracks, "pole")
    arm_len = np.array([b.arm_length for b in bodies])[:, None, None]
    for s in (0, 1):
        sign = np.array([SIDE_SIGN[s], 1.0, 1.0])
        sh_j, el_j, wr_j, col_j = SHOULDERS[s], ELBOWS[s], WRISTS[s], COLLARS[s]
        shoulder = stage_pos[:, :, sh_j]
        target = shoulder + quat_rotate(chest_q, hl[:, s] * sign * arm_len)
        target = (1 - w[:, s]) * target + w[:, s] * hw[:, s]
        pole = quat_rotate(chest_q, poles[:, s] * sign)
        off_e, off_w = offsets[:, :, el_j], offsets[:, :, wr_j]
        l1 = np.linalg.norm(off_e, axis=-1, keepdims=True)
        l2 = np.linalg.norm(off_w, axis=-1, keepdims=True)
        elbow, wrist = two_bone_ik(shoulder, target, l1, l2, pole)
        wq_col = stage_q[:, :, col_j]
        lq_sh = quat_between(
            np.broadcast_to(off_e, elbow.shape), quat_rotate(quat_conjugate(wq_col), elbow - shoulder)
        )
        wq_sh = quat_mul(wq_col, lq_sh)
        lq_el = quat_between(
            np.broadcast_to(off_w, elbow.shape), quat_rotate(quat_conjugate(wq_sh), wrist - elbow)
        )
        local[:, :, sh_j], local[:, :, el_j] = lq_sh, lq_el

    positions, _ = forward_kinematics(local, root_pos, offsets)
    return local, root_pos, positions
