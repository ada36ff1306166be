"""Reconstruction quality of a tokenizer: MPJPE (global, root-relative, root), foot contacts, code use.

Each person of each clip goes through encode -> decode as a whole sequence (the streaming path
gives the same frames, see the tests), in the feature space the model was trained in. Positions of
both the input and the reconstruction come from the layout's inverse (`layout.pair_from_features`,
exact on the input): for the ego layout person a integrates its own velocities from its first-frame
pose, person b is placed by its relation to person a. Errors are in millimetres:

- global MPJPE: every joint, in person a's first-frame canonical frame (what a viewer sees);
- root-relative MPJPE: every joint after subtracting each person's own root (the pose alone);
- root error: the root (pelvis) alone (where the person is);
- b from the true a (ego, two-person clips): person b's global MPJPE when placed by its decoded
  relation to the recorded person a, as the runtime places the reactor next to the real person.

Person b is placed with the placement smoothing `ego.DECODE_PULL` in both (the pull the shipped
reactors are placed with live); `pull` = 1 measures the anchor taken frame by frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from molam_ros.data.clip import MotionClip
from molam_ros.data.dataset import clip_features
from molam_ros.motion import ego
from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.layout import layout_of, pair_from_features
from molam_ros.motion.normalization import FeatureStats
from molam_ros.tokenizer.rqvae import RQVAE


def _as_features(clip: MotionClip | np.ndarray, dim: int) -> np.ndarray:
    """(P, T, F) features of a clip in the layout of width `dim`, or the array itself when given."""
    if isinstance(clip, MotionClip):
        return clip_features(clip, layout_of(dim))
    f = np.asarray(clip, dtype=np.float32)
    if f.ndim == 2:
        f = f[None]
    if f.ndim != 3 or f.shape[-1] != dim:
        raise ValueError(f"expected a MotionClip or (P, T, {dim}) features, got shape {f.shape}")
    return f


def position_errors(pred: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
    """Per person and frame errors (P, T) in metres of positions (P, T, 22, 3): global, rel, root."""
    glob = np.linalg.norm(pred - ref, axis=-1)  # (P, T, 22)
    rel = np.linalg.norm((pred - pred[..., :1, :]) - (ref - ref[..., :1, :]), axis=-1)
    return {"global": glob.mean(-1), "rel": rel[..., 1:].mean(-1), "root": glob[..., 0]}


@torch.no_grad()
def evaluate(
    model: RQVAE,
    stats: FeatureStats,
    clips: Iterable[MotionClip | np.ndarray],
    *,
    depth: int | None = None,
    pull: float = ego.DECODE_PULL,
) -> dict[str, Any]:
    """Reconstruction metrics over `clips` (MotionClips or (P, T, F) raw feature arrays, P = 1 or 2).

    Each clip is cut to a multiple of the stride l (the dropped tail is < l frames); clips shorter
    than l are skipped and counted. `depth` decodes from the first `depth` codebooks only; `pull`
    is person b's placement smoothing (module docstring).

    Returns:
        clips, skipped, frames (person-frames measured);
        mpjpe_mm: global MPJPE over all person-frames (module docstring), millimetres;
        mpjpe_mm_per_person: the same per person index (a, b; one entry for single-person clips);
        rel_mpjpe_mm, root_mm: root-relative MPJPE and root error;
        b_from_true_a_mm: person b placed from the recorded person a (nan without pairs);
        contact_accuracy: share of the 4 foot contacts per frame decoded right (threshold 0.5);
        codebook: per depth, perplexity (exp entropy of the code histogram) and used (share of
        the K codes used at least once).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    l, K = model.stride, model.config.codebook_size
    layout = layout_of(model.config.feature_dim)
    D = depth or model.config.depths
    sums: dict[str, list[float]] = {"global": [], "rel": [], "root": []}  # per person index, metres
    err_frames: list[int] = []
    contact_hits = contact_total = 0
    partner_sum, partner_frames = 0.0, 0
    counts = np.zeros((D, K), dtype=np.int64)
    n_clips = skipped = 0
    try:
        for clip in clips:
            f = _as_features(clip, layout.dim)  # (P, T, F)
            T = f.shape[1] - f.shape[1] % l
            if T == 0:
                skipped += 1
                continue
            f = f[:, :T]
            x = stats.normalize(torch.from_numpy(np.ascontiguousarray(f)).to(device))  # (P, T, F)
            codes = model.encode(x, depth)  # (P, T/l, D)
            out = stats.denormalize(model.decode(codes)).cpu().numpy()  # (P, T, F)
            ref = pair_from_features(f, pull=1.0)  # recorded features: exact with any pull, no smoothing loop
            errs = position_errors(pair_from_features(out, pull=pull), ref)
            if layout.name == "ego" and f.shape[0] == 2:
                yaw_b, root_b = ego.follow_anchor(out[1], facing_angle(ref[0]), ref[0][:, 0], pull=pull)
                b = ego.body_from_root(out[1], yaw_b, root_b)
                partner_sum += float(np.linalg.norm(b - ref[1], axis=-1).mean(-1).sum())
                partner_frames += T
            for p in range(f.shape[0]):
                if p == len(err_frames):
                    err_frames.append(0)
                    for v in sums.values():
                        v.append(0.0)
                for k, v in sums.items():
                    v[p] += float(errs[k][p].sum())
                err_frames[p] += T
            contacts = layout.contacts
            contact_hits += int(((out[..., contacts] > 0.5) == (f[..., contacts] > 0.5)).sum())
            contact_total += f[..., contacts].size
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

    def mm(key: str) -> float:
        return 1000.0 * sum(sums[key]) / frames if frames else float("nan")

    return {
        "layout": layout.name,
        "pull": pull,
        "clips": n_clips,
        "skipped": skipped,
        "frames": frames,
        "mpjpe_mm": mm("global"),
        "mpjpe_mm_per_person": [1000.0 * s / n for s, n in zip(sums["global"], err_frames, strict=True)],
        "rel_mpjpe_mm": mm("rel"),
        "root_mm": mm("root"),
        "b_from_true_a_mm": 1000.0 * partner_sum / partner_frames if partner_frames else float("nan"),
        "contact_accuracy": contact_hits / contact_total if contact_total else float("nan"),
        "codebook": codebook,
    }
