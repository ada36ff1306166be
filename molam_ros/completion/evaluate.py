"""How well the completion model rebuilds the body from sparse points, next to two baselines.

Measured on held-out streams (test splits), every frame, in the world (the prediction placed back
with the head's position and yaw, against the recorded joints), as mean per-joint position error
(MPJPE, mm) per joint group (motion/sparse.py JOINT_GROUPS: head, torso, arms, legs) and overall,
plus jitter (mean joint acceleration, mm per frame^2, next to the recording's own).

Baselines, measured in the same run on the same inputs:
- `mean body`: the training set's mean body in the heading frame, moved so its head is on the
  tracked head (a default body placed at the head);
- `nearest pose`: the training frame (of a 40000-frame sample of the training streams) whose
  tracked points, in its own heading frame, are nearest to the current frame's; its body placed
  with the current head (what a lookup of the training set gives without any model).

Tracker sets: head + hands (every VR user), + pelvis, + pelvis and feet (ankle trackers). Yaw
sources: `headset` (the body's facing, as a headset looking where the torso faces reports it),
`turned` (the head looking +/-20 degrees left and right of the torso every 4 s), `hands` (no
orientation sent: the yaw guessed from the hands, motion/sparse.py `wrist_yaw_stream`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from molam_ros.completion.model import CompletionModel
from molam_ros.completion.streams import Streams
from molam_ros.motion.skeleton import JOINT_INDEX
from molam_ros.motion.sparse import (
    HEAD,
    JOINT_GROUPS,
    OPTIONAL,
    REQUIRED,
    body_targets,
    from_heading,
    to_heading,
    tracked_points,
    window_inputs,
    wrist_yaw_stream,
)

TRACKER_SETS: dict[str, tuple[str, ...]] = {
    "head+hands": (),
    "head+hands+pelvis": ("pelvis",),
    "head+hands+pelvis+feet": ("pelvis", "left_ankle", "right_ankle"),
}
YAW_SOURCES = ("headset", "turned", "hands")
TURN_AMPLITUDE = np.radians(20.0)
TURN_PERIOD = 4.0  # s
_GROUP_INDEX = {g: np.array([JOINT_INDEX[n] for n in names]) for g, names in JOINT_GROUPS.items()}


def present_slots(optional: Sequence[str]) -> np.ndarray:
    """(NUM_SLOTS,) bool: the required slots and the named optional ones."""
    unknown = set(optional) - set(OPTIONAL)
    if unknown:
        raise ValueError(f"unknown optional trackers {sorted(unknown)}; choose from {OPTIONAL}")
    return np.array([i < len(REQUIRED) or name in optional for i, name in enumerate(REQUIRED + OPTIONAL)])


def input_yaw(
    positions: np.ndarray, body: np.ndarray, source: str, phase: float = 0.0, fps: float = 30.0
) -> np.ndarray:
    """(T,) the yaw a tracker would send for a stream (module docstring, `YAW_SOURCES`)."""
    if source == "headset":
        return body
    if source == "turned":
        t = np.arange(len(body)) / fps
        return body + TURN_AMPLITUDE * np.sin(2 * np.pi * t / TURN_PERIOD + phase)
    if source == "hands":
        return wrist_yaw_stream(
            positions[:, JOINT_INDEX["left_wrist"]], positions[:, JOINT_INDEX["right_wrist"]], fps
        )
    raise ValueError(f"unknown yaw source {source!r}; choose from {YAW_SOURCES}")


def complete_stream(
    model: CompletionModel, positions: np.ndarray, yaw: np.ndarray, present: np.ndarray
) -> np.ndarray:
    """(T, 22, 3) world bodies completed from the `present` slots of a stream and the given yaw."""
    points = tracked_points(positions, present)
    local = model.predict(window_inputs(points, yaw, model.config.window))
    return from_heading(local, points[:, HEAD], yaw)


class MeanBody:
    """Baseline: the training mean body in the heading frame, its head put on the tracked head."""

    def __init__(self, train: Sequence[Streams], frames: int = 40000, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        bodies = []
        for s in train:
            i = rng.integers(0, len(s), min(frames, len(s)))
            pos = s.positions[i].astype(np.float64)
            bodies.append(body_targets(pos, pos[:, JOINT_INDEX["head"]], s.yaw[i]))
        mean = np.concatenate(bodies).mean(axis=0)
        self.body = mean - mean[JOINT_INDEX["head"]]  # the head at the origin

    def __call__(self, points: np.ndarray, yaw: np.ndarray) -> np.ndarray:
        head = points[:, HEAD]
        body = np.broadcast_to(self.body, (len(head), *self.body.shape))
        return from_heading(body, head, yaw) + (head * [0.0, 1.0, 0.0])[:, None]


class NearestPose:
    """Baseline: the body of the training frame whose tracked points are nearest (module docstring).

    One index per set of present slots; the features are the present points in the heading frame
    (the head's x and z are 0 there, so only its height counts)."""

    def __init__(self, train: Sequence[Streams], frames: int = 40000, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        pos, yaw = [], []
        for s in train:
            i = rng.integers(0, len(s), min(frames // len(train), len(s)))
            pos.append(s.positions[i].astype(np.float64))
            yaw.append(s.yaw[i])
        self.positions, self.yaw = np.concatenate(pos), np.concatenate(yaw)
        head = self.positions[:, JOINT_INDEX["head"]]
        self.bodies = body_targets(self.positions, head, self.yaw)
        self._trees: dict[bytes, cKDTree] = {}

    @staticmethod
    def _features(local: np.ndarray, present: np.ndarray) -> np.ndarray:
        keep = local[:, present].reshape(len(local), -1)
        return np.delete(keep, [0, 2], axis=1)  # the head's x and z: always 0

    def __call__(self, points: np.ndarray, yaw: np.ndarray) -> np.ndarray:
        present = np.isfinite(points[0]).all(axis=-1)
        key = present.tobytes()
        if key not in self._trees:
            slots = tracked_points(self.positions, present)
            local = to_heading(slots, slots[:, HEAD], self.yaw)
            self._trees[key] = cKDTree(self._features(local, present))
        local = to_heading(points, points[:, HEAD], yaw)
        _, nearest = self._trees[key].query(self._features(np.nan_to_num(local), present))
        return from_heading(self.bodies[nearest], points[:, HEAD], yaw)


def errors(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """(T, 22) per-joint position errors in metres."""
    return np.linalg.norm(pred - true, axis=-1)


def summarize(err: np.ndarray, pred_acc: np.ndarray) -> dict[str, float]:
    """MPJPE (mm) overall and per joint group from (N, 22) errors, and the jitter (mm/frame^2)."""
    out = {"mpjpe_mm": float(err.mean() * 1e3)}
    out |= {f"{g}_mm": float(err[:, idx].mean() * 1e3) for g, idx in _GROUP_INDEX.items()}
    out["jitter_mm"] = float(pred_acc.mean() * 1e3) if len(pred_acc) else 0.0
    return out


def _acceleration(p: np.ndarray) -> np.ndarray:
    return np.linalg.norm(p[2:] - 2 * p[1:-1] + p[:-2], axis=-1).reshape(-1) if len(p) > 2 else np.zeros(0)


def evaluate(
    model: CompletionModel,
    train: Sequence[Streams],
    tests: Sequence[Streams],
    *,
    sets: Sequence[str] = tuple(TRACKER_SETS),
    yaw_sources: Sequence[str] = YAW_SOURCES,
) -> dict[str, Any]:
    """{test label: {"frames", "streams", "recorded_jitter_mm", "<set> / <yaw>": {method: figures}}}.

    The baselines are fitted on `train` and every method sees the same inputs. The head + hands set
    is measured with every yaw source; the larger sets with the headset's yaw.
    """
    baselines = {"mean body": MeanBody(train), "nearest pose": NearestPose(train)}
    out: dict[str, Any] = {}
    for test in tests:
        row: dict[str, Any] = {"frames": len(test), "streams": len(test.bounds)}
        row["recorded_jitter_mm"] = float(
            np.concatenate([_acceleration(test.stream(i)[0]) for i in range(len(test.bounds))]).mean() * 1e3
        )
        for set_name in sets:
            present = present_slots(TRACKER_SETS[set_name])
            for source in yaw_sources if set_name == "head+hands" else ("headset",):
                errs: dict[str, list[np.ndarray]] = {"model": [], **{b: [] for b in baselines}}
                accs: dict[str, list[np.ndarray]] = {k: [] for k in errs}
                for i in range(len(test.bounds)):
                    pos, body = test.stream(i)
                    yaw = input_yaw(pos, body, source, phase=float(i))
                    points = tracked_points(pos, present)
                    preds = {"model": complete_stream(model, pos, yaw, present)}
                    preds |= {name: fn(points, yaw) for name, fn in baselines.items()}
                    for name, pred in preds.items():
                        errs[name].append(errors(pred, pos))
                        accs[name].append(_acceleration(pred))
                row[f"{set_name} / {source}"] = {
                    name: summarize(np.concatenate(errs[name]), np.concatenate(accs[name])) for name in errs
                }
        out[test.label] = row
    return out


def format_tables(results: dict[str, Any]) -> str:
    """The figures of `evaluate` as markdown tables, one per held-out dataset."""
    lines = []
    groups = ["mpjpe_mm", *(f"{g}_mm" for g in JOINT_GROUPS), "jitter_mm"]
    for label, row in results.items():
        lines += [
            f"\n{label}: {row['streams']} streams, {row['frames']} frames, "
            f"recorded jitter {row['recorded_jitter_mm']:.1f} mm/frame^2",
            "",
            "| trackers / yaw | method | all | " + " | ".join(g[:-3] for g in groups[1:]) + " |",
            "|---|---|---|" + "---|" * (len(groups) - 1),
        ]
        for key, methods in row.items():
            if not isinstance(methods, dict):
                continue
            for name, fig in methods.items():
                cells = " | ".join(f"{fig[g]:.1f}" for g in groups)
                lines.append(f"| {key} | {name} | {cells} |")
    return "\n".join(lines) + "\n"
