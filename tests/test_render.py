"""Quick-look rendering writes real files, fast enough for a test."""

from __future__ import annotations

import shutil

import pytest

from molam_ros.data.clip import MotionClip
from molam_ros.data.render import render_clip, render_strip
from molam_ros.data.synth import generate_clip


@pytest.fixture(scope="module")
def clip() -> MotionClip:
    c = generate_clip(0, "handshake")
    return MotionClip(c.name, c.positions[:, :40], c.fps, c.texts, c.meta, c.local_quats[:, :40])


def test_gif_written(clip, tmp_path):
    out = render_clip(clip, tmp_path / "clip.gif", max_frames=6, progress=False)
    assert out.exists() and out.stat().st_size > 5_000
    assert out.read_bytes()[:6] in (b"GIF89a", b"GIF87a")


def test_strip_written(clip, tmp_path):
    out = render_strip(clip, tmp_path / "strip.png", num_frames=3)
    assert out.exists() and out.stat().st_size > 5_000
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_single_person_and_bad_format(clip, tmp_path):
    solo = MotionClip("solo", clip.positions[:1], clip.fps, ["a person stands"])
    assert render_strip(solo, tmp_path / "solo.png", num_frames=2).exists()
    with pytest.raises(ValueError):
        render_clip(clip, tmp_path / "x.avi", fmt="avi")


def test_mp4_needs_ffmpeg(clip, tmp_path):
    if shutil.which("ffmpeg") is None:
        with pytest.raises(RuntimeError, match="ffmpeg"):
            render_clip(clip, tmp_path / "clip.mp4", fmt="mp4")
    else:
        assert render_clip(clip, tmp_path / "clip.mp4", fmt="mp4", max_frames=4, progress=False).exists()
