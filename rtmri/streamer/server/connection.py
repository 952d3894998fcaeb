"""websockets' server connection, with the limits it leaves to its user:

- control frames (pings, pongs) count against the client's message rate: websockets
  answers every ping itself, so a client that pings without end and never reads would
  fill our outgoing buffer with pongs;
- the outgoing buffer is capped: a connection with more than max_write_buffer_bytes
  waiting to go out is cut off;
- while the opening handshake is under way, only the bytes of the first HTTP request are
  taken: websockets would parse what a client pipelines behind it (a second request) as
  WebSocket frames, fail, and close before answering the first (with an AssertionError
  logged); the first request's answer closes the connection or opens the WebSocket.
"""

from __future__ import annotations

import logging

from websockets.asyncio.server import ServerConnection
from websockets.frames import Frame, Opcode
from websockets.protocol import State

from rtmri.streamer.server.protocol import CLOSE_POLICY

CONTROL_OPCODES = (Opcode.PING, Opcode.PONG)
REQUEST_END = b"\r\n\r\n"
log = logging.getLogger("rtmri.serve")


class GuardedConnection(ServerConnection):
    client = None  # the server's Client for this connection, from the start of its handler
    max_write_buffer_bytes = 1024 * 1024  # set by the server from its Limits

    _head_tail = b""  # the last bytes of the request so far (its end may come split)
    _head_done = False

    def data_received(self, data: bytes) -> None:
        if self.protocol.state is State.CONNECTING:
            data = self._first_request(data)
            if not data:
                return
        super().data_received(data)
        if self.transport is not None and self.transport.get_write_buffer_size() > self.max_write_buffer_bytes:
            log.info("closing %s: more than %d bytes waiting to go out", self.remote_address, self.max_write_buffer_bytes)
            self.transport.abort()

    def _first_request(self, data: bytes) -> bytes:
        if self._head_done:
            return b""
        seen = self._head_tail + data
        end = seen.find(REQUEST_END)
        if end < 0:
            self._head_tail = seen[-(len(REQUEST_END) - 1):]
            return data
        self._head_done = True  # websockets takes no request body
        return data[: end + len(REQUEST_END) - len(self._head_tail)]

    def process_event(self, event) -> None:
        if isinstance(event, Frame) and event.opcode in CONTROL_OPCODES and self.client is not None:
            if not self.client.rate.allow():
                self.protocol.fail(CLOSE_POLICY, f"more than {self.client.rate.rate:g} messages per second (pings count)")
                self.send_data()
                return
        super().process_event(event)
