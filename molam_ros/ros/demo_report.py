"""What `molam demo` shows: its bags read back, the side-by-side render, the joint plot, the summary.

Separate from molam_ros/ros/demo.py (which starts the nodes and says things to them) because this
part only reads files: a bag from any run, `molam demo`'s or a user's, can be rendered with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from molam_ros.ros.bench_reaction import ORDER

TOPICS = {
    "person": "/molam/person_pose",
    "reference": "/molam/reference_reaction",
    "reactor": "/molam/reactor_pose",
    "trajectory": "/molam/joint_trajectory",
    "command": "/molam/command",
    "reply": "/molam/reply",
    "diagnostics": "/molam/diagnostics",
    "markers": "/molam/markers",
    "sim_joints": "/molam/sim/joint_states",  # the simulated robot's executed joints (sim node, optional)
}
# The bench's figures (latency, real-time factor, stages, ...) and the answers given.
SUMMARY_KEYS = (*ORDER, "answers")


# --- reading the bag back ---------------------------------------------------------------------


@dataclass
class Recording:
    """The run as the bag holds it, on the reactor's 30 Hz stamps (seconds from the first pose)."""

    times: np.ndarray  # (T,)
    person: np.ndarray  # (T, 22, 3)
    reactor: np.ndarray  # (T, 22, 3)
    reference: np.ndarray | None  # (T, 22, 3): the recorded partner, where the replay published it
    joints: tuple[np.ndarray, np.ndarray, list[str]] | None  # (times, (N, J) positions, names)
    said: list[tuple[float, str]]
    replies: list[tuple[float, str]]
    counts: dict[str, int]
    # The simulated robot's executed joints on the reactor's stamps ((T, J), profile order, NaN
    # rows where no state was near) and their names; None when no sim node ran.
    sim: tuple[np.ndarray, list[str]] | None = None


def _poses(bag: Path, topic: str) -> tuple[np.ndarray, np.ndarray]:
    from molam_msgs.msg import PersonPose

    from molam_ros.ros.convert import pose_from_msg
    from molam_ros.ros.record import read_messages

    _, msgs = read_messages(bag, PersonPose, topic)
    if not msgs:
        return np.zeros(0), np.zeros((0, 22, 3))
    frames = [pose_from_msg(m) for _, m in msgs]
    return np.array([f.stamp for f in frames]), np.stack([f.positions for f in frames])


def _within(stamps: np.ndarray, at: np.ndarray, tol: float) -> np.ndarray:
    """(len(at),) bool: a stamp lies within `tol` of each of `at`."""
    if len(stamps) == 0:
        return np.zeros(len(at), bool)
    stamps = np.sort(stamps)
    idx = np.clip(np.searchsorted(stamps, at), 1, max(len(stamps) - 1, 1))
    dist = np.minimum(np.abs(stamps[idx - 1] - at), np.abs(stamps[np.minimum(idx, len(stamps) - 1)] - at))
    return dist <= tol


def _nearest(
    stamps: np.ndarray, values: np.ndarray, at: np.ndarray, tol: float, min_share: float = 1.0
) -> np.ndarray | None:
    """values at the stamps nearest to `at`; None unless a share `min_share` of them is within `tol`
    (1.0: every one; below it, a frame in a gap shows the nearest sample)."""
    if len(stamps) == 0:
        return None
    order = np.argsort(stamps)
    stamps, values = stamps[order], values[order]
    idx = np.clip(np.searchsorted(stamps, at), 1, len(stamps) - 1)
    idx = np.where(np.abs(stamps[idx - 1] - at) <= np.abs(stamps[idx] - at), idx - 1, idx)
    if (np.abs(stamps[idx] - at) <= tol).mean() < min_share:
        return None
    return values[idx]


