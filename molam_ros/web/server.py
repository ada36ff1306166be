"""The live view's server: the page over HTTP and the frames over a WebSocket, on one port.

Built on `websockets` (its asyncio server): a request for `/ws` becomes a WebSocket, any other GET
is answered from the static directory (`process_request`), so one port serves both and a headset
browser needs one address. The server runs its event loop on a thread of its own; `publish` may be
called from any thread (the ROS node's callbacks), and never blocks on a client: a client whose
send buffer is over `max_buffer_bytes` (a phone on weak Wi-Fi) misses frames instead of delaying
the others or growing memory. New clients get the hello, the last pose of each body, the last
status and the recent text at once, so a page opened mid-session shows something before the next
frame.

Bound to 127.0.0.1 by default: the page can send commands to the robot, so exposing it on a
network is the integrator's explicit choice (`host`).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import mimetypes
import threading
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from molam_ros.web.frames import encode, error_message, hello_message, parse_client_message

STATIC_DIR = Path(__file__).resolve().parent / "static"
WS_PATH = "/ws"
# Module scripts are refused by browsers under any other MIME type; some systems map .js oddly.
CONTENT_TYPES = {".js": "text/javascript", ".html": "text/html; charset=utf-8", ".css": "text/css"}
log = logging.getLogger(__name__)


class WebViewServer:
    """Serves `static_dir` and streams published messages to every connected page.

    on_command: called (on the server's thread) with the text of each valid command a page sends;
    None refuses commands with an `error` message. text_history: text messages a new client gets.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        static_dir: Path = STATIC_DIR,
        on_command: Callable[[str], None] | None = None,
        text_history: int = 50,
        max_command_length: int = 500,
        max_buffer_bytes: int = 1 << 20,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {port}")
        if not (static_dir / "index.html").is_file():
            raise FileNotFoundError(f"no index.html in {static_dir}")
        self.host, self.requested_port = host, port
        self.static_dir = static_dir.resolve()
        self.on_command = on_command
        self.max_command_length = max_command_length
        self.max_buffer_bytes = max_buffer_bytes
        self.port = 0  # the bound port, known after start() (port 0 asks for any free one)
        self.clients: set[ServerConnection] = set()
        self.counts = {"published": 0, "skipped_slow": 0, "commands": 0, "refused": 0, "http": 0}
        # What a new client is sent first (touched on the loop's thread only).
        self._poses: dict[str, str] = {}
        self._status: str | None = None
        self._texts: deque[str] = deque(maxlen=text_history)
        self._hello = encode(hello_message())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{host}:{self.port}/"

    # --- life cycle (caller's thread) -----------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Bind and serve on a daemon thread; returns once listening. OSError if the port is taken."""
        started = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                asyncio.run(self._serve(started))
            except BaseException as e:  # reported to start(); the thread ends
                failure.append(e)
                started.set()

        self._thread = threading.Thread(target=run, name="molam-web-view", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError(f"web view server did not start within {timeout} s")
        if failure:
            raise failure[0]

    def stop(self, timeout: float = 5.0) -> None:
        """Close every connection and the listening socket; idempotent."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(stop.set)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def publish(self, message: Mapping[str, Any]) -> None:
        """Send a message (frames.py) to every page; thread-safe, never waits for a client."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        data = encode(message)  # raises here, in the caller, for a malformed message
        try:
            loop.call_soon_threadsafe(self._publish, message["type"], message.get("body"), data)
        except RuntimeError:  # the loop closed between the check and the call
            pass

    # --- the event loop's side --------------------------------------------------------------

    async def _serve(self, started: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(
            self._handler,
            self.host,
            self.requested_port,
            process_request=self._process_request,
            server_header=None,
            max_size=64 * 1024,  # a command is short; nothing else comes from the page
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            started.set()
            await self._stop.wait()

    def _publish(self, kind: str, body: str | None, data: str) -> None:
        if kind == "pose" and body is not None:
            self._poses[body] = data
        elif kind == "status":
            self._status = data
        elif kind == "text":
            self._texts.append(data)
        ready = []
        for client in self.clients:
            transport = client.transport
            if transport is not None and transport.get_write_buffer_size() > self.max_buffer_bytes:
                self.counts["skipped_slow"] += 1
            else:
                ready.append(client)
        broadcast(ready, data)
        self.counts["published"] += 1

    async def _handler(self, connection: ServerConnection) -> None:
        self.clients.add(connection)
        try:
            for data in (self._hello, *self._poses.values(), self._status, *self._texts):
                if data is not None:
                    await connection.send(data)
            async for raw in connection:
                await self._on_message(connection, raw)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(connection)

    async def _on_message(self, connection: ServerConnection, raw: str | bytes) -> None:
        if self.on_command is None:
            self.counts["refused"] += 1
            await connection.send(encode(error_message("this view does not take commands")))
            return
        try:
            text = parse_client_message(raw, max_length=self.max_command_length)
        except ValueError as e:
            self.counts["refused"] += 1
            await connection.send(encode(error_message(str(e))))
            return
        self.counts["commands"] += 1
        try:
            self.on_command(text)
        except Exception as e:  # the node's publisher failed: tell the page, keep serving
            log.exception("command handler failed")
            await connection.send(encode(error_message(f"command not sent: {e}")))

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        """None for the WebSocket path (the handshake goes on); a static file or 404 otherwise."""
        path = unquote(urlsplit(request.path).path)
        if path == WS_PATH:
            return None
        self.counts["http"] += 1
        file = self.static_file(path)
        if file is None:
            return connection.respond(404, f"not found: {path}\n")
        body = file.read_bytes()
        kind = (
            CONTENT_TYPES.get(file.suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        )
        headers = Headers(
            [
                ("Date", email.utils.formatdate(usegmt=True)),
                ("Connection", "close"),
                ("Content-Length", str(len(body))),
                ("Content-Type", kind),
                ("Cache-Control", "no-cache"),
            ]
        )
        return Response(200, "OK", headers, body)

    def static_file(self, path: str) -> Path | None:
        """The file under the static directory a URL path names (`/` is index.html); None for
        anything outside it (`/../`, absolute tricks) or missing."""
        rel = path.lstrip("/") or "index.html"
        file = (self.static_dir / rel).resolve()
        if not file.is_relative_to(self.static_dir) or not file.is_file():
            return None
        return file
