"""Resampling motion from any frame rate to the 30 fps the models use.

Positions are interpolated linearly and rotations by slerp, at output times k / dst_fps that lie
inside the source clip (so a clip is never extrapolated past its last frame).
"""

from __future__ import annotations

import numpy as np

from molam_ros.motion.rotations import quat_slerp

TARGET_FPS = 30.0


def resample_times(num_frames: int, src_fps: float, dst_fps: float = TARGET_FPS) -> np.ndarray:
    """Fractional source-frame indices of the output frames, shape (T_out,)."""
    if num_frames <= 0:
        raise ValueError("cannot resample an empty clip")
    if not (np.isfinite(src_fps) and src_fps > 0 and np.isfinite(dst_fps) and dst_fps > 0):
        raise ValueError(f"frame rates must be positive, got src={src_fps} dst={dst_fps}")
    duration = (num_frames - 1) / src_fps
    n_out = int(np.floor(duration * dst_fps + 1e-6)) + 1
    return np.arange(n_out) * (src_fps / dst_fps)


def _split(t: np.ndarray, num_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    i0 = np.clip(np.floor(t).astype(int), 0, num_frames - 1)
    i1 = np.minimum(i0 + 1, num_frames - 1)
    return i0, i1, (t - i0)


def resample_positions(
    x: np.ndarray, src_fps: float, dst_fps: float = TARGET_FPS, axis: int = 0
) -> np.ndarray:
    """Linear resampling of any per-frame array (positions, translations) along `axis`."""
    x = np.asarray(x)
    if src_fps == dst_fps:
        return x.copy()
    x = np.moveaxis(x, axis, 0)
    i0, i1, w = _split(resample_times(x.shape[0], src_fps, dst_fps), x.shape[0])
    w = w.reshape((-1,) + (1,) * (x.ndim - 1)).astype(x.dtype if x.dtype.kind == "f" else np.float64)
    out = x[i0] * (1 - w) + x[i1] * w
    return np.moveaxis(out, 0, axis)


def resample_quats(q: np.ndarray, src_fps: float, dst_fps: float = TARGET_FPS, axis: int = 0) -> np.ndarray:
    """Slerp resampling of unit quaternions (..., 4) along the time `axis`."""
    q = np.asarray(q)
    if q.shape[-1] != 4:
        raise ValueError(f"expected quaternions (..., 4), got {q.shape}")
    if src_fps == dst_fps:
        return q.copy()
    axis = axis % q.ndim
    if axis == q.ndim - 1:
        raise ValueError("the time axis cannot be the quaternion axis")
    q = np.moveaxis(q, axis, 0)
    i0, i1, w = _split(resample_times(q.shape[0], src_fps, dst_fps), q.shape[0])
    w = np.broadcast_to(w.reshape((-1,) + (1,) * (q.ndim - 2)), (len(w),) + q.shape[1:-1])
    out = quat_slerp(q[i0], q[i1], w).astype(q.dtype)
    return np.moveaxis(out, 0, axis)
