"""The motion layouts a tokenizer can be trained on, and the two-person features <-> positions maps.

Two layouts (documented in the README's "Motion representation"):
- `ego` (268 numbers, `ego.py`), the default: bounded for unbounded streams, each person relative to
  their own root and heading plus the partner's placement relative to them.
- `intergen` (262 numbers, `features.py`): InterGen's absolute positions in person a's first-frame
  canonical frame; an option for offline datasets whose clips are short and stay near the origin.

The feature width tells them apart (262 vs 268), so arrays, stats and checkpoints need no extra tag;
`layout_of` is the one place that decides. Anything that slices features by meaning (loss weights,
normalisation floors, evaluation) asks the Layout instead of hard-coding slices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molam_ros.motion import ego
from molam_ros.motion import features as intergen
from molam_ros.motion.canonical import CanonicalTransform, canonicalize
from molam_ros.motion.canonical import pair_to_features as intergen_pair_to_features
from molam_ros.motion.features import DEFAULT_CONTACT, ContactConfig
from molam_ros.motion.ik import make_quats_continuous
from molam_ros.motion.rotations import matrix_to_quat, rot6d_to_matrix
from molam_ros.motion.skeleton import NUM_JOINTS


@dataclass(frozen=True)
class Layout:
    """What a feature layout holds where, for the code that weighs, floors or measures its parts."""

    name: str
    dim: int
    version: int  # bumped when the numbers a checkpoint was trained on change meaning
    positions: tuple[slice, ...]  # position-like numbers (extra loss weight: what MPJPE measures)
    velocities: tuple[slice, ...]  # velocity-like numbers (extra loss weight: smoothness)
    rotations: slice  # 6D rotations (normalisation floor, see normalization.py)
    contacts: slice  # binary labels (normalisation floor)
    flags: tuple[slice, ...] = ()  # other binary numbers (normalisation floor as contacts)
    # Numbers whose running sum is the trajectory (root velocities): errors there accumulate into
    # drift, so training also compares their sums over the crop (TokenizerConfig.traj_weight).
    trajectory: tuple[slice, ...] = ()
    # Numbers that place the person relative to their partner (ego: REL_POS, REL_HEAD): 4 of 268,
    # yet an error in them moves the whole body (TokenizerConfig.rel_weight).
    relation: tuple[slice, ...] = ()


EGO = Layout(
    name="ego",
    dim=ego.EGO_DIM,
    version=1,
    positions=(ego.ROOT_Y, ego.RIC, ego.REL_POS),
    velocities=(ego.YAW_VEL, ego.ROOT_VEL, ego.VEL),
    rotations=ego.ROT,
    contacts=ego.CONTACT,
    flags=(ego.PARTNER,),
    trajectory=(ego.YAW_VEL, ego.ROOT_VEL),
    relation=(ego.REL_POS, ego.REL_HEAD),
)
INTERGEN = Layout(
    name="intergen",
    dim=intergen.FEATURE_DIM,
    version=1,
    positions=(intergen.POS,),
    velocities=(intergen.VEL,),
    rotations=intergen.ROT,
    contacts=intergen.CONTACT,
)
LAYOUTS: dict[str, Layout] = {EGO.name: EGO, INTERGEN.name: INTERGEN}
DEFAULT_LAYOUT = EGO


def layout_of(key: str | int | np.ndarray) -> Layout:
    """The layout named `key`, of width `key`, or of a feature array's last dim."""
    if isinstance(key, np.ndarray) or hasattr(key, "shape"):
        key = int(key.shape[-1])
    if isinstance(key, str):
        if key not in LAYOUTS:
            raise ValueError(f"unknown motion layout {key!r}; choose one of {sorted(LAYOUTS)}")
        return LAYOUTS[key]
    for layout in LAYOUTS.values():
        if layout.dim == key:
            return layout
    raise ValueError(f"no motion layout is {key} numbers wide (known: ego 268, intergen 262)")


