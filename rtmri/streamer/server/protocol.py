"""The wire format between `rtmri serve` and its browsers (one WebSocket, path /ws).

Binary, server -> client, one frame per message (FrameHeader, little-endian, then the
image file bytes; FRAME_LAYOUT is the one definition of its fields, static/app.js reads
the same table)::

    u8  kind = 1 (frame)        u8  version = 2
    u8  codec (1 JPEG, 2 PNG)   u8  track (0 live, 1 reference rendered, 2 reference original)
    u32 frame index             (frame k has timestamp k / 25 s on its audio stream)
    u32 frames dropped before this one (for this viewer: by the engine or by its queue)
    u32 stream epoch            (a new audio stream: a learner's new start, a file loop)
    f64 spoken_at_ms            sound at the frame's timestamp reached the microphone
    f64 audio_ready_at_ms       the frame's last audio sample reached the server
    f64 made_at_ms              inference finished
    f64 sent_at_ms              handed to this viewer's socket
                                (all four on the server's monotonic clock, in ms)
    f32 <region>_mm             one per region of rtmri.articulation.regions.REGIONS, in its
                                order: the constriction degree in mm (at the velopharyngeal
                                port its opening); NaN when the bundle gives no state, and
                                on reference tracks
    u8  closed                  closure bits: 1 lips, 2 tongue tip, 4 tongue dorsum
                                (rtmri.articulation.state.CLOSURE_PLACES, bit k = place k)

Binary, client -> server, learner audio (AUDIO_HEADER, then int16 little-endian mono
PCM at 16 kHz)::

    u8 kind = 2 (audio)  u8 version = 2  u16 reserved = 0
    u32 offset of the first sample in the current stream (contiguous from 0)

Text, both ways: JSON objects with a "type". Client -> server: ``hello`` {token} first;
``ping`` {t0}; learners ``start`` / ``stop``, and ``compare`` {reference, start, end, id}
(an attempt, in its stream's sample offsets). Server -> client: ``welcome``, ``pong``
{t0, server_ms} (the clock-offset exchange: offset = server_ms - (t0 + t_received) / 2,
from the pong with the smallest round trip), ``started`` {epoch}, ``stopped``, ``status``,
``comparison`` {id, ...} (what the comparer makes of an attempt, or an error), ``move``
{reason, within_s} (the server drains: connect again, a balancer sends the page elsewhere;
a connection still there at the deadline is closed with 1001, one that says hello while
the server drains with CLOSE_MOVE). The welcome names the ``worker`` behind a balancer.

A client that breaks these rules is closed with a close code and a reason (ProtocolError).
"""

from __future__ import annotations

import dataclasses
import io
import json
import struct
import time
from dataclasses import dataclass

import numpy as np
from PIL import Image

from rtmri.articulation.regions import REGIONS
from rtmri.articulation.state import constrictions
from rtmri.audio import SAMPLE_RATE

VERSION = 2  # 2: the articulatory state's constrictions and closures in the frame header
KIND_FRAME = 1
KIND_AUDIO = 2
CODECS = {"jpeg": 1, "png": 2}
DEFAULT_CODEC = "jpeg"
DEFAULT_QUALITY = 90  # JPEG
CODEC_NAMES = {v: k for k, v in CODECS.items()}
TRACK_LIVE, TRACK_RENDERED, TRACK_ORIGINAL = 0, 1, 2

CONSTRICTION_FIELDS = tuple(f"{region}_mm" for region in REGIONS)
NO_CONSTRICTIONS = (float("nan"),) * len(REGIONS)  # a frame without a state
# The frame header, field by field: (name, struct code); offsets follow in this order.
FRAME_LAYOUT = (("kind", "B"), ("version", "B"), ("codec", "B"), ("track", "B"), ("index", "I"), ("dropped", "I"),
                ("epoch", "I"), ("spoken_at_ms", "d"), ("audio_ready_at_ms", "d"), ("made_at_ms", "d"), ("sent_at_ms", "d"),
                *((name, "f") for name in CONSTRICTION_FIELDS), ("closed", "B"))
