import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile

from rtmri.alignment import frame_windows, n_frames_for_samples
from rtmri.audio import SAMPLE_RATE, load_audio, melspectrogram
from rtmri.streamer.benchmarks.signals import bursts
from rtmri.bundle.engine import Engine
from rtmri.streamer.mp4 import Mp4Sink
from rtmri.streamer.sinks import CollectSink
from rtmri.streamer.sources import DEFAULT_BLOCK_MS, AudioSourceError, FileSource, MicrophoneSource
from rtmri.streamer.stream import Streamer
from rtmri.streamer.windows import FrameWindows


@pytest.fixture
def speech_file(tmp_path):
    def make(seconds, seed=0):
        path = tmp_path / f"speech{seconds}.wav"
        soundfile.write(path, bursts(seconds, seed=seed), SAMPLE_RATE, subtype="PCM_16")
        return path

    return make


def decode_mp4(path):
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate = video.average_rate
        frames = [f.to_ndarray(format="gray") for f in container.decode(video)]
    with av.open(str(path)) as container:
        audio_stream = container.streams.audio[0]
        samples = sum(f.samples for f in container.decode(audio_stream))
        audio_rate = audio_stream.rate
    return rate, np.stack(frames), samples / audio_rate


@pytest.mark.parametrize("lookahead_ms", [0, 40, 132.5])
@pytest.mark.parametrize("chunk", [1, 320, 1024, 16000])
def test_streamed_windows_equal_offline_windows(lookahead_ms, chunk):
    wav = bursts(2.0)
    windows = FrameWindows(lookahead_ms)
    out = []
    for i in range(0, len(wav), chunk):
        out += windows.push(wav[i : i + chunk])
    out += windows.flush()
    offline = frame_windows(melspectrogram(wav), n_frames_for_samples(len(wav)), lookahead_ms)
    assert [w.index for w in out[: len(offline)]] == list(range(len(offline)))
    assert len(out) - len(offline) in (0, 1)  # a causal model may also make the partial last frame
    np.testing.assert_allclose(np.stack([w.mel for w in out[: len(offline)]]), offline, atol=1e-4)


def test_render_writes_25fps_mp4_with_audio_equal_to_offline_generation(make_tiny_bundle, speech_file, tmp_path):
    from rtmri.cli import main

    bundle = make_tiny_bundle(lookahead_ms=80)
    audio = speech_file(30)
    out = tmp_path / "out.mp4"
    assert main(["render", str(bundle.path), str(audio), "-o", str(out), "--size", "32"]) == 0
    rate, frames, audio_s = decode_mp4(out)
    assert rate == 25
    assert abs(len(frames) - 30 * 25) <= 1
    assert abs(audio_s - 30.0) < 0.1
    wav = load_audio(audio)
    expected = Engine(bundle).run(frame_windows(melspectrogram(wav), n_frames_for_samples(len(wav)), 80))
    n = min(len(expected), len(frames))
    error = np.abs(frames[:n].astype(int) - expected[:n].astype(int))
    assert error.mean() < 2.0 and np.percentile(error, 99) <= 8  # H.264 at CRF 18, nothing more
    lower = frames[:, 16:].mean(axis=(1, 2))
    assert lower.max() - lower.min() > 20  # the picture follows the bursts


class SlowEngine:
    def __init__(self, engine, seconds):
        self.engine, self.seconds, self.bundle = engine, seconds, engine.bundle

    def run_with_state(self, windows):
        time.sleep(self.seconds * len(windows))
        return self.engine.run_with_state(windows)


def test_falling_behind_drops_frames_instead_of_piling_up_delay(make_tiny_bundle, speech_file):
    engine = SlowEngine(Engine(make_tiny_bundle()), seconds=0.06)  # 60 ms a frame: cannot keep 25 fps
    sink = CollectSink()
    stats = Streamer(engine, [sink], realtime=True).run(FileSource(speech_file(4), realtime=True))
    seen = sink.frames
    indices = sink.indices
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert stats.dropped > 10 and stats.frames + stats.dropped >= 99
    assert stats.dropped == sum(f.dropped_before for f in seen)
    late = stats.summary()["audio_to_frame"]["p95_ms"]
    assert late < 400  # bounded: without dropping it would grow to seconds


