"""The last seconds of audio a learner's microphone sent, by sample offset: what a compare
request ({start, end} in those offsets) cuts its attempt from. Kept by the comparer, and by
the server's side of a comparer in a process of its own (which then sends only the attempt)."""

from __future__ import annotations

from collections import deque

import numpy as np

from rtmri.audio import SAMPLE_RATE

KEPT_S = 20.0  # more than the page's longest attempt (15 s)


class RecentAudio:
    """The last ``KEPT_S`` seconds a microphone sent, by sample offset. A microphone that
    starts again counts from 0: what came before is forgotten."""

    def __init__(self, seconds: float = KEPT_S) -> None:
        self.limit = int(seconds * SAMPLE_RATE)
        self.chunks: deque[tuple[int, np.ndarray]] = deque()
        self.kept = 0

    @property
    def end(self) -> int:
        return self.chunks[-1][0] + len(self.chunks[-1][1]) if self.chunks else 0

    def push(self, offset: int, samples: np.ndarray) -> None:
        if self.chunks and offset < self.end:
            self.chunks.clear()
            self.kept = 0
        self.chunks.append((offset, np.asarray(samples, np.float32)))
        self.kept += len(samples)
        while self.kept - len(self.chunks[0][1]) >= self.limit:
            self.kept -= len(self.chunks.popleft()[1])

    def cut(self, start: int, end: int) -> np.ndarray | None:
        """Samples [start, end) (silence where a chunk never came), or None if no longer kept
        (or not a span: end <= start)."""
        if not self.chunks or end <= start or start < self.chunks[0][0] or end > self.end:
            return None
        out = np.zeros(end - start, np.float32)
        for offset, samples in self.chunks:
            lo, hi = max(offset, start), min(offset + len(samples), end)
            if hi > lo:
                out[lo - start : hi - start] = samples[lo - offset : hi - offset]
        return out
