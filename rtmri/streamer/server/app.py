"""The `rtmri serve` process: one port, the page over HTTP and the WebSocket (/ws).

HTTP requests are answered in websockets' process_request hook (the static page, and the
reference recordings); a WebSocket upgrade on /ws goes on to ``_handler``. Each
connection says hello (with the token) first, then is a viewer (broadcast mode) or a
learner session (learner mode). Any rule broken closes that connection alone, with a
close code and a reason (protocol.ProtocolError).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import logging
import math
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.server.clients import Client
from rtmri.streamer.server.modes import make_mode
from rtmri.streamer.server.protocol import (CLOSE_INVALID, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TRY_LATER,
                                            MAX_AUDIO_SAMPLES, ProtocolError, control, now_ms, parse_audio, parse_control)
from rtmri.streamer.server.security import Limits, is_loopback, request_problem, token_ok

STATIC = Path(__file__).parent / "static"
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8", ".json": "application/json", ".wav": "audio/wav",
                 ".bin": "application/octet-stream"}
# connect-src names the page's own ws:/wss: origin too: older browsers do not count it as 'self'.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
               "media-src 'self' blob:; connect-src 'self' {sockets}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")
HOST_PATTERN = re.compile(r"[A-Za-z0-9.\-]+(:\d+)?|\[[0-9A-Fa-f:.]+\](:\d+)?")
WS_PATH = "/ws"
log = logging.getLogger("rtmri.serve")


@dataclass
class ServerOptions:
    mode: str = "broadcast"  # or "learner"
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    codec: str = "jpeg"
    quality: int = 90
    limits: Limits = field(default_factory=Limits)
    allowed_origins: tuple[str, ...] = ()
    ssl: object = None  # an ssl.SSLContext: https and wss (browsers give the microphone to secure pages only)
    status_interval_s: float = 2.0
    repeat: bool = True  # broadcast of a file: start again at its end
    smoothing: float = 0.0  # broadcast: the Streamer's temporal smoothing


class RtmriServer:
    def __init__(self, engine, options: ServerOptions, make_source=None, references=(), source_description: str = "") -> None:
        self.engine = engine
        self.options = options
        self.limits = options.limits
        self.clients: set[Client] = set()  # past hello
        self.waiting: dict[Client, None] = {}  # before hello, oldest first
        self.mode = make_mode(options, engine, make_source, source_description)
        self.references = {r.id: r for r in references}
        self.comparer = comparer_for(engine, self.mode.name, references)
        self.source_description = source_description
        self.loopback_only = is_loopback(options.host)
        self.static = {"/" + p.name: p for p in STATIC.iterdir() if p.is_file()}
        self.static["/"] = STATIC / "index.html"
        self.port: int | None = None
        self.started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._closing: set[asyncio.Task] = set()  # closes of stalled clients under way

    # --- lifetime ---------------------------------------------------------------------

    async def serve(self) -> None:
        """Serve until stop() is called."""
        from websockets.asyncio.server import serve  # the `live` extra

        from rtmri.streamer.server.connection import GuardedConnection

        class Connection(GuardedConnection):
            max_write_buffer_bytes = self.limits.max_write_buffer_bytes

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, self.options.host, self.options.port, process_request=self._process_request,
                         compression=None, max_size=self.limits.max_message_bytes, max_queue=16, write_limit=64 * 1024,
                         ping_interval=20, ping_timeout=20, close_timeout=2, open_timeout=10, ssl=self.options.ssl,
                         logger=log, create_connection=Connection) as server:
            self.port = server.sockets[0].getsockname()[1]
            housekeeping = asyncio.create_task(self._housekeeping())
            await self.mode.start()
            self.started.set()
            try:
                await self._stop.wait()
            finally:
                housekeeping.cancel()
                await self.mode.stop()

    def stop(self) -> None:
        """From any thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)

    @property
    def url(self) -> str:
        scheme = "https" if self.options.ssl else "http"
        host = self.options.host if self.options.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/"

    # --- HTTP -------------------------------------------------------------------------

    def _process_request(self, connection, request):
        if request.method not in ("GET", "HEAD"):
            response = _response(HTTPStatus.METHOD_NOT_ALLOWED, f"{request.method[:20]} is not allowed here\n")
            response.headers["Allow"] = "GET, HEAD"
            return response
        response = self._answer(request)
        if request.method == "HEAD" and response is not None:
            return dataclasses.replace(response, body=b"")  # its headers, Content-Length included
        return response

    def _answer(self, request):
        path, _, query = request.path.partition("?")
        websocket = any(value.lower() == "websocket" for value in request.headers.get_all("Upgrade"))
        problem = request_problem(request.headers, self.loopback_only, self.options.allowed_origins, websocket)
        if problem:
            return _response(HTTPStatus.FORBIDDEN, problem + "\n")
        if websocket:
            return None if path == WS_PATH else _response(HTTPStatus.NOT_FOUND, f"the WebSocket is at {WS_PATH}\n")
        if path in self.static:
            file = self.static[path]
            response = _response(HTTPStatus.OK, file.read_bytes(), CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
            if file.suffix == ".html":
                host = request.headers.get("Host", "")
                sockets = f"ws://{host} wss://{host}" if HOST_PATTERN.fullmatch(host) else ""
                response.headers["Content-Security-Policy"] = PAGE_POLICY.format(sockets=sockets)
            return response
        if path == "/references" or path.startswith("/references/"):
            if not token_ok(parse_qs(query).get("token", [None])[0], self.options.token):
                return _response(HTTPStatus.FORBIDDEN, "invalid or missing access token\n")
            return self._reference(path)
        return _response(HTTPStatus.NOT_FOUND, "not found\n")

    def _reference(self, path: str):
        parts = path.strip("/").split("/")
        if len(parts) == 1:
            body = json.dumps([r.describe() for r in self.references.values()]).encode()
            return _response(HTTPStatus.OK, body, CONTENT_TYPES[".json"])
        reference = self.references.get(parts[1]) if len(parts) == 3 else None
        body = None
        if reference is not None:
            body = {"audio.wav": reference.audio_wav, "rendered.bin": reference.rendered,
                    "original.bin": reference.original}.get(parts[2])
        if body is None:
            return _response(HTTPStatus.NOT_FOUND, "no such reference\n")
        return _response(HTTPStatus.OK, body, CONTENT_TYPES[Path(parts[2]).suffix])

    # --- WebSocket --------------------------------------------------------------------

    async def _handler(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        sock = ws.transport.get_extra_info("socket")
        if sock is not None and self.limits.socket_send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.socket_send_buffer)
        client = Client(ws, self.limits)
        ws.client = client  # its pings count against its rate (connection.GuardedConnection)
        self._make_room_to_wait()
        self.waiting[client] = None
        sender = asyncio.create_task(client.send_loop())
        try:
            await self._hello(ws, client)
            self.waiting.pop(client, None)
            if len(self.clients) >= self.limits.max_clients:
                raise ProtocolError(CLOSE_TRY_LATER, f"server full ({self.limits.max_clients} clients); try again later")
            self.clients.add(client)
            self.mode.join(client)
            client.say(self._welcome())
            async for message in ws:
                self._on_message(client, message)
        except ProtocolError as exc:
            log.info("closing %s: %s %s", ws.remote_address, exc.code, exc.reason)
            self._forget(client)  # at once: a peer that does not answer the close holds it for a while
            await close(ws, exc.code, exc.reason)
        except ConnectionClosed:
            pass
        finally:
            self._forget(client)
            sender.cancel()

    def _forget(self, client: Client) -> None:
        if self.comparer:
            self.comparer.leave(client)
        self.waiting.pop(client, None)
        self.clients.discard(client)
        self.mode.leave(client)

    def _make_room_to_wait(self) -> None:
        """Connections before hello have max_waiting places of their own: the oldest waiting
        one is closed to make room, so silent sockets never keep a token holder out."""
        while len(self.waiting) >= self.limits.max_waiting:
            oldest = next(iter(self.waiting))
            del self.waiting[oldest]
            self._close_soon(oldest, CLOSE_TRY_LATER, "too many connections waiting to say hello; this one waited longest")

    def _close_soon(self, client: Client, code: int, reason: str) -> None:
        task = asyncio.create_task(close(client.ws, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _hello(self, ws, client: Client) -> None:
        try:
            message = await asyncio.wait_for(ws.recv(), self.limits.hello_timeout_s)
        except TimeoutError:
            raise ProtocolError(CLOSE_POLICY, f"no hello within {self.limits.hello_timeout_s:g} s") from None
        if isinstance(message, bytes):
            raise ProtocolError(CLOSE_POLICY, "audio before the token: the first message must be hello")
        hello = self._control(client, message)
        if hello["type"] != "hello":
            raise ProtocolError(CLOSE_POLICY, f"the first message must be hello, not {hello['type']}")
        if not token_ok(hello.get("token"), self.options.token):
            raise ProtocolError(CLOSE_POLICY, "invalid or missing access token")

    def _count(self, client: Client) -> None:
        if not client.rate.allow():
            raise ProtocolError(CLOSE_POLICY, f"more than {self.limits.messages_per_s:g} messages per second")

    def _control(self, client: Client, text: str) -> dict:
        self._count(client)
        if len(text) > self.limits.max_text_bytes or len(text.encode()) > self.limits.max_text_bytes:
            raise ProtocolError(CLOSE_TOO_BIG, f"text message over {self.limits.max_text_bytes} bytes")
        return parse_control(text)

    def _on_message(self, client: Client, message) -> None:
        if isinstance(message, bytes):
            self._count(client)
            offset, samples = parse_audio(message)
            self.mode.audio(client, offset, samples)
            if self.comparer:
                self.comparer.audio(client, offset, samples)
            return
        request = self._control(client, message)
        kind = request["type"]
        if kind == "ping":
            t0 = request.get("t0")
            if not isinstance(t0, (int, float)) or isinstance(t0, bool) or not math.isfinite(t0):
                raise ProtocolError(CLOSE_INVALID, "ping needs a finite number t0")
            client.say(control("pong", t0=t0, server_ms=now_ms()))
        elif kind == "hello":
            raise ProtocolError(CLOSE_POLICY, "hello sent twice")
        elif kind == "compare":
            if self.comparer:
                self.comparer.request(client, request)
            else:
                client.say(control("comparison", error="this server compares no attempts (learner mode with --references)"))
        else:  # start, stop
            self.mode.control(client, request)

    def _welcome(self) -> str:
        bundle = self.engine.bundle
        return control(
            "welcome", mode=self.mode.name, fps=FPS, sample_rate=SAMPLE_RATE, image_size=bundle.image_size,
            lookahead_ms=bundle.lookahead_ms, codec=self.options.codec, server_ms=now_ms(),
            bundle=bundle.path.parent.name, source=self.source_description,
            references=[r.describe() for r in self.references.values()],
            limits={"max_audio_samples": MAX_AUDIO_SAMPLES, "messages_per_s": self.limits.messages_per_s},
        )

    async def _housekeeping(self) -> None:
        """Close viewers whose socket stopped taking data; tell everyone the status."""
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(0.5)
            now = time.monotonic()
            for client in list(self.clients):
                if client.stalled(now):
                    self.clients.discard(client)
                    self._close_soon(client, CLOSE_POLICY, f"not reading: nothing taken for {self.limits.stall_timeout_s:g} s")
            if now - last_status < self.options.status_interval_s:
                continue
            last_status = now
            common = {"clients": len(self.clients), **self.mode.status()}
            for client in list(self.clients):
                if client.role != "new" and not client.controls:  # a client with messages waiting gets no more
                    client.say(control("status", **common, **client.summary()))


async def close(ws, code: int, reason: str, timeout: float = 2.0) -> None:
    """Close with a code and reason; a peer that does not read cannot take the close frame
    (websockets waits for its socket to drain, without end), so it is cut off after timeout."""
    try:
        await asyncio.wait_for(ws.close(code, reason), timeout)
    except TimeoutError:
        ws.transport.abort()


def comparer_for(engine, mode: str, references):
    """The learner comparison (rtmri.lessons.live) where learners have references, else None."""
    if mode != "learner" or not references:
        return None
    from rtmri import RtmriError
    from rtmri.lessons.live import LessonComparer

    try:
        return LessonComparer(engine, references)
    except RtmriError as exc:  # e.g. a bundle without an analysis grid
        log.warning("attempts will not be compared: %s", exc)
        return None


def _response(status: HTTPStatus, body, content_type: str = "text/plain; charset=utf-8"):
    from websockets.datastructures import Headers
    from websockets.http11 import Response

    body = body.encode() if isinstance(body, str) else body
    headers = Headers([
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Connection", "close"),
        ("Content-Length", str(len(body))),
        ("Content-Type", content_type),
        ("Cache-Control", "no-store"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
    ])
    return Response(status.value, status.phrase, headers, body)


class ServerThread:
    """Runs an RtmriServer on its own event loop in a background thread (tests, benchmarks)."""

    def __init__(self, server: RtmriServer) -> None:
        self.server = server
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="rtmri-serve", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve())
        except BaseException as exc:  # reported by start()
            self.error = exc
            self.server.started.set()

    def start(self, timeout: float = 20.0) -> "ServerThread":
        self._thread.start()
        if not self.server.started.wait(timeout) or self.error is not None:
            raise RuntimeError(f"the server did not start: {self.error!r}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.stop()
        self._thread.join(timeout)

    def __enter__(self) -> "ServerThread":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
