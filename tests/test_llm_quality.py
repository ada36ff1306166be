"""The quality measures: MPJPE and its baselines, caption parsing, the interaction classifier, the table.

Clips come from the procedural generator with every (interaction, style) pair in turn, so the
caption parser and the classifier are checked on all the generator's combinations; the classifier
is trained and judged on different seeds (held out), small enough to stay fast on two cores.
"""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import MotionDataset, write_dataset
from molam_ros.data.synth import INTERACTIONS, STYLES, generate_clip
from molam_ros.llm.caption_labels import INTERACTION_PATTERNS, caption_labels
from molam_ros.llm.interaction_classifier import DESCRIPTOR_DIM, InteractionClassifier, main, pair_descriptors
from molam_ros.llm.quality import QualityRow, QualityTable, format_quality_table, format_share
from molam_ros.llm.reaction_baselines import (
    MIRROR_JOINTS,
    mirror_plane,
    mirror_reactor,
    mpjpe_mm,
    reaction_errors,
    still_reactor,
)
from molam_ros.motion.canonical import canonicalize, facing_direction
from molam_ros.motion.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS

J = JOINT_INDEX
KEYS, STYLE_NAMES = sorted(INTERACTIONS), sorted(STYLES)


def _clips(per_pair: int, seed: int) -> list[MotionClip]:
    """Generator clips, `per_pair` of every (interaction, style) pair, seeds drawn from `seed`."""
    rng = np.random.default_rng(seed)
    return [
        generate_clip(int(rng.integers(2**31 - 1)), key, style)
        for key in KEYS
        for style in STYLE_NAMES
        for _ in range(per_pair)
    ]


@pytest.fixture(scope="module")
def train_clips() -> list[MotionClip]:
    return _clips(2, seed=101)


@pytest.fixture(scope="module")
def heldout_clips() -> list[MotionClip]:
    return _clips(1, seed=202)


@pytest.fixture(scope="module")
def classifier(train_clips: list[MotionClip]) -> InteractionClassifier:
    return InteractionClassifier().fit(train_clips)


