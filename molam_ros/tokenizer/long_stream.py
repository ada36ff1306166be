"""The long-stream measure: a person who walks and turns for minutes, through the streaming tokenizer.

A live system runs for hours and people walk around the robot; a tokenizer whose features hold
absolute positions leaves its training range within a minute (issue 11's measurements). This builds
a stream of real motion capture (the pybullet walker's forward walk looped for `walk_metres`, then a
turn, alternately left and right, repeated) and runs it through the model step by step with the
streaming state (`RQVAE.encode_step` / `decode_step`, the path the engines export), as the runtime
does, then prints the error minute by minute:

- root-relative MPJPE (the pose the brain reads);
- window MPJPE: every joint after integrating the decoded root over `window_s` seconds from the
  true root and heading at the window's start (what a viewer sees over a few seconds; an
  integrated trajectory cannot know where it is after 10 minutes, and does not need to).

Both must not grow with time: minute 10 within 1.2x of minute 1 is the bar of the tokenizer issue.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from molam_ros.data.clip import TARGET_FPS
from molam_ros.data.pybullet_clips import load_pybullet_clip
from molam_ros.data.real_clips import loop
from molam_ros.motion import ego
from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.layout import layout_of, pair_to_features
from molam_ros.motion.normalization import FeatureStats
from molam_ros.motion.skeleton import bone_lengths
from molam_ros.tokenizer.evaluate import position_errors
from molam_ros.tokenizer.rqvae import RQVAE


def _append(stream: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """`segment` (T, 22, 3) turned and moved so its first frame continues the stream's last one."""
    yaw = float(facing_angle(stream[-1]) - facing_angle(segment[0]))
    seg = ego.rotate_y(segment - segment[0, 0] * np.array([1.0, 0.0, 1.0]), np.full(segment.shape[:-1], yaw))
    seg = seg + stream[-1, 0] * np.array([1.0, 0.0, 1.0])
    return np.concatenate([stream, seg[1:]])


def walk_and_turn_stream(minutes: float = 10.0, walk_metres: float = 20.0) -> np.ndarray:
    """(T, 22, 3) world positions at 30 fps: walk `walk_metres`, turn, repeat, for `minutes`."""
    walk = load_pybullet_clip("walker_0walk_forward").positions[0].astype(np.float64)
    turns = [
        load_pybullet_clip(f"walker_turn_{side}0").positions[0].astype(np.float64)
        for side in ("left", "right")
    ]
    step = np.linalg.norm(walk[-1, 0, [0, 2]] - walk[0, 0, [0, 2]])  # metres per cycle
    walk_long = loop(walk, seconds=walk_metres / max(step, 1e-3) * (len(walk) - 1) / TARGET_FPS)
    stream = walk_long
    k = 0
    while len(stream) < minutes * 60 * TARGET_FPS:
        stream = _append(stream, loop(turns[k % 2], seconds=2.5))
        stream = _append(stream, walk_long)
        k += 1
    return stream[: int(minutes * 60 * TARGET_FPS)]


@dataclass(frozen=True)
class MinuteErrors:
    minute: int
    rel_mpjpe_mm: float
    window_mpjpe_mm: float
    distance_m: float  # how far from the start the person is at the end of this minute


@torch.no_grad()
def stream_errors(
    model: RQVAE, stats: FeatureStats, positions: np.ndarray, *, window_s: float = 4.0
) -> list[MinuteErrors]:
    """Run one person (T, 22, 3) through the streaming encoder/decoder; errors per minute."""
    layout = layout_of(model.config.feature_dim)
    if layout.name != "ego":
        raise ValueError("the long-stream measure integrates the ego layout's root; this is " + layout.name)
    model.eval()
    l = model.stride
    T = positions.shape[0] // l * l
    pos = positions[:T]
    # Fixed floor and bone lengths (from the first frame), as the runtime pipeline fixes them, so
    # the features are causal: computing them for the whole stream equals computing them per step.
    feats, transform = pair_to_features(pos, floor_height=0.0, lengths=bone_lengths(pos[0]))
    x = stats.normalize(torch.from_numpy(feats.astype(np.float32)))  # (1, T, F)
    enc, dec = model.init_encoder_state(1), model.init_decoder_state(1)
    out = []
    for s in range(0, T, l):
        codes, enc = model.encode_step(x[:, s : s + l], enc)
        frames, dec = model.decode_step(codes, dec)
        out.append(frames)
    recon = stats.denormalize(torch.cat(out, dim=1)).numpy()[0]  # (T, F)
    truth = transform.apply(pos)  # canonical frame of the stream's first frame
    true_yaw = facing_angle(truth)
    win = int(window_s * TARGET_FPS)
    pred = np.empty_like(truth)
    for s in range(0, T, win):  # each window integrates from the true root and heading at its start
        f = recon[s : s + win]
        yaw, root = ego.integrate_root(f, start_xz=truth[s, 0], start_yaw=float(true_yaw[s]))
        pred[s : s + win] = ego.body_from_root(f, yaw, root)
    errs = position_errors(pred[None], truth[None])
    per_min = int(60 * TARGET_FPS)
    rows = []
    for m in range(int(np.ceil(T / per_min))):
        sl = slice(m * per_min, min((m + 1) * per_min, T))
        end = truth[sl.stop - 1, 0, [0, 2]]
        rows.append(
            MinuteErrors(
                minute=m + 1,
                rel_mpjpe_mm=1000.0 * float(errs["rel"][0, sl].mean()),
                window_mpjpe_mm=1000.0 * float(errs["global"][0, sl].mean()),
                distance_m=float(np.linalg.norm(end - truth[0, 0, [0, 2]])),
            )
        )
    return rows


def format_rows(rows: list[MinuteErrors]) -> str:
    """The per-minute table `molam tokenizer eval --long-stream` prints."""
    lines = [
        "long stream (walk 20 m, turn, repeat; streaming encoder/decoder step by step)",
        "  minute  root-rel. MPJPE  window MPJPE  distance from start",
    ]
    for r in rows:
        lines.append(
            f"  {r.minute:>6}  {r.rel_mpjpe_mm:>12.1f} mm  {r.window_mpjpe_mm:>9.1f} mm"
            f"  {r.distance_m:>14.1f} m"
        )
    if len(rows) >= 2:
        first, last = rows[0], rows[-1]
        lines.append(
            f"  last / first minute: root-relative {last.rel_mpjpe_mm / first.rel_mpjpe_mm:.2f}x, "
            f"window {last.window_mpjpe_mm / first.window_mpjpe_mm:.2f}x"
        )
    return "\n".join(lines)
