"""One connected browser: a bounded frame queue where the newest frame wins, sent by the
client's own task, so a slow client only ever loses its own frames."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from rtmri.streamer.server.protocol import COMPARISON, CLOSE_POLICY, FrameHeader, ProtocolError, control, frame_message, now_ms
from rtmri.streamer.server.security import Limits, RateLimit

# Each message a client sends gets at most one reply, and the rate limit lets through at most
# its burst at once; more replies waiting than that is a client that does not read.
MAX_CONTROL_QUEUE = 256
COMPARISON_ANSWER = control(COMPARISON)[:-1]  # how every comparison answer begins: '{"type":"comparison"'


class Client:
    def __init__(self, ws, limits: Limits, metrics=None) -> None:
        self.ws = ws
        self.limits = limits
        self.metrics = metrics  # metrics.ServerMetrics, or None
        self.on_comparison = None  # called with this client when a comparison answer is said to it (comparisons.py)
        self.rate = RateLimit(limits.messages_per_s, limits.message_burst)
        self.role = "new"  # "viewer" or "learner" after its hello
        self.frames: deque = deque(maxlen=limits.queue_frames)
        self.controls: deque[str] = deque()
        self.sent_frames = 0
        self.dropped = 0  # frames this client's queue dropped (it was not taking them fast enough)
        self._unreported = 0  # dropped since the last frame sent: told in that frame's header
        self._wake = asyncio.Event()
        self._busy_since: float | None = None  # a send in progress since then

    def offer(self, header: FrameHeader, image: bytes) -> None:
        """Queue a frame (its header, sent_at stamped when sent, and the image bytes); the
        oldest waiting one is dropped when the queue is full."""
        if len(self.frames) == self.frames.maxlen:
            self.dropped += 1
            self._unreported += 1 + self.frames[0][0].dropped
        self.frames.append((header, image))
        self._wake.set()

    def say(self, text: str) -> None:
        """Queue a control message (these are never dropped; too many waiting is a client
        that does not read: ProtocolError)."""
        if self.on_comparison is not None and text.startswith(COMPARISON_ANSWER):
            self.on_comparison(self)
        if len(self.controls) >= MAX_CONTROL_QUEUE:
            raise ProtocolError(CLOSE_POLICY, "not reading its messages")
        self.controls.append(text)
        self._wake.set()

    def tell(self, text: str) -> None:
        """say(), for news the client did not ask for: left out when it does not read."""
        if len(self.controls) < MAX_CONTROL_QUEUE:
            self.say(text)

    def stalled(self, now: float) -> bool:
        return self._busy_since is not None and now - self._busy_since > self.limits.stall_timeout_s

    async def send_loop(self) -> None:
        """Runs until the connection closes (the send raises) or the task is cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.controls or self.frames:
                if self.controls:
                    message = self.controls.popleft()
                else:
                    header, image = self.frames.popleft()
                    header = header.more_dropped(self._unreported)
                    message = frame_message(header, image)
                    self._unreported = 0
                    self.sent_frames += 1
                    if self.metrics is not None:
                        self._count(header)
                self._busy_since = time.monotonic()
                await self.ws.send(message)
                self._busy_since = None

    def _count(self, header: FrameHeader) -> None:
        latency = (now_ms() - header.audio_ready_at_ms) / 1000.0 if header.audio_ready_at_ms > 0 else None
        self.metrics.frame_sent(latency, header.dropped)

    def summary(self) -> dict:
        return {"sent": self.sent_frames, "dropped": self.dropped}