def pair_to_features(
    positions: np.ndarray,
    floor_height: float | None = None,
    *,
    layout: str | Layout = DEFAULT_LAYOUT,
    local_quats: np.ndarray | None = None,
    lengths: np.ndarray | None = None,
    contact: ContactConfig = DEFAULT_CONTACT,
) -> tuple[np.ndarray, CanonicalTransform]:
    """Features (P, T, dim) float32 of everyone in a clip (P = 1 or 2), and person a's canonical map.

    The transform (person a's first frame -> origin facing +Z, the floor at 0) is what puts decoded
    motion back into the world. `ego` features do not depend on it: each person's numbers are
    relative to themselves and their partner (the other person of a pair). Fixed `floor_height` and
    `lengths` make the features causal, as streaming needs (see `canonical.pair_to_features`).
    """
    lay = layout if isinstance(layout, Layout) else layout_of(layout)
    if lay.name == "intergen":
        return intergen_pair_to_features(
            positions, floor_height, local_quats=local_quats, lengths=lengths, contact=contact
        )
    canon, transform = canonicalize(positions, floor_height)
    P = canon.shape[0]
    if P > 2:
        raise ValueError(f"the ego layout relates two people; got {P}")
    if local_quats is not None:
        local_quats = np.asarray(local_quats, dtype=np.float64)
        if local_quats.shape != canon.shape[:-1] + (4,):
            raise ValueError(f"local_quats shape {local_quats.shape} does not match positions {canon.shape}")
    if lengths is not None:
        lengths = np.broadcast_to(np.asarray(lengths, dtype=np.float64), (P, NUM_JOINTS))
    feats = np.stack(
        [
            ego.person_to_ego(
                canon[p],
                canon[1 - p] if P == 2 else None,
                None if local_quats is None else local_quats[p],
                contact,
                lengths=None if lengths is None else lengths[p],
            )
            for p in range(P)
        ]
    )
    return feats, transform


def pair_from_features(
    features: np.ndarray, transform: CanonicalTransform | None = None, *, pull: float = ego.DECODE_PULL
) -> np.ndarray:
    """Positions (P, T, 22, 3) float32 from features (P, T, dim): world with `transform`, else canonical.

    ego: person a integrates its velocities from the canonical origin, person b is placed by its
    relation to person a, smoothed by `pull` (`ego.ego_to_positions`). intergen: the position
    block, as it is.
    """
    f = np.asarray(features)
    lay = layout_of(f)
    if lay.name == "intergen":
        pos = intergen.features_to_positions(f)
    elif f.ndim == 2:
        pos = ego.ego_to_positions(f[None], pull=pull)[0]
    elif f.ndim == 3:
        pos = ego.ego_to_positions(f, pull=pull)
    else:
        raise ValueError(f"expected (P, T, {lay.dim}) or (T, {lay.dim}) features, got {f.shape}")
    if transform is None:
        return np.asarray(pos, dtype=np.float32)
    return transform.invert(pos).astype(np.float32)


def features_to_local_quats(features: np.ndarray) -> np.ndarray:
    """Local rotations (..., T, 22, 4) from the 6D block of either layout, root set to identity.

    The 6D numbers go through Gram-Schmidt (a network's raw output gives valid rotations too), and
    signs are made continuous over time.
    """
    f = np.asarray(features)
    lay = layout_of(f)
    if lay.name == "intergen":
        return intergen.features_to_local_quats(f)
    d6 = np.asarray(f[..., lay.rotations], dtype=np.float64).reshape(f.shape[:-1] + (NUM_JOINTS - 1, 6))
    q = np.zeros(f.shape[:-1] + (NUM_JOINTS, 4))
    q[..., 0, 0] = 1.0
    q[..., 1:, :] = matrix_to_quat(rot6d_to_matrix(d6))
    return make_quats_continuous(q, axis=-3)
