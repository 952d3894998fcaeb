"""The server's two modes behind one small interface. The server keeps HTTP
(http_routes), hello and limits (admission) and pings (dispatch), and hands everything
else to its mode:

    broadcast  rtmri.streamer.server.broadcast.Broadcast: one audio source to every viewer
    learner    rtmri.streamer.server.learners.Learners: each browser's own microphone

A mode's methods run on the server's event loop; a client that breaks the mode's rules
gets a ProtocolError.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from rtmri.streamer.server.broadcast import Broadcast
from rtmri.streamer.server.learners import Learners

MODES = ("broadcast", "learner")


class Mode(Protocol):
    name: str  # what the welcome message says: "broadcast" or "learner"
    description: str  # what the server's start line says it serves
    joined: int  # learner sessions or viewers now

    async def start(self) -> None:
        """The server is listening: start making frames."""

    async def stop(self) -> None:
        """The server is going down."""

    def join(self, client) -> None:
        """A client said hello (ProtocolError CLOSE_TRY_LATER when there is no room)."""

    def leave(self, client) -> None:
        """A client is gone (any time after join)."""

    def audio(self, client, offset: int, samples: np.ndarray) -> None:
        """A joined client's audio message."""

    def control(self, client, request: dict) -> None:
        """A joined client's start or stop."""

    def status(self) -> dict:
        """Figures for the periodic status message."""


def make_mode(options, engine, make_source=None, source_description: str = "") -> Mode:
    """options: rtmri.streamer.server.app.ServerOptions."""
    if options.mode == "broadcast":
        return Broadcast(engine, make_source, options.codec, options.quality, options.repeat, options.smoothing,
                         source_description)
    if options.mode == "learner":
        return Learners(engine, options.limits, options.codec, options.quality)
    raise ValueError(f"mode {options.mode!r}: expected one of {', '.join(MODES)}")
