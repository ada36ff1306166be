"""The completion model that ships in molam_ros/models/completion: the node's default, its
manifest holds, and it really is trained (a fresh generator clip is completed within centimetres)."""

from __future__ import annotations

import json

import numpy as np

from molam_ros.agent.reaction_setup import build_completer
from molam_ros.completion.evaluate import MeanBody, complete_stream, errors, present_slots
from molam_ros.completion.model import load_checkpoint
from molam_ros.completion.ship import MANIFEST, sha256
from molam_ros.completion.streams import Streams
from molam_ros.data.synth import generate_clip
from molam_ros.motion.sparse import body_yaw, tracked_points
from molam_ros.paths import shipped_completion_dir

SHIPPED = shipped_completion_dir()


def test_the_manifest_holds_and_the_node_uses_it_by_default() -> None:
    manifest = json.loads((SHIPPED / MANIFEST).read_text())
    for name, digest in manifest["files"].items():
        assert sha256(SHIPPED / name) == digest, name
        assert (SHIPPED / name).stat().st_size < 2 * 2**20
    assert manifest["dtype"] == "float16" and manifest["commands"]
    real = [d for d in manifest["training_data"]["datasets"] if "real_clips" in d][0]
    assert not {c["name"] for c in real["held_out"]} & {c["name"] for c in real["real_clips"]}
    completer = build_completer({"completion_dir": "", "floor_height": 0.0})
    assert completer is not None and completer.window == manifest["config"]["window"]
    assert build_completer({"completion_dir": "none"}) is None


def test_the_shipped_model_is_trained() -> None:
    """Head and hands of a fresh clip (a seed no split uses) give the body within a few cm, far
    better than the mean body put at the head."""
    model = load_checkpoint(SHIPPED)
    pos = generate_clip(987_654).positions.astype(np.float64)
    person = pos[0]
    yaw = body_yaw(person)
    errs = errors(complete_stream(model, person, yaw, present_slots(())), person)
    streams = Streams("clip", pos[1].astype(np.float32), body_yaw(pos[1]), np.zeros(len(pos[1]), int), [], [])
    base = errors(MeanBody([streams])(tracked_points(person), yaw), person)
    assert 1000 * errs.mean() < 40.0 and errs.mean() < 0.3 * base.mean()
