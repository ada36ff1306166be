"""Reconstruction quality of a tokenizer: MPJPE, foot-contact accuracy and codebook use.

Each person of each clip goes through encode -> decode as a whole sequence (the streaming path
gives the same frames, see the tests), in the feature space the model was trained in; errors are
measured after de-normalising, in metres, reported in millimetres.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import clip_features
from molam_ros.motion.features import CONTACT, FEATURE_DIM, POS
from molam_ros.motion.normalization import FeatureStats
from molam_ros.motion.skeleton import NUM_JOINTS
from molam_ros.tokenizer.rqvae import RQVAE


def _as_features(clip: MotionClip | np.ndarray) -> np.ndarray:
    """(P, T, 262) canonical features of a clip, or the array itself when features are given."""
    if isinstance(clip, MotionClip):
        return clip_features(clip)
    f = np.asarray(clip, dtype=np.float32)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3 or f.shape[-1] != FEATURE_DIM:
        raise ValueError(f"expected a MotionClip or (P, T, {FEATURE_DIM}) features, got shape {f.shape}")
    return f


@torch.no_grad()
def evaluate(
    model: RQVAE,
    stats: FeatureStats,
    clips: Iterable[MotionClip | np.ndarray],
    *,
    depth: int | None = None,
) -> dict[str, Any]:
    """Reconstruction metrics over `clips` (MotionClips or (P, T, 262) raw feature arrays, P = 1 or 2).

    Each clip is cut to a multiple of the stride l (the dropped tail is < l frames); clips shorter
    than l are skipped and counted. `depth` decodes from the first `depth` codebooks only.

    Returns:
        clips, skipped, frames (person-frames measured);
        mpjpe_mm: mean per-joint position error over all person-frames, millimetres;
        mpjpe_mm_per_person: the same per person index (a, b; one entry for single-person clips);
        contact_accuracy: share of the 4 foot contacts per frame decoded right (threshold 0.5);
        codebook: per depth, perplexity (exp entropy of the code histogram) and used (share of
        the K codes used at least once).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    l, K = model.stride, model.config.codebook_size
    D = depth or model.config.num_quantizers
    err_sum: list[float] = []  # per person index: sum over frames of the mean joint error (m)
    err_frames: list[int] = []
    contact_hits = contact_total = 0
    counts = np.zeros((D, K), dtype=np.int64)
    n_clips = skipped = 0
    try:
        for clip in clips:
            f = _as_features(clip)  # (P, T, F)
            T = f.shape[1] - f.shape[1] % l
            if T == 0:
                skipped += 1
                continue
            f = f[:, :T]
            x = stats.normalize(torch.from_numpy(np.ascontiguousarray(f)).to(device))  # (P, T, F)
            codes = model.encode(x, depth)  # (P, T/l, D)
            out = stats.denormalize(model.decode(codes)).cpu().numpy()  # (P, T, F)
            pos_err = np.linalg.norm(
                out[..., POS].reshape(*out.shape[:2], NUM_JOINTS, 3)
                - f[..., POS].reshape(*f.shape[:2], NUM_JOINTS, 3),
                axis=-1,
            ).mean(-1)  # (P, T) metres
            for p in range(f.shape[0]):
                if p == len(err_sum):
                    err_sum.append(0.0)
                    err_frames.append(0)
                err_sum[p] += float(pos_err[p].sum())
                err_frames[p] += T
            contact_hits += int(((out[..., CONTACT] > 0.5) == (f[..., CONTACT] > 0.5)).sum())
            contact_total += f[..., CONTACT].size
            c = codes.cpu().numpy().reshape(-1, D)
            for i in range(D):
                counts[i] += np.bincount(c[:, i], minlength=K)
            n_clips += 1
    finally:
        model.train(was_training)
    frames = sum(err_frames)
    codebook = []
    for i in range(D):
        p = counts[i] / max(counts[i].sum(), 1)
        nz = p[p > 0]
        codebook.append(
            {"depth": i, "perplexity": float(np.exp(-(nz * np.log(nz)).sum())), "used": float((p > 0).mean())}
        )
    return {
        "clips": n_clips,
        "skipped": skipped,
        "frames": frames,
        "mpjpe_mm": 1000.0 * sum(err_sum) / frames if frames else float("nan"),
        "mpjpe_mm_per_person": [1000.0 * s / n for s, n in zip(err_sum, err_frames, strict=True)],
        "contact_accuracy": contact_hits / contact_total if contact_total else float("nan"),
        "codebook": codebook,
    }
