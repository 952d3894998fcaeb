"""Learner mode: each browser sends its microphone (16 kHz PCM) and gets its own frames.

Every session has its own FrameWindows (its own audio timeline) and its own WindowQueue.
One engine serves them all: a single batching task takes whatever audio has arrived from
every session, turns it into ready windows and runs them through the frame maker
(rtmri.streamer.frames) on the engine's thread; audio that arrives meanwhile waits for the
next pass, so the batch grows with the load.

No learner can take another's share: as in the Streamer, a session that fell behind keeps
only its newest windows (a stop too: only the frames its lookahead held back are added);
a pass takes at most MAX_RUN_BATCH windows, one from each session in turn (the rest wait
for the next pass, where they are stale in their turn); the audio a connection may send
is real time over all its starts (security.AudioBudget), and starts are rate-limited.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from rtmri.streamer.frames import SampleClock, WindowQueue, make_frames, round_robin
from rtmri.streamer.server.protocol import (CLOSE_INVALID, CLOSE_POLICY, CLOSE_TRY_LATER, DEFAULT_CODEC, DEFAULT_QUALITY,
                                            TRACK_LIVE, FrameHeader, ProtocolError, control, encode_image)
from rtmri.streamer.server.security import AudioBudget, Limits, RateLimit
from rtmri.streamer.stream import DEFAULT_MAX_BATCH
from rtmri.streamer.windows import FrameWindows

MAX_RUN_BATCH = 32  # windows per engine pass; more wait for the next pass
RECENT_ARRIVALS = 50
log = logging.getLogger("rtmri.serve")


@dataclass
class MicStream:
    """One start..stop of a learner's microphone."""

    session: "Session"
    epoch: int
    windows: FrameWindows  # used on the engine thread only
    keep: int = DEFAULT_MAX_BATCH
    received: int = 0  # samples accepted so far
    pending: list = field(default_factory=list)  # (samples, arrival time) not yet taken by a pass
    stopping: bool = False
    flushed: bool = False  # its last frames were released (engine thread)
    clock: SampleClock = field(default_factory=SampleClock)  # anchored at the first chunk's arrival
    arrivals: list = field(default_factory=list)  # (end sample, arrival) of chunks pushed, recent ones
    frames: int = 0

    def __post_init__(self) -> None:
        self.queue = WindowQueue(self.clock.time_of, self.arrived_at, self.keep)  # engine thread only

    @property
    def dropped(self) -> int:
        return self.queue.dropped

    def arrived_at(self, sample: int) -> float:
        """When the chunk holding sample - 1 arrived (a window's last sample)."""
        for end, t in self.arrivals:
            if end >= sample:
                return t
        return self.arrivals[-1][1] if self.arrivals else time.monotonic()

    def push(self, chunks: list) -> list:
        """On the engine thread: the chunks that arrived -> the windows they made ready
        (one push for all of them: under load, fewer and larger feature steps)."""
        if not chunks:
            return []
        end = self.windows.mel.samples_received
        for samples, arrival in chunks:
            end += len(samples)
            self.arrivals.append((end, arrival))
        del self.arrivals[:-RECENT_ARRIVALS]
        return self.windows.push(np.concatenate([samples for samples, _ in chunks]))


class Session:
    """A learner's connection."""

    def __init__(self, client, limits: Limits) -> None:
        self.client = client
        self.stream: MicStream | None = None
        self.epochs = 0
        self.budget = AudioBudget(limits)
        self.starts = RateLimit(limits.starts_per_s, limits.start_burst)


