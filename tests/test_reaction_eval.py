"""Closed-loop reaction evaluation on the shipped tokenizer and a few generator clips."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.data.dataset import MotionDataset, write_dataset
from molam_ros.data.synth import generate_dataset
from molam_ros.llm.reaction_codes import encode_reaction_codes, reaction_features, reaction_pair
from molam_ros.llm.reaction_eval import (
    ReactionEvalConfig,
    closed_loop,
    eval_clips,
    evaluate_reactors,
    format_rows,
)
from molam_ros.paths import shipped_tokenizer_dir
from molam_ros.tokenizer.engines import TorchEngine


class Replay:
    """Plays given reactor codes whatever the actor does; records the actor codes it was shown."""

    def __init__(self, codes: np.ndarray) -> None:
        self.codes, self.seen, self.t = codes, [], 0

    def reset(self) -> None:
        self.t, self.seen = 0, []

    def set_instruction(self, text: str | None) -> None:
        self.text = text

    def step(self, codes_a: np.ndarray, codes_b: np.ndarray | None = None) -> np.ndarray:
        self.seen.append(np.asarray(codes_a).copy())
        out = self.codes[min(self.t, len(self.codes) - 1)] if codes_b is None else codes_b
        self.t += 1
        return np.asarray(out)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("reval")
    write_dataset(root / "data", generate_dataset(24, 3), progress=False)
    ds = MotionDataset(root / "data")
    engine = TorchEngine(shipped_tokenizer_dir(), threads=1)
    cfg = ReactionEvalConfig(clips=4, steps=12)
    split = "test" if ds.ids("test") else "train"
    clips = eval_clips(ds, split, cfg, engine.stride)
    if len(clips) < 2:
        clips = eval_clips(ds, "train", cfg, engine.stride)
    return root, ds, engine, cfg, clips


def test_replaying_the_recording_matches_the_codes_row(setup) -> None:
    _, _, engine, cfg, clips = setup
    replays = {}
    for c in clips[:1]:
        b_codes = engine.encode(reaction_features(np.stack([c.actor, c.reactor]), engine.stride)[1:])[0]
        replays["replay"] = Replay(b_codes)
    rows = evaluate_reactors(replays, engine, clips[:1], cfg, progress=False)
    assert rows["replay"]["mpjpe"] == pytest.approx(rows["codes"]["mpjpe"], rel=1e-6)
    assert rows["recorded"]["mpjpe"] == 0.0 and rows["recorded"]["energy"] == pytest.approx(1.0)
    assert rows["codes"]["pose"] < 60  # the tokenizer's ceiling: the body's shape survives the codes
    assert rows["still"]["energy"] == 0.0
    table = format_rows(rows)
    assert "| still |" in table and "| replay |" in table


def test_the_actor_codes_see_where_the_reactor_stands(setup) -> None:
    """Closed loop: the actor's codes depend on the generated reactor, as live (runtime/pipeline.py)."""
    _, _, engine, cfg, clips = setup
    c = clips[0]
    b_codes = engine.encode(reaction_features(np.stack([c.actor, c.reactor]), engine.stride)[1:])[0]
    near, far = Replay(b_codes), Replay(np.roll(b_codes, 7, axis=-1) % 512)
    p1 = closed_loop(near, engine, c, ReactionEvalConfig(steps=12, given_steps=1))
    p2 = closed_loop(far, engine, c, ReactionEvalConfig(steps=12, given_steps=1))
    assert p1.shape == p2.shape == c.reactor.shape
    assert (near.seen[0] == far.seen[0]).all()  # step 0: both stand where the recording starts
    assert any((x != y).any() for x, y in zip(near.seen[2:], far.seen[2:], strict=True))
    assert np.isfinite(p2).all()


