"""Live placement: the reactor out of the person, not too far, facing them, never jumping."""

from __future__ import annotations

import math

import numpy as np

from molam_ros.data.synth import generate_clip
from molam_ros.motion.canonical import facing_angle
from molam_ros.runtime.placement import LivePlacement, PlacementConfig


def _pose() -> np.ndarray:
    clip = generate_clip(1, "wave", "calm")
    pose = clip.positions[0, 0].astype(np.float64)
    pose -= pose[0] * [1, 0, 1]  # root above the origin
    turn = -float(facing_angle(pose))  # facing +Z
    c, s = math.cos(turn), math.sin(turn)
    return pose @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T


def _stand(pose: np.ndarray, x: float, z: float, heading: float, n: int) -> np.ndarray:
    c, s = math.cos(heading), math.sin(heading)
    turned = pose @ np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]]).T
    return np.repeat((turned + [x, 0, z])[None], n, axis=0)


def _run(placement: LivePlacement, person: np.ndarray, reactor: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [placement.apply(person[k : k + 4], reactor[k : k + 4]) for k in range(0, len(person), 4)]
    )


def test_a_plausible_reactor_is_left_alone() -> None:
    pose, n = _pose(), 60
    person = _stand(pose, 0, 0, 0.0, n)
    reactor = _stand(pose, 0, 1.2, math.pi, n)  # 1.2 m in front, facing the person
    np.testing.assert_allclose(_run(LivePlacement(), person, reactor), reactor, atol=1e-9)


def test_inside_far_and_turned_away_are_corrected_smoothly() -> None:
    pose, n, cfg = _pose(), 150, PlacementConfig()
    person = _stand(pose, 0, 0, 0.0, n)
    for reactor, check in (
        (_stand(pose, 0.05, 0.1, math.pi, n), "inside"),
        (_stand(pose, 0, 5.0, math.pi, n), "far"),
        (_stand(pose, 0, 1.2, 0.0, n), "back turned"),
    ):
        out = _run(LivePlacement(cfg), person, reactor)
        d = np.linalg.norm((out[:, 0] - person[:, 0])[:, [0, 2]], axis=1)
        root_steps = np.linalg.norm(np.diff(out[:, 0], axis=0), axis=1)
        assert root_steps.max() <= cfg.max_speed / cfg.fps + 1e-9, check
        heading = facing_angle(out)
        to_person = np.arctan2(-out[:, 0, 0], -out[:, 0, 2])
        error = np.abs((to_person - heading + np.pi) % (2 * np.pi) - np.pi)
        assert np.abs(np.diff(np.unwrap(heading))).max() <= cfg.max_turn / cfg.fps + 1e-6, check
        assert cfg.min_distance - 1e-6 <= d[-1] <= cfg.max_distance + 1e-6, (check, d[-1])
        assert error[-1] <= cfg.facing_tolerance + 1e-3, (check, math.degrees(error[-1]))
    # The far one is pulled in at the rate limit, not teleported.
    out = _run(LivePlacement(cfg), person, _stand(pose, 0, 5.0, math.pi, n))
    d = np.linalg.norm(out[:, 0, [0, 2]], axis=1)
    assert d[0] > 4.9 and d[-1] <= 3.0 + 1e-6
