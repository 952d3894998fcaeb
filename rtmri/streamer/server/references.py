"""Reference utterances for the learner to compare with: recordings handed over by the
command that starts the server (`rtmri serve --references`, `rtmri demo`: the lessons of
rtmri.lessons, read there), rendered through the model once at start-up by the Streamer's
offline path, and, where a video of a recording exists, its original rtMRI frames (read as
`rtmri render --side-by-side` reads them).

Served over HTTP as the page asks for them (http_routes): the audio as a 16 kHz WAV, and
each track as a run of frame messages (rtmri.streamer.server.protocol), each preceded by
its length (u32, little-endian), so the page reads them with the same parser as live frames.
"""

from __future__ import annotations

import io
import itertools
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import soundfile

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.file_audio import FileAudio
from rtmri.streamer.server.protocol import (DEFAULT_CODEC, DEFAULT_QUALITY, TRACK_ORIGINAL, TRACK_RENDERED, FrameHeader,
                                            encode_image, frame_message)
from rtmri.streamer.side_by_side import SideBySide
from rtmri.video import upscale
from rtmri.streamer.sinks import CollectSink
from rtmri.streamer.sources import FileSource
from rtmri.streamer.stream import Streamer

MAX_REFERENCES = 50
MAX_SECONDS = 30.0
LENGTH = struct.Struct("<I")


class Recording(Protocol):
    """A recording to serve (rtmri.lessons.lesson.Lesson is one)."""

    id: str
    name: str
    audio: Path  # any audio file, or a video with sound
    video: Path | None  # its original rtMRI, where there is one

    def describe(self) -> dict:
        """What the page shows of it beside its name (a lesson's words)."""


@dataclass
class Reference:
    id: str
    name: str
    duration_s: float
    frames: int
    audio_wav: bytes
    rendered: bytes
    original: bytes | None
    lesson: dict | None = None  # Recording.describe: its words

    def describe(self) -> dict:
        return {"id": self.id, "name": self.name, "duration_s": round(self.duration_s, 3), "frames": self.frames,
                "original": self.original is not None, "lesson": self.lesson}

    def files(self) -> dict[str, bytes | None]:
        """What /references/<id>/<name> serves, by name (None: it has none)."""
        return {"audio.wav": self.audio_wav, "rendered.bin": self.rendered, "original.bin": self.original}


def track_bytes(images, codec: str, quality: int, track: int) -> bytes:
    """Frames 0..n-1 as length-prefixed frame messages (timestamps 0: not live)."""
    out = bytearray()
    for index, image in enumerate(images):
        header = FrameHeader(codec, track, index, dropped=0, epoch=0, spoken_at_ms=0.0, audio_ready_at_ms=0.0, made_at_ms=0.0)
        message = frame_message(header, encode_image(image, codec, quality), sent_at_ms=0.0)
        out += LENGTH.pack(len(message)) + message
    return bytes(out)


def wav_bytes(samples: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def render(engine, source) -> list[np.ndarray]:
    sink = CollectSink()
    Streamer(engine, [sink], realtime=False).run(source, max_seconds=MAX_SECONDS)
    return sink.images


def original_frames(path: Path, bundle, n_frames: int) -> list[np.ndarray]:
    """The video at 25 fps by timestamp with the bundle's crop (as `rtmri render
    --side-by-side` shows it), at the model's image size, one per rendered frame."""
    original = SideBySide(path, bundle, bundle.image_size).original
    return [upscale(original[min(k, len(original) - 1)], bundle.image_size) for k in range(n_frames)]


def load_references(recordings: Iterable[Recording], engine, codec: str = DEFAULT_CODEC,
                    quality: int = DEFAULT_QUALITY) -> list[Reference]:
    """The first MAX_REFERENCES recordings, each rendered and encoded; one that cannot be
    read is named on stderr and left out."""
    references = []
    for recording in itertools.islice(recordings, MAX_REFERENCES):
        try:
            reader = FileAudio(recording.audio)
            samples = reader.read(int(MAX_SECONDS * SAMPLE_RATE))
            reader.close()
            rendered = render(engine, FileSource(recording.audio, realtime=False))[: int(MAX_SECONDS * FPS)]
            original = original_frames(recording.video, engine.bundle, len(rendered)) if recording.video else None
        except Exception as exc:  # AudioError, VideoError, PyAV's errors: a damaged or odd file
            print(f"rtmri serve: skipping reference {recording.id}: {exc}", file=sys.stderr)
            continue
        references.append(Reference(
            id=str(len(references)), name=recording.name, lesson=recording.describe(), duration_s=len(samples) / SAMPLE_RATE,
            frames=len(rendered), audio_wav=wav_bytes(samples), rendered=track_bytes(rendered, codec, quality, TRACK_RENDERED),
            original=track_bytes(original, codec, quality, TRACK_ORIGINAL) if original else None,
        ))
    return references