def test_reaction_codes_cache_and_actor_first(setup) -> None:
    root, ds, engine, _, _ = setup
    rc = encode_reaction_codes(root / "data", shipped_tokenizer_dir(), progress=False)
    rc2 = encode_reaction_codes(root / "data", shipped_tokenizer_dir(), progress=False)  # from the cache
    assert (rc.a == rc2.a).all() and rc.clip_ids == rc2.clip_ids
    assert len(list(root.glob("data/reaction_codes.*.npz"))) == 1
    i = (
        next(k for k, cid in enumerate(rc.clip_ids) if ds.load(cid).meta.get("actor") == 1)
        if any(ds.load(cid).meta.get("actor") == 1 for cid in rc.clip_ids)
        else 0
    )
    clip = ds.load(rc.clip_ids[i])
    T = rc.steps(i) * engine.stride
    pair = reaction_pair(clip.positions[:, :T], int(clip.meta.get("actor", 0)))
    want = engine.encode(reaction_features(pair, engine.stride))
    a, b = rc.clip(i)
    assert (a == want[0]).all() and (b == want[1]).all()
    with pytest.raises(ValueError, match="two people"):
        reaction_pair(clip.positions[:1], 0)


def test_steering_pairs_and_steerability(setup, tmp_path) -> None:
    """Steering pairs join one clip's actor to another interaction's reactor and are always
    instructed; the steerability measure runs every reactor with another interaction's instruction."""
    from molam_ros.llm.reaction_eval import steer_target, steerability
    from molam_ros.llm.reactor_classifier import ReactorClassifier

    root, ds, engine, cfg, clips = setup
    rc = encode_reaction_codes(
        root / "data", shipped_tokenizer_dir(), tmp_path / "m.npz", mismatched=6, progress=False
    )
    steering = [i for i, f in enumerate(rc.instructed) if f]
    assert steering and all("+" in rc.clip_ids[i] and rc.splits[i] == "train" for i in steering)
    for i in steering:
        x, y = rc.clip_ids[i].split("+")
        assert ds.load(x).meta["interaction"] != ds.load(y).meta["interaction"]
        assert rc.interactions[i] == ds.load(y).meta["interaction"]  # the instruction is the reactor's part
    assert not any(rc.instructed[i] for i in range(len(rc)) if i not in steering)
    assert {steer_target(c, i) for i, c in enumerate(clips)}.isdisjoint({None})
    assert all(steer_target(c, i) != c.interaction for i, c in enumerate(clips))
    clf = ReactorClassifier(steps=20).fit(ds, split=None)
    clf.save(tmp_path / "r.npz")
    assert ReactorClassifier.load(tmp_path / "r.npz").labels == clf.labels
    with pytest.raises(ValueError, match="molam-reactor-classifier"):
        from molam_ros.llm.interaction_classifier import InteractionClassifier

        InteractionClassifier(steps=5).fit(ds, split=None).save(tmp_path / "p.npz")
        ReactorClassifier.load(tmp_path / "p.npz")
    c = clips[0]
    b_codes = engine.encode(reaction_features(np.stack([c.actor, c.reactor]), engine.stride)[1:])[0]
    rates = steerability({"replay": Replay(b_codes)}, engine, clips[:2], cfg, clf, progress=False)
    assert set(rates) == {"replay", "recorded"} and all(0.0 <= v <= 1.0 for v in rates.values())


