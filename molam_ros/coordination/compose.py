"""Long motions composed from pieces: tokens concatenated and decoded together, joins smoothed.

Motion-Agent composes a long motion by concatenating the pieces' token sequences and decoding them
in one pass, so the decoder's receptive field already bridges each join (`decode_composed`). What
it cannot bridge (two pieces that end and start in different poses, or pieces that are already
positions, `compose_positions`) is removed by `smooth_joins`, InterSyn's smoothness over +/-5
frames at segment joins, widened where a gap is too large to close that fast. Pieces of
positions are first re-rooted so each continues where the previous ended (`reroot`), and every
person but the first is walked from where they were into their place in the new piece
(`ease_in`). The measure of success: no joint moves faster across a join than inside the pieces
(metrics.join_speeds).

    codes = compose_codes([piece_1, piece_2])                      # (P, L1 + L2, D)
    positions = decode_composed(codec, [piece_1, piece_2])          # (P, (L1 + L2) l, 22, 3)
    long = compose_positions([clip_1.positions, clip_2.positions])  # re-rooted, smoothed
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from molam_ros.motion.canonical import CanonicalTransform, facing_angle
from molam_ros.motion.skeleton import NUM_JOINTS

FIT_FRAMES = 3  # frames on each side of a join whose line fit gives its end position and velocity
EASE_SPEED = 0.05  # metres per frame (1.5 m/s, a brisk walk): fastest a person is carried by ease_in
EASE_TURN = np.radians(4.0)  # radians per frame (120 deg/s): fastest a person is turned by ease_in
EASE_MIN_FRAMES = 15  # shortest ease (0.5 s): a small gap closed faster would be a twitch at the join
_XZ = np.array([1.0, 0.0, 1.0])


# helper functions


def _yaw_matrix(yaw: float) -> np.ndarray:
    """Rotation about +Y by `yaw` radians (takes +Z towards +X), (3, 3); acts on row vectors as p @ R.T."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _check_positions(positions: np.ndarray, name: str = "positions") -> np.ndarray:
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 4 or pos.shape[-2:] != (NUM_JOINTS, 3) or pos.shape[1] == 0:
        raise ValueError(f"{name}: expected (P, T, {NUM_JOINTS}, 3) joint positions, got {pos.shape}")
    if not np.all(np.isfinite(pos)):
        raise ValueError(f"{name}: joint positions contain NaN or infinite values")
    return pos


def _line_fit(frames: np.ndarray, times: np.ndarray, at: float) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares line through (times, frames (n, ...)): (value at `at`, slope per frame).

    A fit over a few frames rather than one difference, so that a single noisy decoded frame at the
    edge of a piece does not set the velocity the join has to match.
    """
    if len(times) == 1:
        return frames[0], np.zeros_like(frames[0])
    tc = times - times.mean()
    mean = frames.mean(axis=0)
    slope = np.tensordot(tc, frames - mean, axes=1) / float((tc**2).sum())
    return mean + slope * (at - times.mean()), slope


def _next_root(previous: np.ndarray, person: int) -> np.ndarray:
    """Where a person's root would be one frame after `previous` ends: last root + last root step."""
    root = previous[person, :, 0]
    return root[-1] + (root[-1] - root[-2] if len(root) >= 2 else 0.0)


def join_frames(lengths: Sequence[int]) -> list[int]:
    """First frame of every piece after the first, for pieces of the given lengths."""
    return [int(x) for x in np.cumsum(lengths)[:-1]]


# tokens


def compose_codes(pieces: Sequence[np.ndarray]) -> np.ndarray:
    """(P, sum L_i, D) codes: the pieces' (P, L_i, D) codes one after another in time."""
    if not pieces:
        raise ValueError("compose_codes needs at least one piece")
    arrays = [np.asarray(p) for p in pieces]
    first = arrays[0]
    for i, a in enumerate(arrays):
        if a.ndim != 3 or a.shape[0] != first.shape[0] or a.shape[2] != first.shape[2]:
            raise ValueError(
                f"piece {i}: expected (P, L, D) codes with P = {first.shape[0]} and D = {first.shape[-1]} "
                f"like piece 0, got {a.shape}"
            )
        if not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"piece {i}: codes must be integers, got {a.dtype}")
    return np.concatenate(arrays, axis=1)


