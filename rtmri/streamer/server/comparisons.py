"""The comparison queue between the dispatch and the comparer (dispatch.Comparer): a class
that finishes its attempts at the same moment must not hand the comparer (and the engine it
shares with the live frames) sixteen comparisons at once.

At most `running` requests are with the comparer at a time; up to `max_waiting` more wait
in arrival order, one per learner, and no more than the recent comparisons say can be done
within MAX_WAIT_S (the comparer keeps a learner's audio for a limited time, and a score
that comes a minute late helps no one); past that a learner is told at once that the server
is busy (a comparison answer with an error, which the page shows in place of a score). A
request counts as answered when the comparer says the comparison answer to its client
(clients.Client.say: the Comparer's contract), and a learner who leaves takes its waiting
request with it.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque

from rtmri.streamer.server.protocol import COMPARISON, control

BUSY = "the server is comparing {n} attempts already; try again in a few seconds"
WAITING = "your previous attempt is still waiting to be compared"
RUNNING_TIMEOUT_S = 60.0  # a request the comparer never answered frees its place after this
MAX_WAIT_S = 10.0  # the longest wait the queue takes on, by the recent comparisons' duration
RECENT = 20  # comparisons whose duration tells the expected wait


class ComparisonQueue:
    def __init__(self, comparer, max_waiting: int, running: int = 1, metrics=None) -> None:
        self.comparer = comparer
        self.max_waiting = max_waiting
        self.slots = running
        self.metrics = metrics
        self.waiting: OrderedDict[object, tuple[dict, float]] = OrderedDict()  # client -> (request, arrival)
        self.running: dict[object, float] = {}  # client -> arrival of its request
        self.started: dict[object, float] = {}  # client -> when the comparer got its request
        self.durations: deque[float] = deque(maxlen=RECENT)  # handed -> answered, recent ones

    def request(self, client, request: dict) -> None:
        if client in self.waiting:
            self._refuse(client, request, WAITING)
            return
        if len(self.waiting) >= self.max_waiting or self.expected_wait_s() > MAX_WAIT_S:
            if self.metrics:
                self.metrics.comparisons_refused.inc()
            self._refuse(client, request, BUSY.format(n=len(self.waiting) + len(self.running)))
            return
        self.waiting[client] = (request, time.monotonic())
        self._next()

    def answered(self, client) -> None:
        """The comparer said its answer to client (called by Client.say)."""
        now = time.monotonic()
        arrival = self.running.pop(client, None)
        started = self.started.pop(client, None)
        if started is not None:
            self.durations.append(now - started)
        if arrival is not None and self.metrics:
            self.metrics.comparison_time.observe(now - arrival)
        self._next()

    def expected_wait_s(self) -> float:
        """How long a request queued now would wait, by the recent comparisons (0 without any)."""
        if not self.durations:
            return 0.0
        per = sum(self.durations) / len(self.durations)
        return per * (len(self.waiting) + len(self.running)) / self.slots

    def leave(self, client) -> None:
        self.waiting.pop(client, None)
        self._gauge()

    def _next(self) -> None:
        now = time.monotonic()
        for client, arrival in list(self.running.items()):
            if now - arrival > RUNNING_TIMEOUT_S:
                del self.running[client]
                self.started.pop(client, None)
        while self.waiting and len(self.running) < self.slots:
            client, (request, arrival) = self.waiting.popitem(last=False)
            self.running[client] = arrival
            self.started[client] = time.monotonic()
            self._gauge()
            client.on_comparison = self.answered
            self.comparer.request(client, request)  # may answer at once (a bad request)
        self._gauge()

    def _refuse(self, client, request: dict, error: str) -> None:
        ident = request.get("id") if isinstance(request.get("id"), (int, str)) else None
        hook, client.on_comparison = client.on_comparison, None  # this answer is not the comparer's
        try:
            client.tell(control(COMPARISON, id=ident, error=error))
        finally:
            client.on_comparison = hook

    def _gauge(self) -> None:
        if self.metrics:
            self.metrics.comparisons_waiting.set(len(self.waiting))
            self.metrics.comparisons_running.set(len(self.running))
