"""Learner mode: each browser sends its microphone (16 kHz PCM) and gets its own frames.

Every session has its own FrameWindows (its own audio timeline). One engine serves them
all: a single batching task takes whatever audio has arrived from every session, turns
it into ready windows and runs all of them as one batch on the engine's thread; audio
that arrives meanwhile waits for the next pass, so the batch grows with the load. As in
the Streamer, a session that fell behind keeps only its newest windows and counts the rest
as dropped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from rtmri.alignment import FPS, SAMPLES_PER_FRAME
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.server.protocol import (CLOSE_INVALID, CLOSE_POLICY, TRACK_LIVE, FrameHeader, ProtocolError, control,
                                            encode_image)
from rtmri.streamer.server.security import Limits, audio_too_fast
from rtmri.streamer.stream import DEFAULT_MAX_BATCH, Frame
from rtmri.streamer.windows import FrameWindows

MAX_RUN_BATCH = 32  # windows per engine run; a pass with more makes several runs
log = logging.getLogger("rtmri.serve")


@dataclass
class MicStream:
    """One start..stop of a learner's microphone."""

    session: "Session"
    epoch: int
    windows: FrameWindows  # used on the engine thread only
    started_at: float = field(default_factory=time.monotonic)
    received: int = 0  # samples accepted so far
    pending: list = field(default_factory=list)  # (samples, arrival time) not yet taken by a pass
    stopping: bool = False
    anchor: tuple[float, int] | None = None  # (arrival, end sample) of the first chunk: its sample clock
    arrivals: list = field(default_factory=list)  # (end sample, arrival) of chunks pushed, recent ones
    frames: int = 0
    dropped: int = 0

    def spoken_at(self, sample: int) -> float:
        t, end = self.anchor
        return t + (sample - end) / SAMPLE_RATE

    def arrived_at(self, sample: int) -> float:
        """When the chunk holding sample - 1 arrived (a window's last sample)."""
        for end, t in self.arrivals:
            if end >= sample:
                return t
        return self.arrivals[-1][1] if self.arrivals else time.monotonic()


class Session:
    """A learner's connection."""

    def __init__(self, client) -> None:
        self.client = client
        self.stream: MicStream | None = None
        self.epochs = 0


class Learners:
    def __init__(self, engine, limits: Limits, codec: str = "jpeg", quality: int = 90,
                 max_per_session: int = DEFAULT_MAX_BATCH) -> None:
        self.engine = engine
        self.limits = limits
        self.codec, self.quality = codec, quality
        self.max_per_session = max_per_session
        self.sessions: set[Session] = set()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtmri-engine")
        self._wake = asyncio.Event()
        self._active: list[MicStream] = []  # streams with audio waiting or a stop to flush
        self.passes = 0
        self.batch_sizes: list[int] = []  # windows per pass, recent passes

    # --- on the event loop -------------------------------------------------------------

    def start(self, session: Session) -> MicStream:
        if session.stream is not None:
            self.stop(session)
        session.epochs += 1
        session.stream = MicStream(session, session.epochs, FrameWindows(self.engine.bundle.lookahead_ms))
        return session.stream

    def audio(self, session: Session, offset: int, samples: np.ndarray) -> None:
        stream = session.stream
        if stream is None:
            raise ProtocolError(CLOSE_POLICY, "audio without a started stream (send start first)")
        if offset != stream.received:
            raise ProtocolError(CLOSE_INVALID, f"audio offset {offset}, expected {stream.received}")
        stream.received += len(samples)
        if audio_too_fast(stream.received, stream.started_at, self.limits):
            raise ProtocolError(CLOSE_POLICY, "audio faster than real time")
        if not len(samples):
            return
        arrival = time.monotonic()
        if stream.anchor is None:
            stream.anchor = (arrival, len(samples))
        stream.pending.append((samples, arrival))
        self._schedule(stream)

    def stop(self, session: Session) -> None:
        stream, session.stream = session.stream, None
        if stream is not None:
            stream.stopping = True
            self._schedule(stream)

    def leave(self, session: Session) -> None:
        self.sessions.discard(session)
        stream, session.stream = session.stream, None
        if stream in self._active:
            self._active.remove(stream)

    def _schedule(self, stream: MicStream) -> None:
        if stream not in self._active:
            self._active.append(stream)
        self._wake.set()

    async def run(self) -> None:
        """The batching task: one engine pass at a time over every session's new audio."""
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            work = []
            for stream in self._active:
                chunks, stream.pending = stream.pending, []
                work.append((stream, chunks, stream.stopping))
            self._active = []
            if not work:
                continue
            try:
                results = await loop.run_in_executor(self.executor, self._compute, work)
            except Exception:  # an engine failure: say so, keep serving the next pass
                log.exception("learner engine pass failed")
                continue
            for stream, messages, stopped in results:
                session = stream.session
                if session not in self.sessions:
                    continue  # it left meanwhile
                for header, image in messages:
                    session.client.offer(header, image)
                if stopped:
                    session.client.tell(control("stopped", epoch=stream.epoch, frames=stream.frames, dropped=stream.dropped))

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)

    # --- on the engine thread ----------------------------------------------------------

    def _compute(self, work: list) -> list:
        started = time.perf_counter()
        ready = []  # (stream, window, dropped before it)
        for stream, chunks, stopping in work:
            windows = []
            if chunks:  # one push for all of them: under load, fewer and larger feature steps
                end = stream.windows.mel.samples_received
                for samples, arrival in chunks:
                    end += len(samples)
                    stream.arrivals.append((end, arrival))
                del stream.arrivals[:-50]
                windows += stream.windows.push(np.concatenate([samples for samples, _ in chunks]))
            if stopping:
                windows += stream.windows.flush()
            drop = 0 if stopping else max(0, len(windows) - self.max_per_session)
            stream.dropped += drop
            ready += [(stream, w, drop if i == 0 else 0) for i, w in enumerate(windows[drop:])]
        features_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(ready))
        out = {id(stream): (stream, [], stopping) for stream, _, stopping in work}
        for lo in range(0, len(ready), MAX_RUN_BATCH):
            part = ready[lo:lo + MAX_RUN_BATCH]
            run_start = time.perf_counter()
            images = self.engine.run(np.stack([w.mel for _, w, _ in part]))
            made_at = time.monotonic()
            inference_ms = (time.perf_counter() - run_start) * 1000.0 / len(part)
            for (stream, window, dropped), image in zip(part, images):
                frame = Frame(
                    index=window.index, image=image, timestamp_s=window.index / FPS,
                    spoken_at=stream.spoken_at(window.index * SAMPLES_PER_FRAME),
                    audio_ready_at=stream.arrived_at(window.audio_end_sample), made_at=made_at,
                    features_ms=features_ms, inference_ms=inference_ms, dropped_before=dropped,
                )
                stream.frames += 1
                out[id(stream)][1].append((FrameHeader.of(frame, self.codec, TRACK_LIVE, stream.epoch),
                                           encode_image(image, self.codec, self.quality)))
        self.passes += 1
        self.batch_sizes = self.batch_sizes[-199:] + [len(ready)]
        return list(out.values())
