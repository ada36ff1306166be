"""Quick-look rendering of clips: an animated GIF/MP4 and a PNG strip of key frames.

Meant for eyeballing data (is the floor where it should be, do hands meet, does anyone float),
not for publication: a fixed 3D camera that fits every person over the whole clip, bones drawn
along the kinematic chains, one colour per person, the first caption as the title.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib import animation  # noqa: E402
from tqdm import tqdm  # noqa: E402

from molam_ros.data.clip import MotionClip  # noqa: E402
from molam_ros.motion.skeleton import KINEMATIC_CHAINS  # noqa: E402

PERSON_COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple")


def _title(clip: MotionClip, width: int = 70) -> str:
    text = clip.texts[0] if clip.texts else clip.name
    return "\n".join(textwrap.wrap(text, width)[:3])


def _bounds(pos: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre (x, z) and half-extent of a square floor area that holds everyone all clip long."""
    xz = pos[..., [0, 2]].reshape(-1, 2)
    lo, hi = xz.min(0), xz.max(0)
    centre = 0.5 * (lo + hi)
    half = max(float((hi - lo).max()) * 0.5 + 0.2, 0.8)
    return centre, half


def _camera_azimuth(pos: np.ndarray) -> float:
    """Camera azimuth (degrees) looking across the line between the people, a little from the front.

    Looking along that line would hide one person behind the other.
    """
    if pos.shape[0] < 2:
        return -60.0
    d = (pos[1, :, 0] - pos[0, :, 0])[:, [0, 2]].mean(0)
    if np.linalg.norm(d) < 1e-3:
        return -60.0
    return float(np.degrees(np.arctan2(d[1], d[0]))) - 70.0


class _Scene:
    """One matplotlib 3D axes with a floor grid and a line per bone chain per person."""

    def __init__(self, ax, clip: MotionClip, body: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """`body`: a robot drawn as capsules, (T, N, 2, 3) segment ends in the clip's frame and (N,)
        radii (sim/body.py); it replaces the clip's second person (the reactor it executes)."""
        pos = clip.positions
        self.ax, self.pos = ax, pos
        centre, half = _bounds(pos)
        height = max(float(pos[..., 1].max()) + 0.1, 2.0)
        # Plot axes: (x, z, y) so that the world's Y is up on screen.
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(0.0, max(height, 2 * half * 0.6))
        ax.set_box_aspect((1.0, 1.0, max(height, 2 * half * 0.6) / (2 * half)), zoom=1.25)
        ax.view_init(elev=15, azim=_camera_azimuth(pos))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_zticks([])
        ax.xaxis.pane.set_alpha(0.0)
        ax.yaxis.pane.set_alpha(0.0)
        ax.zaxis.pane.set_alpha(0.0)
        step = 0.5
        g0x, g1x = np.floor((centre[0] - half) / step) * step, centre[0] + half
        g0z, g1z = np.floor((centre[1] - half) / step) * step, centre[1] + half
        for gx in np.arange(g0x, g1x + 1e-6, step):
            ax.plot([gx, gx], [centre[1] - half, centre[1] + half], [0, 0], color="0.85", lw=0.6)
        for gz in np.arange(g0z, g1z + 1e-6, step):
            ax.plot([centre[0] - half, centre[0] + half], [gz, gz], [0, 0], color="0.85", lw=0.6)
        self.lines = []
        self.body = body
        self.capsules = []
        if body is not None:
            for radius in body[1]:  # line width in points ~ the capsule's diameter at this zoom
                (line,) = ax.plot([], [], [], color="0.45", lw=max(1.5, 110 * float(radius)), alpha=0.85)
                self.capsules.append(line)
        people = 1 if body is not None else pos.shape[0]
        for p in range(people):
            colour = PERSON_COLOURS[p % len(PERSON_COLOURS)]
            for chain in KINEMATIC_CHAINS:
                (line,) = ax.plot([], [], [], color=colour, lw=2.2 if chain[0] == 0 else 1.8)
                self.lines.append((p, chain, line))
            (head,) = ax.plot([], [], [], "o", color=colour, ms=5)
            self.lines.append((p, (15,), head))
        self.label = ax.text2D(0.02, 0.02, "", transform=ax.transAxes, fontsize=8)

    def draw(self, frame: int, fps: float) -> list:
        for p, chain, line in self.lines:
            pts = self.pos[p, frame, list(chain)]
            line.set_data(pts[:, 0], pts[:, 2])
            line.set_3d_properties(pts[:, 1])
        if self.body is not None:
            seg = self.body[0][min(frame, len(self.body[0]) - 1)]
            for ends, line in zip(seg, self.capsules, strict=True):
                line.set_data(ends[:, 0], ends[:, 2])
                line.set_3d_properties(ends[:, 1])
        self.label.set_text(f"frame {frame}  t={frame / fps:.2f}s")
        return [ln for _, _, ln in self.lines] + self.capsules + [self.label]


def render_clip(
    clip: MotionClip,
    out_path: str | Path,
    fmt: str = "gif",
    fps: float | None = None,
    max_frames: int | None = None,
    progress: bool = True,
) -> Path:
    """Write an animation of `clip` to `out_path` and return the path.

    fmt: "gif" (always available, Pillow) or "mp4" (needs the ffmpeg binary on PATH).
    fps: playback rate; default the clip's rate, lowered when frames are subsampled so the
        animation keeps real time. max_frames: cap on drawn frames (frames are subsampled evenly),
        which keeps a GIF of a long clip quick to write.
    """
    out_path = Path(out_path)
    if fmt not in ("gif", "mp4"):
        raise ValueError(f"fmt must be 'gif' or 'mp4', got {fmt!r}")
    if fmt == "mp4" and shutil.which("ffmpeg") is None:
        raise RuntimeError("mp4 output needs the ffmpeg binary on PATH; use fmt='gif' instead")
    T = clip.num_frames
    stride = 1 if max_frames is None or T <= max_frames else int(np.ceil(T / max_frames))
    frames = list(range(0, T, stride))
    play_fps = fps if fps is not None else clip.fps / stride

    fig = plt.figure(figsize=(5.5, 5.0), dpi=80)
    ax = fig.add_subplot(projection="3d")
    scene = _Scene(ax, clip)
    fig.suptitle(_title(clip), fontsize=8)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.9)
    writer = animation.PillowWriter(fps=play_fps) if fmt == "gif" else animation.FFMpegWriter(fps=play_fps)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with writer.saving(fig, str(out_path), dpi=80):
            for f in tqdm(frames, desc=f"render {clip.name}", disable=not progress, leave=False):
                scene.draw(f, clip.fps)
                writer.grab_frame()
    finally:
        plt.close(fig)
    return out_path


