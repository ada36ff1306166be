"""Where a tokenizer's error on person b comes from, and whether its codes could say more.

Two measurements on a molam dataset's two-person clips (README, "The shipped tokenizer"):

1. Swaps: person b placed from the recorded person a (what the live node does), with the decoded
   features as they are, then with one feature block at a time replaced by the recorded one. What
   drops most is where the error is.
2. A probe: a small MLP reads REL_POS (the partner's place, 4 frames per code step) from the
   quantized latents of the step and the two before, trained on the train split and measured on
   `--split`. If it reads no better than the decoder does, the codes themselves hold the relation
   no finer, and only a new tokenizer (new codes) can do better; a decoder fine-tune cannot.

    python scripts/relation_probe.py --data ~/.cache/molam/data/synth1000 [--checkpoint CKPT] [--split val]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from molam_ros.data.dataset import MotionDataset
from molam_ros.motion import ego
from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.layout import pair_from_features
from molam_ros.paths import default_tokenizer_dir
from molam_ros.tokenizer.rqvae import load_checkpoint
from molam_ros.tokenizer.train import _load_people

CONTEXT = 3  # code steps the probe reads: this one and the two before


def b_error(out_b: np.ndarray, ref: np.ndarray) -> float:
    """Person b's MPJPE (mm) placed by its decoded features `out_b` (T, F) from the recorded a."""
    yaw, root = ego.anchored_root(out_b, facing_angle(ref[0]), ref[0][:, 0])
    return 1000.0 * float(np.linalg.norm(ego.body_from_root(out_b, yaw, root) - ref[1], axis=-1).mean())


def pairs(model, stats, data: str, split: str) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(features (2, T, F), decoded features (2, T, F), quantized latents of b (T / l, C)) per pair."""
    l, out = model.stride, []
    with torch.no_grad():
        for f in _load_people(MotionDataset(data), split, progress=False):
            if f.shape[0] != 2 or f.shape[1] < l * CONTEXT:
                continue
            f = f[:, : f.shape[1] - f.shape[1] % l]
            codes = model.encode(stats.normalize(torch.from_numpy(np.ascontiguousarray(f))))
            dec = stats.denormalize(model.decode(codes)).numpy()
            out.append((f, dec, model.quantizer.decode(codes[1][..., : model.config.num_quantizers]).numpy()))
    return out


def swaps(items: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, float]:
    blocks = {"REL_POS": [ego.REL_POS], "REL_HEAD": [ego.REL_HEAD], "both": [ego.REL_POS, ego.REL_HEAD]}
    blocks["RIC (the pose)"] = [ego.RIC]
    sums = {"decoded": [], **{f"recorded {k}": [] for k in blocks}}
    for f, dec, _ in items:
        ref = pair_from_features(f)
        sums["decoded"].append(b_error(dec[1], ref))
        for name, sl in blocks.items():
            o = dec[1].copy()
            for s in sl:
                o[:, s] = f[1][:, s]
            sums[f"recorded {name}"].append(b_error(o, ref))
    return {k: float(np.mean(v)) for k, v in sums.items()}


def probe_inputs(items, l: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(latent context (N, CONTEXT C), recorded REL_POS (N, 2 l), decoded REL_POS (N, 2 l))."""
    xs, ys, ds = [], [], []
    for f, dec, z in items:
        ctx = np.concatenate([np.roll(z, k, axis=0) for k in range(CONTEXT)], axis=1)[CONTEXT - 1 :]
        xs.append(ctx)
        ys.append(f[1][:, ego.REL_POS].reshape(-1, 2 * l)[CONTEXT - 1 :])
        ds.append(dec[1][:, ego.REL_POS].reshape(-1, 2 * l)[CONTEXT - 1 :])
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(ds)


def probe(train, held, l: int, steps: int, seed: int = 0) -> tuple[float, float]:
    """(decoder's, probe's) mean REL_POS error (mm) on the held-out items."""
    torch.manual_seed(seed)
    xt, yt, _ = probe_inputs(train, l)
    xv, yv, dv = probe_inputs(held, l)
    mu, sd = xt.mean(0), xt.std(0) + 1e-6
    xt_, yt_ = torch.tensor((xt - mu) / sd, dtype=torch.float32), torch.tensor(yt)
    net = torch.nn.Sequential(
        torch.nn.Linear(xt.shape[1], 512), torch.nn.GELU(), torch.nn.Linear(512, 512), torch.nn.GELU()
    )
    net.append(torch.nn.Linear(512, yt.shape[1]))
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    for _ in range(steps):
        i = torch.randint(0, len(xt_), (512,))
        loss = (net(xt_[i]) - yt_[i]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pv = net(torch.tensor((xv - mu) / sd, dtype=torch.float32)).numpy()

    def mm(p: np.ndarray) -> float:
        return 1000.0 * float(np.linalg.norm((p - yv).reshape(-1, l, 2), axis=-1).mean())

    return mm(dv), mm(pv)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a molam dataset with two-person clips")
    p.add_argument("--checkpoint", help="tokenizer (default: the shipped one)")
    p.add_argument("--split", default="val", choices=("val", "test"))
    p.add_argument("--probe-steps", type=int, default=6000)
    args = p.parse_args()
    model, _, stats = load_checkpoint(args.checkpoint or default_tokenizer_dir())
    held = pairs(model, stats, args.data, args.split)
    print(f"person b placed from the recorded a, {len(held)} {args.split} pairs (mm):")
    for k, v in swaps(held).items():
        print(f"  {k:26s} {v:6.1f}")
    dec, probed = probe(pairs(model, stats, args.data, "train"), held, model.stride, args.probe_steps)
    print(f"REL_POS read from the codes (mm): decoder {dec:.1f}, MLP probe on {CONTEXT} steps {probed:.1f}")


if __name__ == "__main__":
    main()
