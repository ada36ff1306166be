"""Solo actions of the generator (crouch, pick up, reach, turn, side/back steps, jabs, gestures)."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.captions import POSTLUDE_PHRASES, PRELUDE_PHRASES
from molam_ros.data.synth import (
    _ALLOC,
    FPS,
    SOLO_ACTIONS,
    STYLES,
    Scene,
    _solo,
    generate_dataset,
)
from molam_ros.data.synth_poses import RIGHT, Track, make_body, solve
from molam_ros.motion.skeleton import JOINT_INDEX as J
from molam_ros.motion.skeleton import PARENTS


def _perform(kind: str, seed: int = 0, dist: float = 3.0, back: bool = True):
    rng = np.random.default_rng(seed)
    style = STYLES["friendly"]
    bodies = [make_body(h, rng) for h in (1.6, 1.8)]
    tracks = [Track(b, _ALLOC, FPS, swing_time=style.swing_time) for b in bodies]
    sc = Scene(rng, style, tracks[0], tracks[1], RIGHT)
    sc.a.place((0.0, 0.0), 0.0)
    sc.b.place((0.0, dist), np.pi)
    end = _solo(sc, sc.a, kind, 0.3, dist > 1.45, back, 2.0)
    _, root, pos = solve([sc.a, sc.b])
    n = min(int(round((end + 0.5) * FPS)), _ALLOC)
    return sc, root[0, :n], pos[0, :n]


@pytest.mark.parametrize("kind", SOLO_ACTIONS)
def test_solo_action_plausible_and_returns(kind):
    for dist in (3.0, 1.0):
        sc, root, pos = _perform(kind, dist=dist)
        assert pos[..., 1].min() > -0.01, (kind, dist)  # nothing below the floor
        bones = np.linalg.norm(pos[:, 1:] - pos[:, PARENTS[1:]], axis=-1)
        assert np.ptp(bones, axis=0).max() < 1e-6
        # Before an interaction the person ends where and as they started.
        assert np.linalg.norm(root[-1, [0, 2]] - root[0, [0, 2]]) < 0.02, (kind, dist)
        assert abs(sc.a.yaw[len(root) - 1] - sc.a.yaw[0]) < 1e-6, (kind, dist)
        if dist < 1.45:  # close to the partner: nothing reaches towards them
            assert pos[:, :, 2].max() < 1.0 - 0.15, (kind, pos[:, :, 2].max())


def test_solo_actions_do_what_they_say():
    stand = _perform("gesture")[1][0, 1]
    for kind in ("crouch", "pick_up"):
        root = _perform(kind)[1]
        assert root[:, 1].min() < 0.75 * stand, kind
    _, _, pos = _perform("pick_up")  # a hand goes down towards the floor
    assert pos[:, [J["left_wrist"], J["right_wrist"]], 1].min() < 0.45
    _, root, pos = _perform("shadow_box")
    wrist = np.linalg.norm(np.diff(pos[:, [J["left_wrist"], J["right_wrist"]]], axis=0), axis=-1) * FPS
    assert 2.0 < wrist.max() < 5.0
    _, root, pos = _perform("gesture")
    wrist = np.linalg.norm(np.diff(pos[:, [J["left_wrist"], J["right_wrist"]]], axis=0), axis=-1) * FPS
    assert wrist.max() > 1.5
    sc, root, _ = _perform("turn_around", back=False)
    assert abs(sc.a.yaw[len(root) - 1]) > np.pi / 2 - 0.1
    sc, root, _ = _perform("side_step", back=False)
    assert abs(root[-1, 0]) > 0.3 and abs(root[-1, 2]) < 0.05
    _, root, _ = _perform("step_back")
    assert root[:, 2].min() < -0.25
    _, _, pos = _perform("reach_up")
    assert pos[:, J["right_wrist"], 1].max() > pos[0, J["head"], 1]


def test_solo_actions_in_dataset_segments_and_captions():
    clips = list(generate_dataset(70, seed=3))
    seen = set()
    for c in clips:
        for s in c.meta["segments"]:
            if s["kind"] == "solo":
                seen.add(s["action"])
                assert s["person"] in (0, 1, "both")
    assert len(seen & set(SOLO_ACTIONS)) >= 7, seen
    for k in SOLO_ACTIONS:
        assert PRELUDE_PHRASES[k] and k in POSTLUDE_PHRASES
