"""Hand-made WebSocket clients for the server tests: clients that break the rules in ways
a well-behaved library will not (never reading, pinging without end, saying nothing)."""

from __future__ import annotations

import base64
import json
import os
import socket

HELLO = json.dumps({"type": "hello"})
OP_TEXT, OP_BINARY, OP_PING = 0x1, 0x2, 0x9


def raw_websocket(port: int, receive_buffer: int = 4096) -> socket.socket:
    """A socket through the opening handshake on /ws (a small receive buffer, so that a
    client that does not read fills it quickly)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    response = b""
    while b"\r\n\r\n" not in response:
        byte = sock.recv(1)
        if not byte:
            raise ConnectionError(f"closed during the handshake: {response.decode(errors='replace')}")
        response += byte
    if not response.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {response.decode(errors='replace')}")
    return sock


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One masked client frame (payloads under 126 bytes)."""
    assert len(payload) < 126
    mask = os.urandom(4)
    return bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def never_reading_client(port: int, hello: str = HELLO) -> socket.socket:
    """The handshake and a hello, and nothing read from then on."""
    sock = raw_websocket(port)
    sock.sendall(ws_frame(OP_TEXT, hello.encode()))
    return sock


def close_frame(sock: socket.socket, timeout: float = 10.0) -> tuple[int, str] | None:
    """Read the server's frames until its close frame: (code, reason); None when the
    connection ends (reset, EOF or timeout) without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while True:
            piece = sock.recv(65536)
            if not piece:
                return None
            data += piece
            while len(data) >= 2:
                opcode, length, at = data[0] & 0x0F, data[1] & 0x7F, 2
                if length == 126:
                    length, at = int.from_bytes(data[2:4], "big"), 4
                elif length == 127:
                    length, at = int.from_bytes(data[2:10], "big"), 10
                if len(data) < at + length:
                    break
                payload, data = data[at:at + length], data[at + length:]
                if opcode == 0x8:
                    return int.from_bytes(payload[:2], "big"), payload[2:].decode(errors="replace")
    except (OSError, TimeoutError):
        return None