def decode_composed(
    codec: Any,
    pieces: Sequence[np.ndarray],
    transform: CanonicalTransform | None = None,
    smooth_frames: int = 5,
) -> np.ndarray:
    """(P, T, 22, 3) float32 positions of the concatenated pieces, decoded in ONE call, joins smoothed.

    One decode call (not one per piece) is what lets the decoder's convolutions see across each
    join, as in Motion-Agent; `smooth_joins` then removes what is left. `codec` is a
    molam_ros.llm.motion_io.MotionCodec; `transform` as for its decode; smooth_frames 0 turns the
    smoothing off.
    """
    codes = compose_codes(pieces)
    positions = codec.decode(codes, transform)
    if smooth_frames <= 0 or len(pieces) < 2:
        return np.asarray(positions, dtype=np.float32)
    joins = join_frames([np.shape(p)[1] * codec.stride for p in pieces])
    return smooth_joins(positions, joins, half_width=smooth_frames)


# smoothing


def _hermite_offsets(gap: np.ndarray, dv: np.ndarray, hl: int, hr: int) -> np.ndarray:
    """(hl + hr, P, 22, 3) offsets for the frames j - hl .. j + hr - 1 around a join at j.

    The left side rises from 0 (zero slope) to +s G with slope +s V at the join (j - 1/2), the right
    side starts at -(1 - s) G with slope -(1 - s) V and falls to 0 (zero slope); s = hl / (hl + hr),
    so the wider side takes the larger part. Hermite basis h01 = 3u^2 - 2u^3, h11 = u^3 - u^2 on the
    left, h00 = 1 - 3u^2 + 2u^3, h10 = u^3 - 2u^2 + u on the right; a slope per frame is the slope
    per unit u divided by the side's width, hence the factors hl and hr.
    """
    s = hl / (hl + hr)
    u = (np.arange(hl) + 0.5) / hl
    left = (3 * u**2 - 2 * u**3)[:, None, None, None] * (s * gap) + (u**3 - u**2)[:, None, None, None] * (
        hl * s * dv
    )
    u = (np.arange(hr) + 0.5) / hr
    right = (1 - 3 * u**2 + 2 * u**3)[:, None, None, None] * ((1 - s) * gap) + (u**3 - 2 * u**2 + u)[
        :, None, None, None
    ] * (hr * (1 - s) * dv)
    return np.concatenate([left, -right], axis=0)


def _max_step(frames: np.ndarray) -> float:
    """Largest per-frame displacement of any joint of (P, T, 22, 3) frames (0 for one frame)."""
    if frames.shape[1] < 2:
        return 0.0
    return float(np.linalg.norm(np.diff(frames, axis=1), axis=-1).max())


