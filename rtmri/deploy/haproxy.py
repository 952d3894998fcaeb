"""The HAProxy configuration in front of `rtmri serve` workers (Debian's haproxy 2.6).

- One frontend on the public address (TLS terminated here when a PEM is given: the
  workers then speak plain HTTP on their own network), the page, the references and the
  WebSocket all to one backend; a WebSocket is one TCP connection, so a learner's session
  stays on the worker that took it (`timeout tunnel` keeps it open through a lesson).
- `balance leastconn` with each worker's weight from its agent check (the worker's own
  count of free session places: rtmri.streamer.server.agent): a new session goes where the
  fewest sessions are; a full or draining worker says "drain" and gets none.
- A worker that is full or draining refuses the WebSocket handshake with 503 (one still
  starting or just killed refuses the connection): `retry-on` with `option redispatch`
  sends the request to another worker, so the page sees the refusal only when every worker
  is full. The TCP health check marks a dead worker down within HEALTH_INTER_MS * FALL.
- A stats listener (loopback unless told) with HAProxy's stats page (/stats), HAProxy's own
  Prometheus exporter (/metrics) and each worker's metrics (/workers/<name>/metrics).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from rtmri import RtmriError

HEALTH_INTER_MS = 500
FALL, RISE = 1, 2
AGENT_INTER_MS = 500
RETRIES = 3
TIMEOUTS = {"connect": "2s", "client": "60s", "server": "60s", "tunnel": "2h", "http-request": "10s",
            "client-fin": "5s", "server-fin": "5s", "queue": "5s"}
NAME = re.compile(r"[A-Za-z0-9_.-]{1,40}")


@dataclass(frozen=True)
class WorkerAddress:
    """A worker: its page and WebSocket port, its agent-check port, its metrics port."""

    name: str
    host: str
    port: int
    agent_port: int
    metrics_port: int

    @property
    def metrics_target(self) -> str:
        return f"{_host(self.host)}:{self.metrics_port}"


def parse_worker(text: str, index: int) -> WorkerAddress:
    """HOST:PORT[:AGENT_PORT[:METRICS_PORT]] (defaults PORT+1, PORT+2, as `rtmri serve
    --agent-port`, `--metrics-port` are documented); an IPv6 host in brackets."""
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not match:
        raise RtmriError(f"--worker {text!r}: expected HOST:PORT[:AGENT_PORT[:METRICS_PORT]]")
    host, port = match.group(1).strip("[]"), int(match.group(2))
    agent = int(match.group(3)) if match.group(3) else port + 1
    metrics = int(match.group(4)) if match.group(4) else port + 2
    for value in (port, agent, metrics):
        if not 0 < value < 65536:
            raise RtmriError(f"--worker {text!r}: port {value} is not 1..65535")
    return WorkerAddress(f"w{index + 1}", host, port, agent, metrics)


def parse_address(text: str, what: str) -> tuple[str, int]:
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]*):(\d+)", text)
    if not match or not 0 < int(match.group(2)) < 65536:
        raise RtmriError(f"{what} {text!r}: expected HOST:PORT (HOST may be empty: every address)")
    return match.group(1).strip("[]"), int(match.group(2))


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def haproxy_config(workers: list[WorkerAddress], bind: tuple[str, int], stats: tuple[str, int] | None = None,
                   tls_pem: str | None = None, max_connections: int = 4096) -> str:
    """The haproxy.cfg text."""
    if not workers:
        raise RtmriError("no workers to balance")
    names = [w.name for w in workers]
    if len(set(names)) != len(names) or not all(NAME.fullmatch(n) for n in names):
        raise RtmriError(f"worker names must be distinct words: {names}")
    ssl = f" ssl crt {tls_pem}" if tls_pem else ""
    lines = [
        "# written by rtmri (rtmri.deploy.haproxy); see that module for why each line is here",
        "global",
        f"    maxconn {max_connections}",
        "defaults",
        "    mode http",
        *(f"    timeout {name} {value}" for name, value in TIMEOUTS.items()),
        f"    retries {RETRIES}",
        "    retry-on conn-failure empty-response 503",
        "    option redispatch 1",
        "frontend rtmri",
        f"    bind {_host(bind[0])}:{bind[1]}{ssl}",
        "    default_backend workers",
        "backend workers",
        "    balance leastconn",
    ]
    for w in workers:
        lines.append(f"    server {w.name} {_host(w.host)}:{w.port} weight 100 check inter {HEALTH_INTER_MS} fall {FALL} "
                     f"rise {RISE} agent-check agent-addr {w.host} agent-port {w.agent_port} agent-inter {AGENT_INTER_MS}")
    if stats is not None:
        lines += [
            "listen stats",
            f"    bind {_host(stats[0])}:{stats[1]}",
            "    stats enable",
            "    stats uri /stats",
            "    stats refresh 2s",
            "    http-request use-service prometheus-exporter if { path /metrics }",
            *(f"    use_backend metrics_{w.name} if {{ path /workers/{w.name}/metrics }}" for w in workers),
        ]
        for w in workers:
            lines += [f"backend metrics_{w.name}", "    http-request set-path /metrics",
                      f"    server {w.name} {_host(w.host)}:{w.metrics_port}"]
    return "\n".join(lines) + "\n"


def prometheus_targets(workers: list[WorkerAddress]) -> str:
    """A Prometheus file_sd_configs file: every worker's metrics port."""
    return json.dumps([{"targets": [w.metrics_target for w in workers], "labels": {"job": "rtmri"}}], indent=2) + "\n"
