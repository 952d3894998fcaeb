"""rtmri serve --bundle B: the frames in browsers, over one WebSocket port.

broadcast (default): the microphone (or --file, played in real time and started again at
its end) to every connected browser, e.g. a classroom. learner: every browser sends its
own microphone and sees its own vocal tract, next to the --references recordings.

Listens on 127.0.0.1 unless --host says otherwise; any other address needs an access token
(one is made when --token is not given), printed as a join URL and a QR code.

This command hands the server its lessons: the --references folder read as a lesson set
(in learner mode without --references: the shipped lessons), and in learner mode the
comparer of attempts (rtmri.lessons.live); the server package itself knows nothing of lessons.

--workers N (learner mode): N worker processes behind one HAProxy (rtmri.deploy.workers).
A process given --agent-port is a worker behind a balancer: it answers HAProxy's agent
check, refuses new sessions with 503 when full, and SIGTERM drains it (--drain-s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import ssl
import sys

from rtmri import RtmriError
from rtmri.bundle.engine import DEFAULT_THREADS, Engine
from rtmri.demo import shipped
from rtmri.lessons.live import lesson_comparer, lesson_references
from rtmri.streamer.server.app import ANY_ADDRESS, RtmriServer, ServerOptions
from rtmri.streamer.server.protocol import CODECS, DEFAULT_CODEC, DEFAULT_QUALITY
from rtmri.streamer.server.remote_comparer import RemoteComparer
from rtmri.streamer.server.security import Limits, is_loopback, new_token
from rtmri.streamer.sources import FileSource, MicrophoneSource, device_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=True, help="model bundle (folder, model.onnx or model.onnx.json)")
    parser.add_argument("--mode", choices=("broadcast", "learner"), default="broadcast",
                        help="broadcast: one audio source to every browser; learner: each browser's own microphone")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--file", help="broadcast: stream this audio file in real time (looped) instead of the microphone")
    source.add_argument("--device", type=device_argument, help="broadcast: input device number or name (default: the system's)")
    parser.add_argument("--once", action="store_true", help="broadcast of --file: play it once, do not loop")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for a classroom)")
    parser.add_argument("--port", type=int, default=8765, help="port for the page and the WebSocket (default 8765; 0: any free one)")
    parser.add_argument("--token", help="access token (required off loopback; made up when not given)")
    parser.add_argument("--references", metavar="DIR", help="folder of native recordings (wav, flac, mp3, mp4) to compare with")
    parser.add_argument("--codec", choices=tuple(CODECS), default=DEFAULT_CODEC, help=f"frame image format (default {DEFAULT_CODEC})")
    parser.add_argument("--quality", type=int, default=DEFAULT_QUALITY, help=f"JPEG quality (default {DEFAULT_QUALITY})")
    parser.add_argument("--max-sessions", type=int, default=8, help="learner sessions at once (default 8)")
    parser.add_argument("--max-clients", type=int, default=100, help="connections at once (default 100)")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="URL",
                        help="another page origin allowed to open the WebSocket (repeatable)")
    parser.add_argument("--tls-cert", help="certificate (PEM) for https/wss: browsers give the microphone to secure pages only")
    parser.add_argument("--tls-key", help="private key (PEM) of --tls-cert")
    parser.add_argument("--smooth", type=float, default=0.0, help="broadcast: temporal smoothing 0..1 (default 0: off)")
    parser.add_argument("--provider", help="onnxruntime provider: tensorrt, cuda or cpu (default: the best available)")
    parser.add_argument("--compare-here", action="store_true",
                        help="learner mode: compare attempts in this process (default: in a process of their own, at a "
                             "lower priority, so that comparisons do not take the live frames' CPU)")
    parser.add_argument("--max-comparisons-waiting", type=int, default=16,
                        help="learner mode: compare requests in hand at once; past that, or past 10 s of work ahead, a "
                             "learner is told the server is busy (default 16)")
    group = parser.add_argument_group("several processes (learner mode)")
    group.add_argument("--workers", type=int, default=1,
                       help="worker processes behind one HAProxy on --host:--port (default 1: this process alone)")
    group.add_argument("--balancer", action="store_true",
                       help="HAProxy in front even of one worker (--workers 1 alone is this process, without one)")
    group.add_argument("--stats-port", type=int, default=0,
                       help="with --workers: HAProxy's stats page and the workers' metrics on 127.0.0.1 (default: a free port)")
    group.add_argument("--agent-port", type=int,
                       help="a worker behind a balancer: HAProxy's agent check on this port (deploy's default: --port + 1)")
    group.add_argument("--metrics-port", type=int, help="Prometheus text on this port (deploy's default: --port + 2)")
    group.add_argument("--worker-name", default="", help="a worker's name, said to its pages")
    group.add_argument("--public-host", help="a worker: the address browsers reach (the balancer's), for the loopback rule")
    group.add_argument("--drain-s", type=float, default=10.0,
                       help="a worker: on SIGTERM, seconds its sessions get to move before they are closed (default 10)")
    group.add_argument("--threads", type=int, default=DEFAULT_THREADS, help=f"engine threads (default {DEFAULT_THREADS})")
    group.add_argument("--cpus", help="run on these CPU cores only (e.g. 0,1 or 2-3)")


def lan_address() -> str:
    """This machine's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: connect() on UDP only picks a route
            return s.getsockname()[0]
        except OSError:
            return socket.gethostbyname(socket.gethostname())


def join_url(server, token: str | None) -> str:
    return join_url_for("https" if server.options.ssl else "http", server.options.host, server.port, token)


def join_url_for(scheme: str, host: str, port: int, token: str | None) -> str:
    """The URL a learner opens (this machine's LAN address when listening on every address)."""
    shown = lan_address() if host in ANY_ADDRESS else host
    shown = f"[{shown}]" if ":" in shown else shown
    return f"{scheme}://{shown}:{port}/" + (f"#token={token}" if token else "")


