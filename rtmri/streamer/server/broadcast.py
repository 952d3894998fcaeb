"""Broadcast mode: the live loop (rtmri.streamer.stream.Streamer, in its own thread) sends
every frame, encoded once, to every viewer's queue on the server's event loop."""

from __future__ import annotations

import asyncio
import sys
import threading

from rtmri.streamer.fps import FpsMeter
from rtmri.streamer.server.protocol import (CLOSE_UNSUPPORTED, DEFAULT_CODEC, DEFAULT_QUALITY, TRACK_LIVE, FrameHeader,
                                            ProtocolError, encode_image)
from rtmri.streamer.stream import StopStreaming, Streamer

STOP_TIMEOUT_S = 5.0


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
    """The broadcast mode (rtmri.streamer.server.modes.Mode). make_source() -> a new audio
    source (FileSource or MicrophoneSource) per run; a file starts again when it ends (a
    new epoch) unless repeat is off."""

    name = "broadcast"

    def __init__(self, engine, make_source, codec: str = DEFAULT_CODEC, quality: int = DEFAULT_QUALITY, repeat: bool = True,
                 smoothing: float = 0.0, description: str = "") -> None:
        self.engine = engine
        self.make_source = make_source
        self.codec, self.quality = codec, quality
        self.repeat = repeat
        self.smoothing = smoothing
        self.description = f"broadcast of {description}" if description else "broadcast"
        self.viewers: set = set()
        self.stopping = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.epoch = 0
        self.error: str | None = None
        self.meter = FpsMeter()
        self._thread: threading.Thread | None = None

    # --- the mode's interface, on the event loop ---------------------------------------

    @property
    def joined(self) -> int:
        return len(self.viewers)

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._thread = threading.Thread(target=self._run, name="rtmri-broadcast", daemon=True)
        self._thread.start()

    async def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, STOP_TIMEOUT_S)

    def join(self, client) -> None:
        self.viewers.add(client)
        client.role = "viewer"

    def leave(self, client) -> None:
        self.viewers.discard(client)

    def audio(self, client, offset, samples) -> None:
        raise ProtocolError(CLOSE_UNSUPPORTED, "viewers send no binary messages (this server broadcasts)")

    def control(self, client, request: dict) -> None:
        raise ProtocolError(CLOSE_UNSUPPORTED, f"{request['type']!r} is for learner mode; this server broadcasts")

    def status(self) -> dict:
        return {"viewers": len(self.viewers), "server_fps": round(self.fps, 2), "epoch": self.epoch, "error": self.error}

    # --- frames ------------------------------------------------------------------------

    def publish(self, header: FrameHeader, image: bytes) -> None:
        """On the event loop: hand one frame to every viewer."""
        self.meter.tick()
        for viewer in self.viewers:
            viewer.offer(header, image)

    @property
    def fps(self) -> float:
        return self.meter.fps

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
