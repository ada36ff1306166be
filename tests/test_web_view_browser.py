"""The live web view in a real browser: headless Chromium loads the page from the server, receives
frames of two known bodies over the WebSocket, draws both (WebGL, three.js), and a screenshot shows
them: the person's blue on the left, the reaction's orange on the right. The page's text box sends
a command back. The screenshot is kept in the test artefacts (out/test_artifacts/web_view.png).

Chromium is driven over the Chrome DevTools Protocol with `websockets` (already a dependency), no
browser download: a system binary is used (`apt-get install chromium-headless-shell`, or
`MOLAM_BROWSER=1 bash scripts/setup.sh`; `MOLAM_CHROMIUM=/path` names another), and the test skips
saying so where there is none.
"""

from __future__ import annotations

import base64
import io
import itertools
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from websockets.sync.client import connect

from molam_ros.motion.skeleton import JOINT_NAMES, PARENTS, REST_OFFSETS
from molam_ros.web.frames import BODY_RGB, pose_message, text_message
from molam_ros.web.server import WebViewServer

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "out" / "test_artifacts"
BROWSERS = (
    "chromium-headless-shell",
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
)
WIDTH, HEIGHT = 1280, 720


def find_chromium() -> str | None:
    named = os.environ.get("MOLAM_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


CHROMIUM = find_chromium()
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium binary (apt-get install chromium-headless-shell, MOLAM_BROWSER=1 bash "
    "scripts/setup.sh, or MOLAM_CHROMIUM=/path/to/chrome)",
)


class Browser:
    """Headless Chromium and one page, over the DevTools protocol (flat sessions on one socket)."""

    def __init__(self, exe: str, profile_dir: Path) -> None:
        args = [
            exe,
            "--headless",
            "--no-sandbox",  # the test may run as root (CI containers); the page is our own
            "--remote-debugging-port=0",
            f"--user-data-dir={profile_dir}",
            f"--window-size={WIDTH},{HEIGHT}",
            # WebGL on the CPU (SwiftShader): machines running tests have no GPU to give a browser
            "--use-angle=swiftshader",
            "--enable-unsafe-swiftshader",
            "--ignore-gpu-blocklist",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-extensions",
            "about:blank",
        ]
        # A session of its own: Debian's /usr/bin/chromium-headless-shell is a shell script that
        # runs the browser as its child, so only killing the whole group stops the browser.
        self.proc = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.log: list[str] = []
        url = self._devtools_url(timeout=60)
        self.ws = connect(url, max_size=64 * 2**20, open_timeout=30, legacy=True)  # held open across calls
        self.ids = itertools.count(1)
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )

    def _devtools_url(self, timeout: float) -> str:
        end = time.monotonic() + timeout
        assert self.proc.stderr is not None
        while time.monotonic() < end:
            line = self.proc.stderr.readline()
            if not line and self.proc.poll() is not None:
                break
            self.log.append(line)
            if line.startswith("DevTools listening on "):
                threading.Thread(target=self._drain, daemon=True).start()
                return line.split(" on ", 1)[1].strip()
        raise RuntimeError("Chromium did not start:\n" + "".join(self.log[-30:]))

    def _drain(self) -> None:  # keep reading stderr, so a chatty browser never blocks on a full pipe
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def call(self, method: str, timeout: float = 120.0, **params: object) -> dict:
        """One DevTools command; its reply (events and late replies to earlier calls are skipped).
        The timeout is generous: SwiftShader on two busy cores can take seconds per frame."""
        msg_id = next(self.ids)
        message: dict = {"id": msg_id, "method": method, "params": params}
        if method.split(".")[0] not in ("Target",):
            message["sessionId"] = self.session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv(timeout=timeout))  # SwiftShader on 2 busy cores is slow
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> object:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float, state: str = "null") -> object:
        end = time.monotonic() + timeout
        value = None
        while time.monotonic() < end:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.2)
        raise TimeoutError(f"{expression} stayed {value!r} for {timeout} s; {self.evaluate(state)}")

    def screenshot(self) -> bytes:
        """A PNG of the page. Asked twice at most: a capture waits for a new compositor frame, and
        on a starved CPU the first request has been seen to get none (a later one did)."""
        for _ in range(2):
            try:
                return base64.b64decode(self.call("Page.captureScreenshot", timeout=90, format="png")["data"])
            except TimeoutError:
                continue
        raise TimeoutError("no screenshot in 2 x 90 s; the browser said:\n" + "".join(self.log[-20:]))

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self._signal_group(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
            self._signal_group(signal.SIGKILL)  # the browser under a wrapper outlives the wrapper
            self.proc.wait()
            end = time.monotonic() + 10  # the orphans go once init has reaped them
            while self.group_alive() and time.monotonic() < end:
                time.sleep(0.05)

    def group_alive(self) -> bool:
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass  # the whole group has exited


def t_pose(x: float) -> np.ndarray:
    """The SMPL rest pose (T-pose, facing +Z), pelvis at (x, 0.95, 0): feet on the floor."""
    positions = np.zeros((len(PARENTS), 3))
    for j, parent in enumerate(PARENTS):
        positions[j] = REST_OFFSETS[j] + (positions[parent] if parent >= 0 else 0.0)
    return positions + np.array([x, 0.95, 0.0])


def feed(server: WebViewServer, stop: threading.Event) -> None:
    """The person at x = -0.9 m, the reaction at x = +0.9 m, 30 Hz, both breathing a little."""
    person, reactor = t_pose(-0.9), t_pose(0.9)
    while not stop.is_set():
        now = time.time()
        bob = np.array([0.0, 0.01 * np.sin(now * 3), 0.0])
        server.publish(pose_message("person", JOINT_NAMES, person + bob, now))
        server.publish(pose_message("reactor", JOINT_NAMES, reactor - bob, now))
        stop.wait(1 / 30)


def colour_mask(rgb: np.ndarray, target: tuple[float, float, float]) -> np.ndarray:
    """Pixels whose hue is the body's: lit and shaded versions of the colour, not greys or text."""
    pixels = rgb.astype(np.float64) / 255.0
    bright = pixels.max(axis=-1)
    saturation = (bright - pixels.min(axis=-1)) / np.maximum(bright, 1e-6)
    chroma = pixels / np.maximum(bright, 1e-6)[..., None]  # the colour at full brightness
    goal = np.asarray(target) / max(target)
    return (saturation > 0.5) & (bright > 0.25) & (np.abs(chroma - goal).max(axis=-1) < 0.2)


def test_page_receives_frames_and_draws_both_bodies(tmp_path: Path) -> None:
    commands: list[str] = []
    server = WebViewServer(port=0, on_command=commands.append)
    server.start()
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(server, stop), daemon=True)
    browser = None
    try:
        server.publish(text_message("command", "wave at them", time.time()))
        server.publish(text_message("reply", "Waving at them.", time.time()))
        feeder.start()
        browser = Browser(CHROMIUM, tmp_path / "profile")
        browser.call("Page.navigate", url=server.url)
        state = "JSON.stringify(window.molam || null)"
        # Frames came in, both bodies were drawn for several animation frames.
        browser.wait_for(
            "window.molam && molam.frames >= 60 && molam.drawn === 2 && molam.rendered >= 10", 90
        )
        status = json.loads(browser.evaluate(state))
        assert status["webgl"] and status["connected"] and status["texts"] == 2, status
        log = browser.evaluate("document.getElementById('log').innerText")
        assert "wave at them" in log and "Waving at them." in log, log
        # The page's text box goes back to the server as a command.
        browser.evaluate(
            "document.getElementById('command').value = 'be more hesitant';"
            "document.getElementById('say').requestSubmit(); true"
        )
        end = time.monotonic() + 10
        while not commands and time.monotonic() < end:
            time.sleep(0.05)
        assert commands == ["be more hesitant"]

        # Pause: the last drawn frame stays (no more WebGL work, so a software renderer's CPU goes
        # to the screenshot), frames keep arriving.
        paused_at = browser.evaluate("molam.setPaused(true); [molam.rendered, molam.frames]")
        browser.wait_for(f"molam.rendered > {paused_at[0]}", 60, state)  # the frozen frame, drawn once
        time.sleep(1.0)
        rendered, frames = browser.evaluate("[molam.rendered, molam.frames]")
        assert rendered == paused_at[0] + 1 and frames > paused_at[1], (paused_at, rendered, frames)
        shot = browser.screenshot()
        rect = browser.evaluate(
            "(() => { const r = document.querySelector('#view canvas').getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height]; })()"
        )
    finally:
        stop.set()
        if browser is not None:
            browser.close()
        server.stop()
    assert not browser.group_alive()  # no browser left behind (it ran under a wrapper script)
    (tmp_path / "web_view.png").write_bytes(shot)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "web_view.png").write_bytes(shot)

    image = np.asarray(Image.open(io.BytesIO(shot)).convert("RGB"))
    assert image.shape[:2] == (HEIGHT, WIDTH)
    left, top, width, height = (int(round(v)) for v in rect)
    assert width > 600 and height > 400, rect  # the 3D view, without the text panel on the right
    view = image[top : top + height, left : left + width]
    assert view.std() > 5, "the 3D view is blank"
    blue = colour_mask(view, BODY_RGB["person"])
    orange = colour_mask(view, BODY_RGB["reactor"])
    assert blue.sum() > 500 and orange.sum() > 500, (int(blue.sum()), int(orange.sum()))
    blue_x = np.nonzero(blue)[1].mean()
    orange_x = np.nonzero(orange)[1].mean()
    # Camera on +Z looking at the origin: world +X is to the right on screen.
    assert blue_x < width / 2 < orange_x, (blue_x, orange_x)
    # Each is a whole standing body, head to feet, not a swatch or a stray line.
    for mask in (blue, orange):
        rows = np.nonzero(mask.any(axis=1))[0]
        assert rows.max() - rows.min() > height / 4
