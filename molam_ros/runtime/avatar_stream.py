"""The avatar's frames paced out at 30 Hz, each stamped with the time it is meant to be shown.

A step makes 4 frames at once every 133 ms; a VR engine renders at 72-120 Hz and interpolates
between timed frames. So every frame gets a display time: the capture stamp of the partner frame
it answers (the stream's time base, on which the safety filters run too) plus a constant
`display_delay`, chosen above the node's capture-to-publish latency for the first frame of a step
(the README's 175-230 ms for the last one, plus the 3 frames between: 0.4 s by default), so
the stamps are evenly spaced at 30 Hz across steps and still in the future when a frame goes out. A
client plays them at their stamps, interpolating, the avatar a constant `display_delay` behind the
person. Frames are released `lead` before their display time, one or two per 30 Hz tick, so a
client that simply shows the newest message also sees a steady 30 Hz.

A frame whose display time has passed when it is released is still sent (the client snaps or drops
it) and counted as late; a frame not after the last one released (a chunk that came in after
the watchdog already spoke) is dropped, so the stamps the client sees never go back.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class AvatarStreamConfig:
    """display_delay (s): display time = stream time + this; lead (s): released this early."""

    display_delay: float = 0.4
    lead: float = 1.0 / 30.0

    def __post_init__(self) -> None:
        if not (np.isfinite(self.display_delay) and self.display_delay >= 0):
            raise ValueError(f"display_delay must be >= 0 s, got {self.display_delay}")
        if not (np.isfinite(self.lead) and self.lead >= 0):
            raise ValueError(f"lead must be >= 0 s, got {self.lead}")


@dataclass(frozen=True)
class AvatarFrameOut:
    """One frame to publish: display time (s), bone rotations (B, 4) (w, x, y, z), root (3,), state."""

    display_time: float
    rotations: np.ndarray
    root: np.ndarray
    state: str


class AvatarFrameQueue:
    """Frames in (any order, in bursts), released in display order when due (module docstring)."""

    def __init__(self, config: AvatarStreamConfig | None = None) -> None:
        self.config = config or AvatarStreamConfig()
        self._frames: list[AvatarFrameOut] = []
        self._last_released: float | None = None
        self.stats: dict[str, int] = {"queued": 0, "released": 0, "late": 0, "dropped_old": 0}
        self._release_clock: deque[float] = deque(maxlen=90)  # wall times of the last releases
        self.margins: deque[float] = deque(maxlen=300)  # display time - release time (s)

    @property
    def pending(self) -> int:
        return len(self._frames)

    def push(self, stream_time: float, rotations: np.ndarray, root: np.ndarray, state: str) -> None:
        """Queue the frame of stream time `stream_time` (a capture stamp: the frame is shown
        `display_delay` after it)."""
        t = float(stream_time) + self.config.display_delay
        if self._last_released is not None and t <= self._last_released + 1e-9:
            self.stats["dropped_old"] += 1
            return
        keys = [f.display_time for f in self._frames]
        i = bisect.bisect_left(keys, t)
        if i < len(keys) and abs(keys[i] - t) <= 1e-9:  # the same instant again: the newer wins
            self._frames[i] = AvatarFrameOut(t, rotations, root, state)
            return
        self._frames.insert(i, AvatarFrameOut(t, rotations, root, state))
        self.stats["queued"] += 1

    def pop_due(self, now: float) -> list[AvatarFrameOut]:
        """Every frame whose display time is within `lead` of `now` (the clock the stamps are on:
        the ROS clock of the tracker and the node), in display order."""
        now = float(now)
        out = []
        while self._frames and self._frames[0].display_time <= now + self.config.lead:
            out.append(self._frames.pop(0))
        for f in out:
            self.margins.append(f.display_time - now)
            self._release_clock.append(now)
            if f.display_time < now:
                self.stats["late"] += 1
        if out:
            self._last_released = out[-1].display_time
            self.stats["released"] += len(out)
        return out

    def rate(self) -> float:
        """Frames released per second over the last releases (what a client receives)."""
        clock = self._release_clock
        if len(clock) < 2 or clock[-1] <= clock[0]:
            return 0.0
        return (len(clock) - 1) / (clock[-1] - clock[0])
