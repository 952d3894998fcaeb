"""MP4 output: the frames at 25 fps (H.264) with the audio muxed in (AAC), written as they come."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtmri.alignment import FPS
from rtmri.video.compose import DISPLAY_SIZE, upscale
from rtmri.video.write import THREADS_BY_CORES, VideoWriter


class Mp4Sink:
    """Writes every frame index exactly once: a frame dropped in real time is replaced by
    the previous one, so the video keeps the audio's timeline."""

    def __init__(self, path: str | Path, size: int = DISPLAY_SIZE, with_audio: bool = True, compose=None) -> None:
        self.path = Path(path)
        self.size = size
        # optional: (frame) -> uint8 image of compose.output_shape (H, W), e.g. side by side
        self.compose = compose
        height, width = compose.output_shape if compose else (size, size)
        self._writer = VideoWriter(self.path, width, height, FPS, audio_channels=1 if with_audio else 0,
                                   threads=THREADS_BY_CORES)
        self._last: np.ndarray | None = None

    def audio(self, chunk: np.ndarray) -> None:
        if self._writer.audio_channels:
            self._writer.audio(chunk)

    def frame(self, frame) -> None:
        image = self.compose(frame) if self.compose else upscale(frame.image, self.size)
        while self._writer.frames_written < frame.index:  # dropped frames: hold the last picture
            self._writer.frame(self._last if self._last is not None else image)
        self._writer.frame(image)
        self._last = image

    def close(self) -> None:
        self._writer.close()
