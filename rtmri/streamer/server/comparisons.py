"""The bound on comparisons between the dispatch and the comparer (dispatch.Comparer): a
class that finishes its attempts at the same moment must get every answer in good time, or
a clear "busy" at once, never a wait without end.

A request goes to the comparer at once (it cuts the attempt from the learner's recent audio
then, before that audio is gone, and queues the work itself), unless max_outstanding
requests are already with it unanswered, or the recent comparisons say that this one's
answer would come later than MAX_WAIT_S; then the learner is told at once that the server
is busy (a comparison answer with an error, which the page shows in place of a score). One
request per learner at a time. A request counts as answered when the comparer says the
comparison answer to its client (clients.Client.say: the Comparer's contract); a learner
who leaves frees its place.
"""

from __future__ import annotations

import time
from collections import deque

from rtmri.streamer.server.protocol import COMPARISON, control

BUSY = "the server is comparing {n} attempts already; try again in a few seconds"
STILL_COMPARING = "your previous attempt is still being compared"
RUNNING_TIMEOUT_S = 120.0  # a request the comparer never answered frees its place after this
MAX_WAIT_S = 10.0  # the longest wait taken on, by the recent comparisons' duration
RECENT = 20  # comparisons whose duration tells the expected wait


class ComparisonQueue:
    def __init__(self, comparer, max_outstanding: int, metrics=None) -> None:
        self.comparer = comparer
        self.max_outstanding = max_outstanding
        self.metrics = metrics
        self.outstanding: dict[object, float] = {}  # client -> when its request was handed over
        self.durations: deque[float] = deque(maxlen=RECENT)  # each answer's own time (not its wait)
        self._last_answer = 0.0

    def request(self, client, request: dict) -> None:
        self._forget_stale()
        if client in self.outstanding:
            self._refuse(client, request, STILL_COMPARING)
        elif len(self.outstanding) >= self.max_outstanding or self.expected_wait_s() > MAX_WAIT_S:
            if self.metrics:
                self.metrics.comparisons_refused.inc()
            self._refuse(client, request, BUSY.format(n=len(self.outstanding)))
        else:
            self.outstanding[client] = time.monotonic()
            self._gauge()
            client.on_comparison = self.answered
            self.comparer.request(client, request)  # may answer at once (a bad request)

    def answered(self, client) -> None:
        """The comparer said its answer to client (called by Client.say)."""
        asked = self.outstanding.pop(client, None)
        if asked is None:
            return
        now = time.monotonic()
        self.durations.append(now - max(asked, self._last_answer))  # a comparer working through them in turn
        self._last_answer = now
        if self.metrics:
            self.metrics.comparison_time.observe(now - asked)
        self._gauge()

    def expected_wait_s(self) -> float:
        """How long a request handed over now would take, by the recent comparisons (0 without any)."""
        if not self.durations:
            return 0.0
        return sum(self.durations) / len(self.durations) * (len(self.outstanding) + 1)

    def leave(self, client) -> None:
        self.outstanding.pop(client, None)
        self._gauge()

    def _forget_stale(self) -> None:
        now = time.monotonic()
        for client, asked in list(self.outstanding.items()):
            if now - asked > RUNNING_TIMEOUT_S:
                del self.outstanding[client]

    def _refuse(self, client, request: dict, error: str) -> None:
        ident = request.get("id") if isinstance(request.get("id"), (int, str)) else None
        hook, client.on_comparison = client.on_comparison, None  # this answer is not the comparer's
        try:
            client.tell(control(COMPARISON, id=ident, error=error))
        finally:
            client.on_comparison = hook

    def _gauge(self) -> None:
        if self.metrics:
            self.metrics.comparisons_queued.set(len(self.outstanding))