def smooth_joins(
    positions: np.ndarray, joins: Sequence[int], half_width: int = 5, max_half_width: int = 30
) -> np.ndarray:
    """Positions (P, T, 22, 3) float32 made continuous in position AND velocity at each join.

    joins: frame indices where a new piece starts (frame j - 1 ends one piece, j starts the next).

    Method: C1 cubic Hermite offsets. Each side's end is extrapolated to the join (j - 1/2) by a
    line fit over FIT_FRAMES frames, giving a position gap G and a velocity gap V between the
    pieces. The left piece gets an added offset that rises from 0 (with zero slope) half_width
    frames before the join to +G/2 with slope +V/2 at the join, the right piece one that starts at
    -G/2 with slope -V/2 and falls to 0 (zero slope) half_width frames after it; both sides then
    meet at the same position with the same velocity, and the offsets join the untouched frames
    with matching value and slope (`_hermite_offsets`). Why this and not the alternatives: a
    smooth-step blend of a constant offset fixes the position but leaves the velocity jump (a
    smooth-step's slope is zero at both ends); replacing the window by one Hermite curve between
    the window's ends is C1 too but erases whatever the body does in those frames (a hand still
    waving); a cross-fade needs overlapping frames that cut pieces do not have. Adding offsets
    keeps every piece's own detail.

    Width: +/-half_width (InterSyn's 5 frames) where that suffices. A large gap closed in 5 frames
    would move a joint faster than the pieces ever do (an arm up against an arm down, 0.7 m), so
    the window widens, one frame a side at a time up to max_half_width, until no joint moves
    faster across the join than in the two pieces themselves. It is narrowed where a join lies
    near the clip's ends or another join (each side gets at most half the distance to its
    neighbour); a join with fewer than 2 frames on a side is left alone. max_half_width =
    half_width gives fixed windows.
    """
    pos = _check_positions(positions).copy()
    T = pos.shape[1]
    joins = sorted(int(j) for j in joins)
    bounds = [0, *joins, T]
    src = pos.copy()  # the fits read the unsmoothed pieces, so joins do not depend on their order
    for i, j in enumerate(joins):
        lo, hi = bounds[i], bounds[i + 2]
        # each side keeps one untouched frame between its window and the clip's end or the next window
        left_room = (j - lo) // 2 if i > 0 else j - lo - 1
        right_room = (hi - j) // 2 if i + 2 < len(bounds) - 1 else hi - j - 1
        if min(left_room, right_room) < 2:
            continue
        kl, kr = min(FIT_FRAMES, j - lo), min(FIT_FRAMES, hi - j)
        tl, tr = np.arange(-kl, 0, dtype=np.float64), np.arange(0, kr, dtype=np.float64)
        x_left, v_left = _line_fit(np.moveaxis(src[:, j - kl : j], 1, 0), tl, -0.5)  # (P, 22, 3)
        x_right, v_right = _line_fit(np.moveaxis(src[:, j : j + kr], 1, 0), tr, -0.5)
        gap, dv = x_right - x_left, v_right - v_left
        limit = max(_max_step(src[:, lo:j]), _max_step(src[:, j:hi]))
        for width in range(half_width, max(half_width, max_half_width) + 1):
            hl, hr = min(width, left_room), min(width, right_room)
            window = src[:, j - hl - 1 : j + hr + 1].copy()  # one untouched frame on each side
            window[:, 1:-1] += np.moveaxis(_hermite_offsets(gap, dv, hl, hr), 0, 1)
            if _max_step(window) <= limit or (hl == left_room and hr == right_room):
                break
        pos[:, j - hl : j + hr] = window[:, 1:-1]
    return pos.astype(np.float32)


# positions


def reroot(piece: np.ndarray, previous: np.ndarray) -> np.ndarray:
    """A (P, T, 22, 3) piece moved to continue `previous` (P, T', 22, 3): yaw and horizontal shift only.

    Person a (index 0) sets the map: the piece is turned about the vertical axis through a's first
    root so a's heading continues the previous piece's last heading, then shifted so a's first root
    lands one step (the previous piece's last root velocity) past where a ended. Every person gets
    the same map, so where people stand relative to each other is kept; y is untouched, so the
    floor stays at 0.
    """
    cur, prev = _check_positions(piece, "piece"), _check_positions(previous, "previous")
    yaw = float(facing_angle(prev[0, -1]) - facing_angle(cur[0, 0]))
    pivot = cur[0, 0, 0] * _XZ
    turned = (cur - pivot) @ _yaw_matrix(yaw).T + pivot
    shift = (_next_root(prev, 0) - turned[0, 0, 0]) * _XZ
    return turned + shift