def test_live_with_a_file_in_a_dummy_window_keeps_25fps_and_records(make_tiny_bundle, speech_file, tmp_path):
    out = tmp_path / "live.mp4"
    report = tmp_path / "live.json"
    env = {"SDL_VIDEODRIVER": "dummy", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "rtmri.cli", "live", "--bundle", str(make_tiny_bundle().path), "--file", str(speech_file(3)),
         "--record", str(out), "--json", str(report)],
        capture_output=True, text=True, timeout=120, env={**__import__("os").environ, **env},
    )
    assert result.returncode == 0, result.stderr
    import json

    summary = json.loads(report.read_text())
    assert summary["dropped"] == 0 and summary["frames"] >= 74
    assert 2.8 < summary["wall_s"] < 4.5  # paced by the audio, not as fast as possible
    assert "sound -> frame on screen" in result.stderr
    rate, frames, _ = decode_mp4(out)
    assert rate == 25 and abs(len(frames) - 75) <= 1


def test_missing_microphone_is_said_plainly_with_the_device_list():
    with pytest.raises(AudioSourceError, match=r"(?s)no input device 'no-such-microphone-xyz'.*Audio devices here.*--file"):
        MicrophoneSource("no-such-microphone-xyz")


def test_mp4_sink_holds_the_last_picture_for_dropped_frames(tmp_path):
    from rtmri.streamer.stream import Frame

    sink = Mp4Sink(tmp_path / "x.mp4", size=32, with_audio=False)
    for index, level in ((0, 30), (3, 200)):
        sink.frame(Frame(index, np.full((32, 32), level, np.uint8), index / 25, 0, 0, 0, 0, 0))
    sink.close()
    import av

    with av.open(str(tmp_path / "x.mp4")) as container:
        levels = [f.to_ndarray(format="gray").mean() for f in container.decode(video=0)]
    assert len(levels) == 4
    assert np.allclose(levels[:3], 30, atol=3) and abs(levels[3] - 200) < 3


def test_render_side_by_side_puts_the_original_on_the_audio_timeline(make_tiny_bundle, speech_file, tmp_path):
    """A 14 fps original whose brightness encodes its frame time: the right half of output
    frame k must show the original at k / 25 s."""
    import av

    from rtmri.cli import main

    original = tmp_path / "original.mp4"
    with av.open(str(original), "w") as container:
        stream = container.add_stream("libx264", rate=14)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(42):  # 3 s
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((64, 64), 20 + i * 5, np.uint8), format="gray")))
        container.mux(stream.encode(None))
    out = tmp_path / "sbs.mp4"
    assert main(["render", str(make_tiny_bundle().path), str(speech_file(3)), "-o", str(out),
                 "--size", "64", "--side-by-side", str(original)]) == 0
    _, frames, _ = decode_mp4(out)
    assert frames.shape[1:] == (64, 132)
    for k in (5, 30, 60):
        expected = 20 + 5 * (k / 25 * 14)  # linear blend between the 14 fps frames
        assert abs(frames[k][:, 70:].mean() - expected) < 4


def test_a_microphone_that_stops_delivering_ends_with_a_message(monkeypatch):
    import queue

    from rtmri.streamer import sources

    class SilentStream:
        active, closed = True, False

    mic = MicrophoneSource.__new__(MicrophoneSource)
    mic._queue, mic._stream, mic.description = queue.Queue(), SilentStream(), "microphone USB Mic (48000 Hz)"
    monkeypatch.setattr(sources, "READ_TIMEOUT_S", 0.05)
    with pytest.raises(AudioSourceError, match="USB Mic .* stopped delivering audio"):
        mic.read()


def test_a_source_failing_mid_run_still_closes_the_recording(make_tiny_bundle, tmp_path):
    class Unplugged:
        description, capture_latency_s = "microphone that goes away", 0.0

        def __init__(self):
            self.reads = 0

        def start(self):
            pass

        def sample_time(self, n):
            return time.monotonic()

        def read(self):
            self.reads += 1
            if self.reads > 50:  # 1 s of audio, then the device is gone
                raise AudioSourceError("microphone that goes away stopped delivering audio (was it unplugged?)")
            return bursts(0.02, seed=self.reads)

        def close(self):
            pass

    out = tmp_path / "partial.mp4"
    with pytest.raises(AudioSourceError, match="unplugged"):
        Streamer(Engine(make_tiny_bundle()), [Mp4Sink(out, size=32)], realtime=False).run(Unplugged())
    rate, frames, audio_s = decode_mp4(out)
    assert rate == 25 and 20 <= len(frames) <= 26 and abs(audio_s - 1.0) < 0.1