def test_steering_onset_starts_the_other_reactor_promptly(setup, tmp_path) -> None:
    """With `steering_onset`, a steering pair's reactor is cut so that its motion starts within
    onset..2 x onset frames of the pair's start (or the cut is 0 where it starts earlier); the
    dataset's own clips are encoded once into the plain cache and reused by every steering variant."""
    import shutil

    from molam_ros.llm.reaction_codes import actor_first_pair, reaction_onset

    root, ds, engine, cfg, clips = setup
    data = tmp_path / "data"
    shutil.copytree(root / "data", data)
    rc = encode_reaction_codes(data, shipped_tokenizer_dir(), mismatched=8, steering_onset=6, progress=False)
    caches = sorted(p.name.split(".")[2] for p in data.glob("reaction_codes.*.npz"))
    assert caches == ["m8s0o6", "npz"], caches  # the plain cache and the variant's
    steering = [i for i, f in enumerate(rc.instructed) if f]
    assert steering and all("@" in rc.clip_ids[i] for i in steering)
    for i in steering:
        cut = int(rc.clip_ids[i].split("@")[1])
        pair = actor_first_pair(ds, rc.clip_ids[i], rc.steps(i) * engine.stride)
        start = reaction_onset(pair[1])
        y = ds.load(rc.clip_ids[i].split("+")[1].split("@")[0])
        whole = reaction_onset(reaction_pair(y.positions, int(y.meta.get("actor", 0)))[1])
        if cut:
            assert start is not None and 6 <= start <= 12, (rc.clip_ids[i], start)
        else:
            assert whole is None or whole <= 12
    again = encode_reaction_codes(
        data, shipped_tokenizer_dir(), mismatched=8, steering_onset=6, progress=False
    )
    assert again.clip_ids == rc.clip_ids and (again.b == rc.b).all()
    first = len(ds.ids())
    plain_rc = encode_reaction_codes(data, shipped_tokenizer_dir(), progress=False)
    assert plain_rc.clip_ids == rc.clip_ids[:first] and (plain_rc.a == rc.a[: len(plain_rc.a)]).all()
    assert reaction_onset(np.zeros((10, 22, 3))) is None


def test_ship_writes_weights_manifest_and_figures(setup, tmp_path) -> None:
    import hashlib
    import json

    from molam_ros.llm.reaction_codes import reaction_targets
    from molam_ros.llm.reactor_ship import ship_small_reactor, streaming_reactors
    from molam_ros.llm.reactor_weights import load_small_reactor, reactor_settings
    from molam_ros.llm.small_reactor import SmallReactorConfig
    from molam_ros.llm.small_reactor_train import ReactorTrainConfig, train_small_reactor
    from molam_ros.tokenizer.rqvae import checkpoint_identity

    root, ds, engine, _, _ = setup
    rc = encode_reaction_codes(root / "data", shipped_tokenizer_dir(), progress=False)
    targets = reaction_targets(
        root / "data", shipped_tokenizer_dir(), rc, list(range(len(rc))), progress=False
    )
    model = SmallReactorConfig.for_engine(
        engine,
        width=32,
        layers=1,
        heads=2,
        context_steps=16,
        text_dim=0,
    )
    run = tmp_path / "run"
    train_small_reactor(
        rc,
        targets,
        run,
        model=model,
        info={"tokenizer": checkpoint_identity(shipped_tokenizer_dir())},
        train=ReactorTrainConfig(steps=2, batch=2, crop_steps=4, eval_every=2, eval_batches=1, threads=1),
        progress=False,
    )
    out = tmp_path / "shipped"
    split_ds = ds if ds.ids("test") else None
    if split_ds is None:
        pytest.skip("the tiny dataset has no test clip")
    # The run shipped beside a reactor of its own kind (the shipped one measured again): two rows.
    beside = streaming_reactors([run], engine)
    assert list(beside) == ["run"]
    manifest = ship_small_reactor(
        run,
        ds,
        engine,
        out,
        commands=["molam reactor train ..."],
        clips=2,
        anchor_pull=0.02,
        guidance=2.5,
        beside={"small_reactor": beside["run"]},
        progress=False,
    )
    assert {"small_reactor", "small_reactor (beside)"} <= set(manifest["eval"]["rows"])
    assert manifest["dtype"] in ("float16", "float32") and manifest["anchor_pull"] == 0.02
    assert manifest["guidance"] == 2.5
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == digest
    assert {"small_reactor", "still", "mirror", "codes", "recorded"} <= set(manifest["eval"]["rows"])
    assert json.loads((out / "manifest.json").read_text())["commands"] == ["molam reactor train ..."]
    net, info = load_small_reactor(out)
    assert info["anchor_pull"] == 0.02 and info["tokenizer"]["sha256"]
    assert reactor_settings(info) == {"anchor_pull": 0.02, "guidance": 2.5}  # what the node loads
    assert reactor_settings({**info, "partner_weight": 0.5})["partner_weight"] == 0.5


