"""Solo actions of the generator (crouch, pick up, reach, turn, side/back steps, jabs, gestures).

They are an option (`SynthConfig.solo_actions`, `molam data synth --solo-actions`), off by default:
with it off the generator writes the clips it wrote before they existed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from molam_ros.cli import main
from molam_ros.data.captions import POSTLUDE_PHRASES, PRELUDE_PHRASES, make_captions
from molam_ros.data.conversations import reasoning_pairs
from molam_ros.data.edit_variants import edit_variant, layout
from molam_ros.data.synth import (
    _ALLOC,
    FPS,
    INTERACTIONS,
    MIN_GAP,
    POST_SOLO,
    SOLO_ACTIONS,
    STYLES,
    Scene,
    SynthConfig,
    _solo,
    _solo_plan,
    generate_clip,
    generate_dataset,
)
from molam_ros.data.synth_poses import RIGHT, Track, make_body, solve
from molam_ros.llm.caption_labels import caption_labels
from molam_ros.motion.skeleton import JOINT_INDEX as J
from molam_ros.motion.skeleton import PARENTS

SOLO = SynthConfig(solo_actions=0.8)
# Segment actions only the option makes ("step_back" is also a postlude of its own).
SOLO_ONLY = set(SOLO_ACTIONS) - {"step_back"}


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


@pytest.fixture(scope="module")
def solo_clips():
    return list(generate_dataset(70, seed=3, config=SOLO))


def test_solo_actions_in_dataset_segments_and_captions(solo_clips):
    seen = set()
    for c in solo_clips:
        assert c.meta["solo_actions"] == SOLO.solo_actions  # so the clip can be made again
        assert c.meta["min_gap"] >= MIN_GAP[c.meta["contact"]]
        for s in c.meta["segments"]:
            if s["kind"] == "solo":
                seen.add(s["action"])
                assert s["person"] in (0, 1, "both")
    assert len(seen & set(SOLO_ACTIONS)) >= 7, seen
    for k in SOLO_ACTIONS:
        assert PRELUDE_PHRASES[k]
    for k in POST_SOLO:
        assert POSTLUDE_PHRASES[k]


def test_solo_actions_leave_the_caption_labels(solo_clips):
    """Captions of clips with solo actions still name their interaction and style, and only those."""
    for phrase in (*PRELUDE_PHRASES.values(), *POSTLUDE_PHRASES.values()):
        assert caption_labels(phrase.format(w="person A")) == (None, None), phrase
    pairs = [
        (caption_labels(text), (c.meta["interaction"], c.meta["style"]))
        for c in solo_clips
        for text in c.texts
    ]
    assert np.mean([got == want for got, want in pairs]) >= 0.99
    # Every solo action before and after every interaction, in every style, by anyone.
    for key in INTERACTIONS:
        for st in STYLES.values():
            extra = {"react": "dodges to the side", "dir": "left"}
            for i, pre in enumerate(SOLO_ACTIONS):
                post = POST_SOLO[i % len(POST_SOLO)]
                for who in ("actor", "reactor", "both"):
                    args = (key, st.adverbs, st.manners, 0, "right", extra)
                    bare = make_captions(np.random.default_rng(0), *args)
                    texts = make_captions(np.random.default_rng(0), *args, (pre, who), (post, who))
                    assert PRELUDE_PHRASES[pre].format(w="").strip() in texts[1].lower()
                    assert POSTLUDE_PHRASES[post].format(w="").strip()[5:] in texts[2]
                    assert [caption_labels(t) for t in texts] == [caption_labels(t) for t in bare], texts


def test_option_off_leaves_the_clips_as_they_were():
    """Golden: with the option at 0 no solo action is drawn and the random stream does not move."""
    assert _solo_plan(123, 0.0) == (None, None)
    default = list(generate_dataset(14, seed=0))
    off = list(generate_dataset(14, seed=0, config=SynthConfig(solo_actions=0.0)))
    # The segments the generator wrote before solo actions existed (main at c63ed55).
    assert [tuple(s["action"] for s in c.meta["segments"] if s["kind"] == "solo") for c in default] == [
        ("idle", "step_back"), ("look_around", "walk_away"), ("idle", "look_around"), ("idle", "walk_away"),
        ("walk_in", "step_back"), ("look_around", "walk_away"), ("walk_in", "look_around"),
        ("walk_in", "step_back"), ("look_around", "idle"), ("walk_in", "walk_away"), ("walk_in", "walk_away"),
        ("idle", "step_back"), ("walk_in", "idle"), ("turn_to_face", "step_back"),
    ]  # fmt: skip
    for a, b in zip(default, off, strict=True):
        assert "solo_actions" not in a.meta and a.meta == b.meta and a.texts == b.texts
        assert np.array_equal(a.positions, b.positions)
        assert not SOLO_ONLY & {s.get("action") for s in a.meta["segments"]}
    with pytest.raises(ValueError, match="solo_actions"):
        SynthConfig(solo_actions=1.5)


def test_solo_actions_keep_the_layout_across_styles():
    """The same scene in another style does the same solo actions (what edit variants need)."""
    clip = generate_clip(5, "wave", "calm", SynthConfig(solo_actions=1.0))
    assert {s.get("action") for s in clip.meta["segments"]} & SOLO_ONLY
    variant = edit_variant(clip, "playful")
    assert variant is not None and variant.meta["edit_of"] == clip.name
    assert layout(variant.meta) == layout(clip.meta)
    every = SynthConfig(solo_actions=1.0)

    def solo_actions(meta):  # the solo action before (every clip has one) and any after it
        segs = meta["segments"]
        return [(segs[0]["action"], segs[0]["person"])] + [
            (s["action"], s["person"]) for s in segs[1:] if s.get("action") in SOLO_ONLY
        ]

    for c in generate_dataset(8, seed=11, config=every):
        assert c.meta["segments"][0]["action"] in SOLO_ACTIONS
        for style in STYLES:
            other = generate_clip(c.meta["seed"], c.meta["interaction"], style, every)
            assert solo_actions(other.meta) == solo_actions(c.meta), (c.name, style)


def test_reasoning_answers_name_solo_actions():
    meta = {
        "actor": 0,
        "description": "one waves, the other waves back",
        "segments": [
            {"kind": "solo", "action": "crouch", "person": 1},
            {"kind": "interaction", "interaction": "wave"},
            {"kind": "solo", "action": "shadow_box", "person": "both"},
        ],
    }
    assert reasoning_pairs(meta)[:2] == [
        ("What happens before the wave?", "Person B crouches down and gets back up before the wave."),
        ("What happens after the wave?", "Both people shadow-box, jabbing at the air after the wave."),
    ]


def test_cli_solo_actions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "d"
    args = ["data", "synth", "--out", str(out), "--count", "4", "--edit-variants", "0"]
    assert main([*args, "--solo-actions", "1"]) == 0
    assert json.loads((out / "dataset.json").read_text())["solo_actions"] == 1.0
    metas = [json.loads(p.read_text()) for p in sorted((out / "meta").glob("*.json"))]
    assert all(m["segments"][0]["action"] in SOLO_ACTIONS for m in metas)
    with pytest.raises(SystemExit, match="--solo-actions"):
        main([*args, "--solo-actions", "2"])
