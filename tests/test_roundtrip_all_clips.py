"""The motion representation is exact on every clip we ship or generate.

Issue 2's acceptance figures: positions -> features -> positions under 1 mm (in every layout: the
ego layout integrates person a's root and places person b by its relation to a), and IK then FK with
the clip's own bone lengths under 1 cm, on every clip of the generator (a full balanced dataset)
and on every real pybullet clip. The worst errors are printed so the note can quote them.
"""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.pybullet_clips import list_pybullet_clips, load_pybullet_clip
from molam_ros.data.synth import INTERACTIONS, generate_dataset
from molam_ros.motion.ik import inverse_kinematics
from molam_ros.motion.kinematics import forward_kinematics
from molam_ros.motion.layout import LAYOUTS, pair_from_features, pair_to_features
from molam_ros.motion.skeleton import bone_lengths, scaled_offsets

GENERATOR_CLIPS = 20 * len(INTERACTIONS)  # every interaction type in every style many times over


def _report(what: str, worst_feat: float, worst_ik: float) -> None:
    print(f"\n{what}: worst feature round trip {worst_feat * 1e3:.4f} mm, IK->FK {worst_ik * 1e3:.4f} mm")


def _errors(positions: np.ndarray) -> tuple[float, float]:
    """(feature round trip in every layout, IK->FK) worst joint error in metres over people and frames."""
    feature_err = 0.0
    for layout in LAYOUTS:
        features, transform = pair_to_features(positions, layout=layout)
        back = pair_from_features(features, transform)
        feature_err = max(feature_err, float(np.linalg.norm(back - positions, axis=-1).max()))
    ik_err = 0.0
    for person in positions:
        lengths = bone_lengths(person)
        q = inverse_kinematics(person, lengths)
        fk, _ = forward_kinematics(q, person[:, 0], scaled_offsets(lengths))
        ik_err = max(ik_err, float(np.linalg.norm(fk - person, axis=-1).max()))
    return feature_err, ik_err


@pytest.mark.slow
def test_every_generator_clip_round_trips() -> None:
    worst_feat = worst_ik = 0.0
    n = 0
    for clip in generate_dataset(GENERATOR_CLIPS, seed=0):
        f, k = _errors(clip.positions.astype(np.float64))
        assert f < 1e-3, f"{clip.name}: features round trip {f * 1000:.3f} mm"
        assert k < 1e-2, f"{clip.name}: IK->FK {k * 1000:.3f} mm"
        worst_feat, worst_ik, n = max(worst_feat, f), max(worst_ik, k), n + 1
    _report(f"{n} generator clips", worst_feat, worst_ik)


@pytest.mark.slow
def test_every_pybullet_clip_round_trips() -> None:
    names = list_pybullet_clips()
    assert len(names) >= 15
    worst_feat = worst_ik = 0.0
    for name in names:
        clip = load_pybullet_clip(name)
        f, k = _errors(clip.positions.astype(np.float64))
        assert f < 1e-3, f"{name}: features round trip {f * 1000:.3f} mm"
        assert k < 1e-2, f"{name}: IK->FK {k * 1000:.3f} mm"
        worst_feat, worst_ik = max(worst_feat, f), max(worst_ik, k)
    _report(f"{len(names)} pybullet clips", worst_feat, worst_ik)