def test_intervals_over_clips_and_the_paired_difference_with_still(setup) -> None:
    """The recorded reactor is paired with standing still clip by clip: its difference is minus still's
    error on every clip, so the interval is that of still's own mean; a constant shift has no spread."""
    from molam_ros.llm.reaction_eval import bootstrap_interval

    _, _, engine, cfg, clips = setup
    rows = evaluate_reactors({}, engine, clips, cfg, progress=False)
    still, rec = rows["still"], rows["recorded"]
    assert still["mpjpe_lo"] <= still["mpjpe"] <= still["mpjpe_hi"] and "vs_still" not in still
    assert rec["vs_still"] == pytest.approx(-still["mpjpe"])
    assert rec["vs_still_lo"] == pytest.approx(-still["mpjpe_hi"]) and rec["mpjpe_hi"] == 0.0
    assert bootstrap_interval(np.full(9, 100.0)) == (100.0, 100.0)
    lo, hi = bootstrap_interval(np.arange(100.0))
    assert 40 < lo < 49.5 < hi < 59  # the mean 49.5, its standard error 2.9
    table = format_rows(rows)
    assert "95 % interval" in table and "vs still (95 %)" in table
    recorded = next(line for line in table.splitlines() if line.startswith("| recorded |"))
    assert recorded.startswith(f"| recorded | 0 | 0-0 | {-still['mpjpe']:+.0f} (")


def test_each_start_gives_the_reactor_its_first_step_as_the_node_would(setup) -> None:
    """ "standing" / "front": the first step given is a standing body's codes (where the recorded
    reactor starts / 1.8 m in front of the actor) and the actor's first codes see it; "none": nothing
    is given and the actor's first codes see no partner (the node before it gave a first step)."""
    from dataclasses import replace

    from molam_ros.data.standing import standing_frames
    from molam_ros.motion import ego
    from molam_ros.motion.canonical import facing_angle

    _, _, engine, cfg, clips = setup
    c = clips[0]
    replay = Replay(np.zeros((1, engine.depths), dtype=np.int64))
    given = []
    orig = replay.step
    replay.step = lambda a, b=None: (given.append(b), orig(a, b))[1]
    l = engine.stride
    stand = standing_frames(c.reactor[0, 0, [0, 2]], float(facing_angle(c.reactor[:1])[0]), l)
    closed_loop(replay, engine, c, replace(cfg, start="standing"))
    want = engine.encode(ego.person_to_ego(stand, c.actor[:l])[None])[0][0]
    assert np.array_equal(given[0], want) and all(g is None for g in given[1:])
    feats = ego.person_to_ego(c.actor[:l], np.broadcast_to(stand[-1], c.actor[:l].shape))
    assert np.array_equal(replay.seen[0], engine.encode(feats[None])[0][0])
    given.clear()
    closed_loop(replay, engine, c, replace(cfg, start="front"))
    assert given[0] is not None and not np.array_equal(given[0], want)
    given.clear()
    closed_loop(replay, engine, c, replace(cfg, start="none"))
    assert all(g is None for g in given)
    assert np.array_equal(replay.seen[0], engine.encode(ego.person_to_ego(c.actor[:l])[None])[0][0])
    with pytest.raises(ValueError, match="start"):
        ReactionEvalConfig(start="anywhere")


def test_row_names_never_replace_another_row(setup, tmp_path) -> None:
    """Two runs both called `out`, a run called `still`: each keeps its own row, and a reactor that
    takes a baseline's name is refused rather than mixed into the baseline's predictions."""
    from molam_ros.llm.reactor_ship import row_name

    taken: dict[str, object] = {}
    for path in (
        tmp_path / "a" / "out",
        tmp_path / "b" / "out",
        tmp_path / "a" / "out",
        tmp_path / "a" / "out",
        tmp_path / "c" / "still",
    ):
        taken[row_name(path, taken)] = path
    assert list(taken) == ["out", "b/out", "a/out", "out (2)", "c/still"]
    _, _, engine, cfg, clips = setup
    with pytest.raises(ValueError, match="baseline"):
        evaluate_reactors({"still": object()}, engine, clips[:1], cfg, progress=False)