def _yaw(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _bone_lengths_per_frame(pos: np.ndarray) -> np.ndarray:
    """(T, 21) length of every bone in every frame."""
    return np.linalg.norm(pos[:, 1:] - pos[:, list(PARENTS[1:])], axis=-1)


# --- MPJPE --------------------------------------------------------------------------------------


def test_mpjpe_is_mean_joint_distance_in_mm_over_the_common_length() -> None:
    ref = np.random.default_rng(0).normal(size=(40, NUM_JOINTS, 3))
    assert mpjpe_mm(ref, ref) == 0.0
    shifted = ref + np.array([0.0, 0.0, 0.010])  # 10 mm everywhere
    assert mpjpe_mm(shifted, ref) == pytest.approx(10.0)
    # The longer motion is cropped: only the first 25 frames count.
    longer = np.concatenate([shifted[:25], ref[25:] + 5.0])
    assert mpjpe_mm(longer, ref[:25]) == pytest.approx(10.0)
    with pytest.raises(ValueError):
        mpjpe_mm(ref[:, :21], ref[:, :21])
    with pytest.raises(ValueError):
        mpjpe_mm(np.full_like(ref, np.nan), ref)


def test_mpjpe_equals_the_canonical_frame_value_and_keeps_placement_relative_to_a() -> None:
    clip = generate_clip(3, "handshake", "friendly")
    a, b = clip.positions[0].astype(np.float64), clip.positions[1].astype(np.float64)
    pred_b = b + np.array([0.05, 0.0, -0.02])  # the reactor stands 5 cm off
    canon, _ = canonicalize(np.stack([a, b, pred_b]))
    assert mpjpe_mm(pred_b, b) == pytest.approx(mpjpe_mm(canon[2], canon[1]), abs=1e-6)
    # Moving the whole scene changes nothing; moving only the reactor is an error.
    move = _yaw(1.1)
    assert mpjpe_mm(pred_b @ move.T + 3.0, b @ move.T + 3.0) == pytest.approx(mpjpe_mm(pred_b, b), abs=1e-6)
    assert mpjpe_mm(pred_b, b) == pytest.approx(np.hypot(50.0, 20.0), abs=1e-6)


# --- baselines -----------------------------------------------------------------------------------


def test_still_reactor_holds_the_first_pose() -> None:
    b0 = generate_clip(5).positions[1, 0]
    still = still_reactor(b0, 37)
    assert still.shape == (37, NUM_JOINTS, 3)
    assert np.all(np.diff(still, axis=0) == 0.0)  # zero velocity
    np.testing.assert_array_equal(still[0], b0)
    with pytest.raises(ValueError):
        still_reactor(b0, 0)


def _symmetric_walk_and_raise(T: int = 30) -> np.ndarray:
    """Person a, left/right symmetric, facing +Z at the origin, walking 0.3 m forward, arms rising."""
    pose = generate_clip(7, "bow", "calm").positions[0, 0].astype(np.float64)
    pose = canonicalize(pose[None])[0][0, 0]  # facing +Z, root above the origin
    flipped = pose * np.array([-1.0, 1.0, 1.0])
    sym = 0.5 * (pose + flipped[list(MIRROR_JOINTS)])  # x -> -x with left/right swapped: symmetric
    sym[:, 0] -= sym[J["pelvis"], 0]
    t = np.linspace(0.0, 1.0, T)
    motion = np.repeat(sym[None], T, axis=0)
    motion[:, :, 2] += 0.3 * t[:, None]
    for w in ("left_wrist", "right_wrist"):
        motion[:, J[w], 1] += 0.4 * t
    return motion


def test_mirror_of_a_symmetric_motion_is_the_same_motion_turned_to_face_a() -> None:
    a = _symmetric_walk_and_raise()
    b0 = a[0] @ _yaw(np.pi).T + np.array([0.0, 0.0, 2.0])  # b two metres ahead, facing a
    image = mirror_reactor(a, b0)
    # The mirror is the plane z = 1; for a symmetric body that is a half turn about (0, *, 1).
    expected = a @ _yaw(np.pi).T + np.array([0.0, 0.0, 2.0])
    np.testing.assert_allclose(image, expected, atol=1e-9)
    np.testing.assert_allclose(image[0, J["pelvis"], [0, 2]], b0[J["pelvis"], [0, 2]], atol=1e-9)
    # a walks towards b, so the image walks towards a; it faces a all along; both arms rise.
    assert image[-1, J["pelvis"], 2] == pytest.approx(image[0, J["pelvis"], 2] - 0.3)
    np.testing.assert_allclose(facing_direction(image), np.tile([0.0, 0.0, -1.0], (len(a), 1)), atol=1e-9)
    assert image[-1, J["left_wrist"], 1] - image[0, J["left_wrist"], 1] == pytest.approx(0.4)


def test_mirror_raises_the_hand_on_the_same_side_as_seen_by_a() -> None:
    a = _symmetric_walk_and_raise()
    a[:, J["left_wrist"], 1] = a[0, J["left_wrist"], 1]  # only the right hand rises now
    b0 = a[0] @ _yaw(np.pi).T + np.array([0.0, 0.0, 2.0])
    image = mirror_reactor(a, b0)
    np.testing.assert_allclose(image[:, J["left_wrist"], 1], a[:, J["right_wrist"], 1])
    assert np.ptp(image[:, J["right_wrist"], 1]) == pytest.approx(0.0)
    # Seen from a (facing +Z, a's right is -X), the raised hand of the image is on the same side.
    assert image[-1, J["left_wrist"], 0] == pytest.approx(a[-1, J["right_wrist"], 0])


def test_mirror_has_a_proper_skeleton_with_bone_lengths_of_a() -> None:
    clip = generate_clip(11, "wave", "playful")  # somewhere in the world, any heading
    a, b = clip.positions[0].astype(np.float64), clip.positions[1].astype(np.float64)
    image = mirror_reactor(a, b[0])
    assert image.shape == a.shape == (clip.num_frames, NUM_JOINTS, 3)
    # Reflection keeps every distance: bone lengths are a's, left and right exchanged, every frame.
    np.testing.assert_allclose(
        _bone_lengths_per_frame(image), _bone_lengths_per_frame(a)[:, [j - 1 for j in MIRROR_JOINTS[1:]]]
    )
    # Starts where b stands (on the floor plane), at a's root height.
    np.testing.assert_allclose(image[0, 0, [0, 2]], b[0, 0, [0, 2]], atol=1e-6)
    assert image[0, 0, 1] == pytest.approx(a[0, 0, 1])
    # Not inside out: it faces the reflection of a's facing.
    n, _ = mirror_plane(a[0, 0], b[0, 0], facing_direction(a[0]))
    reflect = np.eye(3) - 2.0 * np.outer(n, n)
    np.testing.assert_allclose(facing_direction(image), facing_direction(a) @ reflect.T, atol=1e-6)


def test_reaction_errors_scores_model_and_baselines_on_the_same_clip() -> None:
    clip = generate_clip(13, "push", "aggressive")
    a, b = clip.positions[0], clip.positions[1]
    errors = reaction_errors(a, b, b)
    assert set(errors) == {"model", "still", "mirror"}
    assert errors["model"] == 0.0
    # Millimetres averaged over frames and joints: standing still in b's first pose scores the mean
    # distance of every joint from where it started, computed here by hand; mirroring scores the
    # mirror reactor (tested above) against the recorded one; a reactor 10 cm off scores 100 mm.
    assert errors["still"] == pytest.approx(1000.0 * np.linalg.norm(b - b[:1], axis=-1).mean(), rel=1e-9)
    assert errors["still"] > 50.0  # the pushed person moves
    assert errors["mirror"] == pytest.approx(mpjpe_mm(mirror_reactor(a, b[0]), b), rel=1e-9)
    assert reaction_errors(a, b, b + np.array([0.1, 0.0, 0.0]))["model"] == pytest.approx(100.0)
    assert set(reaction_errors(a, b)) == {"still", "mirror"}
    still = still_reactor(b[0], len(b))
    assert reaction_errors(a, still)["still"] == 0.0


# --- captions ------------------------------------------------------------------------------------


def test_every_interaction_has_a_caption_pattern() -> None:
    assert sorted(k for k, _ in INTERACTION_PATTERNS) == KEYS


def test_caption_labels_recover_interaction_and_style_of_generated_captions(
    train_clips: list[MotionClip], heldout_clips: list[MotionClip]
) -> None:
    pairs = [
        (caption_labels(text), (c.meta["interaction"], c.meta["style"]))
        for c in train_clips + heldout_clips
        for text in c.texts
    ]
    assert len(pairs) >= 800
    type_share = np.mean([got[0] == want[0] for got, want in pairs])
    style_share = np.mean([got[1] == want[1] for got, want in pairs])
    assert type_share >= 0.99, f"interaction recovered from {type_share:.3f} of captions"
    assert style_share >= 0.99, f"style recovered from {style_share:.3f} of captions"


@pytest.mark.parametrize(
    ("caption", "expected"),
    [
        ("The weather was nice and the train was late.", (None, None)),
        ("", (None, None)),
        ("Two people hug warmly.", ("hug", "friendly")),
        ("Someone gives the other a high five, just for fun.", ("high_five", "playful")),
        ("Person A waves person B over; person B comes closer, calmly.", ("beckon", "calm")),
        ("B follows the pointing of A with their eyes, hesitantly.", ("point_look", "hesitant")),
        ("She shakes his hand in an aggressive way.", ("handshake", "aggressive")),
        ("A friendly wave.", ("wave", "friendly")),
    ],
)
def test_caption_labels_on_free_text(caption: str, expected: tuple) -> None:
    assert caption_labels(caption) == expected


# --- interaction classifier ----------------------------------------------------------------------


def test_descriptor_is_order_aware_and_invariant_to_placing_the_scene() -> None:
    pos = generate_clip(17, "kick", "playful").positions.astype(np.float64)
    d = pair_descriptors(pos)
    assert d.shape == (2, DESCRIPTOR_DIM) and d.dtype == np.float32 and np.all(np.isfinite(d))
    np.testing.assert_allclose(pair_descriptors(pos[::-1]), d[::-1], atol=1e-4)
    moved = pos @ _yaw(2.0).T + np.array([4.0, 0.3, -1.0])
    np.testing.assert_allclose(pair_descriptors(moved), d, atol=1e-3)
    with pytest.raises(ValueError):
        pair_descriptors(pos[:1])


def test_classifier_recognises_held_out_generator_clips(
    classifier: InteractionClassifier, heldout_clips: list[MotionClip]
) -> None:
    assert classifier.labels == KEYS
    hits, total = classifier.confusion_counts(heldout_clips)
    assert total == len(KEYS) * len(STYLE_NAMES)
    assert hits / total >= 0.9, f"held-out accuracy {hits}/{total}"


def test_classifier_probabilities_ignore_person_order_and_placement(
    classifier: InteractionClassifier, heldout_clips: list[MotionClip]
) -> None:
    pos = heldout_clips[0].positions
    proba = classifier.predict_proba(pos)
    assert sorted(proba) == KEYS and sum(proba.values()) == pytest.approx(1.0, abs=1e-5)
    swapped = classifier.predict_proba(pos[::-1])
    moved = classifier.predict_proba(pos @ _yaw(-0.7).T.astype(np.float32) + 2.0)
    for key in KEYS:
        assert swapped[key] == pytest.approx(proba[key], abs=1e-4)
        assert moved[key] == pytest.approx(proba[key], abs=1e-3)
    assert classifier.predict(pos) == max(proba, key=proba.__getitem__)


def test_classifier_save_load_round_trip(
    classifier: InteractionClassifier, heldout_clips: list[MotionClip], tmp_path
) -> None:
    path = tmp_path / "clf.npz"
    classifier.save(path)
    loaded = InteractionClassifier.load(path)
    assert loaded.labels == classifier.labels
    for clip in heldout_clips[:5]:
        a, b = classifier.predict_proba(clip.positions), loaded.predict_proba(clip.positions)
        assert all(a[k] == pytest.approx(b[k], abs=1e-6) for k in KEYS)
    with pytest.raises(RuntimeError):
        InteractionClassifier().predict(heldout_clips[0].positions)


def test_classifier_fits_a_dataset_split_and_the_measuring_command_runs(
    train_clips: list[MotionClip], heldout_clips: list[MotionClip], tmp_path, capsys
) -> None:
    root = tmp_path / "data"
    write_dataset(root, train_clips[::2], progress=False)  # one clip per pair keeps this quick
    ds = MotionDataset(root)
    clf = InteractionClassifier(steps=200).fit(ds, split="train")
    assert not set(ds.ids("train")) & set(ds.ids("test"))
    assert clf.accuracy(ds, split="test") >= 0.8  # measured: 5/5 test clips, 69/70 held-out clips
    assert clf.accuracy(heldout_clips) >= 0.8  # far less data than the fixture's classifier
    assert main(["--data", str(root), "--split", "all", "--save", str(tmp_path / "c.npz")]) == 0
    saved = InteractionClassifier.load(tmp_path / "c.npz")
    assert saved.labels == KEYS
    # The command prints what the classifier it trained (and saved) scores on the split it names.
    assert (
        f"all accuracy on {root}: {format_share(*saved.confusion_counts(ds, None))}"
        in capsys.readouterr().out
    )


# --- table ---------------------------------------------------------------------------------------


def test_format_quality_table_is_markdown() -> None:
    text = format_quality_table([QualityRow("reaction MPJPE (mm)", "101.5", "230.0", "410.2", "40")])
    lines = text.strip().splitlines()
    assert lines[0] == "| measure | model | still baseline | mirror baseline | clips |"
    assert lines[1] == "|---|---|---|---|---|"
    assert lines[2] == "| reaction MPJPE (mm) | 101.5 | 230.0 | 410.2 | 40 |"
    assert format_share(7, 8) == "87.5 % (7/8)"
    assert format_share(0, 0) == "\u2014"


def test_quality_table_collects_clips() -> None:
    table = QualityTable()
    table.add_reaction({"model": 100.0, "still": 200.0, "mirror": 300.0})
    table.add_reaction({"model": 120.0, "still": 220.0, "mirror": 340.0})
    assert table.add_caption("Person A waves at person B warmly.", "wave", "friendly") == (True, True)
    assert table.add_caption("Person A bows to person B calmly.", "wave", "friendly") == (False, False)
    assert table.add_text_to_motion("hug", "hug") is True
    text = table.markdown()
    assert "| reaction MPJPE (mm) | 110.0 | 210.0 | 320.0 | 2 |" in text
    assert "| m2t type match | 50.0 % (1/2) |  |  | 2 |" in text
    assert "| m2t style match | 50.0 % (1/2) |  |  | 2 |" in text
    assert "| t2m classifier agreement | 100.0 % (1/1) |  |  | 1 |" in text
    assert "\u2014" in QualityTable().markdown()  # nothing measured yet
