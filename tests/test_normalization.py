"""Feature statistics: streaming accumulation, floors, inverse, save/load."""

from __future__ import annotations

import numpy as np
import pytest

from molam_ros.motion.features import CONTACT, FEATURE_DIM, ROT
from molam_ros.motion.normalization import CONTACT_STD_FLOOR, ROT_STD_FLOOR, STD_FLOOR, FeatureStats


def batches(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for n in (1, 7, 50, 300):
        x = rng.normal(loc=1000.0, scale=2.0, size=(n, FEATURE_DIM))  # large mean: cancellation-prone
        x[:, 5] = 3.0  # a constant dim
        x[:, CONTACT] = rng.random((n, 4)) < 0.5
        x[:, CONTACT.start] = 0.0  # a contact that never fires
        out.append(x.astype(np.float32))
    out.append(np.zeros((0, FEATURE_DIM), dtype=np.float32))  # an empty clip is skipped
    return out


def test_streaming_stats_match_whole_data():
    data = batches()
    stats = FeatureStats.from_features(iter(data))  # a one-shot iterator is enough
    allx = np.concatenate(data).astype(np.float64)
    assert stats.count == len(allx)
    np.testing.assert_allclose(stats.mean, allx.mean(0), rtol=1e-6)
    expected = np.maximum(allx.std(0), STD_FLOOR)
    expected[ROT] = np.maximum(allx[:, ROT].std(0), ROT_STD_FLOOR)
    expected[CONTACT] = np.maximum(allx[:, CONTACT].std(0), CONTACT_STD_FLOOR)
    np.testing.assert_allclose(stats.std, expected, rtol=1e-5)
    assert stats.mean.dtype == np.float32 and stats.std.dtype == np.float32
    assert stats.std[5] == np.float32(STD_FLOOR)
    assert stats.std[CONTACT.start] == np.float32(CONTACT_STD_FLOOR)


def test_batches_of_any_leading_shape():
    x = np.random.default_rng(1).normal(size=(2, 3, 40, FEATURE_DIM))
    a = FeatureStats.from_features([x])
    b = FeatureStats.from_features([x[0], x[1].reshape(-1, FEATURE_DIM)])
    np.testing.assert_allclose(a.mean, b.mean, rtol=1e-6)
    np.testing.assert_allclose(a.std, b.std, rtol=1e-6)
    assert a.count == b.count == 240


def test_normalize_denormalize_round_trip():
    stats = FeatureStats.from_features(batches())
    x = batches(1)[2]
    z = stats.normalize(x)
    assert z.dtype == np.float32 and z.shape == x.shape
    nonconst = stats.std > STD_FLOOR
    assert abs(z[:, nonconst].mean()) < 0.5
    np.testing.assert_allclose(stats.denormalize(z), x, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError):
        stats.normalize(np.zeros((3, 261)))


def test_normalize_torch_tensor():
    torch = pytest.importorskip("torch")
    stats = FeatureStats.from_features(batches())
    x = batches(2)[1]
    z = stats.normalize(torch.from_numpy(x))
    assert isinstance(z, torch.Tensor) and z.dtype == torch.float32
    np.testing.assert_allclose(z.numpy(), stats.normalize(x), rtol=1e-6, atol=1e-6)


def test_save_load(tmp_path):
    stats = FeatureStats.from_features(batches())
    path = tmp_path / "sub" / "stats.npz"
    stats.save(path)
    loaded = FeatureStats.load(path)
    np.testing.assert_array_equal(loaded.mean, stats.mean)
    np.testing.assert_array_equal(loaded.std, stats.std)
    assert loaded.count == stats.count


def test_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        FeatureStats.load(tmp_path / "missing.npz")
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, mean=np.zeros(10), std=np.ones(10), count=1, feature_dim=10)
    with pytest.raises(ValueError, match="10 numbers wide"):
        FeatureStats.load(wrong)
    partial = tmp_path / "partial.npz"
    np.savez(partial, mean=np.zeros(FEATURE_DIM))
    with pytest.raises(ValueError, match="missing"):
        FeatureStats.load(partial)
    bad_shape = tmp_path / "bad_shape.npz"
    np.savez(bad_shape, mean=np.zeros(5), std=np.ones(5), count=1, feature_dim=FEATURE_DIM)
    with pytest.raises(ValueError, match="shape"):
        FeatureStats.load(bad_shape)


def test_bad_input():
    with pytest.raises(ValueError, match="no frames"):
        FeatureStats.from_features([])
    with pytest.raises(ValueError):
        FeatureStats.from_features([np.zeros((4, 100))])
    x = np.zeros((4, FEATURE_DIM))
    x[1, 2] = np.nan
    with pytest.raises(ValueError):
        FeatureStats.from_features([x])
    with pytest.raises(ValueError):
        FeatureStats(mean=np.zeros(FEATURE_DIM), std=np.zeros(FEATURE_DIM), count=1)