def print_qr(text: str) -> None:
    try:
        import qrcode  # qrcode: the live extra, optional
    except ImportError:
        print("(pip install qrcode to see the join URL as a QR code here)", file=sys.stderr)
        return
    qr = qrcode.QRCode(border=1)
    qr.add_data(text)
    qr.print_ascii(out=sys.stderr, invert=True)


def cpu_list(text: str) -> set[int]:
    """'0,2-3' -> {0, 2, 3}."""
    cores = set()
    try:
        for part in text.split(","):
            lo, _, hi = part.partition("-")
            cores.update(range(int(lo), int(hi or lo) + 1))
    except ValueError:
        raise RtmriError(f"--cpus {text!r}: expected core numbers such as 0,2-3") from None
    return cores


COMPARER_THREADS = 1


def make_lesson_comparer(bundle: str, folder: str, threads: int):
    """In the comparing process (RemoteComparer): its own engine, the lessons, their comparer,
    every reference drawn before the first learner asks."""
    engine = Engine(bundle, threads=threads)
    comparer = lesson_comparer(engine, lesson_references(folder, engine))
    if comparer is not None:
        comparer.warm_up()
    return comparer


def comparer_for(args, folder, engine, references):
    """The learners' comparer, in a process of its own (or in this one with --compare-here)."""
    if args.compare_here:
        return lesson_comparer(engine, references)
    try:
        return RemoteComparer(make_lesson_comparer, (args.bundle, str(folder), COMPARER_THREADS))
    except RuntimeError as exc:
        print(f"rtmri serve: attempts will not be compared: {exc}", file=sys.stderr)
        return None


def main(args) -> int:
    if args.workers != 1 or args.balancer:
        from rtmri.deploy.workers import serve_workers  # the supervisor: only when there are several

        return serve_workers(args)
    if args.cpus:
        try:
            os.sched_setaffinity(0, cpu_list(args.cpus))
        except OSError as exc:
            raise RtmriError(f"--cpus {args.cpus}: {exc}") from exc
    token = args.token
    if token is None and not is_loopback(args.host):
        token = new_token()
    if (args.tls_cert is None) != (args.tls_key is None):
        raise RtmriError("--tls-cert and --tls-key go together")
    ssl_context = None
    if args.tls_cert:
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise RtmriError(f"cannot use {args.tls_cert} / {args.tls_key}: {exc}") from exc
    if args.mode == "learner" and (args.file or args.device is not None):
        raise RtmriError("--file and --device are for broadcast mode; in learner mode each browser sends its microphone")

    engine = Engine(args.bundle, provider=args.provider, threads=args.threads)
    engine.warm_up(batch_sizes=(1, 2, 8) if args.mode == "learner" else (1, 2))
    make_source, description = None, ""
    if args.mode == "broadcast":
        if args.file:
            make_source = lambda: FileSource(args.file, realtime=True)  # noqa: E731
            probe = make_source()  # a bad file fails now, not in the broadcast thread
            description = probe.description
            probe.close()
        else:
            MicrophoneSource(args.device).close()  # fails now, with the device listing, rather than in the thread
            make_source = lambda: MicrophoneSource(args.device)  # noqa: E731
            description = f"microphone {'(default)' if args.device is None else args.device}"
    references, comparer = [], None
    folder = args.references or (shipped().lessons if args.mode == "learner" else None)
    if folder:
        references = lesson_references(folder, engine, args.codec, args.quality)
        print(f"rtmri serve: {len(references)} reference recording(s) rendered from {folder}", file=sys.stderr)
        if args.mode == "learner" and references:
            comparer = comparer_for(args, folder, engine, references)
    limits = Limits(max_sessions=args.max_sessions, max_clients=args.max_clients,
                    max_comparisons_waiting=args.max_comparisons_waiting)
    options = ServerOptions(mode=args.mode, host=args.host, port=args.port, token=token, codec=args.codec,
                            quality=args.quality, limits=limits, allowed_origins=tuple(args.allow_origin),
                            ssl=ssl_context, repeat=not args.once, smoothing=args.smooth,
                            balanced=args.agent_port is not None, worker_name=args.worker_name, public_host=args.public_host,
                            agent_port=args.agent_port, metrics_port=args.metrics_port)
    server = RtmriServer(engine, options, make_source, references, description, comparer)
    try:
        asyncio.run(_serve(server, token, args.drain_s if options.balanced else None))
    except OSError as exc:  # the port is taken, the address is not ours
        raise RtmriError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc
    return 0


async def _serve(server, token: str | None, drain_s: float | None = None) -> None:
    """drain_s: a worker behind a balancer, drained by SIGTERM (None: SIGTERM stops at once)."""
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, server.stop)
    loop.add_signal_handler(signal.SIGTERM, server.stop if drain_s is None else lambda: server.drain(drain_s))
    task = asyncio.create_task(server.serve())
    while not server.started.is_set() and not task.done():
        await asyncio.sleep(0.05)
    if task.done():
        await task  # raises what stopped it
        return
    print(f"rtmri serve: {server.mode.description} ({server.engine.bundle.path.parent.name}, {', '.join(server.engine.providers)}); Ctrl+C to stop",
          file=sys.stderr)
    url = join_url(server, token)
    print(f"rtmri serve: open {url}", flush=True)
    if server.agent_port is not None or server.metrics_port is not None:
        print(f"rtmri serve: agent check on port {server.agent_port}, metrics on port {server.metrics_port}", file=sys.stderr)
    if token is not None:
        print_qr(url)
    await task
    print("rtmri serve: stopped", file=sys.stderr)