def render_strip(clip: MotionClip, out_png: str | Path, num_frames: int = 6) -> Path:
    """Write a PNG with `num_frames` evenly spaced frames of `clip` side by side."""
    out_png = Path(out_png)
    frames = np.linspace(0, clip.num_frames - 1, num_frames).round().astype(int)
    fig = plt.figure(figsize=(3.2 * num_frames, 3.8), dpi=100)
    for k, f in enumerate(frames):
        ax = fig.add_subplot(1, num_frames, k + 1, projection="3d")
        _Scene(ax, clip).draw(int(f), clip.fps)
    fig.suptitle(_title(clip, width=160), fontsize=9)
    fig.subplots_adjust(left=0, right=1, bottom=0, top=0.88, wspace=0)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png)
    plt.close(fig)
    return out_png


def render_side_by_side(
    clips: list[MotionClip],
    titles: list[str],
    out_path: str | Path,
    *,
    captions: list[tuple[float, str]] | None = None,
    max_frames: int | None = 240,
    progress: bool = True,
    bodies: list[tuple[np.ndarray, np.ndarray] | None] | None = None,
) -> Path:
    """One animated GIF with a panel per clip (same length and rate), e.g. a reaction next to the
    recorded one. `captions` ((time s, text), ...) are shown under the panels from their time on:
    what was said to the system, and when. `bodies`: per clip, None or a robot's capsules drawn
    instead of its second person (`_Scene`)."""
    out_path = Path(out_path)
    T = min(c.num_frames for c in clips)
    fps = clips[0].fps
    stride = 1 if max_frames is None or T <= max_frames else int(np.ceil(T / max_frames))
    frames = list(range(0, T, stride))
    fig = plt.figure(figsize=(4.6 * len(clips), 5.0), dpi=80)
    scenes = []
    for k, (clip, title) in enumerate(zip(clips, titles, strict=True)):
        ax = fig.add_subplot(1, len(clips), k + 1, projection="3d")
        scenes.append(_Scene(ax, clip, bodies[k] if bodies else None))
        ax.set_title(title, fontsize=9)
    said = fig.text(0.5, 0.03, "", ha="center", fontsize=9, color="tab:green")
    fig.subplots_adjust(left=0, right=1, bottom=0.08, top=0.92, wspace=0)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    writer = animation.PillowWriter(fps=fps / stride)
    try:
        with writer.saving(fig, str(out_path), dpi=80):
            for f in tqdm(frames, desc=f"render {out_path.name}", disable=not progress, leave=False):
                for scene in scenes:
                    scene.draw(f, fps)
                now = [text for t, text in captions or [] if t <= f / fps]
                said.set_text(f"said: {now[-1]!r}" if now else "")
                writer.grab_frame()
    finally:
        plt.close(fig)
    return out_path
