"""A learner as the page is one, in Python (for benchmark-serve and the tests): hello, start,
20 ms audio messages at real-time pace (its audio looped), frames read as they come; when the connection goes
away it connects again after RECONNECT_FIRST_S plus a random spread (static/app.js does
the same), says hello and starts a new stream; a compare request on demand.

Everything it sees is kept with the machine's monotonic clock: welcomes (which worker),
frames (on which worker), comparison answers (how long they took).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

import numpy as np

from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.server.protocol import FrameHeader, audio_message

CHUNK = 320  # 20 ms, as the page's worklet sends
RECONNECT_FIRST_S = 0.15
RECONNECT_SPREAD_S = 0.35
HELLO_TIMEOUT_S = 10.0


@dataclass
class LearnerRecord:
    welcomes: list = field(default_factory=list)  # (t, worker)
    frames: list = field(default_factory=list)  # (t, worker, index, audio_ready_at_ms)
    closes: list = field(default_factory=list)  # (t, code or None)
    comparisons: list = field(default_factory=list)  # (asked t, answered t, answer dict)
    moves: list = field(default_factory=list)  # t of each move message

    def fps(self, start: float, end: float, worker: str | None = None) -> float:
        n = sum(1 for t, w, _, _ in self.frames if start <= t < end and (worker is None or w == worker))
        return n / (end - start)

    def fps_streaming(self, start: float, end: float) -> float:
        """The frame rate over [start, end), counted from the stream's first frame where that came
        later: a window reaching back before the stream began would count its absence as slowness
        (0 when no frame came before ``end``)."""
        if not self.frames or self.frames[0][0] >= end:
            return 0.0
        first = self.frames[0][0]
        if first <= start:
            return self.fps(start, end)
        return self.fps(first, end) - 1.0 / (end - first)  # the frames after the first

    def worker_at(self, t: float) -> str | None:
        """The worker of the last welcome before t."""
        before = [w for at, w in self.welcomes if at <= t]
        return before[-1] if before else None


class Learner:
    def __init__(self, url: str, audio: np.ndarray, token: str | None = None, seed: int = 0) -> None:
        self.url = url
        self.audio = audio
        self.hello = json.dumps({"type": "hello", "token": token} if token else {"type": "hello"})
        self.record = LearnerRecord()
        self.random = random.Random(seed)
        self._ws = None
        self._sent = 0  # samples sent on the current stream
        self._asked: dict[int, float] = {}
        self._next_id = 0

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def run(self, stop: asyncio.Event, reconnect: bool = True) -> None:
        from websockets.asyncio.client import connect  # websockets: the live extra
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        while not stop.is_set():
            code = None
            try:
                async with connect(self.url, max_size=2**22, compression=None, open_timeout=HELLO_TIMEOUT_S) as ws:
                    await ws.send(self.hello)
                    welcome = json.loads(await asyncio.wait_for(ws.recv(), HELLO_TIMEOUT_S))
                    worker = welcome.get("worker")
                    self.record.welcomes.append((time.monotonic(), worker))
                    await ws.send('{"type": "start"}')
                    self._ws, self._sent = ws, 0
                    sender = asyncio.create_task(self._send_audio(ws))
                    try:
                        await self._receive(ws, worker, stop)
                    finally:
                        sender.cancel()
                        self._ws = None
                    code = ws.close_code
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
            except (OSError, InvalidStatus, TimeoutError, asyncio.TimeoutError):
                pass
            self.record.closes.append((time.monotonic(), code))
            if not reconnect:
                return
            if not stop.is_set():
                await asyncio.sleep(RECONNECT_FIRST_S + self.random.random() * RECONNECT_SPREAD_S)

    async def _receive(self, ws, worker, stop: asyncio.Event) -> None:
        stopping = asyncio.create_task(stop.wait())
        try:
            while True:
                receiving = asyncio.create_task(ws.recv())
                done, _ = await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if receiving not in done:
                    receiving.cancel()
                    return
                message = receiving.result()
                now = time.monotonic()
                if isinstance(message, bytes):
                    header = FrameHeader.unpack(message)
                    self.record.frames.append((now, worker, header.index, header.audio_ready_at_ms))
                    continue
                m = json.loads(message)
                if m["type"] == "comparison" and m.get("id") in self._asked:
                    self.record.comparisons.append((self._asked.pop(m["id"]), now, m))
                elif m["type"] == "move":
                    self.record.moves.append(now)
                    await ws.close(4000, "moving")
                    return
        finally:
            stopping.cancel()

    async def _send_audio(self, ws) -> None:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        n = len(self.audio)
        while True:
            at = self._sent % n
            chunk = self.audio[at:at + CHUNK]
            await ws.send(audio_message(self._sent, chunk))
            self._sent += len(chunk)
            await asyncio.sleep(max(0.0, t0 + self._sent / SAMPLE_RATE - loop.time()))

    @property
    def sent(self) -> int:
        """Samples sent on the current stream."""
        return self._sent

    async def compare(self, reference: str, start: int, end: int) -> bool:
        """Ask for a comparison of samples [start, end) of the current stream; False when not connected."""
        ws = self._ws
        if ws is None:
            return False
        self._next_id += 1
        self._asked[self._next_id] = time.monotonic()
        await ws.send(json.dumps({"type": "compare", "id": self._next_id, "reference": reference, "start": start, "end": end}))
        return True
