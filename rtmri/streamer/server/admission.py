"""Who is let in, and how much a client may send (the numbers: security.Limits).

- A new connection waits for its hello in a room of its own, max_waiting places apart from
  max_clients; the one that waited longest is closed to make room, so silent sockets never
  keep a token holder out.
- The first message is the hello, within hello_timeout_s, with the access token.
- Past hello, at most max_clients at once.
- Every message counts against the client's rate (its pings too: connection.py), a text
  message against max_text_bytes too.
- A client whose socket took nothing for stall_timeout_s is closed.
"""

from __future__ import annotations

import asyncio

from rtmri.streamer.server.clients import Client
from rtmri.streamer.server.protocol import CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TRY_LATER, ProtocolError, parse_control
from rtmri.streamer.server.security import Limits, token_ok

CLOSE_TIMEOUT_S = 2.0


class Admission:
    def __init__(self, limits: Limits, token: str | None) -> None:
        self.limits = limits
        self.token = token
        self.clients: set[Client] = set()  # past hello
        self.waiting: dict[Client, None] = {}  # before hello, oldest first
        self._closing: set[asyncio.Task] = set()  # closes under way of clients that may never read them

    def arrive(self, client: Client) -> None:
        """A new connection takes a place in the waiting room."""
        while len(self.waiting) >= self.limits.max_waiting:
            oldest = next(iter(self.waiting))
            del self.waiting[oldest]
            self.close_soon(oldest, CLOSE_TRY_LATER, "too many connections waiting to say hello; this one waited longest")
        self.waiting[client] = None

    async def admit(self, client: Client) -> None:
        """Its hello with the token, then a place among the clients; ProtocolError otherwise."""
        await self._hello(client)
        self.waiting.pop(client, None)
        if len(self.clients) >= self.limits.max_clients:
            raise ProtocolError(CLOSE_TRY_LATER, f"server full ({self.limits.max_clients} clients); try again later")
        self.clients.add(client)

    def leave(self, client: Client) -> None:
        self.waiting.pop(client, None)
        self.clients.discard(client)

    def close_stalled(self, now: float) -> None:
        """Close the clients whose socket stopped taking data."""
        for client in list(self.clients):
            if client.stalled(now):
                self.clients.discard(client)
                self.close_soon(client, CLOSE_POLICY, f"not reading: nothing taken for {self.limits.stall_timeout_s:g} s")

    def close_soon(self, client: Client, code: int, reason: str) -> None:
        task = asyncio.create_task(close(client.ws, code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _hello(self, client: Client) -> None:
        try:
            message = await asyncio.wait_for(client.ws.recv(), self.limits.hello_timeout_s)
        except TimeoutError:
            raise ProtocolError(CLOSE_POLICY, f"no hello within {self.limits.hello_timeout_s:g} s") from None
        if isinstance(message, bytes):
            raise ProtocolError(CLOSE_POLICY, "audio before the token: the first message must be hello")
        hello = read_control(client, message)
        if hello["type"] != "hello":
            raise ProtocolError(CLOSE_POLICY, f"the first message must be hello, not {hello['type']}")
        if not token_ok(hello.get("token"), self.token):
            raise ProtocolError(CLOSE_POLICY, "invalid or missing access token")


def count_message(client: Client) -> None:
    if not client.rate.allow():
        raise ProtocolError(CLOSE_POLICY, f"more than {client.limits.messages_per_s:g} messages per second")


def read_control(client: Client, text: str) -> dict:
    """A text message, counted and held to max_text_bytes -> its JSON (protocol.parse_control)."""
    count_message(client)
    limit = client.limits.max_text_bytes
    if len(text) > limit or len(text.encode()) > limit:
        raise ProtocolError(CLOSE_TOO_BIG, f"text message over {limit} bytes")
    return parse_control(text)


async def close(ws, code: int, reason: str, timeout: float = CLOSE_TIMEOUT_S) -> None:
    """Close with a code and reason; a peer that does not read cannot take the close frame
    (websockets waits for its socket to drain, without end), so it is cut off after timeout."""
    try:
        await asyncio.wait_for(ws.close(code, reason), timeout)
    except TimeoutError:
        ws.transport.abort()