def read_recording(bag: Path) -> Recording:
    """Person, reactor and recorded partner aligned by stamp; what was said and replied, when."""
    from sensor_msgs.msg import JointState
    from std_msgs.msg import String
    from trajectory_msgs.msg import JointTrajectory

    from molam_ros.ros.convert import stamp_seconds
    from molam_ros.ros.record import message_counts, read_messages, read_raw_topic

    in_bag = message_counts(bag)
    counts = {name: in_bag.get(topic, 0) for name, topic in TOPICS.items()}
    ps, person = _poses(bag, TOPICS["person"])
    rs, reactor = _poses(bag, TOPICS["reactor"])
    fs, reference = _poses(bag, TOPICS["reference"])
    if len(rs) == 0 or len(ps) == 0:
        raise RuntimeError(f"{bag}: no reaction was recorded (person {len(ps)}, reactor {len(rs)} poses)")
    origin = float(ps.min())
    keep = (rs >= ps.min() - 1e-3) & (rs <= ps.max() + 1e-3)
    rs, reactor = rs[keep], reactor[keep]
    order = np.argsort(rs)
    rs, reactor = rs[order], reactor[order]
    tol = 0.6 / 30.0
    # A person replayed from a bag keeps the bag's receive times, gaps and bursts included; reactor
    # frames (30 Hz) that fall in such a gap have no person pose to show beside them and are left
    # out. Most frames must match, or the stamps have nothing to do with each other.
    matched = _within(ps, rs, tol)
    if matched.mean() < 0.5:
        raise RuntimeError(
            f"{bag}: reactor stamps do not match the person's "
            f"({matched.sum()} of {len(rs)} within {tol:.3f} s)"
        )
    rs, reactor = rs[matched], reactor[matched]
    person_at = _nearest(ps, person, rs, tol)
    # The recorded partner travels best-effort beside the person: on a loaded machine a sample or
    # two are lost, and one gap must not drop the partner from the report (as it once did in CI).
    ref_at = _nearest(fs, reference, rs, tol, min_share=0.9)
    joints = None
    _, trajs = read_messages(bag, JointTrajectory, TOPICS["trajectory"])
    if trajs:
        t = np.array([stamp_seconds(m.header.stamp) for _, m in trajs]) - origin
        q = np.array([list(m.points[0].positions) for _, m in trajs])
        joints = (t, q, list(trajs[0][1].joint_names))
    sim = None
    _, states = read_messages(bag, JointState, TOPICS["sim_joints"]) if counts["sim_joints"] else (None, [])
    if states:  # the robot as it was at each reactor frame's stamp (100 Hz states: within 20 ms)
        st = np.array([stamp_seconds(m.header.stamp) for _, m in states])
        sq = np.array([list(m.position) for _, m in states])
        order = np.argsort(st)
        st, sq = st[order], sq[order]
        idx = np.clip(np.searchsorted(st, rs), 1, max(len(st) - 1, 1))
        idx = np.where(np.abs(st[idx - 1] - rs) <= np.abs(st[idx] - rs), idx - 1, idx)
        at = sq[idx].astype(np.float64)
        at[np.abs(st[idx] - rs) > 0.02] = np.nan  # before the sim started, or a gap
        sim = (at, list(states[0][1].name))
    first_log = next(iter(read_raw_topic(bag, TOPICS["person"])))[0] * 1e-9

    def texts(topic: str) -> list[tuple[float, str]]:
        return [(t * 1e-9 - first_log, m.data) for t, m in read_messages(bag, String, topic)[1]]

    return Recording(
        times=rs - origin,
        person=person_at,
        reactor=reactor,
        reference=ref_at,
        joints=joints,
        said=texts(TOPICS["command"]),
        replies=texts(TOPICS["reply"]),
        counts=counts,
        sim=sim,
    )


# --- what the demo shows ----------------------------------------------------------------------


def _label(instruction: str) -> str:
    return f'"{instruction}"' if instruction else "no instruction"


def reaction_difference_mm(recs: list[Recording]) -> float | None:
    """Mean distance between the reactors of the first two runs over their common frames (mm):
    how much the instruction changed the reaction (the person is the same in both)."""
    if len(recs) < 2:
        return None
    n = min(len(recs[0].reactor), len(recs[1].reactor))
    if n == 0:
        return None
    return float(np.linalg.norm(recs[0].reactor[:n] - recs[1].reactor[:n], axis=-1).mean() * 1e3)


