"""Frames of a clip generated through the streamer's own path (file source, sliding mel
windows, engine), as fast as possible."""

from __future__ import annotations

import numpy as np

from rtmri.streamer.sources import FileSource
from rtmri.streamer.stream import Streamer


class _Collect:
    def __init__(self) -> None:
        self.frames: dict[int, np.ndarray] = {}

    def frame(self, frame) -> None:
        self.frames[frame.index] = frame.image

    def close(self) -> None:
        pass


def generate_clip(engine, clip) -> np.ndarray:
    """uint8 (n_frames, S, S) for the clip's audio, frame k made from frame k's window."""
    sink = _Collect()
    Streamer(engine, [sink], realtime=False).run(FileSource(clip.folder / "audio.wav", realtime=False))
    n = clip.n_frames
    missing = [k for k in range(n) if k not in sink.frames]
    if missing:
        raise RuntimeError(f"{clip.clip_id}: the streamer made no frame {missing[:5]}")
    return np.stack([sink.frames[k] for k in range(n)])
