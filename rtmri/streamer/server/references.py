"""Reference utterances for the learner to compare with: every recording in the folder
given with --references (wav, flac, mp3, or a video with sound), rendered through the
model once at start-up by the Streamer's offline path, and, where a video of it exists
(the recording itself, or a video with the same name), its original rtMRI frames (read
as `rtmri render --side-by-side` reads them).

Served over HTTP as the page asks for them: the audio as a 16 kHz WAV, and each track as
a run of frame messages (rtmri.streamer.server.protocol), each preceded by its length
(u32, little-endian), so the page reads them with the same parser as live frames.
"""

from __future__ import annotations

import io
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.streamer.server.protocol import TRACK_ORIGINAL, TRACK_RENDERED, FrameHeader, encode_image, frame_message

MAX_REFERENCES = 50
MAX_SECONDS = 30.0
LENGTH = struct.Struct("<I")


@dataclass
class Reference:
    id: str
    name: str
    duration_s: float
    frames: int
    audio_wav: bytes
    rendered: bytes
    original: bytes | None
    lesson: dict | None = None  # its words (rtmri.lessons.Lesson.describe)

    def describe(self) -> dict:
        return {"id": self.id, "name": self.name, "duration_s": round(self.duration_s, 3), "frames": self.frames,
                "original": self.original is not None, "lesson": self.lesson}


def track_bytes(images, codec: str, quality: int, track: int) -> bytes:
    """Frames 0..n-1 as length-prefixed frame messages (timestamps 0: not live)."""
    out = bytearray()
    for index, image in enumerate(images):
        header = FrameHeader(codec, track, index, dropped=0, epoch=0, spoken_at_ms=0.0, audio_ready_at_ms=0.0, made_at_ms=0.0)
        message = frame_message(header, encode_image(image, codec, quality), sent_at_ms=0.0)
        out += LENGTH.pack(len(message)) + message
    return bytes(out)


def wav_bytes(samples: np.ndarray) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, SAMPLE_RATE, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def render(engine, source) -> list[np.ndarray]:
    from rtmri.streamer.sinks import CollectSink
    from rtmri.streamer.stream import Streamer

    sink = CollectSink()
    Streamer(engine, [sink], realtime=False).run(source, max_seconds=MAX_SECONDS)
    return sink.images


def original_frames(path: Path, bundle, n_frames: int) -> list[np.ndarray]:
    """The video at 25 fps by timestamp with the bundle's crop (as `rtmri render
    --side-by-side` shows it), at the model's image size, one per rendered frame."""
    from rtmri.streamer.mp4 import upscale
    from rtmri.streamer.side_by_side import SideBySide

    original = SideBySide(path, bundle, bundle.image_size).original
    return [upscale(original[min(k, len(original) - 1)], bundle.image_size) for k in range(n_frames)]


def load_references(folder: str | Path, engine, codec: str = "jpeg", quality: int = 90) -> list[Reference]:
    from rtmri import RtmriError
    from rtmri.streamer.file_audio import FileAudio
    from rtmri.streamer.sources import FileSource

    folder = Path(folder)
    if not folder.is_dir():
        raise RtmriError(f"--references {folder}: no such folder")
    from rtmri.lessons.lesson import read_lessons

    references = []
    skip = lambda path, exc: print(f"rtmri serve: skipping reference {path}: {exc}", file=sys.stderr)
    for lesson in read_lessons(folder, skip)[:MAX_REFERENCES]:  # lesson folders, or recordings with their text beside them
        stem, audio, video = lesson.id, lesson.audio, lesson.video
        try:
            reader = FileAudio(audio)
            samples = reader.read(int(MAX_SECONDS * SAMPLE_RATE))
            reader.close()
            rendered = render(engine, FileSource(audio, realtime=False))[: int(MAX_SECONDS * FPS)]
            original = original_frames(video, engine.bundle, len(rendered)) if video else None
        except Exception as exc:  # AudioError, VideoError, PyAV's errors: a damaged or odd file
            print(f"rtmri serve: skipping reference {stem}: {exc}", file=sys.stderr)
            continue
        references.append(Reference(
            id=str(len(references)), name=lesson.name, lesson=lesson.describe(), duration_s=len(samples) / SAMPLE_RATE, frames=len(rendered),
            audio_wav=wav_bytes(samples), rendered=track_bytes(rendered, codec, quality, TRACK_RENDERED),
            original=track_bytes(original, codec, quality, TRACK_ORIGINAL) if original else None,
        ))
    return references
