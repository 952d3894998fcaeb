"""Audio sources for the streamer, all delivering 16 kHz mono float32.

``read()`` blocks until at least one block is there and returns everything available
(None at the end), so a loop that fell behind sees the whole backlog at once and can drop
frames instead of piling up delay. ``sample_time(n)`` is the monotonic time at which
sample n reached the microphone (or would have, for a file played in real time): the
audio stream is the clock.
"""

from __future__ import annotations

import queue
import sys
import time
from pathlib import Path

import numpy as np
import soxr

from rtmri import RtmriError
from rtmri.audio import SAMPLE_RATE, load_audio
from rtmri.streamer.file_audio import FileAudio
from rtmri.streamer.frames import SampleClock

# A frame can be made only once the block holding its last sample has arrived: the block
# adds up to its own length to audio-to-photon (half of it on average). 5 ms keeps that
# small; the loop's cost per block (a mel push, usually no frame) is tens of microseconds.
DEFAULT_BLOCK_MS = 5
MICROPHONE_LATENCY = "low"  # PortAudio's low-latency input buffering
READ_TIMEOUT_S = 2.0


class AudioSourceError(RtmriError):
    """No usable audio device, or one that went away."""


class FileSource:
    """An audio file (wav, flac, mp3, or a video's audio), decoded block by block as it is
    read (rtmri.streamer.file_audio). ``realtime`` paces it as if it were being spoken now
    (optionally audible); otherwise it is read as fast as possible."""

    def __init__(self, path: str | Path, realtime: bool = True, audible: bool = False, block_ms: int = DEFAULT_BLOCK_MS,
                 offline_chunk_s: float = 1.0) -> None:
        self.path = Path(path)
        self.audio = FileAudio(self.path)
        self.realtime = realtime
        self.audible = audible
        self.block = SAMPLE_RATE * block_ms // 1000
        self.offline_chunk = int(SAMPLE_RATE * offline_chunk_s)
        self.capture_latency_s = self.block / SAMPLE_RATE if realtime else 0.0
        self.description = f"file {self.path.name} ({self.duration_s:.1f} s, {'real time' if realtime else 'offline'})"
        self.position = 0
        self.clock = SampleClock()

    @property
    def duration_s(self) -> float:
        return self.audio.duration_s

    def start(self) -> None:
        self.clock.anchor(time.monotonic(), 0)
        if self.audible:
            _play(load_audio(self.path))  # sounddevice plays a whole signal

    def sample_time(self, n: int) -> float:
        return self.clock.time_of(n)

    def read(self) -> np.ndarray | None:
        if not self.clock.anchored:
            self.start()
        if self.realtime:
            end = self._samples_due()
            if end < self.position + self.block:
                time.sleep(max(0.0, self.sample_time(self.position + self.block) - time.monotonic()))
                end = self._samples_due()
            # Whole blocks only, as a device would deliver them.
            n = max(self.block, (end - self.position) // self.block * self.block)
        else:
            n = self.offline_chunk
        chunk = self.audio.read(n)
        if chunk is None:
            return None
        self.position += len(chunk)
        return chunk

    def _samples_due(self) -> int:
        return int((time.monotonic() - self.clock.time_of(0)) * SAMPLE_RATE)

    def close(self) -> None:
        self.audio.close()
        if self.audible:
            import sounddevice  # sounddevice: the live extra

            sounddevice.stop()


def _play(wav: np.ndarray) -> None:
    try:
        import sounddevice  # sounddevice: the live extra

        sounddevice.play(wav, SAMPLE_RATE)
    except (OSError, ImportError) as exc:
        print(f"rtmri: cannot play the audio aloud ({exc}); streaming silently", file=sys.stderr)
    except Exception as exc:  # PortAudioError when there is no output device
        print(f"rtmri: no audio output device ({exc}); streaming silently", file=sys.stderr)


def _sounddevice():
    try:
        import sounddevice  # sounddevice: the live extra
    except OSError as exc:  # the PortAudio library itself is missing
        raise AudioSourceError(f"cannot use audio devices: {exc} (install PortAudio, e.g. `apt-get install libportaudio2`)") from exc
    except ImportError as exc:
        raise AudioSourceError("the microphone needs the `live` extra: pip install 'rtmri-live[live]'") from exc
    return sounddevice


def device_argument(value: str) -> int | str:
    """--device as given on a command line: a device number, else a name (as sounddevice
    takes them)."""
    return int(value) if value.strip().isdigit() else value


def list_devices() -> str:
    """A readable listing of the audio devices, or why there is none."""
    try:
        devices = _sounddevice().query_devices()
    except AudioSourceError as exc:
        return str(exc)
    except Exception as exc:
        return f"cannot list audio devices ({exc})"
    if len(devices) == 0:
        return "no audio devices at all"
    lines = []
    for index, device in enumerate(devices):
        kinds = [k for k, n in (("in", device["max_input_channels"]), ("out", device["max_output_channels"])) if n]
        lines.append(f"{index:3d}  {device['name']}  ({'/'.join(kinds) or 'no channels'}, {device['default_samplerate']:.0f} Hz)")
    return "\n".join(lines)


class MicrophoneSource:
    """A sounddevice input stream; the callback only copies blocks into a queue, and the
    device's rate is resampled to 16 kHz with a streaming resampler."""

    def __init__(self, device: int | str | None = None, block_ms: int = DEFAULT_BLOCK_MS) -> None:
        sd = _sounddevice()
        try:
            info = sd.query_devices(device, kind="input")
        except Exception as exc:  # PortAudioError / ValueError: no such or no default input
            which = "no microphone found" if device is None else f"no input device {device!r}"
            raise AudioSourceError(
                f"{which} ({exc}). Audio devices here:\n{list_devices()}\n"
                "Stream a recording instead with --file speech.wav"
            ) from exc
        self.rate = int(info["default_samplerate"])
        self.block = self.rate * block_ms // 1000
        self.description = f"microphone {info['name']} ({self.rate} Hz)"
        self._queue: queue.Queue = queue.Queue()
        self._status: list[str] = []

        self._resampler = soxr.ResampleStream(self.rate, SAMPLE_RATE, 1, dtype="float32")
        self._stream = sd.InputStream(device=device, channels=1, samplerate=self.rate, blocksize=self.block,
                                      latency=MICROPHONE_LATENCY, dtype="float32", callback=self._callback)
        self.capture_latency_s = float(self._stream.latency) + self.block / self.rate
        self.clock = SampleClock()

    def _callback(self, indata, frames, time_info, status) -> None:
        if status:
            self._status.append(str(status))
        self._queue.put((time.monotonic(), indata[:, 0].copy()))

    def start(self) -> None:
        self._stream.start()

    def sample_time(self, n: int) -> float:
        """Anchored at the first block's arrival, then counted in samples (the device clock)."""
        return self.clock.time_of(n)

    def read(self) -> np.ndarray | None:
        if not self._stream.active and self._stream.closed:
            return None
        pieces = []
        try:
            pieces.append(self._queue.get(timeout=READ_TIMEOUT_S))
            while True:
                pieces.append(self._queue.get_nowait())
        except queue.Empty:
            if not pieces:
                raise AudioSourceError(f"{self.description} stopped delivering audio (was it unplugged?)")
        raw = np.concatenate([p for _, p in pieces])
        arrived, first = pieces[0]
        self.clock.anchor(arrived, round(len(first) * SAMPLE_RATE / self.rate))
        return self._resampler.resample_chunk(raw)

    def close(self) -> None:
        try:
            self._stream.stop()
            self._stream.close()
        except Exception as exc:  # a device that vanished may fail to close
            print(f"rtmri: closing {self.description}: {exc}", file=sys.stderr)
