"""The 262-number per-person motion frame (InterGen layout) and its inverse.

Per person and frame, at 30 fps:
    [  0: 66) POS      22 global joint positions, metres (x, y, z per joint)
    [ 66:132) VEL      22 global joint velocities, metres per frame, v[t] = p[t] - p[t-1], v[0] = 0
    [132:258) ROT      21 local rotations of joints 1..21 in 6D (first two matrix columns)
    [258:262) CONTACT  binary contacts of left_ankle, left_foot, right_ankle, right_foot

"Global" means in whatever frame the positions are given; for training and the models that is
person a's first-frame canonical frame (see `canonical.py`), with the floor at y = 0.

Every block is causal: velocities are backward differences and contacts use them, so the
features of frames 0..t depend only on positions 0..t. That is what lets the streaming pipeline
compute features frame by frame and get the same numbers as a whole-clip pass (InterGen uses a
forward difference, which would need one frame of look-ahead). The root rotation is not stored
(as in InterGen): positions carry it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from molam_ros.motion.ik import inverse_kinematics, make_quats_continuous
from molam_ros.motion.rotations import matrix_to_quat, quat_to_6d, rot6d_to_matrix
from molam_ros.motion.skeleton import FOOT_JOINTS, NUM_JOINTS

FEATURE_DIM = 262
POS = slice(0, 66)
VEL = slice(66, 132)
ROT = slice(132, 258)
CONTACT = slice(258, 262)


@dataclass(frozen=True)
class ContactConfig:
    """Thresholds of the foot-contact labels; a joint touches the floor when it is both slow and low.

    Defaults follow InterGen's labelling at 30 fps: it thresholds the squared per-frame
    displacement at 0.001 m^2, i.e. a speed of about 0.032 m per frame (~0.95 m/s), and the height
    at 0.12 m for the ankles and 0.05 m for the feet (toes), which sit lower.
    """

    max_speed: float = 0.0316  # metres per frame (at 30 fps); 0 marks no joint as in contact
    ankle_height: float = 0.12  # metres above the floor, for left/right ankle
    foot_height: float = 0.05  # metres above the floor, for left/right foot (toe joint)
    floor_height: float = 0.0  # y of the floor in the frame of the positions (0 after canonical.py)

    def __post_init__(self) -> None:
        for name in ("max_speed", "ankle_height", "foot_height", "floor_height"):
            if not np.isfinite(getattr(self, name)):
                raise ValueError(f"ContactConfig.{name} must be finite")
        if self.max_speed < 0:
            raise ValueError("ContactConfig.max_speed must be >= 0")


DEFAULT_CONTACT = ContactConfig()


def _check_positions(positions: np.ndarray) -> np.ndarray:
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim < 3 or pos.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"expected (..., T, {NUM_JOINTS}, 3) joint positions, got {pos.shape}")
    if pos.shape[-3] == 0:
        raise ValueError("positions have no frames")
    if not np.all(np.isfinite(pos)):
        raise ValueError("joint positions contain NaN or infinite values")
    return pos


def _check_features(features: np.ndarray) -> np.ndarray:
    f = np.asarray(features)
    if f.ndim < 2 or f.shape[-1] != FEATURE_DIM:
        raise ValueError(f"expected (..., T, {FEATURE_DIM}) features, got {f.shape}")
    if not np.all(np.isfinite(f)):
        raise ValueError("features contain NaN or infinite values")
    return f


def velocities(positions: np.ndarray) -> np.ndarray:
    """Backward-difference velocities (..., T, J, 3) in units per frame, zero at frame 0 (causal)."""
    pos = np.asarray(positions)
    vel = np.zeros_like(pos)
    vel[..., 1:, :, :] = pos[..., 1:, :, :] - pos[..., :-1, :, :]
    return vel


def foot_contacts(positions: np.ndarray, config: ContactConfig = DEFAULT_CONTACT) -> np.ndarray:
    """Binary contacts (..., T, 4) of FOOT_JOINTS from positions (..., T, 22, 3); causal.

    Frame 0 has zero velocity by convention, so there only the height decides.
    """
    pos = _check_positions(positions)
    feet = pos[..., list(FOOT_JOINTS), :]  # (..., T, 4, 3)
    speed = np.linalg.norm(velocities(feet), axis=-1)  # (..., T, 4)
    height = feet[..., 1] - config.floor_height  # (..., T, 4)
    max_height = np.array([config.ankle_height, config.foot_height] * 2)  # matches FOOT_JOINTS order
    return ((speed < config.max_speed) & (height < max_height)).astype(np.float32)


def positions_to_features(
    positions: np.ndarray,
    local_quats: np.ndarray | None = None,
    contact: ContactConfig = DEFAULT_CONTACT,
    *,
    lengths: np.ndarray | None = None,
) -> np.ndarray:
    """262-number frames of one person (or a batch) from joint positions.

    Args:
        positions: (..., T, 22, 3) joint positions in metres at 30 fps, normally canonical.
        local_quats: (..., T, 22, 4) local rotations where the source has them; when None they
            come from `inverse_kinematics(positions, lengths)`.
        contact: foot-contact thresholds.
        lengths: (22,) bone lengths for IK (default: the median over everything given, so pass
            one person at a time, or their lengths, when a batch mixes people; pass fixed lengths
            when streaming).

    Returns:
        (..., T, 262) float32 features.
    """
    pos = _check_positions(positions)
    if local_quats is None:
        local_quats = inverse_kinematics(pos, lengths)
    quats = np.asarray(local_quats, dtype=np.float64)
    if quats.shape != pos.shape[:-1] + (4,):
        raise ValueError(f"local_quats shape {quats.shape} does not match positions {pos.shape}")
    if not np.all(np.isfinite(quats)):
        raise ValueError("local_quats contain NaN or infinite values")
    lead = pos.shape[:-2]  # (..., T)
    out = np.empty(lead + (FEATURE_DIM,), dtype=np.float32)
    out[..., POS] = pos.reshape(lead + (66,))
    out[..., VEL] = velocities(pos).reshape(lead + (66,))
    out[..., ROT] = quat_to_6d(quats[..., 1:, :]).reshape(lead + (126,))
    out[..., CONTACT] = foot_contacts(pos, contact)
    return out


def features_to_positions(features: np.ndarray) -> np.ndarray:
    """Joint positions (..., T, 22, 3) float32 read from the position block of (..., T, 262)."""
    f = _check_features(features)
    return np.asarray(f[..., POS], dtype=np.float32).reshape(f.shape[:-1] + (NUM_JOINTS, 3))


def features_to_local_quats(features: np.ndarray) -> np.ndarray:
    """Local rotations (..., T, 22, 4) from the 6D block, root set to identity.

    The 6D numbers go through the Gram-Schmidt projection, so a network's raw output gives valid
    rotations too. Signs are made continuous over time (axis -3).
    """
    f = _check_features(features)
    d6 = np.asarray(f[..., ROT], dtype=np.float64).reshape(f.shape[:-1] + (NUM_JOINTS - 1, 6))
    q = np.zeros(f.shape[:-1] + (NUM_JOINTS, 4))
    q[..., 0, 0] = 1.0
    q[..., 1:, :] = matrix_to_quat(rot6d_to_matrix(d6))
    return make_quats_continuous(q, axis=-3)


def integrate_velocities(features: np.ndarray, start: np.ndarray | None = None) -> np.ndarray:
    """Positions (..., T, 22, 3) float64 rebuilt by summing the velocity block from `start`.

    start: (..., 22, 3) positions at frame 0 (default: the position block's frame 0). Comparing
    the result with `features_to_positions` checks that a decoded motion is self-consistent.
    """
    f = _check_features(features)
    vel = np.asarray(f[..., VEL], dtype=np.float64).reshape(f.shape[:-1] + (NUM_JOINTS, 3))
    if start is None:
        start = features_to_positions(f)[..., 0, :, :]
    start = np.asarray(start, dtype=np.float64)
    if start.shape[-2:] != (NUM_JOINTS, 3):
        raise ValueError(f"start must be (..., {NUM_JOINTS}, 3), got {start.shape}")
    if not np.all(np.isfinite(start)):
        raise ValueError("start positions contain NaN or infinite values")
    # v[0] = 0 by construction, so the cumulative sum is exactly the displacement from frame 0.
    disp = np.cumsum(vel, axis=-3) - vel[..., :1, :, :]
    return start[..., None, :, :] + disp
