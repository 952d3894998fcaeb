"""A comparer (dispatch.Comparer) in a process of its own, at a lower CPU priority.

A comparison is 0.2-0.5 s of Python and numpy work (the shipped lessons, an idle core), and
a class asks for sixteen at once. In the server's process it holds the GIL against the event
loop and the engine thread, so a class that finishes its attempts together takes everyone's
live frames down with it. RemoteComparer runs the real comparer in a
spawned process (built there by a factory the command names, e.g. `rtmri serve`'s lesson
comparer: the server still imports no lessons), `nice`d by NICE: the live frames come first,
the comparisons take the CPU that is left.

The learners' audio and live frames stay in the server (RecentAudio, RecentFrames per client):
a compare request goes with its attempt's audio and pictures, cut from there (recent_frames.Cut), through a pipe, by a thread of their own so
that the event loop never waits on it (relaying every audio message cost the server about a
tenth of its CPU with twelve learners); what the comparer says to a
client comes back the same way and is said to the real client on the event loop. When the
server goes, the pipe closes and the comparing process ends.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import queue
import threading

from rtmri.streamer.server.recent_audio import RecentAudio
from rtmri.streamer.server.recent_frames import Cut, RecentFrames

log = logging.getLogger("rtmri.serve")
NICE = 10
START_TIMEOUT_S = 180.0
_STOP = None  # what tells a sending thread to end


class RemoteComparer:
    def __init__(self, make, args: tuple = (), nice: int = NICE) -> None:
        """make(*args) -> a Comparer or None, called in the new process (a module-level
        function: it is pickled by name). RuntimeError when it gives none or fails."""
        context = multiprocessing.get_context("spawn")
        to_child, child_in = context.Pipe(duplex=False)[::-1]
        child_out, from_child = context.Pipe(duplex=False)[::-1]
        self.process = context.Process(target=_child_main, args=(child_in, child_out, make, args, nice), daemon=True,
                                       name="rtmri-compare")
        self.process.start()
        child_in.close()
        child_out.close()
        if not from_child.poll(START_TIMEOUT_S) or not from_child.recv():
            self.process.terminate()
            raise RuntimeError(f"the comparing process gave no comparer (exit {self.process.exitcode}; its log is above)")
        self._ids: dict[object, int] = {}
        self._clients: dict[int, object] = {}
        self._next = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._recent: dict[object, RecentAudio] = {}
        self._frames: dict[object, RecentFrames] = {}
        self._out: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=_send_all, args=(self._out, to_child), name="rtmri-compare-send", daemon=True).start()
        threading.Thread(target=self._receive_all, args=(from_child,), name="rtmri-compare-receive", daemon=True).start()

    # --- dispatch.Comparer, on the event loop -------------------------------------------

    def audio(self, client, offset: int, samples) -> None:
        self._recent.setdefault(client, RecentAudio()).push(offset, samples)

    def frame(self, client, index: int, codec: str, image: bytes, epoch: int) -> None:
        self._frames.setdefault(client, RecentFrames()).push(index, codec, image, epoch)

    def request(self, client, request: dict, cut: Cut | None = None) -> None:
        """The request with the attempt's audio and live frames cut here (none when the span is
        not kept, or not a span): the comparer in the other process says what is wrong."""
        start, end = request.get("start"), request.get("end")
        spans = isinstance(start, int) and isinstance(end, int) and not isinstance(start, bool) and not isinstance(end, bool)
        cut = Cut.of(self._recent.get(client), self._frames.get(client), start, end) if spans else Cut(None)
        self._out.put(("request", self._id(client), request, cut))

    def leave(self, client) -> None:
        self._recent.pop(client, None)
        self._frames.pop(client, None)
        ident = self._ids.pop(client, None)
        if ident is not None:
            self._clients.pop(ident, None)
            self._out.put(("leave", ident))

    def close(self) -> None:
        self._out.put(_STOP)

    # --- the way back --------------------------------------------------------------------

    def _id(self, client) -> int:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        ident = self._ids.get(client)
        if ident is None:
            self._next += 1
            ident = self._ids[client] = self._next
            self._clients[ident] = client
        return ident

    def _receive_all(self, connection) -> None:
        while True:
            try:
                ident, text = connection.recv()
            except (EOFError, OSError):
                log.warning("the comparing process is gone: attempts are no longer compared")
                return
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._say, ident, text)

    def _say(self, ident: int, text: str) -> None:
        client = self._clients.get(ident)
        if client is None:
            return  # it left meanwhile
        try:
            client.say(text)
        except Exception as exc:  # a client that does not read: nothing to tell
            log.info("comparison not delivered: %s", exc)


def _send_all(items: queue.SimpleQueue, connection) -> None:
    while (item := items.get()) is not _STOP:
        try:
            connection.send(item)
        except OSError:
            return
    connection.close()


# --- in the comparing process ------------------------------------------------------------

class _Client:
    """A server's client as the comparer sees it: what it says goes back through the pipe."""

    def __init__(self, ident: int, out: queue.SimpleQueue) -> None:
        self.ident = ident
        self.out = out

    def say(self, text: str) -> None:
        self.out.put((self.ident, text))

    tell = say


def _child_main(incoming, outgoing, make, args, nice: int) -> None:
    os.nice(nice)
    comparer = make(*args)
    outgoing.send(comparer is not None)
    if comparer is not None:
        asyncio.run(_serve_comparer(comparer, incoming, outgoing))


async def _serve_comparer(comparer, incoming, outgoing) -> None:
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()
    out: queue.SimpleQueue = queue.SimpleQueue()
    clients: dict[int, _Client] = {}

    def handle(message) -> None:
        kind, ident, *rest = message
        client = clients.setdefault(ident, _Client(ident, out)) if kind != "leave" else clients.pop(ident, None)
        if kind == "request":
            comparer.request(client, *rest)
        elif client is not None:
            comparer.leave(client)

    def receive_all() -> None:
        while True:
            try:
                message = incoming.recv()
            except (EOFError, OSError):  # the server is gone
                loop.call_soon_threadsafe(gone.set)
                return
            loop.call_soon_threadsafe(handle, message)

    threading.Thread(target=receive_all, daemon=True).start()
    threading.Thread(target=_send_all, args=(out, outgoing), daemon=True).start()
    await gone.wait()
