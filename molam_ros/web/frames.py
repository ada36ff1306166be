"""The JSON messages of the live web view: what the page is sent, and what it may send back.

One place defines the wire format, so the node, the server, the page (static/app.js) and the
tests agree on it. Every message is a JSON object with a `type`:

- `hello` (sent first on every connection): protocol version, the SMPL joint names and bones
  (parent, child index pairs) the page draws, and each body's label and colour.
- `pose`: one body at one instant. `body` is `person` or `reactor`; `stamp` is the ROS stamp in
  seconds (the reactor's frames carry the stamp of the partner frame they answer, so the page
  can show both on one time line); `joints` holds the 22 SMPL joints in SMPL order as [x, y, z]
  metres in three.js axes (Y up), `null` for a joint the message did not carry or carried as NaN
  (a VR user's stream names only head and hands).
- `text`: a command (`kind: command`) or a reply (`kind: reply`) with the wall time it was heard.
- `status`: the reaction node's diagnostics summary (level, message, a few values).
- `error`: the server refused something the page sent (the text says why).

The page sends one message: `{"type": "command", "text": "wave at them"}`; `parse_client_message`
checks it before anything reaches ROS.

Colours are the RViz markers' (ros/convert.py PERSON_COLOR, REACTOR_COLOR; a test keeps them equal),
so a body looks the same in RViz and in the browser.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from molam_ros.motion.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS

PROTOCOL = 1
PERSON, REACTOR = "person", "reactor"
# RGB in [0, 1]: the observed person blue, the reaction (robot or avatar) orange, as in RViz.
BODY_RGB: dict[str, tuple[float, float, float]] = {PERSON: (0.2, 0.6, 1.0), REACTOR: (1.0, 0.55, 0.1)}
BODY_LABELS: dict[str, str] = {PERSON: "person", REACTOR: "avatar / robot"}
BONES: tuple[tuple[int, int], ...] = tuple((PARENTS[j], j) for j in range(1, len(PARENTS)))
TEXT_KINDS = ("command", "reply")
UP_AXES = ("y", "z")
# Positions are sent to 0.1 mm: a frame of 22 joints stays under 1 kB of JSON.
DECIMALS = 4


def hex_color(rgb: Sequence[float]) -> str:
    """'#rrggbb' for an RGB triple in [0, 1] (what CSS and three.js take)."""
    return "#" + "".join(f"{round(min(max(c, 0.0), 1.0) * 255):02x}" for c in rgb)


def hello_message() -> dict[str, Any]:
    """The first message of a connection: everything the page needs to draw before any pose."""
    return {
        "type": "hello",
        "protocol": PROTOCOL,
        "joint_names": list(JOINT_NAMES),
        "bones": [list(b) for b in BONES],
        "bodies": {
            name: {"label": BODY_LABELS[name], "color": hex_color(BODY_RGB[name])} for name in BODY_RGB
        },
    }


def to_y_up(positions: np.ndarray, up_axis: str) -> np.ndarray:
    """(..., 3) positions in three.js axes (Y up). A Z-up world (REP 103: x forward, y left, z up)
    turns by -90 degrees about X, (x, y, z) -> (x, z, -y): a rotation, so nothing is mirrored."""
    if up_axis not in UP_AXES:
        raise ValueError(f"up_axis must be one of {list(UP_AXES)}, got {up_axis!r}")
    if up_axis == "y":
        return positions
    return np.stack([positions[..., 0], positions[..., 2], -positions[..., 1]], axis=-1)


def pose_message(
    body: str,
    joint_names: Sequence[str],
    positions: np.ndarray | Sequence[Sequence[float]],
    stamp: float,
    *,
    up_axis: str = "y",
) -> dict[str, Any]:
    """A `pose` message from named joint positions (N, 3).

    Joints outside the SMPL 22 (a tracker's fingers) are left out, missing or non-finite ones are
    null. ValueError when the lengths disagree, the body is unknown, or no SMPL joint is usable:
    a message the page could not draw is never sent.
    """
    if body not in BODY_RGB:
        raise ValueError(f"body must be one of {list(BODY_RGB)}, got {body!r}")
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2 or pos.shape[1] != 3 or len(pos) != len(joint_names):
        raise ValueError(f"{len(joint_names)} joint names but positions of shape {pos.shape}")
    if not math.isfinite(stamp):
        raise ValueError(f"stamp must be finite, got {stamp}")
    pos = to_y_up(pos, up_axis)
    joints: list[list[float] | None] = [None] * len(JOINT_NAMES)
    for name, p in zip(joint_names, pos, strict=True):
        i = JOINT_INDEX.get(name)
        if i is not None and np.isfinite(p).all():
            joints[i] = [round(float(v), DECIMALS) for v in p]
    if all(j is None for j in joints):
        raise ValueError(f"{body}: no finite SMPL joint among {list(joint_names)[:6]}...")
    return {"type": "pose", "body": body, "stamp": float(stamp), "joints": joints}


def text_message(kind: str, text: str, time: float) -> dict[str, Any]:
    """A `text` message: a command or a reply, heard at wall time `time` (seconds since the epoch)."""
    if kind not in TEXT_KINDS:
        raise ValueError(f"kind must be one of {list(TEXT_KINDS)}, got {kind!r}")
    return {"type": "text", "kind": kind, "text": str(text), "time": float(time)}


def status_message(level: str, message: str, values: Mapping[str, object]) -> dict[str, Any]:
    """A `status` message: the diagnostics' level and message and the values, as text."""
    return {
        "type": "status",
        "level": level,
        "message": message,
        "values": {k: str(v) for k, v in values.items()},
    }


def error_message(text: str) -> dict[str, Any]:
    return {"type": "error", "text": text}


def encode(message: Mapping[str, Any]) -> str:
    """Compact JSON; NaN is refused (JSON has none, and the page would choke on it)."""
    return json.dumps(message, separators=(",", ":"), allow_nan=False)


def parse_client_message(raw: str | bytes, *, max_length: int) -> str:
    """The command text of a page's `{"type": "command", "text": ...}`; ValueError saying what is
    wrong otherwise (not JSON, another type, no text, longer than `max_length` characters).

    The text is not judged here: the reaction node's guard refuses what it must, with a reply.
    """
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"not JSON: {e}") from None
    if not isinstance(data, dict) or data.get("type") != "command":
        raise ValueError('expected {"type": "command", "text": "..."}')
    text = data.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("a command needs a non-empty text")
    if len(text) > max_length:
        raise ValueError(f"command longer than {max_length} characters")
    return text.strip()


class PoseThrottle:
    """At most about `max_rate_hz` poses per body, judged by stamps, not arrival.

    A 90 Hz headset need not reach a headset browser over Wi-Fi at 90 Hz; the reactor's frames come
    in bursts of four (one model step) with stamps 1/30 s apart, so arrival times would drop the
    wrong ones. A frame passes when its stamp is at least 3/4 of a period after the last passed one
    (stamp jitter of a 30 Hz tracker does not halve it); a stamp that goes back starts over (a
    replayed bag looped, a new stream). 0 lets everything through.
    """

    def __init__(self, max_rate_hz: float) -> None:
        if not math.isfinite(max_rate_hz) or max_rate_hz < 0:
            raise ValueError(f"max_rate_hz must be >= 0, got {max_rate_hz}")
        self.min_gap = 0.75 / max_rate_hz if max_rate_hz > 0 else 0.0
        self.last: dict[str, float] = {}

    def accept(self, body: str, stamp: float) -> bool:
        last = self.last.get(body)
        if last is not None and last <= stamp < last + self.min_gap:
            return False
        self.last[body] = stamp
        return True
