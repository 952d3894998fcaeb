"""rtmri serve: protocol, limits, slow clients, learner sessions, references, the CLI.

Servers run in-process (ServerThread) on a free loopback port with the tiny bundle; the
clients are websockets' sync client (and one raw socket that never reads). Bounds are
counts with wide margins, so a loaded 2-core machine does not make them flaky.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import soundfile

pytest.importorskip("websockets")

from websockets.exceptions import ConnectionClosed, InvalidStatus  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from rtmri.articulation.regions import ALVEOLAR, LIPS, REGIONS, VELAR  # noqa: E402
from rtmri.articulation.state import (CLOSED, CLOSURE_PLACES, GAP, REGION_LINES, STATE_SIZE, StateError,  # noqa: E402
                                      constrictions)
from rtmri.audio import SAMPLE_RATE  # noqa: E402
from helpers_serve import OP_PING, close_frame, never_reading_client, raw_websocket, ws_frame  # noqa: E402
from rtmri.streamer.benchmarks.signals import bursts  # noqa: E402
from rtmri.bundle.engine import Engine  # noqa: E402
from rtmri.streamer.frames import Frame  # noqa: E402
from rtmri.streamer.server import protocol  # noqa: E402
from rtmri.streamer.server.app import RtmriServer, ServerOptions, ServerThread  # noqa: E402
from rtmri.streamer.server.broadcast import Broadcast  # noqa: E402
from rtmri.streamer.server.clients import Client  # noqa: E402
from rtmri.streamer.server.learners import Learners  # noqa: E402
from rtmri.streamer.server.security import Limits  # noqa: E402
from rtmri.streamer.sources import FileSource  # noqa: E402

CHUNK = 320  # 20 ms, as the page's worklet sends
# websockets >= 16 asks for `with connect(...)`; the long-lived test clients here close themselves.
pytestmark = pytest.mark.filterwarnings("ignore:connect\\(\\) must be used as a context manager:DeprecationWarning")


@pytest.fixture
def wav(tmp_path):
    path = tmp_path / "bursts.wav"
    soundfile.write(path, bursts(4.0), SAMPLE_RATE, subtype="PCM_16")
    return path


@pytest.fixture
def serve(make_tiny_bundle, wav):
    """serve(mode=..., token=..., limits=Limits(...), bundle=..., references=..., comparer=...) -> a running ServerThread."""
    running = []

    def start(mode="broadcast", bundle=None, references=(), comparer=None, **options):
        engine = Engine(bundle or make_tiny_bundle())
        engine.warm_up()  # as `rtmri serve` does: the mel basis and the first runs are slow
        make_source = (lambda: FileSource(wav, realtime=True)) if mode == "broadcast" else None
        server = RtmriServer(engine, ServerOptions(mode=mode, port=0, **options), make_source, references, comparer=comparer)
        thread = ServerThread(server).start()
        running.append(thread)
        return thread

    yield start
    for thread in running:
        thread.stop()


def ws_url(thread):
    return f"ws://127.0.0.1:{thread.server.port}/ws"


def hello(ws, token=None):
    ws.send(json.dumps({"type": "hello", "token": token}))
    welcome = json.loads(ws.recv(timeout=10))
    assert welcome["type"] == "welcome"
    return welcome


def send_and_close(ws, messages):
    """Send, then read until the server closes: (code, reason)."""
    try:
        for m in messages:
            ws.send(m)
    except (ConnectionClosed, OSError):
        pass  # closed by the server before the last message went
    return close_of(ws)


def close_of(ws, timeout=10.0):
    """Read until the server closes: (code, reason)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ws.recv(timeout=deadline - time.monotonic())
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, "no close frame")
    except TimeoutError:
        pass
    raise AssertionError("the server did not close the connection")


class Viewer(threading.Thread):
    """A well-behaved viewer that counts its frames in the background."""

    def __init__(self, url, token=None):
        super().__init__(daemon=True)
        self.ws = connect(url, max_size=2**22)
        hello(self.ws, token)
        self.frames = []
        self.error = None
        self.start()

    def run(self):
        try:
            for message in self.ws:
                if isinstance(message, bytes):
                    self.frames.append(protocol.parse_frame(message))
        except ConnectionClosed as exc:
            self.error = exc

    def count_during(self, seconds):
        return count_during([self], seconds)[0]

    def close(self):
        self.ws.close()
        self.join(5)


def count_during(viewers, seconds):
    """Frames each viewer received during the same span of time."""
    before = [len(v.frames) for v in viewers]
    time.sleep(seconds)
    return [len(v.frames) - b for v, b in zip(viewers, before)]


