"""Frames of a clip generated through the streamer's own path (file source, sliding mel
windows, engine), as fast as possible."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rtmri.streamer.sinks import CollectSink
from rtmri.streamer.sources import FileSource
from rtmri.streamer.stream import Streamer


class Generated(NamedTuple):
    frames: np.ndarray  # uint8 (n_frames, S, S)
    states: np.ndarray | None  # (n_frames, state size): the articulatory state, where the bundle gives one


def generate_clip(engine, clip) -> Generated:
    """The clip's audio through the bundle, frame k made from frame k's window."""
    return generate_audio(engine, clip.audio_path, clip.n_frames, clip.clip_id)


def generate_audio(engine, path, n_frames: int, name: str | None = None) -> Generated:
    """The frames (and states) of the audio file's first n_frames frames."""
    sink = CollectSink()
    Streamer(engine, [sink], realtime=False).run(FileSource(path, realtime=False))
    made = {f.index: f for f in sink.frames}
    missing = [k for k in range(n_frames) if k not in made]
    if missing:
        raise RuntimeError(f"{name or path}: the streamer made no frame {missing[:5]}")
    frames = [made[k] for k in range(n_frames)]
    states = np.stack([f.state for f in frames]) if engine.bundle.gives_state else None
    return Generated(np.stack([f.image for f in frames]), states)
