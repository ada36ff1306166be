"""An adaptive reorder window: wait for late frames only as long as this stream makes frames late.

The pose buffer (runtime/pose_buffer.py) emits a grid frame once a source frame stamped
`reorder_window` after it has arrived, so that a frame delivered out of order still slots in.
Every second of window is a second of latency on every frame, and what a stream needs depends on
its transport: a tracker on the same machine delivers in order (0 needed), a Wi-Fi headset with
retries reorders by tens of milliseconds. A fixed window pays the worst case always; this one
measures what the stream does.

What is measured, per frame offered to the buffer (accepted or too late): its reorder depth, how
far its capture stamp lies behind the newest stamp already received (0 for a frame in order). A
frame is lost to reordering exactly when its depth reaches the window (the grid frame it belongs to
was emitted as the newer one arrived), so the window is the `quantile` of the depths over the last
`history` frames plus `margin`, clamped to [floor, cap]: an in-order
stream keeps the floor (0: no added latency), a reordering one widens it until that quantile of its
late frames slot in, and it shrinks again once the reordering stops (the history moves on). The
cap bounds the latency a bad link can add; the frames beyond it are dropped and counted, as before.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AdaptiveWindowConfig:
    """floor, cap: bounds of the window (s); floor == cap is a fixed window.
    quantile: fraction of the recent frames the window must let slot in (0.95: 1 in 20 late ones
        may be dropped rather than make every frame wait for it).
    history: frames the quantile looks back over (300: 10 s at 30 Hz).
    margin: s added to the quantile: a frame exactly as late as the window would miss it, and
        trackers' stamps jitter by a few milliseconds.
    """

    floor: float = 0.0
    cap: float = 0.1
    quantile: float = 0.95
    history: int = 300
    margin: float = 0.005

    def __post_init__(self) -> None:
        if not (math.isfinite(self.floor) and math.isfinite(self.cap) and 0 <= self.floor <= self.cap):
            raise ValueError(f"reorder window: need 0 <= floor <= cap, got {self.floor}, {self.cap}")
        if not 0 < self.quantile <= 1:
            raise ValueError(f"reorder window quantile must be in (0, 1], got {self.quantile}")
        if not (math.isfinite(self.margin) and self.margin >= 0):
            raise ValueError(f"reorder window margin must be >= 0 s, got {self.margin}")
        if self.history < 1:
            raise ValueError(f"reorder window history must be >= 1 frame, got {self.history}")


class AdaptiveWindow:
    """The window (s) for a stream, from the reorder depths it is shown (module docstring)."""

    def __init__(self, config: AdaptiveWindowConfig | None = None) -> None:
        self.config = config or AdaptiveWindowConfig()
        self._depths: deque[float] = deque(maxlen=self.config.history)
        self._late = 0  # frames with depth > 0 in the history (the quantile is 0 while none)
        self.value = self.config.floor

    def observe(self, depth: float) -> None:
        """One frame's reorder depth (s, >= 0)."""
        if not math.isfinite(depth):
            return
        depth = max(0.0, float(depth))
        if len(self._depths) == self._depths.maxlen and self._depths[0] > 0:
            self._late -= 1
        self._depths.append(depth)
        if depth > 0:
            self._late += 1
        cfg = self.config
        if self._late == 0:  # an in-order stream: no quantile to compute
            self.value = cfg.floor
        else:
            q = float(np.quantile(np.fromiter(self._depths, float), cfg.quantile))
            self.value = min(max(q + cfg.margin, cfg.floor), cfg.cap)
