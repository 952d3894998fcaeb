"""The streaming loop: audio source -> sliding mel windows -> engine -> sinks.

Frame k is made as soon as the audio up to its timestamp plus the bundle's lookahead has
arrived. Timing comes from the audio samples, never from a frame counter on the wall
clock, so nothing drifts. When inference falls behind in real time, the older waiting
frames are dropped and counted (the newest win) rather than piling up delay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.frames import Frame, WindowQueue, make_frames
from rtmri.streamer.windows import FrameWindows

__all__ = ["Frame", "StopStreaming", "StreamStats", "Streamer"]

DEFAULT_MAX_BATCH = 2
OFFLINE_BATCH = 16


class StopStreaming(Exception):
    """Raised by a sink (a closed window, a quit key) to end the stream cleanly."""


@dataclass
class StreamStats:
    frames: int = 0
    dropped: int = 0
    audio_s: float = 0.0
    wall_s: float = 0.0
    stages_ms: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in ("queue", "features", "inference", "sink", "audio_to_frame")})

    def add(self, stage: str, ms: float) -> None:
        self.stages_ms[stage].append(ms)

    def summary(self) -> dict:
        out = {
            "frames": self.frames,
            "dropped": self.dropped,
            "audio_s": round(self.audio_s, 3),
            "wall_s": round(self.wall_s, 3),
            "fps": round(self.frames / self.wall_s, 2) if self.wall_s else 0.0,
            "real_time_factor": round(self.wall_s / self.audio_s, 3) if self.audio_s else 0.0,
        }
        for stage, values in self.stages_ms.items():
            if values:
                p50, p95, p99 = np.percentile(values, [50, 95, 99])
                out[stage] = {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2), "p99_ms": round(float(p99), 2)}
        return out


class Streamer:
    def __init__(self, engine, sinks=(), realtime: bool = True, max_batch: int = DEFAULT_MAX_BATCH,
                 smoothing: float = 0.0) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ValueError(f"smoothing {smoothing} must be in [0, 1)")
        self.engine = engine
        self.sinks = list(sinks)
        self.realtime = realtime
        self.max_batch = max_batch if realtime else OFFLINE_BATCH
        self.smoothing = smoothing
        self.stats = StreamStats()
        self._previous: np.ndarray | None = None

    def run(self, source, max_seconds: float | None = None) -> StreamStats:
        windows = FrameWindows.for_bundle(self.engine.bundle)
        queue = WindowQueue(source.sample_time, source.sample_time, keep=self.max_batch)
        started = time.monotonic()
        source.start()
        try:
            while True:
                chunk = source.read()
                if chunk is None:
                    features_start = time.perf_counter()
                    queue.add(windows.flush())
                else:
                    for sink in self.sinks:
                        if hasattr(sink, "audio"):
                            sink.audio(chunk)
                    features_start = time.perf_counter()
                    queue.add(windows.push(chunk))
                features_ms = (time.perf_counter() - features_start) * 1000.0
                self._process(queue, features_ms, final=chunk is None)
                if chunk is None or (max_seconds is not None and windows.mel.samples_received >= max_seconds * SAMPLE_RATE):
                    break
        except StopStreaming:
            pass
        finally:
            source.close()
            self.stats.wall_s = time.monotonic() - started
            self.stats.audio_s = windows.mel.samples_received / SAMPLE_RATE
            for sink in self.sinks:
                sink.close()
        return self.stats

    def _process(self, queue: WindowQueue, features_ms: float, final: bool) -> None:
        """Make the waiting frames; in real time only the newest max_batch (one engine
        run), except at the end of the audio, which releases its last frames together:
        they are due, not stale."""
        if self.realtime and not final:
            queue.keep_newest()
            self.stats.dropped = queue.dropped
        features_ms /= max(1, len(queue))
        while queue:
            jobs = [queue.take() for _ in range(min(len(queue), self.max_batch))]
            for _, frame in make_frames(self.engine, jobs, features_ms):
                frame.image = self._smooth(frame.image)
                self._emit(frame)

    def _smooth(self, image: np.ndarray) -> np.ndarray:
        if self.smoothing == 0.0:
            return image
        current = image.astype(np.float32)
        if self._previous is not None:
            current = self.smoothing * self._previous + (1.0 - self.smoothing) * current
        self._previous = current
        return np.clip(np.rint(current), 0, 255).astype(np.uint8)

    def _emit(self, frame: Frame) -> None:
        start = time.perf_counter()
        for sink in self.sinks:
            sink.frame(frame)
        sink_ms = (time.perf_counter() - start) * 1000.0
        self.stats.frames += 1
        self.stats.add("features", frame.features_ms)
        self.stats.add("inference", frame.inference_ms)
        self.stats.add("sink", sink_ms)
        if self.realtime:
            self.stats.add("queue", max(0.0, (frame.made_at - frame.audio_ready_at) * 1000.0 - frame.inference_ms))
            self.stats.add("audio_to_frame", (time.monotonic() - frame.spoken_at) * 1000.0)
