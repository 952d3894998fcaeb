"""What an operator watches on one server process, in Prometheus' text format
(prometheus_client, one registry per server so that several servers in one process stay
apart): served on its own port (`rtmri serve --metrics-port`), apart from the page's.

    rtmri_sessions                   learner sessions (learner mode) or viewers (broadcast)
    rtmri_clients                    connections past hello
    rtmri_draining                   1 while the process drains (SIGTERM behind a balancer)
    rtmri_frames_sent_total          frames handed to browsers' sockets
    rtmri_frames_dropped_total       frames left out for a browser (engine behind, or its socket slow)
    rtmri_frame_latency_seconds      last audio sample at the server -> frame handed to the socket
                                     (histogram; rtmri_frame_latency_recent_seconds: p50, p95,
                                     p99 of the last LATENCY_WINDOW frames, for a glance)
    rtmri_comparisons_queued         compare requests with the comparer, not answered yet (comparisons.py)
    rtmri_comparisons_refused_total  answered "busy" because the queue was full
    rtmri_comparison_seconds         request -> answer (histogram)
    rtmri_refused_sessions_total     new sessions refused (full or draining)
"""

from __future__ import annotations

from collections import deque

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server

LATENCY_WINDOW = 2000
QUANTILES = (0.5, 0.95, 0.99)
LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56)
COMPARISON_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 13.0, 21.0)


class ServerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.sessions = Gauge("rtmri_sessions", "learner sessions (learner mode) or viewers (broadcast mode)", registry=r)
        self.clients = Gauge("rtmri_clients", "connections past hello", registry=r)
        self.draining = Gauge("rtmri_draining", "1 while this process drains: no new sessions", registry=r)
        self.frames_sent = Counter("rtmri_frames_sent", "frames handed to browsers' sockets", registry=r)
        self.frames_dropped = Counter("rtmri_frames_dropped", "frames left out for a browser (engine behind or socket slow)",
                                      registry=r)
        self.latency = Histogram("rtmri_frame_latency_seconds", "last audio sample at the server -> frame handed to the socket",
                                 buckets=LATENCY_BUCKETS, registry=r)
        recent = Gauge("rtmri_frame_latency_recent_seconds", f"quantiles of the last {LATENCY_WINDOW} frames' latency",
                       ["quantile"], registry=r)
        for q in QUANTILES:
            recent.labels(quantile=str(q)).set_function(lambda q=q: self.recent_latency(q))
        self.comparisons_queued = Gauge("rtmri_comparisons_queued", "compare requests with the comparer, not answered yet",
                                        registry=r)
        self.comparisons_refused = Counter("rtmri_comparisons_refused", "compare requests refused: the queue was full",
                                           registry=r)
        self.comparison_time = Histogram("rtmri_comparison_seconds", "compare request -> answer", buckets=COMPARISON_BUCKETS,
                                         registry=r)
        self.refused_sessions = Counter("rtmri_refused_sessions", "new sessions refused (full or draining)", registry=r)
        self._latencies: deque[float] = deque(maxlen=LATENCY_WINDOW)

    def frame_sent(self, latency_s: float | None, dropped: int) -> None:
        self.frames_sent.inc()
        if dropped:
            self.frames_dropped.inc(dropped)
        if latency_s is not None:
            self.latency.observe(latency_s)
            self._latencies.append(latency_s)

    def recent_latency(self, q: float) -> float:
        return float(np.quantile(self._latencies, q)) if self._latencies else float("nan")

    def text(self) -> bytes:
        return generate_latest(self.registry)

    def serve(self, host: str, port: int):
        """The /metrics endpoint on its own port, in a thread; -> the HTTP server (its port: .server_port)."""
        server, _ = start_http_server(port, host, registry=self.registry)
        return server
