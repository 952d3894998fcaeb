"""The frame-rate meter of the server's status and the window's HUD: frames per second
over the last few frames."""

from __future__ import annotations

import time
from collections import deque

DEFAULT_FRAMES = 50


class FpsMeter:
    def __init__(self, frames: int = DEFAULT_FRAMES) -> None:
        self._times: deque[float] = deque(maxlen=frames)

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    @property
    def fps(self) -> float:
        t = self._times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0
