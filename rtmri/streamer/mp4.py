"""MP4 output: the frames at 25 fps (H.264) with the audio muxed in (AAC), via PyAV."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE

DISPLAY_SIZE = 256


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """Grayscale uint8 image -> size x size (bilinear), as shown on screen and in files."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    from PIL import Image

    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


class Mp4Sink:
    """Writes every frame index exactly once: a frame dropped in real time is replaced by
    the previous one, so the video keeps the audio's timeline."""

    def __init__(self, path: str | Path, size: int = DISPLAY_SIZE, with_audio: bool = True, compose=None) -> None:
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.size = size
        # optional: (frame) -> uint8 image of compose.output_shape (H, W), e.g. side by side
        self.compose = compose
        self._container = av.open(str(self.path), mode="w")
        # Every stream must exist before the first packet is muxed.
        self._open_video(*(compose.output_shape if compose else (size, size)))
        self._audio = self._container.add_stream("aac", rate=SAMPLE_RATE, layout="mono") if with_audio else None
        self._audio_pts = 0
        self._next_index = 0
        self._last: np.ndarray | None = None

    def _open_video(self, height: int, width: int) -> None:
        self._video = self._container.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
        self._video.width, self._video.height = width + width % 2, height + height % 2
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = Fraction(1, FPS)

    def audio(self, chunk: np.ndarray) -> None:
        if self._audio is None or len(chunk) == 0:
            return
        import av

        frame = av.AudioFrame.from_ndarray(np.asarray(chunk, np.float32)[None], format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._audio_pts
        frame.time_base = Fraction(1, SAMPLE_RATE)
        self._audio_pts += len(chunk)
        self._container.mux(self._audio.encode(frame))

    def frame(self, frame) -> None:
        image = self.compose(frame) if self.compose else upscale(frame.image, self.size)
        while self._next_index < frame.index:  # dropped frames: hold the last picture
            self._write(self._last if self._last is not None else image, self._next_index)
        self._write(image, frame.index)
        self._last = image

    def _write(self, image: np.ndarray, index: int) -> None:
        import av

        padded = np.pad(image, ((0, self._video.height - image.shape[0]), (0, self._video.width - image.shape[1])), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(padded, format="gray")
        video_frame.pts = index
        self._container.mux(self._video.encode(video_frame))
        self._next_index = index + 1

    def close(self) -> None:
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            self._container.mux(self._audio.encode(None))
        self._container.close()