class Learners:
    """The learner mode (rtmri.streamer.server.modes.Mode)."""

    name = "learner"
    description = "learner sessions"

    def __init__(self, engine, limits: Limits, codec: str = DEFAULT_CODEC, quality: int = DEFAULT_QUALITY,
                 max_per_session: int = DEFAULT_MAX_BATCH) -> None:
        self.engine = engine
        self.limits = limits
        self.codec, self.quality = codec, quality
        self.max_per_session = max_per_session
        self.sessions: dict[object, Session] = {}  # client -> its session
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rtmri-engine")
        self._wake = asyncio.Event()
        self._active: list[MicStream] = []  # streams with audio waiting or a stop to flush
        self._task: asyncio.Task | None = None
        self.passes = 0
        self.batch_sizes: list[int] = []  # windows per pass, recent passes
        self.on_frame = None  # (client, index, codec, image, epoch) of each frame sent: the comparer's (dispatch)

    # --- the mode's interface, on the event loop ---------------------------------------

    @property
    def joined(self) -> int:
        return len(self.sessions)

    async def start(self) -> None:
        self._task = asyncio.create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)

    def join(self, client) -> None:
        if len(self.sessions) >= self.limits.max_sessions:
            raise ProtocolError(CLOSE_TRY_LATER, f"all {self.limits.max_sessions} learner sessions are taken; try again later")
        self.sessions[client] = Session(client, self.limits)
        client.role = "learner"

    def leave(self, client) -> None:
        session = self.sessions.pop(client, None)
        if session is None:
            return
        stream, session.stream = session.stream, None
        if stream in self._active:
            self._active.remove(stream)

    def control(self, client, request: dict) -> None:
        session = self.sessions[client]
        if request["type"] == "start":
            stream = self._start_stream(session)
            client.say(control("started", epoch=stream.epoch))
        else:  # stop
            self._stop_stream(session)

    def audio(self, client, offset: int, samples: np.ndarray) -> None:
        session = self.sessions[client]
        stream = session.stream
        if stream is None:
            raise ProtocolError(CLOSE_POLICY, "audio without a started stream (send start first)")
        if offset != stream.received:
            raise ProtocolError(CLOSE_INVALID, f"audio offset {offset}, expected {stream.received}")
        stream.received += len(samples)
        if not session.budget.take(len(samples)):
            raise ProtocolError(CLOSE_POLICY, "audio faster than real time")
        if not len(samples):
            return
        arrival = time.monotonic()
        stream.clock.anchor(arrival, stream.received)
        stream.pending.append((samples, arrival))
        self._schedule(stream)

    def status(self) -> dict:
        recent = self.batch_sizes[-50:]
        return {"sessions": len(self.sessions), "engine_passes": self.passes,
                "batch_mean": round(sum(recent) / len(recent), 2) if recent else 0.0}

    # --- streams -----------------------------------------------------------------------

    def _start_stream(self, session: Session) -> MicStream:
        if not session.starts.allow():
            raise ProtocolError(CLOSE_POLICY, f"more than {self.limits.starts_per_s:g} starts per second")
        if session.stream is not None:
            self._stop_stream(session)
        session.budget.start()
        session.epochs += 1
        session.stream = MicStream(session, session.epochs, FrameWindows.for_bundle(self.engine.bundle), self.max_per_session)
        return session.stream

    def _stop_stream(self, session: Session) -> None:
        stream, session.stream = session.stream, None
        session.budget.stop()
        if stream is not None:
            stream.stopping = True
            self._schedule(stream)

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
            for stream, messages, waiting in results:
                session = stream.session
                if self.sessions.get(session.client) is not session:
                    continue  # it left meanwhile
                for header, image in messages:
                    session.client.offer(header, image)
                    if self.on_frame is not None:
                        self.on_frame(session.client, header.index, header.codec, image, stream.epoch)
                if waiting:
                    self._schedule(stream)  # its turn comes in the next pass
                elif stream.flushed:
                    session.client.tell(control("stopped", epoch=stream.epoch, frames=stream.frames, dropped=stream.dropped))

    # --- on the engine thread ----------------------------------------------------------

    def _compute(self, work: list) -> list:
        """(stream, new chunks, stopping) -> (stream, its frame messages, windows still waiting)."""
        started = time.perf_counter()
        for stream, chunks, stopping in work:
            stream.queue.add(stream.push(chunks))
            stream.queue.keep_newest()
            if stopping and not stream.flushed:  # the frames its lookahead held back are due
                stream.queue.add(stream.windows.flush())
                stream.flushed = True
        queues = [stream.queue for stream, _, _ in work]
        jobs = round_robin(queues, limit=MAX_RUN_BATCH, first=self.passes)
        features_ms = (time.perf_counter() - started) * 1000.0 / max(1, len(jobs))
        streams = {id(stream.queue): stream for stream, _, _ in work}
        messages: dict[int, list] = {id(stream.queue): [] for stream, _, _ in work}
        if jobs:
            for queue, frame in make_frames(self.engine, jobs, features_ms):
                stream = streams[id(queue)]
                stream.frames += 1
                messages[id(queue)].append((FrameHeader.of(frame, self.codec, TRACK_LIVE, stream.epoch),
                                            encode_image(frame.image, self.codec, self.quality)))
        self.passes += 1
        self.batch_sizes = self.batch_sizes[-199:] + [len(jobs)]
        return [(stream, messages[id(stream.queue)], len(stream.queue) > 0) for stream, _, _ in work]
