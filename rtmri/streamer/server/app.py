"""The `rtmri serve` process: one port, the page over HTTP and the WebSocket (WS_PATH).

RtmriServer puts the parts together and runs them on one event loop:

    http_routes  HTTP requests: the static page with its CSP, the references API, the upgrade
    admission    a connection's hello (token, timeout), its place, its message limits
    dispatch     a joined client's messages to the mode (modes.py) and to the comparer

Each connection says hello first, then is a viewer (broadcast mode) or a learner session
(learner mode). Any rule broken closes that connection alone, with a close code and a
reason (protocol.ProtocolError).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.server.admission import Admission, close
from rtmri.streamer.server.clients import Client
from rtmri.streamer.server.connection import GuardedConnection
from rtmri.streamer.server.dispatch import Comparer, Dispatch
from rtmri.streamer.server.http_routes import HttpRoutes
from rtmri.streamer.server.modes import make_mode
from rtmri.streamer.server.protocol import DEFAULT_CODEC, DEFAULT_QUALITY, MAX_AUDIO_SAMPLES, ProtocolError, control, now_ms
from rtmri.streamer.server.security import Limits, is_loopback

HOUSEKEEPING_S = 0.5  # how often stalled clients are looked for
ANY_ADDRESS = ("0.0.0.0", "::", "")
log = logging.getLogger("rtmri.serve")


@dataclass
class ServerOptions:
    mode: str = "broadcast"  # or "learner"
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    codec: str = DEFAULT_CODEC
    quality: int = DEFAULT_QUALITY
    limits: Limits = field(default_factory=Limits)
    allowed_origins: tuple[str, ...] = ()
    ssl: object = None  # an ssl.SSLContext: https and wss (browsers give the microphone to secure pages only)
    status_interval_s: float = 2.0
    repeat: bool = True  # broadcast of a file: start again at its end
    smoothing: float = 0.0  # broadcast: the Streamer's temporal smoothing


class RtmriServer:
    def __init__(self, engine, options: ServerOptions, make_source=None, references=(), source_description: str = "",
                 comparer: Comparer | None = None) -> None:
        """references: references.Reference, served to the page; comparer: what compares a
        learner's attempt with one of them (None: compare requests get an error)."""
        self.engine = engine
        self.options = options
        self.limits = options.limits
        self.mode = make_mode(options, engine, make_source, source_description)
        self.references = list(references)
        self.source_description = source_description
        self.http = HttpRoutes(self.references, options.token, is_loopback(options.host), options.allowed_origins)
        self.admission = Admission(self.limits, options.token)
        self.dispatch = Dispatch(self.mode, comparer)
        self.port: int | None = None
        self.started = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None

    # --- lifetime ---------------------------------------------------------------------

    async def serve(self) -> None:
        """Serve until stop() is called."""
        limits = self.limits

        class Connection(GuardedConnection):
            max_write_buffer_bytes = limits.max_write_buffer_bytes

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with serve(self._handler, self.options.host, self.options.port, process_request=self.http.process_request,
                         compression=None, max_size=limits.max_message_bytes, max_queue=16, write_limit=64 * 1024,
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
        host = self.options.host if self.options.host not in ANY_ADDRESS else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{scheme}://{host}:{self.port}/"

    # --- one connection ---------------------------------------------------------------

    async def _handler(self, ws) -> None:
        sock = ws.transport.get_extra_info("socket")
        if sock is not None and self.limits.socket_send_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.limits.socket_send_buffer)
        client = Client(ws, self.limits)
        ws.client = client  # its pings count against its rate (connection.GuardedConnection)
        self.admission.arrive(client)
        sender = asyncio.create_task(client.send_loop())
        try:
            await self.admission.admit(client)
            self.dispatch.join(client)
            client.say(self._welcome())
            async for message in ws:
                self.dispatch.message(client, message)
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
        self.admission.leave(client)
        self.dispatch.leave(client)

    def _welcome(self) -> str:
        bundle = self.engine.bundle
        return control(
            "welcome", mode=self.mode.name, fps=FPS, sample_rate=SAMPLE_RATE, image_size=bundle.image_size,
            lookahead_ms=bundle.lookahead_ms, codec=self.options.codec, server_ms=now_ms(),
            bundle=bundle.path.parent.name, source=self.source_description,
            references=[r.describe() for r in self.references],
            limits={"max_audio_samples": MAX_AUDIO_SAMPLES, "messages_per_s": self.limits.messages_per_s},
        )

    async def _housekeeping(self) -> None:
        """Close clients whose socket stopped taking data; tell everyone the status."""
        last_status = time.monotonic()
        while True:
            await asyncio.sleep(HOUSEKEEPING_S)
            now = time.monotonic()
            self.admission.close_stalled(now)
            if now - last_status >= self.options.status_interval_s:
                last_status = now
                self.dispatch.tell_status(self.admission.clients)


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