FRAME_HEADER = struct.Struct("<" + "".join(code for _, code in FRAME_LAYOUT))  # 73 bytes
AUDIO_HEADER = struct.Struct("<BBHI")  # 8 bytes
MAX_AUDIO_SAMPLES = SAMPLE_RATE  # one message carries at most 1 s of audio
PCM_SCALE = 32767.0

# WebSocket close codes (RFC 6455 section 7.4.1); 1001 when the server goes down.
CLOSE_UNSUPPORTED = 1003  # a message of a kind or type this endpoint does not take
CLOSE_INVALID = 1007  # malformed payload: not JSON, wrong fields, bad audio
CLOSE_POLICY = 1008  # token, order of messages, rate
CLOSE_TOO_BIG = 1009
CLOSE_TRY_LATER = 1013  # server full
CLOSE_MOVE = 4001  # this server is draining: connect again (a balancer sends the page to another)

CLIENT_MESSAGES = ("hello", "ping", "start", "stop", "compare")  # compare: dispatch.Comparer
COMPARISON = "comparison"  # the server's answer to compare
MOVE = "move"  # the server drains: connect again within within_s (a balancer picks another server)


class ProtocolError(Exception):
    """A client broke the protocol: close it with this code and reason."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        # a close reason is at most 123 bytes of UTF-8; a client's lone surrogate must not break it
        self.reason = reason.encode("utf-8", "replace")[:120].decode("utf-8", "ignore")


def now_ms() -> float:
    """The server clock of every timestamp in the protocol."""
    return time.monotonic() * 1000.0


def encode_image(image: np.ndarray, codec: str = DEFAULT_CODEC, quality: int = DEFAULT_QUALITY) -> bytes:
    buffer = io.BytesIO()
    picture = Image.fromarray(np.asarray(image, np.uint8))
    if codec == "jpeg":
        picture.save(buffer, format="JPEG", quality=quality)
    else:
        picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def frame_offsets() -> dict[str, tuple[int, str]]:
    """Field -> (byte offset, struct code) of the frame header (what static/app.js reads)."""
    out, at = {}, 0
    for name, code in FRAME_LAYOUT:
        out[name] = (at, code)
        at += struct.calcsize("<" + code)
    return out


def articulation(state: np.ndarray | None) -> tuple[tuple[float, ...], int]:
    """A frame's state vector (or None) -> (constriction degree in mm per region, closure bits)."""
    if state is None:
        return NO_CONSTRICTIONS, 0
    degree, closed = constrictions(np.asarray(state)[None])
    return tuple(float(v) for v in degree[0]), sum(1 << k for k, shut in enumerate(closed[0]) if shut)