def _eased(body: np.ndarray, gap: np.ndarray, turn: float, frames: int) -> np.ndarray:
    """(T, 22, 3) body plus an offset `gap` and a yaw `turn` about its own root, both weighted by a
    Hermite fall 1 -> 0 over `frames` frames (zero slope at both ends)."""
    u = np.arange(body.shape[0]) / frames
    w = np.where(u < 1.0, 2 * u**3 - 3 * u**2 + 1, 0.0)  # (T,)
    pivot = body[:, :1] * _XZ  # (T, 1, 3) each frame's own root, so the turn moves no root
    local = body - pivot
    c, s = np.cos(w * turn)[:, None], np.sin(w * turn)[:, None]
    out = local.copy()
    out[..., 0] = c * local[..., 0] + s * local[..., 2]  # yaw about +Y, +Z towards +X
    out[..., 2] = -s * local[..., 0] + c * local[..., 2]
    return out + pivot + w[:, None, None] * gap


def ease_in(
    piece: np.ndarray, previous: np.ndarray, person: int, min_frames: int = EASE_MIN_FRAMES
) -> np.ndarray:
    """The piece with one person eased from where they were at the end of `previous` into their place.

    After `reroot` person a continues exactly, but the others start where the new piece has them
    relative to a, which may be metres from where they ended. Snapping them there would be a jump
    no window of +/-5 frames can hide, so instead the person gets a horizontal offset and a yaw
    about their root that start at the full gap (continuous at the join) and fall to 0 along a
    Hermite curve with zero slope at both ends (no velocity added at the join, none where it ends).
    The fall lasts at least `min_frames` and long enough that the offset alone moves the person at
    most EASE_SPEED and turns them at most EASE_TURN per frame (the curve's steepest slope is
    1.5 / duration); it is lengthened (up to the whole piece) while the eased person would move a
    joint faster than either piece ever does, since the walk to the new place comes on top of the
    person's own motion.
    """
    cur, prev = _check_positions(piece, "piece").copy(), _check_positions(previous, "previous")
    T = cur.shape[1]
    gap = (_next_root(prev, person) - cur[person, 0, 0]) * _XZ
    turn = float(np.angle(np.exp(1j * (facing_angle(prev[person, -1]) - facing_angle(cur[person, 0])))))
    if np.linalg.norm(gap) < 1e-6 and abs(turn) < 1e-6:
        return cur
    frames = max(
        min_frames,
        int(np.ceil(1.5 * np.linalg.norm(gap) / EASE_SPEED)),
        int(np.ceil(1.5 * abs(turn) / EASE_TURN)),
    )
    limit = max(_max_step(prev), _max_step(cur))
    while True:
        frames = min(frames, T)
        body = _eased(cur[person], gap, turn, frames)
        if frames >= T or _max_step(body[None]) <= limit:
            break
        frames = int(np.ceil(frames * 1.25))
    cur[person] = body
    return cur


def compose_positions(pieces: Sequence[np.ndarray], smooth_frames: int = 5) -> np.ndarray:
    """(P, sum T_i, 22, 3) float32: position pieces one after another, each re-rooted, joins smoothed.

    For pieces that are already positions (recorded clips, or pieces decoded separately): every
    piece after the first continues where the previous ended (`reroot` for the whole piece by
    person a, `ease_in` for every other person), then `smooth_joins` removes the remaining pose
    and velocity gaps. smooth_frames 0 turns the smoothing (not the re-rooting) off.
    """
    if not pieces:
        raise ValueError("compose_positions needs at least one piece")
    arrays = [_check_positions(p, f"piece {i}") for i, p in enumerate(pieces)]
    people = {a.shape[0] for a in arrays}
    if len(people) != 1:
        raise ValueError(f"every piece needs the same number of people, got {sorted(people)}")
    placed = [arrays[0]]
    for a in arrays[1:]:
        moved = reroot(a, placed[-1])
        for p in range(1, moved.shape[0]):
            moved = ease_in(moved, placed[-1], p, min_frames=EASE_MIN_FRAMES)
        placed.append(moved)
    out = np.concatenate(placed, axis=1)
    if smooth_frames <= 0 or len(arrays) < 2:
        return out.astype(np.float32)
    return smooth_joins(out, join_frames([a.shape[1] for a in arrays]), half_width=smooth_frames)
