"""The `rtmri serve` process: one port, the page over HTTP and the WebSocket (WS_PATH).

RtmriServer puts the parts together and runs them on one event loop:

    http_routes  HTTP requests: the static page with its CSP, the references API, the upgrade
    admission    a connection's hello (token, timeout), its place, its message limits
    dispatch     a joined client's messages to the mode (modes.py) and to the comparer

Each connection says hello first, then is a viewer (broadcast mode) or a learner session
(learner mode). Any rule broken closes that connection alone, with a close code and a
reason (protocol.ProtocolError).

Behind a balancer (`rtmri serve --workers N`, or a worker of `rtmri deploy haproxy`) the
process also answers HAProxy's agent check (agent.py), refuses the WebSocket handshake with
503 when it is full or draining (HAProxy's `retry-on 503` then tries another worker), and
drains on request (drain(): new sessions refused, running ones told to move, the rest
closed at the deadline). Its figures are on a Prometheus port of its own (metrics.py).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus

from websockets.asyncio.server import serve
from websockets.exceptions import ConnectionClosed

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.server.admission import Admission, close
from rtmri.streamer.server.agent import agent_reply, serve_agent
from rtmri.streamer.server.clients import Client
from rtmri.streamer.server.connection import GuardedConnection
from rtmri.streamer.server.dispatch import Comparer, Dispatch
from rtmri.streamer.server.http_routes import HttpRoutes, respond
from rtmri.streamer.server.metrics import ServerMetrics
from rtmri.streamer.server.modes import make_mode
from rtmri.streamer.server.protocol import (CLOSE_MOVE, DEFAULT_CODEC, DEFAULT_QUALITY, MAX_AUDIO_SAMPLES, MOVE, ProtocolError,
                                            control, now_ms)
from rtmri.streamer.server.security import Limits, is_loopback

HOUSEKEEPING_S = 0.5  # how often stalled clients are looked for
DRAIN_POLL_S = 0.1
DRAINING = "this server is draining; moving to another"
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
    # Behind a balancer:
    balanced: bool = False  # a full or draining server refuses the handshake with 503 (HAProxy tries another)
    worker_name: str = ""  # said in the welcome: which worker a page is on
    public_host: str | None = None  # the address browsers reach (the balancer's), for the loopback rule; None: host
    agent_port: int | None = None  # HAProxy's agent check (agent.py), on host; 0: any free port
    metrics_port: int | None = None  # Prometheus text (metrics.py), on host; 0: any free port


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
        self.http = HttpRoutes(self.references, options.token, is_loopback(options.public_host or options.host),
                               options.allowed_origins)
        self.admission = Admission(self.limits, options.token)
        self.metrics = ServerMetrics()
        self.metrics.sessions.set_function(lambda: self.mode.joined)
        self.metrics.clients.set_function(lambda: len(self.admission.clients))
        self.dispatch = Dispatch(self.mode, comparer, self.limits.max_comparisons_waiting, self.metrics)
        self.draining = False
        self._drain_task: asyncio.Task | None = None
        self.port: int | None = None
        self.agent_port: int | None = None
        self.metrics_port: int | None = None
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
        async with serve(self._handler, self.options.host, self.options.port, process_request=self._process_request,
                         compression=None, max_size=limits.max_message_bytes, max_queue=16, write_limit=64 * 1024,
                         ping_interval=20, ping_timeout=20, close_timeout=2, open_timeout=10, ssl=self.options.ssl,
                         logger=log, create_connection=Connection) as server:
            self.port = server.sockets[0].getsockname()[1]
            housekeeping = asyncio.create_task(self._housekeeping())
            agent, metrics = await self._start_side_ports()
            await self.mode.start()
            self.started.set()
            try:
                await self._stop.wait()
            finally:
                housekeeping.cancel()
                if agent is not None:
                    agent.close()
                if metrics is not None:
                    metrics.shutdown()
                    metrics.server_close()
                await self.mode.stop()

    async def _start_side_ports(self):
        """The agent check and the metrics endpoint, where asked for."""
        agent = metrics = None
        if self.options.agent_port is not None:
            agent = await serve_agent(self.options.host, self.options.agent_port, self.agent_reply)
            self.agent_port = agent.sockets[0].getsockname()[1]
        if self.options.metrics_port is not None:
            metrics = self.metrics.serve(self.options.host, self.options.metrics_port)
            self.metrics_port = metrics.server_port
        return agent, metrics

    def stop(self) -> None:
        """From any thread; nothing to do when it stopped already (a drain ends that way)."""
        if self._loop is not None and self._stop is not None:
            try:
                self._loop.call_soon_threadsafe(self._stop.set)
            except RuntimeError:  # its loop is closed: it stopped
                pass

    def drain(self, deadline_s: float) -> None:
        """From any thread: take no new sessions, tell the running ones to move, and stop when
        they are gone or at the deadline (those left are closed with 1001)."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._begin_drain, deadline_s)

    def _begin_drain(self, deadline_s: float) -> None:
        if self.draining:
            return
        self.draining = True
        self.metrics.draining.set(1)
        log.info("draining: %d clients told to move within %g s", len(self.admission.clients), deadline_s)
        for client in list(self.admission.clients):
            client.tell(control(MOVE, reason=DRAINING, within_s=deadline_s))
        self._drain_task = asyncio.get_running_loop().create_task(self._drain(deadline_s))  # held: a task is weakly referenced

    async def _drain(self, deadline_s: float) -> None:
        end = time.monotonic() + deadline_s
        while self.admission.clients and time.monotonic() < end:
            await asyncio.sleep(DRAIN_POLL_S)
        self._stop.set()

    # --- room, for a balancer ---------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Sessions this process takes: learners, or viewers in broadcast mode."""
        if self.mode.name == "learner":
            return min(self.limits.max_sessions, self.limits.max_clients)
        return self.limits.max_clients

    def agent_reply(self) -> str:
        return agent_reply(self.mode.joined + len(self.admission.waiting), self.capacity, self.draining)

    def _process_request(self, connection, request):
        response = self.http.process_request(connection, request)
        if response is None and self.options.balanced:
            problem = self._no_room()
            if problem:
                self.metrics.refused_sessions.inc()
                return respond(HTTPStatus.SERVICE_UNAVAILABLE, problem + "\n")
        return response

    def _no_room(self) -> str | None:
        """Why a new WebSocket is refused at its handshake (behind a balancer), or None."""
        if self.draining:
            return DRAINING
        if self.mode.joined + len(self.admission.waiting) >= self.capacity:
            return f"server full ({self.capacity} sessions)"
        return None

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
        client = Client(ws, self.limits, self.metrics)
        ws.client = client  # its pings count against its rate (connection.GuardedConnection)
        self.admission.arrive(client)
        sender = asyncio.create_task(client.send_loop())
        try:
            await self.admission.admit(client)
            if self.draining:
                raise ProtocolError(CLOSE_MOVE, DRAINING)
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
        worker = {"worker": self.options.worker_name} if self.options.worker_name else {}
        return control(
            "welcome", mode=self.mode.name, fps=FPS, sample_rate=SAMPLE_RATE, image_size=bundle.image_size,
            lookahead_ms=bundle.lookahead_ms, codec=self.options.codec, server_ms=now_ms(),
            bundle=bundle.path.parent.name, source=self.source_description,
            references=[r.describe() for r in self.references],
            limits={"max_audio_samples": MAX_AUDIO_SAMPLES, "messages_per_s": self.limits.messages_per_s}, **worker,
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
