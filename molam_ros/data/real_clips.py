"""Real recorded motion as a molam dataset: held-out clips kept whole, training clips augmented.

The tokenizer must see real people, and the only real motion that ships here is a handful of short
single-person clips inside registry packages (`pybullet_clips.py`; `bvh_clips.py` where its package
is installed). This module turns them into a dataset directory that `molam tokenizer train` mixes
with the generator's:

- the split is by source clip, fixed by name (`HELD_OUT`, `VALIDATION`): a held-out clip and its
  augmentations never reach training, and the held-out clips are written as recorded. The long
  BVH recordings (`bvh_clips.py`, 23-38 s each) are cut into 8 s windows first, and every third
  window of each (k % 3 == 2) is held out;
- every training clip is written `variants` times, each an augmentation drawn from a seeded rng:
  looping (clips DeepMimic marks `wrap` are cycles: each repeat continues from where the last one
  ended, turned by the cycle's heading change), speed 0.8-1.25x, a smooth random retiming (+-15 %
  local speed), mirror (left/right swapped, x negated), and body scale 0.9-1.1. Rotations about the
  vertical need no augmentation: the ego layout is invariant to them by construction, and training
  crops are drawn at random offsets;
- optionally (`tilt_share` of the variants) the whole body is tilted about a horizontal axis
  through the pelvis by an angle that moves smoothly through the clip (`tilt`): bending over,
  lying down, lying on the floor and getting up are where the held-out real clips fail most
  (get-up, crawl, roll), and no standing clip's root-relative joints reach those regions.
  The tilt draws from its own rng, so the dataset without it is byte-identical to before.

The manifest (`dataset.json`) lists each source clip with its package, file, licence, sha256 and
split, which the shipped tokenizer's training-data manifest copies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from molam_ros.data.clip import TARGET_FPS, MotionClip
from molam_ros.data.dataset import write_dataset
from molam_ros.motion.canonical import facing_angle
from molam_ros.motion.ego import rotate_y
from molam_ros.motion.skeleton import JOINT_NAMES

# Source clips kept out of training (measured on, never tuned on) and for validation, by name.
HELD_OUT: tuple[str, ...] = (
    "humanoid3d_dance_b",
    "humanoid3d_kick",
    "humanoid3d_getup_faceup",
    "humanoid3d_spinkick",
    "walker_turn_right1",
)
VALIDATION: tuple[str, ...] = ("walker_turn_left1",)
LOOP_SECONDS = 8.0  # a looping clip is repeated to at least this long


@dataclass(frozen=True)
class RealSource:
    """One real clip: how to load it and where it comes from (for the licence manifest)."""

    name: str
    package: str
    file: str
    licence: str
    load: Callable[[], MotionClip]
    split: str = "train"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def real_sources() -> list[RealSource]:
    """Every real clip that ships in an installed registry package, in a fixed order."""
    from importlib.metadata import version

    from molam_ros.data import bvh_clips
    from molam_ros.data.pybullet_clips import _clip_paths, load_pybullet_clip

    pkg = f"pybullet=={version('pybullet')}"
    out = [
        RealSource(
            name,
            pkg,
            str(path),
            "zlib (pybullet); DeepMimic reference motions (Peng et al. 2018)",
            lambda n=name: load_pybullet_clip(n),
            "test" if name in HELD_OUT else "val" if name in VALIDATION else "train",
        )
        for name, path in sorted(_clip_paths().items())
    ]
    # BVH recordings where their package is installed (Debian's assimp-testmodels): 8 s windows.
    for info in bvh_clips.list_clips():
        windows = bvh_clips.clip_windows(_bvh_clip(info.name), 8.0)
        for k in range(len(windows)):
            out.append(
                RealSource(
                    f"{info.name}_w{k}",
                    info.source_package,
                    str(info.path),
                    info.licence,
                    lambda n=info.name, k=k: bvh_clips.clip_windows(_bvh_clip(n), 8.0)[k],
                    "test" if k % 3 == 2 else "train",
                )
            )
    return out


@lru_cache(maxsize=4)
def _bvh_clip(name: str) -> MotionClip:
    from molam_ros.data import bvh_clips

    return bvh_clips.load_bvh_clip(name)


_MIRROR = [
    JOINT_NAMES.index(n.replace("left_", "@").replace("right_", "left_").replace("@", "right_"))
    for n in JOINT_NAMES
]


def mirror(positions: np.ndarray) -> np.ndarray:
    """(..., 22, 3) positions mirrored: left and right swapped, x negated."""
    out = np.array(positions, dtype=np.float64)[..., _MIRROR, :]
    out[..., 0] *= -1.0
    return out


def loop(positions: np.ndarray, seconds: float = LOOP_SECONDS) -> np.ndarray:
    """A cyclic clip (T, 22, 3) repeated to >= `seconds`, each cycle continuing the last one.

    Cycle k + 1 is cycle k turned about the vertical by the cycle's heading change and moved so its
    first frame lands on cycle k's last frame (which it duplicates, so that frame is dropped).
    """
    pos = np.asarray(positions, dtype=np.float64)
    yaw = facing_angle(pos)
    turn = float(yaw[-1] - yaw[0])
    out = [pos]
    while sum(len(c) for c in out) - (len(out) - 1) < seconds * TARGET_FPS:
        prev = out[-1]
        nxt = rotate_y(pos - pos[0, 0] * np.array([1.0, 0.0, 1.0]), np.array(turn * len(out)))
        nxt = nxt + prev[-1, 0] * np.array([1.0, 0.0, 1.0])
        out.append(nxt[1:])
    return np.concatenate(out)


def retime(positions: np.ndarray, speed: float, rng: np.random.Generator) -> np.ndarray:
    """(T, 22, 3) resampled at `speed` times the pace with a smooth +-15 % wobble (linear interp.)."""
    pos = np.asarray(positions, dtype=np.float64)
    T = pos.shape[0]
    n = max(int(round((T - 1) / speed)) + 1, 2)
    u = np.linspace(0.0, 1.0, n)
    wobble = 1.0 + 0.15 * np.sin(2 * np.pi * (rng.uniform(0.3, 1.5) * u + rng.uniform()))
    src = np.concatenate([[0.0], np.cumsum(wobble[:-1])])
    src = src / src[-1] * (T - 1)
    i0 = np.minimum(np.floor(src).astype(int), T - 2)
    w = (src - i0)[:, None, None]
    return pos[i0] * (1 - w) + pos[i0 + 1] * w


# Largest tilt (radians) of the `tilt` augmentation: a little past lying flat (90 degrees).
MAX_TILT = float(np.radians(100.0))


def tilt(positions: np.ndarray, rng: np.random.Generator, max_angle: float = MAX_TILT) -> np.ndarray:
    """(T, 22, 3) tilted about a random horizontal axis through the pelvis, the floor clearance kept.

    The angle eases (smoothstep) from one uniform draw in [-max_angle, max_angle] to another over
    the clip, so a clip becomes a lean, a lying down, a getting up or a roll. Each frame is then
    lifted or lowered so that its lowest joint is as high above the floor as it was before the
    tilt: a jump stays a jump, a lying body lies on the floor.
    """
    pos = np.asarray(positions, dtype=np.float64)
    T = pos.shape[0]
    phi = rng.uniform(0.0, 2 * np.pi)
    axis = np.array([np.cos(phi), 0.0, np.sin(phi)])
    a, b = rng.uniform(-max_angle, max_angle, size=2)
    u = np.linspace(0.0, 1.0, T)
    theta = a + (b - a) * u * u * (3 - 2 * u)  # (T,)
    root = pos[:, :1]
    turn = Rotation.from_rotvec(axis * theta[:, None]).as_matrix()  # (T, 3, 3), about the pelvis
    out = np.einsum("tij,tkj->tki", turn, pos - root) + root
    out[..., 1] += (pos[..., 1].min(-1) - out[..., 1].min(-1))[:, None]
    return out


def augment(
    clip: MotionClip, rng: np.random.Generator, *, cyclic: bool, tilt_rng: np.random.Generator | None = None
) -> np.ndarray:
    """One augmented (T, 22, 3) version of a single-person clip (module docstring); also tilted
    (`tilt`) when a `tilt_rng` is given."""
    pos = np.asarray(clip.positions[0], dtype=np.float64)
    if cyclic:
        pos = loop(pos)
    pos = retime(pos, float(rng.uniform(0.8, 1.25)), rng)
    if rng.uniform() < 0.5:
        pos = mirror(pos)
    scale = float(rng.uniform(0.9, 1.1))
    pos = pos * scale  # the floor stays at y = 0
    if tilt_rng is not None:
        pos = tilt(pos, tilt_rng)
    return pos.astype(np.float32)


def real_clips(variants: int, seed: int, tilt_share: float = 0.0) -> Iterator[MotionClip]:
    """The dataset's clips: held-out and validation sources as recorded, training ones augmented.

    The last `tilt_share` of each source's variants (rounded) are also tilted (`tilt`). A share
    outside [0, 1] is refused here, before anything is loaded or written.
    """
    if not 0.0 <= tilt_share <= 1.0:
        raise ValueError(f"tilt share must be in [0, 1], got {tilt_share}")
    return _augmented_clips(variants, seed, int(round(tilt_share * variants)))


def _augmented_clips(variants: int, seed: int, n_tilted: int) -> Iterator[MotionClip]:
    for k, src in enumerate(real_sources()):
        clip = src.load()
        meta = {
            "source": src.package,
            "file": src.file,
            "licence": src.licence,
            "source_clip": src.name,
            "sha256": _sha256(src.file),
        }
        if src.split != "train":
            yield MotionClip(src.name, clip.positions, texts=clip.texts, meta={**meta, "split": src.split})
            continue
        rng = np.random.default_rng([seed, k])
        cyclic = clip.meta.get("loop") == "wrap"
        for v in range(variants):
            tilt_rng = np.random.default_rng([seed, k, v, 1]) if v >= variants - n_tilted else None
            pos = augment(clip, rng, cyclic=cyclic, tilt_rng=tilt_rng)
            yield MotionClip(
                f"{src.name}_aug{v:02d}", pos[None], texts=clip.texts, meta={**meta, "split": "train"}
            )


def write_real_dataset(
    out: str | Path, *, variants: int = 24, seed: int = 0, tilt_share: float = 0.0, progress: bool = True
) -> dict[str, Any]:
    """Write the real-clip dataset to `out` (layout of `dataset.py`); returns its manifest."""
    sources = real_sources()
    manifest = {
        "name": "real",
        "generator": "molam data real",
        "variants": variants,
        "seed": seed,
        **({"tilt_share": tilt_share} if tilt_share else {}),
        "held_out": [s.name for s in sources if s.split == "test"],
        "validation": [s.name for s in sources if s.split == "val"],
        "sources": [
            {
                "name": s.name,
                "package": s.package,
                "file": s.file,
                "licence": s.licence,
                "sha256": _sha256(s.file),
                "split": s.split,
            }
            for s in sources
        ],
    }
    n_eval = sum(1 for s in sources if s.split != "train")
    return write_dataset(
        Path(out),
        real_clips(variants, seed, tilt_share),
        total=n_eval + (len(sources) - n_eval) * variants,
        manifest=manifest,
        split_of=lambda c: str(c.meta["split"]),
        progress=progress,
    )
