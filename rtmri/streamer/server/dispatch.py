"""A joined client's messages, each to where it goes: audio to the mode and to the comparer
(which keeps what each learner said, to cut attempts from, as it keeps the live frames the
mode sent each learner: their pictures), a ping answered here, compare
to the comparer (within the bound of comparisons.py), start and stop to the mode;
and the periodic status to every client.

The comparer is the server's only link to the learner comparison: the command that starts
the server hands one over (rtmri.lessons.live.LessonComparer for `rtmri serve --references`
in learner mode and for `rtmri demo`), or none.
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np

from rtmri.streamer.server.admission import count_message, read_control
from rtmri.streamer.server.clients import Client
from rtmri.streamer.server.comparisons import ComparisonQueue
from rtmri.streamer.server.modes import Mode
from rtmri.streamer.server.protocol import (CLOSE_INVALID, CLOSE_POLICY, COMPARISON, ProtocolError, control, now_ms,
                                            parse_audio)

NO_COMPARER = "this server compares no attempts (learner mode with --references)"


class Comparer(Protocol):
    """Compares a learner's attempt with a served reference. Its methods run on the server's
    event loop; the work itself belongs off it."""

    def audio(self, client, offset: int, samples: np.ndarray) -> None:
        """A joined client's audio message (what an attempt is cut from)."""

    def frame(self, client, index: int, codec: str, image: bytes, epoch: int) -> None:
        """A live frame the client was sent, of its microphone stream epoch (what an attempt's pictures are taken from)."""

    def request(self, client, request: dict, cut=None) -> None:
        """A compare request: answer it, now or later, with client.say(control(COMPARISON, ...)).
        cut: the attempt's audio and live frames where the caller cut them already
        (recent_frames.Cut: a comparer in a process of its own is handed them); else its own."""

    def leave(self, client) -> None:
        """A client is gone."""


class Dispatch:
    def __init__(self, mode: Mode, comparer: Comparer | None = None, max_comparisons_waiting: int = 16,
                 metrics=None) -> None:
        self.mode = mode
        self.comparer = comparer
        self.comparisons = ComparisonQueue(comparer, max_comparisons_waiting, metrics=metrics) if comparer else None
        if comparer and hasattr(mode, "on_frame"):  # a mode that draws each client's own frames
            mode.on_frame = comparer.frame

    def join(self, client: Client) -> None:
        self.mode.join(client)

    def leave(self, client: Client) -> None:
        if self.comparer:
            self.comparisons.leave(client)
            self.comparer.leave(client)
        self.mode.leave(client)

    def message(self, client: Client, message: str | bytes) -> None:
        if isinstance(message, bytes):
            count_message(client)
            offset, samples = parse_audio(message)
            self.mode.audio(client, offset, samples)
            if self.comparer:
                self.comparer.audio(client, offset, samples)
            return
        request = read_control(client, message)
        kind = request["type"]
        if kind == "ping":
            t0 = request.get("t0")
            if not isinstance(t0, (int, float)) or isinstance(t0, bool) or not math.isfinite(t0):
                raise ProtocolError(CLOSE_INVALID, "ping needs a finite number t0")
            client.say(control("pong", t0=t0, server_ms=now_ms()))
        elif kind == "hello":
            raise ProtocolError(CLOSE_POLICY, "hello sent twice")
        elif kind == "compare":
            if self.comparer:
                self.comparisons.request(client, request)
            else:
                client.say(control(COMPARISON, error=NO_COMPARER))
        else:  # start, stop
            self.mode.control(client, request)

    def tell_status(self, clients: set[Client]) -> None:
        common = {"clients": len(clients), **self.mode.status()}
        for client in list(clients):
            if client.role != "new" and not client.controls:  # a client with messages waiting gets no more
                client.say(control("status", **common, **client.summary()))