@dataclass(frozen=True)
class FrameHeader:
    """The header of a frame message; kind and version are the protocol's own. NaN
    constrictions make headers unequal (NaN != NaN): compare their fields."""

    codec: str  # "jpeg" or "png"
    track: int  # TRACK_LIVE, TRACK_RENDERED, TRACK_ORIGINAL
    index: int
    dropped: int
    epoch: int
    spoken_at_ms: float
    audio_ready_at_ms: float
    made_at_ms: float
    sent_at_ms: float = 0.0
    constriction_mm: tuple[float, ...] = NO_CONSTRICTIONS  # per region of REGIONS: CONSTRICTION_FIELDS
    closed: int = 0  # closure bits

    @classmethod
    def of(cls, frame, codec: str, track: int, epoch: int) -> "FrameHeader":
        """The header of a rtmri.streamer.frames.Frame, its articulation from its state (sent_at is
        stamped by pack)."""
        constriction_mm, closed = articulation(frame.state)
        return cls(codec, track, frame.index, frame.dropped_before, epoch, frame.spoken_at * 1000.0,
                   frame.audio_ready_at * 1000.0, frame.made_at * 1000.0, constriction_mm=constriction_mm, closed=closed)

    def more_dropped(self, n: int) -> "FrameHeader":
        return dataclasses.replace(self, dropped=self.dropped + n) if n else self

    def pack(self, sent_at_ms: float | None = None) -> bytes:
        """The header bytes; sent_at is stamped now unless given."""
        own = {"kind": KIND_FRAME, "version": VERSION, "codec": CODECS[self.codec],
               "sent_at_ms": now_ms() if sent_at_ms is None else sent_at_ms, **dict(zip(CONSTRICTION_FIELDS, self.constriction_mm))}
        return FRAME_HEADER.pack(*(own[name] if name in own else getattr(self, name) for name, _ in FRAME_LAYOUT))

    @classmethod
    def unpack(cls, data: bytes) -> "FrameHeader":
        if len(data) < FRAME_HEADER.size:
            raise ValueError(f"frame message of {len(data)} bytes is shorter than its header")
        fields = dict(zip((name for name, _ in FRAME_LAYOUT), FRAME_HEADER.unpack_from(data)))
        kind, version = fields.pop("kind"), fields.pop("version")
        if kind != KIND_FRAME or version != VERSION:
            raise ValueError(f"not a version {VERSION} frame message (kind {kind}, version {version})")
        fields["codec"] = CODEC_NAMES.get(fields["codec"])
        fields["constriction_mm"] = tuple(fields.pop(name) for name in CONSTRICTION_FIELDS)
        return cls(**fields)


def frame_message(header: FrameHeader, image: bytes, sent_at_ms: float | None = None) -> bytes:
    return header.pack(sent_at_ms) + image


def parse_frame(data: bytes) -> dict:
    """A frame message as a dict of its header fields and "image" (for Python clients:
    tests, the benchmark)."""
    return {**dataclasses.asdict(FrameHeader.unpack(data)), "image": data[FRAME_HEADER.size:]}


def audio_message(offset: int, samples: np.ndarray) -> bytes:
    """float samples in [-1, 1] at 16 kHz -> an audio message (what the page's worklet sends)."""
    pcm = np.clip(np.rint(np.asarray(samples, np.float32) * PCM_SCALE), -32768, 32767).astype("<i2")
    return AUDIO_HEADER.pack(KIND_AUDIO, VERSION, 0, offset) + pcm.tobytes()


def parse_audio(data: bytes) -> tuple[int, np.ndarray]:
    """An audio message -> (offset, float32 samples); ProtocolError when malformed."""
    if len(data) < AUDIO_HEADER.size or data[0] != KIND_AUDIO:
        raise ProtocolError(CLOSE_UNSUPPORTED, "binary message is not an audio message")
    kind, version, _, offset = AUDIO_HEADER.unpack_from(data)
    if version != VERSION:
        raise ProtocolError(CLOSE_INVALID, f"audio message version {version}, expected {VERSION}")
    body = memoryview(data)[AUDIO_HEADER.size:]
    if len(body) % 2:
        raise ProtocolError(CLOSE_INVALID, "audio payload is not whole 16-bit samples")
    if len(body) // 2 > MAX_AUDIO_SAMPLES:
        raise ProtocolError(CLOSE_TOO_BIG, f"audio message over {MAX_AUDIO_SAMPLES} samples")
    samples = np.frombuffer(body, "<i2").astype(np.float32) / PCM_SCALE
    return offset, samples


def parse_control(text: str) -> dict:
    """A client's JSON text message -> dict with a known "type"; ProtocolError otherwise."""
    try:
        message = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ProtocolError(CLOSE_INVALID, f"invalid JSON: {exc}") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError(CLOSE_INVALID, "a control message must be a JSON object with a string 'type'")
    if message["type"] not in CLIENT_MESSAGES:
        raise ProtocolError(CLOSE_UNSUPPORTED, f"unknown message type {message['type'][:40]!r}")
    return message


def control(type_: str, **fields) -> str:
    """A JSON text message; ValueError rather than NaN or Infinity, which browsers cannot parse."""
    return json.dumps({"type": type_, **fields}, separators=(",", ":"), allow_nan=False)