def robot_body(rec: Recording, profile: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """The simulated robot's capsules on every reactor frame, (T, N, 2, 3) in the scene and (N,)
    radii, standing where the reactor stands (sim/body.py); None without MuJoCo or a sim
    recording. Frames without a sim state hold the last one (the neutral pose before the first)."""
    if rec.sim is None:
        return None
    try:
        from molam_ros.motion.canonical import facing_angle
        from molam_ros.sim.body import RobotBody, place
    except ImportError:  # MuJoCo is an optional extra: the robot panel is left out
        return None
    q_rec, names = rec.sim
    body = RobotBody(profile)
    column = {n: i for i, n in enumerate(names)}
    if any(n not in column for n in profile.joint_names):
        return None
    q = q_rec[:, [column[n] for n in profile.joint_names]]
    yaw = facing_angle(rec.reactor)
    last = profile.neutral
    frames = []
    for t in range(len(q)):
        if np.isfinite(q[t]).all():
            last = q[t]
        frames.append(place(body.segments(last), rec.reactor[t, 0], float(yaw[t])))
    return np.stack(frames), body.radii


def render_runs(
    runs: list[tuple[str, Recording]], out: Path, title: str, profile: Any | None = None
) -> list[Path]:
    """reaction.gif: one panel per instruction (the same person, molam's reaction to it), then the
    recorded partner where the clip has one, then, where the simulated robot ran (`profile` given,
    MuJoCo installed), its body as it executed the reaction, next to the person; joints.png: the
    robot's commanded joints over time, one colour per joint and one line style per instruction,
    so the effect of the text is visible."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from molam_ros.data.clip import MotionClip
    from molam_ros.data.render import render_side_by_side

    clips, titles = [], []
    for instruction, rec in runs:
        clips.append(MotionClip(name="molam", positions=np.stack([rec.person, rec.reactor]), texts=[title]))
        titles.append(f"molam (red), told {_label(instruction)}")
    first = runs[0][1]
    if first.reference is not None:
        clips.append(MotionClip(name="recorded", positions=np.stack([first.person, first.reference])))
        titles.append("the recorded partner")
    bodies: list = [None] * len(clips)
    for instruction, rec in runs:  # the simulated robot's body next to the person, where it ran
        body = robot_body(rec, profile) if rec.sim is not None and profile is not None else None
        if body is not None:
            clips.append(MotionClip(name="robot", positions=np.stack([rec.person, rec.reactor])))
            titles.append(f"the simulated {profile.name} (grey, executed), told {_label(instruction)}")
            bodies.append(body)
    captions = [(t - float(first.times[0]), text) for t, text in first.said]
    written = [render_side_by_side(clips, titles, out / "reaction.gif", captions=captions, bodies=bodies)]
    with_joints = [(instruction, rec.joints) for instruction, rec in runs if rec.joints is not None]
    if with_joints:
        fig, ax = plt.subplots(figsize=(9, 4.5), dpi=100)
        names = with_joints[0][1][2]
        spread = np.max([np.ptp(q, axis=0) for _, (_, q, _) in with_joints], axis=0)
        top = np.argsort(spread)[::-1][:6]  # the six joints that moved most in any run
        styles = ["-", "--", ":", "-."]
        for k, (_, (t, q, _)) in enumerate(with_joints):
            for c, j in enumerate(top):
                ax.plot(t, q[:, j], color=f"C{c}", ls=styles[k % len(styles)], lw=1.2)
        for ts, text in first.said:
            ax.axvline(ts, color="tab:green", ls="--", lw=1)
            ax.text(ts, ax.get_ylim()[1], f" {text}", fontsize=8, color="tab:green", va="top")
        handles = [Line2D([], [], color=f"C{c}", label=names[j]) for c, j in enumerate(top)]
        handles += [
            Line2D([], [], color="k", ls=styles[k % len(styles)], label=_label(instruction))
            for k, (instruction, _) in enumerate(with_joints)
        ]
        ax.legend(handles=handles, fontsize=7, loc="lower right", ncol=2)
        ax.set_xlabel("s since the first pose")
        ax.set_ylabel("commanded position (rad)")
        ax.set_title("first point of each JointTrajectory: the six joints that moved most", fontsize=9)
        fig.tight_layout()
        fig.savefig(out / "joints.png")
        plt.close(fig)
        written.append(out / "joints.png")
    return written


def format_summary(
    instruction: str, seconds: float, diagnostics: dict[str, str], rec: Recording, person: str
) -> str:
    """The figures a robotics engineer asks first: latency, real-time factor, what was said."""
    d = diagnostics
    lines = [
        f"reaction demo on {person}, told {_label(instruction)}: {seconds:.1f} s of stream, "
        f"{len(rec.times)} reactor frames",
        "",
        "| figure | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {d[k]} |" for k in SUMMARY_KEYS if k in d]
    lines += [f"| {k} | {v} |" for k, v in sorted(d.items()) if k.startswith("dropped_")]
    if rec.reference is not None:
        err = np.linalg.norm(rec.reactor - rec.reference, axis=-1).mean() * 1e3
        lines.append(f"| MPJPE vs the recorded partner (mm) | {err:.0f} |")
    lines += ["", "messages in the bag: " + ", ".join(f"{k} {v}" for k, v in rec.counts.items())]
    for t, text in rec.said:
        lines.append(f"[{t:5.1f} s] said:  {text}")
    for t, text in rec.replies:
        lines.append(f"[{t:5.1f} s] reply: {text}")
    return "\n".join(lines)
