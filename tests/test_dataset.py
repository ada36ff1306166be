"""The on-disk dataset: what is written is what is read, with splits and statistics."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import MotionDataset, SplitFractions, clip_features, write_dataset
from molam_ros.data.errors import DatasetFormatError
from molam_ros.data.summary import format_summary, summarize
from molam_ros.data.synth import generate_dataset
from molam_ros.motion.ego import EGO_DIM as FEATURE_DIM


@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ds")
    write_dataset(root, generate_dataset(24, 3), total=24, progress=False, manifest={"seed": 3})
    return root


def test_round_trip_of_clips(small_dataset: Path) -> None:
    ds = MotionDataset(small_dataset)
    originals = {c.name: c for c in generate_dataset(24, 3)}
    assert sorted(originals) == ds.ids()
    for clip_id, original in originals.items():
        loaded = ds.load(clip_id)
        np.testing.assert_array_equal(loaded.positions, original.positions)
        assert loaded.texts == [t.strip() for t in original.texts]
        assert loaded.meta["interaction"] == original.meta["interaction"]


def test_splits_cover_every_clip_once(small_dataset: Path) -> None:
    ds = MotionDataset(small_dataset)
    splits = [ds.ids(s) for s in ("train", "val", "test")]
    assert all(splits), "every split must hold at least one clip"
    flat = [i for s in splits for i in s]
    assert sorted(flat) == ds.ids() and len(set(flat)) == len(flat)
    manifest = json.loads((small_dataset / "dataset.json").read_text())
    assert manifest["count"] == 24 and manifest["seed"] == 3
    assert manifest["splits"] == {
        s: len(ids) for s, ids in zip(("train", "val", "test"), splits, strict=True)
    }


def test_stats_are_those_of_the_train_split(small_dataset: Path) -> None:
    ds = MotionDataset(small_dataset)
    stats = ds.stats()
    feats = np.concatenate([clip_features(ds.load(i)).reshape(-1, FEATURE_DIM) for i in ds.ids("train")])
    np.testing.assert_allclose(stats.mean, feats.mean(0), rtol=1e-3, atol=1e-3)
    normalised = stats.normalize(feats)
    assert np.all(np.isfinite(normalised))
    np.testing.assert_allclose(stats.denormalize(normalised), feats, atol=1e-4)


def test_split_assignment_is_stable() -> None:
    fractions = SplitFractions(val=0.1, test=0.1)
    assert [fractions.assign(f"clip_{i}") for i in range(50)] == [
        fractions.assign(f"clip_{i}") for i in range(50)
    ]
    shares = [fractions.assign(f"clip_{i}") for i in range(4000)]
    assert 0.07 < shares.count("test") / 4000 < 0.13


def test_tiny_dataset_trains_on_everything(tmp_path: Path) -> None:
    info = write_dataset(tmp_path, generate_dataset(2, 0), progress=False)
    assert info["splits"] == {"train": 2, "val": 0, "test": 0}
    assert MotionDataset(tmp_path).stats().mean.shape == (FEATURE_DIM,)


def test_summary_reports_the_dataset(small_dataset: Path) -> None:
    s = summarize(MotionDataset(small_dataset), progress=False)
    assert sum(s.people.values()) == 24 and s.people[2] == 24
    assert len(s.interactions) >= 12
    assert all(1.3 < h < 2.1 for h in s.heights)
    text = format_summary(s)
    assert "clips           24" in text and "handshake" in text


def test_bad_datasets_are_named(tmp_path: Path, small_dataset: Path) -> None:
    with pytest.raises(DatasetFormatError, match="dataset.json"):
        MotionDataset(tmp_path)
    (tmp_path / "dataset.json").write_text("{not json")
    with pytest.raises(DatasetFormatError, match="not valid JSON"):
        MotionDataset(tmp_path)
    ds = MotionDataset(small_dataset)
    with pytest.raises(DatasetFormatError, match="missing motion file"):
        ds.load("no_such_clip")
    with pytest.raises(ValueError, match="unknown split"):
        ds.ids("holdout")
    bad = tmp_path / "bad"
    write_dataset(bad, [MotionClip("a", np.zeros((2, 5, 22, 3)) + [0, 1, 0])], progress=False)
    np.savez(bad / "motions/a.npz", positions=np.zeros((5, 21, 3)))
    with pytest.raises(DatasetFormatError, match=r"a\.npz.*shape"):
        MotionDataset(bad).load("a")
    (bad / "motions/a.npz").write_bytes(b"truncated")
    with pytest.raises(DatasetFormatError, match=r"a\.npz: unreadable"):
        MotionDataset(bad).load("a")
    write_dataset(bad, [MotionClip("a", np.zeros((2, 5, 22, 3)) + [0, 1, 0])], progress=False)
    (bad / "meta/a.json").write_text("{")
    with pytest.raises(DatasetFormatError, match=r"a\.json"):
        MotionDataset(bad).load("a")


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    clip = MotionClip("same", np.zeros((2, 4, 22, 3)) + [0, 1, 0])
    with pytest.raises(ValueError, match="duplicate clip id"):
        write_dataset(tmp_path, [clip, clip], progress=False)
