"""Frames of a clip generated through the streamer's own path (file source, sliding mel
windows, engine), as fast as possible."""

from __future__ import annotations

import numpy as np

from rtmri.streamer.sinks import CollectSink
from rtmri.streamer.sources import FileSource
from rtmri.streamer.stream import Streamer


def generate_clip(engine, clip) -> np.ndarray:
    """uint8 (n_frames, S, S) for the clip's audio, frame k made from frame k's window."""
    return generate_audio(engine, clip.audio_path, clip.n_frames, clip.clip_id)


def generate_audio(engine, path, n_frames: int, name: str | None = None) -> np.ndarray:
    """uint8 (n_frames, S, S) for the audio file's first n_frames frames."""
    sink = CollectSink()
    Streamer(engine, [sink], realtime=False).run(FileSource(path, realtime=False))
    frames = sink.by_index()
    missing = [k for k in range(n_frames) if k not in frames]
    if missing:
        raise RuntimeError(f"{name or path}: the streamer made no frame {missing[:5]}")
    return np.stack([frames[k] for k in range(n_frames)])