def lower_half_mean(image_bytes):
    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(image_bytes)).convert("L"), np.float32)
    return float(image[image.shape[0] // 2:].mean())


# --- the wire format ------------------------------------------------------------------

def header(index, dropped=0, codec="jpeg", epoch=0):
    return protocol.FrameHeader(codec, protocol.TRACK_LIVE, index, dropped, epoch, 0.0, 0.0, 0.0)


CONSTRICTIONS = (0.0, 1.5, 2.25, 8.5, 12.0, 0.75)  # float32-exact: they come back equal


def test_frame_and_audio_messages_round_trip():
    sent = protocol.FrameHeader("png", protocol.TRACK_LIVE, 123456, 7, 3, 1.5, 2.5, 3.5, constriction_mm=CONSTRICTIONS, closed=5)
    message = protocol.frame_message(sent, b"IMAGE", sent_at_ms=4.5)
    assert message[:4] == bytes([protocol.KIND_FRAME, protocol.VERSION, protocol.CODECS["png"], protocol.TRACK_LIVE])
    assert protocol.FrameHeader.unpack(message) == protocol.FrameHeader("png", 0, 123456, 7, 3, 1.5, 2.5, 3.5, 4.5, CONSTRICTIONS, 5)
    frame = protocol.parse_frame(message)
    assert frame == {"codec": "png", "track": 0, "index": 123456, "dropped": 7, "epoch": 3, "spoken_at_ms": 1.5,
                     "audio_ready_at_ms": 2.5, "made_at_ms": 3.5, "sent_at_ms": 4.5, "constriction_mm": CONSTRICTIONS,
                     "closed": 5, "image": b"IMAGE"}
    assert protocol.FRAME_HEADER.size == 73
    with pytest.raises(ValueError, match="shorter than its header"):
        protocol.FrameHeader.unpack(message[:72])
    with pytest.raises(ValueError, match=f"not a version {protocol.VERSION} frame"):
        protocol.FrameHeader.unpack(message[:1] + bytes([protocol.VERSION - 1]) + message[2:])
    samples = np.sin(np.linspace(0, 20, 640)).astype(np.float32) * 0.5
    offset, decoded = protocol.parse_audio(protocol.audio_message(9600, samples))
    assert offset == 9600
    np.testing.assert_allclose(decoded, samples, atol=1 / 32767)
    with pytest.raises(protocol.ProtocolError, match=f"expected {protocol.VERSION}"):
        protocol.parse_audio(protocol.audio_message(0, samples)[:1] + bytes([protocol.VERSION - 1]) + b"\0" * 6)


def a_frame(state=None):
    return Frame(index=12, image=np.zeros((4, 4), np.uint8), timestamp_s=0.48, spoken_at=1.0, audio_ready_at=1.1,
                 made_at=1.2, features_ms=0.1, inference_ms=0.2, dropped_before=3, state=state)


def test_a_frames_state_travels_in_its_header_as_constrictions_and_closures():
    state = np.full(STATE_SIZE, np.nan, np.float32)
    for region, lines, gap in zip(REGIONS, REGION_LINES, (3.0, 6.0, 9.0, 12.0, 15.0, 18.0)):
        state[GAP][lines] = np.linspace(gap + 4.0, gap, len(lines))  # the smallest gap is the region's
    state[CLOSED] = (0.2, 0.9, np.nan)  # the tongue tip closed
    header = protocol.FrameHeader.of(a_frame(state), "jpeg", protocol.TRACK_LIVE, epoch=2)
    got = protocol.FrameHeader.unpack(protocol.frame_message(header, b"JPEG"))
    assert (got.index, got.dropped, got.epoch, got.made_at_ms) == (12, 3, 2, 1200.0)
    assert got.constriction_mm == (3.0, 0.0, 9.0, 12.0, 15.0, 18.0)  # lips .. port; the tongue tip closed
    assert got.closed == 1 << CLOSURE_PLACES.index(ALVEOLAR)
    # No state (a bundle without one): NaN and no closure, and so on reference tracks.
    plain = protocol.FrameHeader.unpack(protocol.frame_message(protocol.FrameHeader.of(a_frame(), "png", 0, 0), b""))
    reference = protocol.FrameHeader.unpack(protocol.frame_message(header_of_reference(), b""))
    for header in (plain, reference):
        assert np.isnan(header.constriction_mm).all() and len(header.constriction_mm) == len(REGIONS) and header.closed == 0


def header_of_reference():
    from rtmri.streamer.server.references import track_bytes, LENGTH

    data = track_bytes([np.zeros((4, 4), np.uint8)], "png", 90, protocol.TRACK_RENDERED)
    return protocol.FrameHeader.unpack(data[LENGTH.size:])


def test_constrictions_of_state_vectors():
    states = np.full((3, STATE_SIZE), 10.0, np.float32)
    states[:, CLOSED] = 0.0
    lips = REGION_LINES[REGIONS.index(LIPS)]
    states[0, GAP][lips] = (np.nan, 4.0, -1.0, 7.0)  # NaN left out; a negative gap is 0
    states[1, GAP][lips] = np.nan  # no line of the region has a gap: NaN
    states[2, CLOSED] = (0.9, 0.4, 0.6)  # lips and dorsum closed
    degree, closed = constrictions(states)
    assert degree.shape == (3, len(REGIONS)) and closed.dtype == bool
    assert degree[0, REGIONS.index(LIPS)] == 0.0 and np.isnan(degree[1, REGIONS.index(LIPS)])
    assert (degree[2, [REGIONS.index(LIPS), REGIONS.index(VELAR)]] == 0.0).all() and degree[2, REGIONS.index(ALVEOLAR)] == 10.0
    assert closed.tolist() == [[False] * 3, [False] * 3, [True, False, True]]
    with pytest.raises(StateError):
        constrictions(states[:, :-1])


def test_the_page_reads_the_frame_header_where_the_server_writes_it():
    """static/app.js carries the header as a table of offsets and DataView getters: it must
    be protocol.FRAME_LAYOUT's, field for field (the browser test parses a real message)."""
    source = (Path(protocol.__file__).parent / "static" / "app.js").read_text()
    table = json.loads(re.search(r"^const FRAME_HEADER = (\{.*\});$", source, re.MULTILINE).group(1))
    getters = {"B": "Uint8", "I": "Uint32", "d": "Float64", "f": "Float32"}
    assert table == {name: [at, getters[code]] for name, (at, code) in protocol.frame_offsets().items()}
    assert list(table) == [name for name, _ in protocol.FRAME_LAYOUT]
    constant = lambda name: re.search(rf"^const {name} = (.*);$", source, re.MULTILINE).group(1)  # noqa: E731
    assert int(constant("HEADER")) == protocol.FRAME_HEADER.size
    assert int(constant("VERSION")) == protocol.VERSION and int(constant("AUDIO_HEADER")) == protocol.AUDIO_HEADER.size
    assert json.loads(constant("CLOSURE_BITS")) == {place: bit for bit, place in enumerate(CLOSURE_PLACES)}
    assert [name for name in table if name.endswith("_mm")] == list(protocol.CONSTRICTION_FIELDS)  # the page's REGIONS


@pytest.mark.parametrize("text, code", [
    ("{not json", protocol.CLOSE_INVALID),
    ("[1, 2]", protocol.CLOSE_INVALID),
    ('{"type": 5}', protocol.CLOSE_INVALID),
    ('{"type": "launch"}', protocol.CLOSE_UNSUPPORTED),
])
def test_bad_control_messages_are_protocol_errors(text, code):
    with pytest.raises(protocol.ProtocolError) as caught:
        protocol.parse_control(text)
    assert caught.value.code == code and caught.value.reason


def test_bad_audio_messages_are_protocol_errors():
    good = protocol.audio_message(0, np.zeros(10, np.float32))
    for data, code in ((good + b"x", protocol.CLOSE_INVALID), (b"\x01" + good[1:], protocol.CLOSE_UNSUPPORTED),
                       (protocol.audio_message(0, np.zeros(protocol.MAX_AUDIO_SAMPLES + 1)), protocol.CLOSE_TOO_BIG)):
        with pytest.raises(protocol.ProtocolError) as caught:
            protocol.parse_audio(data)
        assert caught.value.code == code


# --- the queue per viewer: the newest frame wins ---------------------------------------

class FakeSocket:
    def __init__(self, blocked=False):
        self.blocked = asyncio.Event()
        if not blocked:
            self.blocked.set()
        self.messages = []

    async def send(self, message):
        await self.blocked.wait()
        self.messages.append(message)


def test_a_viewer_that_does_not_take_frames_only_loses_its_own():
    async def scenario():
        broadcast = Broadcast(engine=None, make_source=None)
        limits = Limits(queue_frames=2)
        fast = [Client(FakeSocket(), limits) for _ in range(2)]
        slow = Client(FakeSocket(blocked=True), limits)
        tasks = [asyncio.create_task(c.send_loop()) for c in fast + [slow]]
        broadcast.viewers.update(fast + [slow])
        for k in range(50):
            broadcast.publish(header(k), b"x")
            await asyncio.sleep(0)
        await asyncio.sleep(0.01)
        fast_indices = [[protocol.parse_frame(m)["index"] for m in c.ws.messages] for c in fast]
        assert fast_indices == [list(range(50))] * 2
        assert len(slow.frames) <= 2 and slow.dropped >= 45  # bounded: one in its socket, the newest two waiting
        slow.ws.blocked.set()  # it starts reading again: it gets the newest frames, told how many it missed
        await asyncio.sleep(0.01)
        got = [protocol.parse_frame(m) for m in slow.ws.messages]
        assert got[-1]["index"] == 49
        assert len(got) + sum(f["dropped"] for f in got) == 50  # every frame either arrived or was counted
        for task in tasks:
            task.cancel()

    asyncio.run(scenario())


# --- broadcast over real sockets -----------------------------------------------------

def test_viewers_get_25_fps_frames_with_ordered_timestamps(serve):
    server = serve()
    viewers = [Viewer(ws_url(server)) for _ in range(2)]
    counts = count_during(viewers, 3.0)
    for v in viewers:
        v.close()
    assert all(c >= 45 for c in counts), counts  # 75 at 25 fps; a loaded machine gets at least 60 %
    frames = viewers[0].frames
    for f in frames[5:]:
        assert f["codec"] == "jpeg" and f["track"] == protocol.TRACK_LIVE
        assert f["spoken_at_ms"] <= f["audio_ready_at_ms"] <= f["made_at_ms"] <= f["sent_at_ms"]
    indices = [f["index"] for f in frames if f["epoch"] == frames[0]["epoch"]]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    from PIL import Image

    assert Image.open(io.BytesIO(frames[-1]["image"])).size == (32, 32)


def test_viewers_of_an_articulatory_bundle_get_each_frames_constrictions(serve, make_tiny_articulatory_bundle):
    server = serve(bundle=make_tiny_articulatory_bundle())
    viewer = Viewer(ws_url(server))
    viewer.count_during(3.0)
    viewer.close()
    frames = viewer.frames[5:]
    assert len(frames) >= 30
    degree = np.array([f["constriction_mm"] for f in frames])
    lips_closed = np.array([bool(f["closed"] & 1 << CLOSURE_PLACES.index(LIPS)) for f in frames])
    assert np.isfinite(degree).all() and (degree >= 0).all()
    assert lips_closed.any() and not lips_closed.all()  # the bursts' silences close the tiny model's lips
    lips = degree[:, REGIONS.index(LIPS)]
    assert (lips[lips_closed] == 0).all() and lips[~lips_closed].max() > 5


def test_clock_offset_ping_and_status(serve):
    server = serve(status_interval_s=0.5)
    with connect(ws_url(server)) as ws:
        welcome = hello(ws)
        assert welcome["mode"] == "broadcast" and welcome["fps"] == 25 and welcome["lookahead_ms"] == 40.0
        before = protocol.now_ms()
        ws.send(json.dumps({"type": "ping", "t0": 12.5}))
        seen, frames, statuses = set(), 0, 0
        while not ({"pong", "status"} <= seen and statuses >= 2):
            message = ws.recv(timeout=10)
            if isinstance(message, bytes):
                frames += 1
                continue
            m = json.loads(message)
            seen.add(m["type"])
            if m["type"] == "pong":
                assert m["t0"] == 12.5 and before <= m["server_ms"] <= protocol.now_ms()
            if m["type"] == "status":
                statuses += 1
                # a status goes out ahead of any frame queued after it: it counts exactly the frames before it
                assert m["clients"] == m["viewers"] == 1 and m["sent"] == frames
                assert m["epoch"] == 0 and m["error"] is None
        assert frames >= 10  # two statuses 0.5 s apart


def test_a_client_that_never_reads_does_not_slow_the_others(serve, make_tiny_bundle):
    # Big frames (192 px of noise) so the never-reading socket fills its buffers within a second.
    server = serve(bundle=make_tiny_bundle(size=192, face_input=True), limits=Limits(stall_timeout_s=3.0))
    slow = never_reading_client(server.server.port)
    viewers = [Viewer(ws_url(server)) for _ in range(2)]
    time.sleep(0.5)
    slow_port = slow.getsockname()[1]
    slow_client = next(c for c in list(server.server.admission.clients) if c.ws.remote_address[1] == slow_port)
    counts = count_during(viewers, 5.0)
    assert all(c >= 75 for c in counts), counts  # 125 at 25 fps
    assert slow_client.dropped >= 20  # its own queue dropped its frames
    assert len(slow_client.frames) <= 2
    deadline = time.monotonic() + 15
    while slow_client in server.server.admission.clients and time.monotonic() < deadline:
        time.sleep(0.2)
    assert slow_client not in server.server.admission.clients  # closed as stalled
    assert all(v.error is None for v in viewers)
    for v in viewers:
        v.close()
    slow.close()


# --- clients that break the rules -----------------------------------------------------

def test_bad_clients_are_closed_with_a_reason_and_the_others_go_on(serve):
    server = serve(token="s3cret", limits=Limits(hello_timeout_s=1.0))
    url = ws_url(server)
    viewer = Viewer(url, token="s3cret")
    start_count = len(viewer.frames)

    def after_hello(*messages):
        ws = connect(url, max_queue=None)  # it reads everything it is sent (the flood's pongs too)
        hello(ws, "s3cret")
        return send_and_close(ws, messages)

    def before_hello(*messages):
        return send_and_close(connect(url), messages)

    cases = {
        "oversized binary": (after_hello(b"\x02\x01\x00\x00" + bytes(70_000)), 1009, "exceeds limit"),
        "oversized text": (after_hello(json.dumps({"type": "ping", "t0": 1, "pad": "x" * 5000})), 1009, "over 4096 bytes"),
        "invalid JSON": (after_hello("{nope"), 1007, "invalid JSON"),
        "unknown type": (after_hello('{"type": "shutdown"}'), 1003, "unknown message type"),
        "learner message to broadcast": (after_hello('{"type": "start"}'), 1003, "learner mode"),
        "binary from a viewer": (after_hello(protocol.audio_message(0, np.zeros(320))), 1003, "binary"),
        "bad ping": (after_hello('{"type": "ping", "t0": "soon"}'), 1007, "t0"),
        "audio before the token": (before_hello(protocol.audio_message(0, np.zeros(320))), 1008, "audio before the token"),
        "wrong token": (before_hello('{"type": "hello", "token": "guess"}'), 1008, "token"),
        "no token": (before_hello('{"type": "hello"}'), 1008, "token"),
        "not hello first": (before_hello('{"type": "ping", "t0": 1}'), 1008, "first message must be hello"),
        "silent client": (before_hello(), 1008, "no hello"),
        "flood": (after_hello(*['{"type": "ping", "t0": 1}'] * 400), 1008, "messages per second"),
        # JSON that Python parses but a browser's JSON.parse would not take back in the pong
        "NaN ping": (after_hello('{"type": "ping", "t0": NaN}'), 1007, "finite number t0"),
        "infinite ping": (after_hello('{"type": "ping", "t0": 1e999}'), 1007, "finite number t0"),
        # a lone surrogate, as JSON escapes let any client send it: not UTF-8, not a token
        "lone surrogate token": (before_hello('{"type": "hello", "token": "\\ud800"}'), 1008, "token"),
        "lone surrogate type": (before_hello('{"type": "\\udfff"}'), 1003, "unknown message type"),
    }
    for name, ((code, reason), want_code, want_reason) in cases.items():
        assert code == want_code and want_reason in reason, (name, code, reason)
    # Refused at the handshake: another site's page, or a name that is not this host.
    with pytest.raises(InvalidStatus) as refused:
        connect(url, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    with pytest.raises(InvalidStatus) as refused:
        connect(url, additional_headers={"Host": "rebound.example:80"})  # a second Host header
    assert refused.value.response.status_code == 403
    # The good viewer never noticed, and the server still takes new clients.
    assert viewer.error is None
    assert viewer.count_during(1.0) >= 10
    assert len(viewer.frames) - start_count >= 25
    again = Viewer(url, token="s3cret")
    assert again.count_during(1.0) >= 10
    again.close()
    viewer.close()


def test_the_server_is_full_at_max_clients(serve):
    server = serve(limits=Limits(max_clients=2))
    first, second = Viewer(ws_url(server)), Viewer(ws_url(server))
    third = connect(ws_url(server))
    third.send('{"type": "hello"}')
    code, reason = close_of(third)
    assert code == 1013 and "full" in reason
    assert first.count_during(0.5) > 0 and second.error is None
    first.close()
    second.close()


# --- learner sessions -----------------------------------------------------------------

def speak(ws, samples, offset=0, realtime=True):
    """Send samples as the page does: 20 ms messages, at real-time pace."""
    started = time.monotonic()
    for i in range(0, len(samples), CHUNK):
        ws.send(protocol.audio_message(offset + i, samples[i:i + CHUNK]))
        if realtime:
            time.sleep(max(0.0, started + (i + CHUNK) / SAMPLE_RATE - time.monotonic()))
    return offset + len(samples)


def collect(ws, until_type="stopped", timeout=15.0):
    frames, controls = [], []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        message = ws.recv(timeout=deadline - time.monotonic())
        if isinstance(message, bytes):
            frames.append(protocol.parse_frame(message))
        else:
            controls.append(json.loads(message))
            if controls[-1]["type"] == until_type:
                return frames, controls
    raise AssertionError(f"no {until_type} message")


def test_learner_gets_its_own_frames_that_follow_its_speech(serve):
    server = serve(mode="learner")
    audio = bursts(3.0, period_s=0.5, seed=1)
    with connect(ws_url(server)) as ws:
        assert hello(ws)["mode"] == "learner"
        ws.send('{"type": "start"}')
        received = {}
        reader = threading.Thread(target=lambda: received.update(zip(("frames", "controls"), collect(ws))), daemon=True)
        reader.start()
        speak(ws, audio)
        ws.send('{"type": "stop"}')
        reader.join(20)
    frames, controls = received["frames"], received["controls"]
    started = next(c for c in controls if c["type"] == "started")
    stopped = controls[-1]
    assert stopped["epoch"] == started["epoch"] and all(f["epoch"] == started["epoch"] for f in frames)
    assert stopped["frames"] + stopped["dropped"] == 75  # 3 s at 25 fps, each made or counted as dropped
    assert len(frames) >= 50  # of 75: the rest dropped, never more than a loaded machine makes it
    # The picture follows the sound: brighter lower half in the bursts than in the silences.
    loud = {f["index"]: lower_half_mean(f["image"]) for f in frames}
    speaking = [v for k, v in loud.items() if (k * 640 + 320) // 8000 % 2 == 0 and (k * 640) % 8000 > 2400]
    silent = [v for k, v in loud.items() if (k * 640 + 320) // 8000 % 2 == 1 and (k * 640) % 8000 > 2400]
    assert len(speaking) >= 10 and len(silent) >= 10
    assert np.mean(speaking) > np.mean(silent) + 20, (np.mean(speaking), np.mean(silent))
    # Their timestamps say when the audio arrived and when the frame was made.
    for f in frames:
        assert f["audio_ready_at_ms"] <= f["made_at_ms"] <= f["sent_at_ms"]


def run_learners(engine, clients, speak_first, limits=None, passes=200):
    """Learners on clients (FakeSocket): speak_first(learners) sends their messages before
    the batching task starts; then it runs until every client that stopped was told so."""

    async def scenario():
        learners = Learners(engine, limits or Limits(audio_burst_s=5.0))
        senders = [asyncio.create_task(c.send_loop()) for c in clients]
        for c in clients:
            learners.join(c)
        speak_first(learners)
        await learners.start()
        for _ in range(passes):
            await asyncio.sleep(0.01)
            if all(any('"stopped"' in m for m in c.ws.messages if isinstance(m, str)) for c in clients):
                break
        await learners.stop()
        for t in senders:
            t.cancel()

    asyncio.run(scenario())
    return [([protocol.parse_frame(m) for m in c.ws.messages if isinstance(m, bytes)],
             [json.loads(m) for m in c.ws.messages if isinstance(m, str)]) for c in clients]


def recording_engine(make_tiny_bundle):
    engine = Engine(make_tiny_bundle())
    engine.warm_up()
    batches = []
    run = engine.run_with_state  # what the frame maker calls
    engine.run_with_state = lambda mel: (batches.append(np.array(mel)), run(mel))[1]
    return engine, batches


def test_sessions_are_batched_into_one_engine_run(make_tiny_bundle):
    engine, batches = recording_engine(make_tiny_bundle)
    clients = [Client(FakeSocket(), Limits(queue_frames=100)) for _ in range(3)]

    def speak(learners):
        for c in clients:
            learners.control(c, {"type": "start"})
            learners.audio(c, 0, bursts(0.2, seed=2))  # 5 frames' worth each, before the engine pass
            learners.control(c, {"type": "stop"})

    results = run_learners(engine, clients, speak)
    assert len(batches[0]) == 3 * 2  # one run for all sessions: each one's newest 2 windows
    for frames, controls in results:
        assert [f["index"] for f in frames] == [3, 4] and frames[0]["dropped"] == 3
        assert controls[-1]["type"] == "stopped" and (controls[-1]["frames"], controls[-1]["dropped"]) == (2, 3)


def test_a_pass_takes_one_window_from_every_session_in_turn(make_tiny_bundle):
    """20 sessions, 40 ready windows, 32 a pass: the first engine run holds a window of
    every session (not all of the first 16 sessions' while the last 4 wait)."""
    from rtmri.audio import melspectrogram

    engine, batches = recording_engine(make_tiny_bundle)
    clients = [Client(FakeSocket(), Limits(queue_frames=100)) for _ in range(20)]
    t = np.arange(int(0.2 * SAMPLE_RATE)) / SAMPLE_RATE
    tones = [(0.5 * np.sin(2 * np.pi * (150 + 350 * i) * t)).astype(np.float32) for i in range(20)]
    band = [int(np.argmax(melspectrogram(tone).mean(axis=1))) for tone in tones]  # each session's loudest mel band
    assert len(set(band)) == 20

    def speak(learners):
        for c, tone in zip(clients, tones):
            learners.control(c, {"type": "start"})
            learners.audio(c, 0, tone)

    run_learners(engine, clients, speak, limits=Limits(max_sessions=20), passes=30)
    first = {int(np.argmax(window.mean(axis=1))) for window in batches[0].reshape(-1, 80, 16)}
    assert len(batches[0]) == 32 and first == set(band)


def learner_client():
    return Client(FakeSocket(), Limits(queue_frames=100))


def test_a_new_start_does_not_renew_the_audio_budget(make_tiny_bundle):
    """The budget belongs to the connection: start + a burst of audio, again and again,
    is refused once the one burst is spent."""
    client = learner_client()
    learners = Learners(Engine(make_tiny_bundle()), Limits(audio_burst_s=1.0, audio_speed=1.0))
    learners.join(client)
    second = np.zeros(SAMPLE_RATE, np.float32)
    learners.control(client, {"type": "start"})
    learners.audio(client, 0, second * 0)  # the one burst: 1 s at once
    learners.control(client, {"type": "start"})
    with pytest.raises(protocol.ProtocolError, match="faster than real time") as refused:
        learners.audio(client, 0, second)
    assert refused.value.code == protocol.CLOSE_POLICY


def test_starts_are_rate_limited(make_tiny_bundle):
    client = learner_client()
    learners = Learners(Engine(make_tiny_bundle()), Limits(starts_per_s=1.0, start_burst=3))
    learners.join(client)
    for _ in range(3):
        learners.control(client, {"type": "start"})
    with pytest.raises(protocol.ProtocolError, match="more than 1 starts per second"):
        learners.control(client, {"type": "start"})


def test_a_stop_drops_stale_windows_too(make_tiny_bundle):
    """1 s of audio arrives at once, then stop: only the newest windows are made (and the
    frames the lookahead held back); the rest are counted as dropped, not all processed."""
    engine, batches = recording_engine(make_tiny_bundle)
    client = learner_client()

    def speak(learners):
        learners.control(client, {"type": "start"})
        learners.audio(client, 0, bursts(1.0, seed=4))
        learners.control(client, {"type": "stop"})

    ((frames, controls),) = run_learners(engine, [client], speak)
    stopped = controls[-1]
    assert stopped["type"] == "stopped" and stopped["frames"] + stopped["dropped"] == 25
    assert [f["index"] for f in frames] == list(range(25 - len(frames), 25)) and len(frames) <= 3
    assert sum(len(b) for b in batches) == len(frames)


def test_learner_rules(serve):
    server = serve(mode="learner", limits=Limits(max_sessions=1, audio_burst_s=0.5, audio_speed=1.0))
    url = ws_url(server)

    def session(*messages):
        ws = connect(url)
        hello(ws)
        return send_and_close(ws, messages)

    start = '{"type": "start"}'
    chunk = protocol.audio_message(0, np.zeros(CHUNK))
    assert session(chunk)[0] == 1008  # audio before start
    code, reason = session(start, chunk, protocol.audio_message(CHUNK * 5, np.zeros(CHUNK)))
    assert code == 1007 and "offset" in reason
    code, reason = session(start, chunk[:-1])
    assert code == 1007 and "16-bit" in reason
    second_of_audio = [protocol.audio_message(i * SAMPLE_RATE, np.zeros(SAMPLE_RATE)) for i in range(3)]
    code, reason = session(start, *second_of_audio)  # 3 s of audio in an instant
    assert code == 1008 and "faster than real time" in reason
    # One session at a time here: a second learner is told to come back later.
    first = connect(url)
    hello(first)
    second = connect(url)
    second.send('{"type": "hello"}')
    code, reason = close_of(second)
    assert code == 1013 and "sessions" in reason
    first.send(start)
    speak(first, bursts(0.5))
    first.send('{"type": "stop"}')
    frames, controls = collect(first)
    assert len(frames) >= 8 and controls[-1]["type"] == "stopped"
    first.close()


class RecordingComparer:
    """A dispatch.Comparer that answers with how much audio and which live frames it was handed."""

    def __init__(self):
        self.samples, self.left = 0, 0
        self.frames = []

    def audio(self, client, offset, samples):
        self.samples += len(samples)

    def frame(self, client, index, codec, image, epoch):
        self.frames.append([index, codec, len(image)])

    def request(self, client, request, cut=None):
        client.say(protocol.control(protocol.COMPARISON, id=request.get("id"), heard=self.samples, frames=self.frames))

    def leave(self, client):
        self.left += 1


def next_control(ws, kind, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        message = ws.recv(timeout=deadline - time.monotonic())
        if isinstance(message, str) and json.loads(message)["type"] == kind:
            return json.loads(message)


def test_compare_goes_to_the_comparer_the_server_was_handed_and_without_one_is_answered(serve):
    compare = json.dumps({"type": "compare", "reference": "0", "start": 0, "end": CHUNK, "id": 3})
    comparer = RecordingComparer()
    with connect(ws_url(serve(mode="learner", comparer=comparer))) as ws:
        hello(ws)
        ws.send('{"type": "start"}')
        speak(ws, bursts(0.3))
        ws.send('{"type": "stop"}')
        sent, _ = collect(ws)
        ws.send(compare)
        answer = next_control(ws, protocol.COMPARISON)
        # every live frame the learner was sent went to the comparer too (its attempts' pictures)
        assert answer["id"] == 3 and answer["heard"] == len(bursts(0.3)) and len(sent) >= 5
        assert answer["frames"] == [[frame["index"], frame["codec"], len(frame["image"])] for frame in sent]
    deadline = time.monotonic() + 5
    while not comparer.left and time.monotonic() < deadline:
        time.sleep(0.05)
    assert comparer.left == 1  # told when the learner left
    with connect(ws_url(serve(mode="learner"))) as ws:
        hello(ws)
        ws.send(compare)
        assert "compares no attempts" in next_control(ws, protocol.COMPARISON)["error"]


def test_a_learner_that_restarts_to_renew_its_budget_is_closed_and_the_others_keep_their_frames(serve):
    """The attack of issue 14: start + 2 s of audio, over and over, under the message rate.
    It is closed; a learner speaking at the same time gets its frames."""
    server = serve(mode="learner")
    url = ws_url(server)
    greedy = connect(url)
    hello(greedy)
    outcome = {}

    def flood():
        burst = [protocol.audio_message(i, np.zeros(SAMPLE_RATE, np.float32)) for i in (0, SAMPLE_RATE)]
        try:
            for _ in range(200):
                greedy.send('{"type": "start"}')
                for message in burst:
                    greedy.send(message)
                time.sleep(0.03)
        except (ConnectionClosed, OSError):
            pass
        outcome["close"] = close_of(greedy)

    attacker = threading.Thread(target=flood, daemon=True)
    with connect(url) as ws:
        hello(ws)
        ws.send('{"type": "start"}')
        received = {}
        reader = threading.Thread(target=lambda: received.update(zip(("frames", "controls"), collect(ws))), daemon=True)
        reader.start()
        attacker.start()
        speak(ws, bursts(2.0, seed=5))
        ws.send('{"type": "stop"}')
        reader.join(20)
    attacker.join(20)
    code, reason = outcome["close"]
    assert code == 1008 and ("faster than real time" in reason or "starts per second" in reason), (code, reason)
    stopped = received["controls"][-1]
    assert stopped["type"] == "stopped" and stopped["frames"] + stopped["dropped"] == 50 and stopped["frames"] >= 40


# --- HTTP: the page and the references ------------------------------------------------

def http_get(url, headers=None):
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def test_the_page_is_served_with_its_assets(serve):
    server = serve()
    base = f"http://127.0.0.1:{server.server.port}"
    status, headers, body = http_get(base + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html") and b'src="/app.js"' in body
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    for name, kind in (("app.js", "text/javascript"), ("worklet.js", "text/javascript"), ("style.css", "text/css")):
        status, headers, body = http_get(f"{base}/{name}")
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
        assert headers.get_all("Cache-Control") == ["no-store"]
    status, headers, body = http_get(f"{base}/NotoSansJP-subset.woff2")  # the page's Japanese font, kept a day
    assert status == 200 and headers["Content-Type"] == "font/woff2" and body[:4] == b"wOF2"
    assert headers.get_all("Cache-Control") == ["public, max-age=86400"]
    assert http_get(base + "/../pyproject.toml")[0] == 404
    assert http_get(base + "/nothing-here")[0] == 404
    assert http_get(base + "/", {"Host": "attacker.example"})[0] == 403
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
               "Sec-WebSocket-Version": "13"}
    assert http_get(base + "/ws", {**upgrade, "Host": "rebound.example:80"})[0] == 403  # DNS rebinding
    assert http_get(base + "/ws", {**upgrade, "Origin": f"http://localhost:{server.server.port}"})[0] == 403
    assert http_get(base + "/elsewhere", upgrade)[0] == 404


def test_references_are_rendered_and_served_with_their_original(serve, make_tiny_bundle, tmp_path):
    from rtmri.streamer.mp4 import Mp4Sink
    from rtmri.lessons.live import lesson_references
    from rtmri.streamer.server.references import LENGTH

    folder = tmp_path / "refs"
    folder.mkdir()
    audio = bursts(2.0, seed=3)
    soundfile.write(folder / "aiueo.wav", audio, SAMPLE_RATE)
    video = Mp4Sink(folder / "aiueo.mp4", size=64)  # its "original rtMRI": frame k has brightness 4 k
    video.audio(audio)
    for k in range(50):
        video.frame(type("F", (), {"index": k, "image": np.full((64, 64), 4 * k, np.uint8)})())
    video.close()
    soundfile.write(folder / "silence.flac", np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE)
    (folder / "notes.txt").write_text("not a recording")
    bundle = make_tiny_bundle()
    references = lesson_references(folder, Engine(bundle))
    server = serve(bundle=bundle, references=references, token="tok")
    base = f"http://127.0.0.1:{server.server.port}/references"
    assert http_get(base)[0] == 403
    status, _, body = http_get(base + "?token=tok")
    listing = {r["name"]: r for r in json.loads(body)}
    assert status == 200 and set(listing) == {"aiueo", "silence"}
    assert listing["aiueo"]["original"] and not listing["silence"]["original"]
    assert listing["aiueo"]["frames"] == 50
    ref = listing["aiueo"]["id"]

    def track(name):
        status, _, body = http_get(f"{base}/{ref}/{name}.bin?token=tok")
        assert status == 200
        frames, at = [], 0
        while at < len(body):
            (length,) = LENGTH.unpack_from(body, at)
            frames.append(protocol.parse_frame(body[at + 4:at + 4 + length]))
            at += 4 + length
        return frames

    rendered, original = track("rendered"), track("original")
    assert [f["index"] for f in rendered] == list(range(50)) == [f["index"] for f in original]
    assert {f["track"] for f in rendered} == {protocol.TRACK_RENDERED} and {f["track"] for f in original} == {protocol.TRACK_ORIGINAL}
    brightness = [lower_half_mean(f["image"]) for f in original]
    assert np.corrcoef(brightness, 4 * np.arange(50))[0, 1] > 0.99  # frame k of the video at index k
    assert lower_half_mean(rendered[5]["image"]) > lower_half_mean(rendered[17]["image"]) + 20  # burst vs silence
    assert all(np.isnan(f["constriction_mm"]).all() and f["closed"] == 0 for f in rendered + original)
    status, headers, body = http_get(f"{base}/{ref}/audio.wav?token=tok")
    decoded, rate = soundfile.read(io.BytesIO(body), dtype="float32")
    assert status == 200 and rate == SAMPLE_RATE and len(decoded) == len(audio)
    assert http_get(f"{base}/{listing['silence']['id']}/original.bin?token=tok")[0] == 404


# --- the command ----------------------------------------------------------------------

def test_serve_command_off_loopback_makes_a_token_and_a_join_url(make_tiny_bundle, wav):
    bundle = make_tiny_bundle()
    process = subprocess.Popen([sys.executable, "-m", "rtmri.cli", "serve", "--bundle", str(bundle.path), "--file", str(wav),
                                "--host", "0.0.0.0", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline()
        match = re.search(r"open (http://[^:/]+:(\d+)/)#token=(\S+)", line)
        assert match, line
        port, token = int(match.group(2)), match.group(3)
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send('{"type": "hello"}')
            assert close_of(ws)[0] == 1008
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            hello(ws, token)
            assert isinstance(ws.recv(timeout=10), (bytes, str))
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert "stopped" in err


def test_serve_command_refuses_a_file_in_learner_mode(make_tiny_bundle, wav):
    from rtmri.cli import main

    assert main(["serve", "--bundle", str(make_tiny_bundle().path), "--mode", "learner", "--file", str(wav)]) == 2


# --- hostile clients cost nobody else anything -------------------------------------------

def test_silent_sockets_never_lock_out_a_token_holder(serve):
    """Connections that never say hello have a few places of their own and a short
    deadline: a token holder gets in while any number of them are open."""
    server = serve(token="tok", limits=Limits(max_clients=3, max_waiting=4, hello_timeout_s=1.5))
    silent = [raw_websocket(server.server.port) for _ in range(10)]
    time.sleep(0.3)
    assert len(server.server.admission.waiting) <= 4 and not server.server.admission.clients
    viewer = Viewer(ws_url(server), token="tok")
    assert viewer.count_during(1.0) >= 10
    codes = [close_frame(sock, timeout=5.0) for sock in silent]
    assert all(c is not None and c[0] in (1008, 1013) for c in codes), codes  # the oldest made room; the rest timed out
    assert sum("no hello" in c[1] for c in codes) >= 1 and sum("waiting" in c[1] for c in codes) >= 6
    assert not server.server.admission.waiting and viewer.error is None
    viewer.close()
    for sock in silent:
        sock.close()


def test_a_ping_flood_is_cut_off_with_a_reason(serve):
    """websockets answers pings itself: a socket that pings without end and never reads
    would fill the server's memory with pongs. Pings count against the message rate."""
    server = serve(limits=Limits(messages_per_s=20, message_burst=40))
    sock = raw_websocket(server.server.port)
    ping = ws_frame(OP_PING, b"x" * 100)
    try:
        for _ in range(2000):
            sock.sendall(ping)
    except OSError:
        pass  # cut off before the last one
    assert close_frame(sock) == (1008, "more than 20 messages per second (pings count)")
    sock.close()


def test_a_connection_whose_outgoing_buffer_passes_the_cap_is_cut_off(serve):
    """Under the message rate, pongs to a client that never reads still pile up; past
    max_write_buffer_bytes waiting to go out, the connection is dropped."""
    limits = Limits(messages_per_s=10_000, message_burst=10_000, max_write_buffer_bytes=16 * 1024, socket_send_buffer=4096,
                    hello_timeout_s=60.0)  # neither the rate nor the hello deadline ends it here
    server = serve(limits=limits)
    sock = raw_websocket(server.server.port, receive_buffer=4096)
    time.sleep(0.2)
    (client,) = server.server.admission.waiting
    ping = ws_frame(OP_PING, b"x" * 120)
    try:
        for _ in range(3000):  # 380 kB of pongs to answer
            sock.sendall(ping)
    except OSError:
        pass  # cut off
    deadline = time.monotonic() + 10
    while client in server.server.admission.waiting and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client not in server.server.admission.waiting and client.ws.transport.is_closing()
    sock.close()


def test_http_methods_other_than_get_and_head_are_refused_and_head_has_no_body(serve):
    import http.client

    server = serve()
    port = server.server.port
    page = http_get(f"http://127.0.0.1:{port}/")[2]
    for method in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request(method, "/")
        response = connection.getresponse()
        assert response.status == 405 and response.getheader("Allow") == "GET, HEAD" and b"page" not in response.read()
        connection.close()
    head, body = raw_http(port, "HEAD").split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 200") and f"Content-Length: {len(page)}".encode() in head.split(b"\r\n")
    assert body == b""  # the headers of the page, not the page


def raw_http(port, method="GET", requests=1):
    """Send requests (pipelined) on one socket and read everything until the server closes."""
    import socket

    request = f"{method} / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request * requests)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_two_pipelined_requests_get_one_answer_and_no_traceback(serve, caplog):
    server = serve()
    with caplog.at_level(logging.DEBUG):
        answer = raw_http(server.server.port, requests=2)
        time.sleep(0.3)
    page = http_get(f"http://127.0.0.1:{server.server.port}/")[2]
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(page) and answer.count(b"HTTP/1.1 ") == 1
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], [r.getMessage() for r in caplog.records]