def test_the_end_of_the_audio_makes_its_last_frames_in_real_time(make_tiny_bundle, speech_file):
    """The end of a file releases the frames its lookahead held back all at once: they are
    due, so real-time pacing must make them rather than drop them as stale."""
    engine = Engine(make_tiny_bundle(lookahead_ms=132.5))
    engine.warm_up()
    sink = CollectSink()
    path = speech_file(2)
    stats = Streamer(engine, [sink], realtime=True).run(FileSource(path, realtime=True))
    assert stats.dropped == 0
    assert sink.indices == list(range(n_frames_for_samples(len(load_audio(path)))))


def test_a_file_is_read_in_blocks_with_flat_memory_and_frames_start_at_once(make_tiny_bundle, tmp_path):
    """60 s of 48 kHz stereo: decoded whole it is 23 MB of float32 (load_audio peaks at
    33 MB). Read block by block, memory stays within a few blocks whatever the length, the
    samples are load_audio's, and the first frame comes within the lookahead and a block."""
    import tracemalloc

    path = tmp_path / "long.wav"
    rng = np.random.default_rng(0)
    soundfile.write(path, rng.integers(-3000, 3000, (60 * 48000, 2), dtype=np.int16), 48000, subtype="PCM_16")
    tracemalloc.start()
    source = FileSource(path, realtime=False)
    first, total = [], 0
    while (chunk := source.read()) is not None:
        total += len(chunk)
        if len(first) < 3:
            first.append(chunk)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert total == 60 * SAMPLE_RATE and peak < 4 * 2**20, peak
    head = np.concatenate(first)
    np.testing.assert_allclose(head, load_audio(path)[: len(head)], atol=1e-6)

    bundle = make_tiny_bundle(lookahead_ms=40)
    engine = Engine(bundle)
    engine.warm_up()
    opened = time.monotonic()
    live = FileSource(path, realtime=True)
    sink = CollectSink()
    Streamer(engine, [sink], realtime=True).run(live, max_seconds=0.5)
    first_frame_s = sink.frames[0].made_at - opened
    assert first_frame_s < (40 + DEFAULT_BLOCK_MS) / 1000 + 0.3, first_frame_s  # lookahead, one block, and slack for a loaded machine


class FakeClock:
    """time.monotonic / perf_counter / sleep on a clock that only sleeping advances, so
    a real-time stream's waits are exact whatever the machine's load."""

    def __init__(self):
        self.now = 1000.0

    def monotonic(self):
        return self.now

    perf_counter = monotonic

    def sleep(self, seconds):
        self.now += max(0.0, seconds)


def test_each_frame_is_made_within_one_short_capture_block_of_its_last_sample(make_tiny_bundle, speech_file, monkeypatch):
    """The wait between a frame's last sample being spoken and the engine making the frame
    is the capture block (the engine runs as soon as the block arrives): at most 5 ms."""
    from rtmri.streamer import frames, sources, stream

    clock = FakeClock()
    for module in (frames, sources, stream):
        monkeypatch.setattr(module, "time", clock)
    engine = Engine(make_tiny_bundle(lookahead_ms=40))
    sink = CollectSink()
    path = speech_file(2)
    Streamer(engine, [sink], realtime=True).run(FileSource(path, realtime=True))
    spoken = [f for f in sink.frames if f.index < len(sink.frames) - 3]  # not the end's flushed frames
    waits_ms = np.array([(f.made_at - f.audio_ready_at) * 1000.0 for f in spoken])
    assert len(spoken) > 40 and waits_ms.min() >= 0.0
    assert waits_ms.max() <= 5.0 + 1e-6, waits_ms.max()
    assert waits_ms.max() > 1.0  # the block boundaries do fall between frames' last samples


def test_the_microphone_asks_for_short_blocks_at_low_latency_and_counts_both(monkeypatch):
    asked = {}

    class Stream:
        latency = 0.008

        def __init__(self, **options):
            asked.update(options)

    class FakeSounddevice:
        InputStream = Stream

        @staticmethod
        def query_devices(device, kind):
            return {"name": "USB Mic", "default_samplerate": 48000.0}

    monkeypatch.setitem(sys.modules, "sounddevice", FakeSounddevice)
    mic = MicrophoneSource()
    assert asked["blocksize"] == 48000 * 5 // 1000 and asked["latency"] == "low"
    assert mic.capture_latency_s == pytest.approx(0.008 + 0.005)
