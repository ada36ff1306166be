"""`molam tokenizer reconstruct`: every clip of a dataset through the tokenizer, written back as motion.

The output is a molam dataset directory (`data/dataset.py`'s layout: `motions/<id>.npz` with world
positions (P, T, 22, 3) at 30 fps, the same texts, meta and splits), so anyone can compute their own
metrics between DIR and OUT with nothing of molam but numpy. Each clip is cut to a multiple of the
stride l (the tail of < l frames is dropped, as the tokenizer cannot encode it).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import MotionDataset, write_clip
from molam_ros.motion.layout import layout_of, pair_from_features, pair_to_features
from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.rqvae import RQVAE


@torch.no_grad()
def reconstruct_positions(model: RQVAE, stats: FeatureStats, positions: np.ndarray) -> np.ndarray:
    """World positions (P, T', 22, 3) of a clip (P, T, 22, 3) after encode -> decode; T' = T - T % l."""
    model.eval()
    feats, transform = pair_to_features(positions, layout=layout_of(model.config.feature_dim))
    T = feats.shape[1] - feats.shape[1] % model.stride
    if T == 0:
        raise ValueError(f"a clip of {feats.shape[1]} frames is shorter than one step ({model.stride})")
    x = stats.normalize(torch.from_numpy(np.ascontiguousarray(feats[:, :T], dtype=np.float32)))
    out = stats.denormalize(model.decode(model.encode(x))).numpy()
    return pair_from_features(out, transform)


def reconstruct_dataset(
    model: RQVAE,
    stats: FeatureStats,
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    split: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Write the reconstruction of every clip of `split` (all when None) to `out_dir`; a summary."""
    ds, out = MotionDataset(data_dir), Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = ds.ids(split)
    skipped = []
    for clip_id in tqdm(ids, desc="reconstructing", unit="clip", disable=not progress):
        clip = ds.load(clip_id)
        try:
            pos = reconstruct_positions(model, stats, clip.positions)
        except ValueError:
            skipped.append(clip_id)
            continue
        write_clip(out, MotionClip(clip.name, pos, texts=clip.texts, meta=clip.meta))
    shutil.copytree(ds.root / "splits", out / "splits", dirs_exist_ok=True)
    written = set(ids) - set(skipped)
    for path in (out / "splits").glob("*.txt"):  # only the clips that were written
        path.write_text("".join(i + "\n" for i in path.read_text().split() if i in written))
    manifest = {**ds.manifest, "reconstructed_from": str(ds.root), "count": len(written), "skipped": skipped}
    (out / "dataset.json").write_text(json.dumps(manifest, indent=1))
    return {"clips": len(written), "skipped": skipped, "out": str(out)}
