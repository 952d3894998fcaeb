"""Broadcast mode: the live loop (rtmri.streamer.stream.Streamer, in its own thread) sends
every frame, encoded once, to every viewer's queue on the server's event loop."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import deque

from rtmri.streamer.server.protocol import TRACK_LIVE, FrameHeader, encode_image
from rtmri.streamer.stream import StopStreaming, Streamer


class BroadcastSink:
    """A Streamer sink; runs on the streamer's thread."""

    def __init__(self, broadcast: "Broadcast", epoch: int) -> None:
        self.broadcast = broadcast
        self.epoch = epoch

    def frame(self, frame) -> None:
        b = self.broadcast
        if b.stopping.is_set():
            raise StopStreaming
        image = encode_image(frame.image, b.codec, b.quality)
        try:
            b.loop.call_soon_threadsafe(b.publish, FrameHeader.of(frame, b.codec, TRACK_LIVE, self.epoch), image)
        except RuntimeError:  # the event loop is closed: the server is going down
            raise StopStreaming from None

    def close(self) -> None:
        pass


class Broadcast:
    """make_source() -> a new audio source (FileSource or MicrophoneSource) per run; a file
    starts again when it ends (a new epoch) unless repeat is off."""

    def __init__(self, engine, make_source, codec: str = "jpeg", quality: int = 90, repeat: bool = True,
                 smoothing: float = 0.0) -> None:
        self.engine = engine
        self.make_source = make_source
        self.codec, self.quality = codec, quality
        self.repeat = repeat
        self.smoothing = smoothing
        self.viewers: set = set()
        self.stopping = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.epoch = 0
        self.error: str | None = None
        self._times: deque[float] = deque(maxlen=50)  # publish times of the last frames, for the frame rate
        self._thread: threading.Thread | None = None

    def publish(self, header: FrameHeader, image: bytes) -> None:
        """On the event loop: hand one frame to every viewer."""
        self._times.append(time.monotonic())
        for viewer in self.viewers:
            viewer.offer(header, image)

    @property
    def fps(self) -> float:
        t = self._times
        return (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 0.0

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._thread = threading.Thread(target=self._run, name="rtmri-broadcast", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            while not self.stopping.is_set():
                streamer = Streamer(self.engine, [BroadcastSink(self, self.epoch)], realtime=True, smoothing=self.smoothing)
                streamer.run(self.make_source())
                if not self.repeat:
                    break
                self.epoch += 1
        except Exception as exc:  # a microphone that went away: say so, keep serving the page
            self.error = str(exc)
            print(f"rtmri serve: the live stream stopped: {exc}", file=sys.stderr)
