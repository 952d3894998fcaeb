"""`rtmri serve --workers N`: N `rtmri serve` worker processes on loopback, each with its own
engine on its own share of the cores (--cpus, --threads), behind one HAProxy
(/usr/sbin/haproxy) on --host:--port that this command configures (haproxy.py, in a
temporary folder) and starts.

The workers get the command's own options (bundle, lessons, token, limits); TLS ends at
HAProxy (the certificate and key joined into the one PEM file it reads). A worker that
dies is started again on its ports after RESTART_DELAY_S (longer when it keeps dying at its
start); meanwhile HAProxy sends its learners' pages, which reconnect by themselves, to the
others. Ctrl+C stops everything;
SIGTERM drains the workers first (each tells its learners to move, and is gone within
--drain-s), then stops HAProxy.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from rtmri import RtmriError
from rtmri.deploy.haproxy import WorkerAddress, haproxy_config, prometheus_targets
from rtmri.streamer.serve_cli import join_url_for, print_qr
from rtmri.streamer.server.app import ANY_ADDRESS
from rtmri.streamer.server.security import is_loopback, new_token

HAPROXY = "/usr/sbin/haproxy"
WORKER_HOST = "127.0.0.1"
START_TIMEOUT_S = 180.0
RESTART_DELAY_S = 1.0  # doubled, up to MAX_RESTART_DELAY_S, for a worker that died within STABLE_S of its start
MAX_RESTART_DELAY_S = 30.0
STABLE_S = 10.0
POLL_S = 0.2
STOP_TIMEOUT_S = 10.0
OPEN_LINE = re.compile(r"rtmri serve: open (\S+)")
# The options a worker takes over from this command as they are (the rest are set per worker).
PASSED_ON = ("bundle", "mode", "references", "codec", "quality", "max_sessions", "max_clients", "provider",
             "max_comparisons_waiting", "drain_s")


def free_ports(hosts: list[str], avoid: tuple[int, ...] = ()) -> list[int]:
    """A port free now on each host, all different and none in avoid: every socket stays
    bound until the last is chosen (bound and closed one at a time, the kernel may hand one
    port out twice; a worker on HAProxy's public port made HAProxy stop right after its start)."""
    with contextlib.ExitStack() as held:
        ports = []
        for host in hosts:
            while True:
                s = held.enter_context(socket.socket())
                s.bind((host, 0))
                if s.getsockname()[1] not in avoid:
                    break
            ports.append(s.getsockname()[1])
        return ports


def core_shares(workers: int, cores: list[int]) -> list[list[int] | None]:
    """Each worker's cores: disjoint shares when there are enough, else None (all, shared)."""
    if len(cores) < workers:
        return [None] * workers
    per = len(cores) // workers
    return [cores[i * per:(i + 1) * per] for i in range(workers)]


class Worker:
    """One `rtmri serve` worker process on loopback."""

    def __init__(self, address: WorkerAddress, command: list[str]) -> None:
        self.address = address
        self.command = command
        self.process: subprocess.Popen | None = None
        self.ready = threading.Event()
        self.started_at = 0.0
        self.restart_delay = RESTART_DELAY_S

    def start(self) -> None:
        self.ready.clear()
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            if OPEN_LINE.search(line):
                self.ready.set()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive:
            self.process.send_signal(sig)

    def wait(self, timeout: float) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def worker_command(args, address: WorkerAddress, token: str | None, cpus: list[int] | None, threads: int) -> list[str]:
    command = [sys.executable, "-m", "rtmri.cli", "serve", "--host", address.host, "--port", str(address.port),
               "--agent-port", str(address.agent_port), "--metrics-port", str(address.metrics_port),
               "--worker-name", address.name, "--public-host", args.host, "--threads", str(threads)]
    for name in PASSED_ON:
        value = getattr(args, name)
        if value is not None:
            command += ["--" + name.replace("_", "-"), str(value)]
    if token:
        command += ["--token", token]
    if args.compare_here:
        command.append("--compare-here")
    for origin in args.allow_origin:
        command += ["--allow-origin", origin]
    if cpus:
        command += ["--cpus", ",".join(map(str, cpus))]
    return command


def check_arguments(args) -> None:
    if args.workers < 1 or args.workers > 64:
        raise RtmriError("--workers: 1..64")
    if args.mode != "learner":
        raise RtmriError("--workers is for learner mode (a broadcast has one source: one process serves it)")
    if not Path(HAPROXY).exists():
        raise RtmriError(f"--workers needs HAProxy at {HAPROXY} (Debian: apt-get install haproxy)")
    if (args.tls_cert is None) != (args.tls_key is None):
        raise RtmriError("--tls-cert and --tls-key go together")
    if args.agent_port is not None or args.metrics_port is not None:
        raise RtmriError("--agent-port and --metrics-port are a single worker's; --workers chooses its workers' ports")


def serve_workers(args) -> int:
    check_arguments(args)
    token = args.token if args.token is not None or is_loopback(args.host) else new_token()
    cores = sorted(os.sched_getaffinity(0))
    shares = core_shares(args.workers, cores)
    threads = max(1, len(cores) // args.workers)
    given = tuple(p for p in (args.port, args.stats_port) if p)
    chosen = iter(free_ports([args.host, WORKER_HOST] + [WORKER_HOST] * (3 * args.workers), avoid=given))
    port, stats_port = next(chosen), next(chosen)
    port, stats_port = args.port or port, args.stats_port or stats_port
    addresses = [WorkerAddress(f"w{i + 1}", WORKER_HOST, next(chosen), next(chosen), next(chosen)) for i in range(args.workers)]
    workers = [Worker(a, worker_command(args, a, token, cpus, threads)) for a, cpus in zip(addresses, shares)]
    with tempfile.TemporaryDirectory(prefix="rtmri-haproxy-") as tmp:
        folder = Path(tmp)
        pem = _tls_pem(args, folder)
        config = folder / "haproxy.cfg"
        config.write_text(haproxy_config(addresses, (args.host, port), (WORKER_HOST, stats_port), pem))
        (folder / "prometheus-targets.json").write_text(prometheus_targets(addresses))
        _check_config(config)
        return _run(args, workers, config, folder, token, port, stats_port)


def _tls_pem(args, folder: Path) -> str | None:
    """HAProxy reads the certificate and its key from one file."""
    if not args.tls_cert:
        return None
    pem = folder / "site.pem"
    try:
        text = Path(args.tls_cert).read_text() + "\n" + Path(args.tls_key).read_text()
    except OSError as exc:
        raise RtmriError(f"cannot read {args.tls_cert} / {args.tls_key}: {exc}") from exc
    pem.touch(mode=0o600)
    pem.write_text(text)
    return str(pem)


def _check_config(config: Path) -> None:
    result = subprocess.run([HAPROXY, "-c", "-q", "-f", str(config)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RtmriError(f"HAProxy refuses {config}: {result.stdout}{result.stderr}".strip())


def _run(args, workers: list[Worker], config: Path, folder: Path, token, port: int, stats_port: int) -> int:
    stopping = threading.Event()
    draining = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: draining.set())
    haproxy = None
    try:
        for worker in workers:
            worker.start()
        _wait_ready(workers, stopping)
        haproxy = subprocess.Popen([HAPROXY, "-db", "-f", str(config)])
        _wait_listening(haproxy, WORKER_HOST if args.host in ANY_ADDRESS else args.host, port)
        scheme = "https" if args.tls_cert else "http"
        url = join_url_for(scheme, args.host, port, token)
        print(f"rtmri serve: {len(workers)} workers behind HAProxy ({config}); stats and metrics: "
              f"http://{WORKER_HOST}:{stats_port}/stats, /metrics, /workers/<name>/metrics; Prometheus targets: "
              f"{folder / 'prometheus-targets.json'}; Ctrl+C to stop", file=sys.stderr)
        print(f"rtmri serve: open {url}", flush=True)
        if token is not None:
            print_qr(url)
        _supervise(workers, haproxy, stopping, draining)
    finally:
        if draining.is_set():
            for worker in workers:
                worker.signal(signal.SIGTERM)
            for worker in workers:
                worker.wait(args.drain_s + STOP_TIMEOUT_S)
        for worker in workers:
            worker.signal(signal.SIGINT)
        for worker in workers:
            worker.wait(STOP_TIMEOUT_S)
        if haproxy is not None:
            haproxy.terminate()
            haproxy.wait(STOP_TIMEOUT_S)
    print("rtmri serve: stopped", file=sys.stderr)
    return 0


def _wait_ready(workers: list[Worker], stopping: threading.Event) -> None:
    end = time.monotonic() + START_TIMEOUT_S
    while not all(w.ready.is_set() for w in workers):
        failed = [w for w in workers if not w.alive]
        if failed:
            raise RtmriError(f"worker {failed[0].address.name} did not start (exit {failed[0].process.returncode}; "
                             "its error is above)")
        if stopping.is_set():
            raise KeyboardInterrupt
        if time.monotonic() > end:
            raise RtmriError(f"the workers did not start within {START_TIMEOUT_S:g} s")
        time.sleep(POLL_S)


def _wait_listening(haproxy: subprocess.Popen, host: str, port: int) -> None:
    """Until HAProxy takes connections on its public port (the URL is printed after that)."""
    end = time.monotonic() + START_TIMEOUT_S
    while True:
        if haproxy.poll() is not None:
            raise RtmriError(f"HAProxy stopped at its start (exit {haproxy.returncode}; its error is above)")
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise RtmriError(f"HAProxy does not listen on {host}:{port}") from None
            time.sleep(POLL_S / 4)


def _supervise(workers: list[Worker], haproxy: subprocess.Popen, stopping: threading.Event,
               draining: threading.Event) -> None:
    """Until Ctrl+C or SIGTERM: start a worker again when it died."""
    died: dict[Worker, float] = {}
    while not (stopping.is_set() or draining.is_set()):
        if haproxy.poll() is not None:
            raise RtmriError(f"HAProxy stopped (exit {haproxy.returncode})")
        now = time.monotonic()
        for worker in workers:
            if worker.alive:
                continue
            if worker not in died:
                died[worker] = now
                quick = now - worker.started_at < STABLE_S
                worker.restart_delay = min(2 * worker.restart_delay, MAX_RESTART_DELAY_S) if quick else RESTART_DELAY_S
                print(f"rtmri serve: worker {worker.address.name} stopped (exit {worker.process.returncode}); "
                      f"starting it again in {worker.restart_delay:g} s", file=sys.stderr)
            elif now - died[worker] >= worker.restart_delay:
                del died[worker]
                worker.start()
        time.sleep(POLL_S)

