"""The one frame maker: the mel windows of one audio stream (the Streamer) or of many (the
learner sessions) -> Frames, batched on the engine.

Each stream's ready windows wait in its WindowQueue. When inference falls behind, only the
newest windows are kept and the older ones are dropped and counted (the newest win);
the first frame made after a drop says how many went before it. A SampleClock gives each
stream's samples their time: anchored once, then counted in samples, so the audio stream
is the clock.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

from rtmri.alignment import FPS, SAMPLES_PER_FRAME
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.windows import FrameWindow


@dataclass
class Frame:
    index: int
    image: np.ndarray  # uint8 (S, S)
    timestamp_s: float  # k / FPS on the audio timeline
    spoken_at: float  # monotonic time the sound at the frame's timestamp reached the microphone
    audio_ready_at: float  # monotonic time the frame's last audio sample arrived
    made_at: float  # monotonic time inference finished
    features_ms: float
    inference_ms: float
    dropped_before: int = 0  # frames dropped since the previous frame
    state: np.ndarray | None = None  # the articulatory state the model gave (articulatory bundles)


class SampleClock:
    """The monotonic time of sample n of a stream: anchored at one known sample's arrival,
    then counted in samples (the device's clock, not the timing of reads)."""

    def __init__(self) -> None:
        self._anchor: tuple[float, int] | None = None

    def anchor(self, at: float, sample: int) -> None:
        """Sample `sample` arrived at monotonic time `at`; only the first call counts."""
        if self._anchor is None:
            self._anchor = (at, sample)

    @property
    def anchored(self) -> bool:
        return self._anchor is not None

    def time_of(self, sample: int) -> float:
        if self._anchor is None:
            return time.monotonic()
        at, anchor = self._anchor
        return at + (sample - anchor) / SAMPLE_RATE


class Job(NamedTuple):
    queue: "WindowQueue"
    window: FrameWindow
    dropped_before: int


class WindowQueue:
    """One stream's windows waiting for the engine. spoken_at(sample) and ready_at(sample)
    give a frame's timestamps: when the sound at a sample reached the microphone, and when
    the audio up to a sample reached us."""

    def __init__(self, spoken_at: Callable[[int], float], ready_at: Callable[[int], float], keep: int) -> None:
        self.spoken_at, self.ready_at = spoken_at, ready_at
        self.keep = keep
        self.waiting: deque[FrameWindow] = deque()
        self.dropped = 0
        self._unreported = 0  # dropped since the last window taken

    def __len__(self) -> int:
        return len(self.waiting)

    def add(self, windows) -> None:
        self.waiting.extend(windows)

    def keep_newest(self) -> int:
        """Drop all but the newest `keep` windows; returns how many went."""
        drop = max(0, len(self.waiting) - self.keep)
        for _ in range(drop):
            self.waiting.popleft()
        self.dropped += drop
        self._unreported += drop
        return drop

    def take(self) -> Job:
        job = Job(self, self.waiting.popleft(), self._unreported)
        self._unreported = 0
        return job


def round_robin(queues, limit: int, first: int = 0) -> list[Job]:
    """Up to limit jobs, one from each queue in turn (starting at queues[first]), so no
    stream's windows wait behind another's."""
    order = list(queues[first % len(queues):]) + list(queues[:first % len(queues)]) if queues else []
    jobs: list[Job] = []
    while len(jobs) < limit and any(order):
        for queue in order:
            if queue and len(jobs) < limit:
                jobs.append(queue.take())
    return jobs


def make_frames(engine, jobs: list[Job], features_ms: float) -> list[tuple[WindowQueue, Frame]]:
    """One engine run over the jobs' windows; (queue, frame) in the jobs' order."""
    start = time.perf_counter()
    images, states = engine.run_with_state(np.stack([job.window.mel for job in jobs]))
    made_at = time.monotonic()
    inference_ms = (time.perf_counter() - start) * 1000.0 / len(jobs)
    out = []
    for (queue, window, dropped), image, state in zip(jobs, images, states if states is not None else [None] * len(jobs)):
        out.append((queue, Frame(
            index=window.index, image=image, timestamp_s=window.index / FPS,
            spoken_at=queue.spoken_at(window.index * SAMPLES_PER_FRAME),
            audio_ready_at=queue.ready_at(window.audio_end_sample), made_at=made_at,
            features_ms=features_ms, inference_ms=inference_ms, dropped_before=dropped, state=state,
        )))
    return out
