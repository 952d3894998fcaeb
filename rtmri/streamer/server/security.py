"""Who may connect and how much they may send.

- Listening on loopback needs no token, but then the Host header must be a loopback
  name (a web page that rebinds its own DNS name to 127.0.0.1 is refused).
- Listening anywhere else needs an access token (`rtmri serve` makes one when none is
  given); the page sends it in its first message, and the reference files need it too.
- The WebSocket's Origin, when a browser sends one, must be the page's own origin (the
  same scheme, host and port as the Host header), or one given with --allow-origin.
- Limits: message size (websockets closes with 1009 above max_message_bytes; text is
  held to max_text_bytes), message rate (a token bucket per client; pings and pongs
  count), the bytes waiting to go out to one client, audio no faster than real time over
  the whole connection (AudioBudget), learner starts per second, number of clients and of
  learner sessions, and, apart from those, connections that have not said hello yet (a
  few, for a few seconds; the oldest makes room for a new one).
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from rtmri.audio import SAMPLE_RATE

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass
class Limits:
    max_message_bytes: int = 64 * 1024  # the largest audio message: 1 s of 16-bit PCM + header
    max_text_bytes: int = 4096
    messages_per_s: float = 120.0  # the page sends 50 audio messages/s and a ping every 2 s
    message_burst: int = 240
    audio_burst_s: float = 2.0  # audio may run ahead of the wall clock by this much
    audio_speed: float = 1.25  # and by this factor (a browser delivers in bursts)
    starts_per_s: float = 1.0  # learner starts (each a new stream), after a burst of start_burst
    start_burst: int = 5
    max_clients: int = 100  # connections past hello
    max_sessions: int = 8
    max_comparisons_waiting: int = 16  # compare requests with the comparer at once (comparisons.py); past that: "busy"
    max_waiting: int = 64  # connections before hello, apart from max_clients; the oldest is closed for a new one
    hello_timeout_s: float = 5.0
    max_write_buffer_bytes: int = 1024 * 1024  # what may wait in one connection's outgoing buffer
    stall_timeout_s: float = 10.0  # a viewer whose socket took nothing for this long is closed
    queue_frames: int = 2  # per viewer; the newest frame wins
    # The kernel's send buffer per connection: the default grows to megabytes, seconds of
    # stale frames for a slow viewer; this small one lets the newest-wins queue do its job.
    socket_send_buffer: int = 256 * 1024


def new_token() -> str:
    return secrets.token_urlsafe(16)


def token_ok(given, expected: str | None) -> bool:
    """Any JSON value a client sends, lone surrogates included, is a wrong token, never an error."""
    if expected is None:
        return True
    return isinstance(given, str) and hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_host(value: str) -> str:
    """'example:8765' / '[::1]:8765' -> the host name alone."""
    return urlsplit("//" + value).hostname or ""


def request_problem(headers, loopback_only: bool, allowed_origins: tuple[str, ...] = (), websocket: bool = False) -> str | None:
    """Why an HTTP or WebSocket request must be refused, or None. headers: websockets'
    Headers (several values per name possible)."""
    hosts, origins = headers.get_all("Host"), headers.get_all("Origin")
    if len(hosts) != 1 or len(origins) > 1:
        return "one Host header (and at most one Origin) expected"
    host = hosts[0]
    if loopback_only and not is_loopback(split_host(host)):
        return f"Host {host!r} is not a loopback name (this server listens on loopback only)"
    if websocket and origins and origins[0] not in allowed_origins:
        parts = urlsplit(origins[0])
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != host.lower():
            return f"origin {origins[0]!r} is not this page's origin"
    return None


class RateLimit:
    """A token bucket: rate per second, burst at most."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens = float(burst)
        self.last = time.monotonic()

    def allow(self, cost: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < cost:
            return False
        self.tokens -= cost
        return True


class AudioBudget:
    """The audio one connection may send: real time (times audio_speed) while its
    microphone runs, plus one burst of audio_burst_s, counted over all its starts. Idle
    time between streams earns nothing, and a new start does not begin a new budget."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.samples = 0
        self._running_s = 0.0  # microphone time of the streams that ended
        self._since: float | None = None  # the running stream's start

    def start(self) -> None:
        if self._since is None:
            self._since = time.monotonic()

    def stop(self) -> None:
        if self._since is not None:
            self._running_s += time.monotonic() - self._since
            self._since = None

    def take(self, samples: int) -> bool:
        """Count samples; False when they are more than the budget allows."""
        self.samples += samples
        running = self._running_s + (time.monotonic() - self._since if self._since is not None else 0.0)
        return self.samples <= (running * self.limits.audio_speed + self.limits.audio_burst_s) * SAMPLE_RATE
