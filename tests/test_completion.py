"""Sparse-to-full body completion (molam_ros/completion/, motion/sparse.py): its inputs do not
depend on where the person stands or faces, the live completer equals a whole-clip pass at any
tracker rate, lost controllers and re-centred headsets are handled, training and checkpoints work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from molam_ros.completion.evaluate import complete_stream, evaluate, format_tables, present_slots
from molam_ros.completion.live import SparseCompleter
from molam_ros.completion.model import (
    CompletionCheckpointError,
    CompletionConfig,
    CompletionModel,
    load_checkpoint,
    save_checkpoint,
)
from molam_ros.completion.streams import load_streams
from molam_ros.completion.train import CompletionTrainConfig, train
from molam_ros.data.synth import generate_clip
from molam_ros.motion.ego import rotate_y
from molam_ros.motion.sparse import (
    TRACKED,
    body_yaw,
    from_heading,
    input_dim,
    to_heading,
    tracked_points,
    window_inputs,
    yaw_from_wrists,
)


@pytest.fixture(scope="module")
def model() -> CompletionModel:
    torch.manual_seed(0)
    return CompletionModel(CompletionConfig(window=8, width=32, layers=2)).eval()


@pytest.fixture(scope="module")
def person() -> np.ndarray:
    return generate_clip(11, "handshake", "friendly").positions[0, :90].astype(np.float64)


def _sparse(pose: np.ndarray, names: tuple[str, ...] = TRACKED[:3]) -> dict[str, np.ndarray]:
    return {n: pose[i] for n, i in zip(TRACKED, range(len(TRACKED)), strict=True) if n in names}


def test_heading_frame_round_trip_and_invariance(person: np.ndarray) -> None:
    yaw = body_yaw(person)
    pts = tracked_points(person)
    local = to_heading(person, pts[:, 0], yaw)
    np.testing.assert_allclose(from_heading(local, pts[:, 0], yaw), person, atol=1e-9)
    # Walk the person 30 m away and turn them: the model's inputs do not change.
    moved = rotate_y(person, np.full(person.shape[:2], 2.0)) + [30.0, 0.0, -12.0]
    a = window_inputs(pts, yaw, 8)
    b = window_inputs(tracked_points(moved), body_yaw(moved), 8)
    assert a.shape == (90, input_dim(8))
    np.testing.assert_allclose(a, b, atol=1e-4)


def test_yaw_from_the_hands_of_a_rest_pose() -> None:
    yaw, trust = yaw_from_wrists(np.array([0.6, 1.4, 0.0]), np.array([-0.6, 1.4, 0.0]))  # left at +X
    assert abs(yaw) < 1e-9 and trust == pytest.approx(1.2)  # facing +Z


def test_optional_trackers_set_the_mask(person: np.ndarray) -> None:
    yaw = body_yaw(person)
    three = window_inputs(tracked_points(person, present_slots(())), yaw, 4)
    six = window_inputs(
        tracked_points(person, present_slots(("pelvis", "left_ankle", "right_ankle"))), yaw, 4
    )
    assert three[:, -5:].sum() == 0 and (six[:, -5:] == [1, 1, 1, 0, 0]).all()
    with pytest.raises(ValueError, match="required"):
        window_inputs(tracked_points(person, np.zeros(len(TRACKED), dtype=bool)), yaw, 4)


@pytest.mark.parametrize("rate", [30.0, 90.0])
def test_live_equals_the_whole_clip_at_any_tracker_rate(
    model: CompletionModel, person: np.ndarray, rate: float
) -> None:
    yaw = body_yaw(person)
    whole = complete_stream(model, person, yaw, present_slots(()))
    completer = SparseCompleter(model)
    k = int(rate // 30)
    t30 = np.arange(len(person)) / 30.0
    times = np.arange((len(person) - 1) * k + 1) / rate
    live = {}
    for t in times:  # the clip resampled to the tracker's rate (exact at the 30 fps frames)
        pose = np.stack([np.interp(t, t30, person[:, j, c]) for j in range(22) for c in range(3)]).reshape(
            22, 3
        )
        forward = np.array(
            [np.sin(np.interp(t, t30, np.unwrap(yaw))), 0.0, np.cos(np.interp(t, t30, np.unwrap(yaw)))]
        )
        body, status = completer.complete(100.0 + t, _sparse(pose[[15, 20, 21, 0, 7, 8, 10, 11]]), forward)
        assert status == "accepted"
        live[round(t * 30, 6)] = body
    got = np.stack([live[float(i)] for i in range(len(person))])
    np.testing.assert_allclose(got, whole, atol=1e-4)


def test_a_lost_controller_is_held_then_eased_to_the_side(model: CompletionModel, person: np.ndarray) -> None:
    completer = SparseCompleter(model)
    first = _sparse(person[0][[15, 20, 21]])
    assert completer.complete(0.0, {"head": first["head"]})[1] == "rejected_joints"  # never seen: cannot hold
    assert completer.complete(0.0, first)[1] == "accepted"
    lost = {"head": first["head"], "right_wrist": first["right_wrist"], "left_wrist": np.full(3, np.nan)}
    bodies = []
    for i in range(1, 120):  # 4 s without the left controller, standing still
        body, status = completer.complete(i / 30.0, lost)
        assert status == "accepted" and np.isfinite(body).all()
        bodies.append(body)
    assert completer.stats["held_hands"] == 119
    held = completer._points[-1][TRACKED.index("left_wrist")]
    local = to_heading(held[None], first["head"], np.float64(completer._yaws[-1]))[0]
    np.testing.assert_allclose(local - [0, first["head"][1], 0], [0.2, -0.75, 0.0], atol=1e-6)  # at the side
    steps = np.abs(np.diff(np.stack(bodies), axis=0)).max()
    assert steps < 0.2  # no jump from one frame to the next


def test_a_recentred_headset_or_a_pause_starts_a_new_stream(
    model: CompletionModel, person: np.ndarray
) -> None:
    completer = SparseCompleter(model)
    pose = _sparse(person[0][[15, 20, 21]])
    completer.complete(0.0, pose)
    completer.complete(1 / 30, pose)
    jumped = {k: v + [2.0, 0.0, 0.0] for k, v in pose.items()}
    assert completer.complete(2 / 30, jumped)[1] == "accepted" and completer.stats["restarts"] == 1
    assert len(completer._stamps) == 1
    assert completer.complete(1 / 30, jumped)[1] == "dropped_stale"
    assert completer.complete(2.0, jumped)[1] == "accepted" and completer.stats["restarts"] == 2


def test_checkpoint_round_trip_and_foreign_directories(model: CompletionModel, tmp_path: Path) -> None:
    save_checkpoint(model, tmp_path / "c", extra={"note": 1})
    again = load_checkpoint(tmp_path / "c")
    x = torch.randn(3, input_dim(8))
    torch.testing.assert_close(again(x), model(x))
    with pytest.raises(CompletionCheckpointError, match="missing"):
        load_checkpoint(tmp_path)
    save_checkpoint(CompletionModel(CompletionConfig(window=8, width=16, layers=2)), tmp_path / "d")
    (tmp_path / "d" / "config.json").write_text((tmp_path / "c" / "config.json").read_text())
    with pytest.raises(CompletionCheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "d")


def test_training_learns_and_evaluation_reports_every_group(
    tiny_llm_env: dict[str, Path], tmp_path: Path
) -> None:
    data = [tiny_llm_env["data"]]
    config = CompletionTrainConfig(steps=60, batch_size=64, weights=(1.0,), eval_every=30)
    meta = train(
        data,
        tmp_path / "ckpt",
        model_config=CompletionConfig(window=8, width=64, layers=2),
        config=config,
        progress=False,
    )
    assert [h["step"] for h in meta["history"]] == [30, 60]
    model = load_checkpoint(tmp_path / "ckpt")
    streams = load_streams(data[0], "train")
    results = evaluate(
        model, [streams], [load_streams(data[0], "test")], sets=("head+hands",), yaw_sources=("headset",)
    )
    (row,) = results.values()
    figures = row["head+hands / headset"]
    assert set(figures) == {"model", "mean body", "nearest pose"}
    assert {"mpjpe_mm", "head_mm", "torso_mm", "arms_mm", "legs_mm", "jitter_mm"} <= set(figures["model"])
    assert figures["model"]["mpjpe_mm"] < 400  # an untrained net is metres off; 60 steps is not much more
    assert "| head+hands / headset | model |" in format_tables(results)
