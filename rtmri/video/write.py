"""Writing grayscale frames as H.264 MP4 that every player and OpenCV decode, with the sound
as AAC: frame by frame as they are made (the streamer's recording) or a whole video at once."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import BinaryIO

import av
import numpy as np

from rtmri.audio import SAMPLE_RATE

CONTAINER = "mp4"
CODEC = "libx264"
PIX_FMT = "yuv420p"  # the chroma planes stay neutral; it wants an even width and height
PRESET = "veryfast"  # 3x faster than "medium" at rtMRI sizes, no larger, within 1.5 levels
CRF = 18  # visually lossless
ONE_THREAD = 1  # the same bytes on every run
THREADS_BY_CORES = 0  # libx264 chooses: a live recording keeps up with the stream
AUDIO_CODEC = "aac"
AUDIO_LAYOUTS = {1: "mono", 2: "stereo"}  # by channel count


class VideoWriter:
    """An MP4 being written: uint8 grayscale (height, width) frames at exactly fps frames per
    second, and, with audio_channels, float32 sound in [-1, 1] at sample_rate. An odd width or
    height is padded by one edge pixel. threads: ONE_THREAD or THREADS_BY_CORES."""

    def __init__(self, target: str | Path | BinaryIO, width: int, height: int, fps: int | Fraction, crf: int = CRF,
                 audio_channels: int = 0, sample_rate: int = SAMPLE_RATE, threads: int = ONE_THREAD) -> None:
        if isinstance(target, (str, Path)):
            Path(target).parent.mkdir(parents=True, exist_ok=True)
            target = str(target)
        self.width, self.height = width, height
        self.audio_channels, self.sample_rate = audio_channels, sample_rate
        self.frames_written = 0
        self._samples_written = 0
        self._container = av.open(target, mode="w", format=CONTAINER)
        # Every stream must exist before the first packet is muxed.
        self._video = self._container.add_stream(CODEC, rate=Fraction(fps), options={"crf": str(crf), "preset": PRESET})
        self._video.width, self._video.height = width + width % 2, height + height % 2
        self._video.pix_fmt = PIX_FMT
        self._video.codec_context.thread_count = threads
        self._audio = None
        if audio_channels:
            self._audio = self._container.add_stream(AUDIO_CODEC, rate=sample_rate, layout=AUDIO_LAYOUTS[audio_channels])

    def frame(self, image: np.ndarray) -> None:
        """The next frame."""
        if image.shape != (self.height, self.width):
            raise ValueError(f"a frame of {image.shape} in a video of {(self.height, self.width)}")
        padded = np.pad(image, ((0, self._video.height - self.height), (0, self._video.width - self.width)), mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(padded), format="gray")
        video_frame.pts = self.frames_written  # in 1 / fps: the codec's time base (the muxer picks its own)
        self._container.mux(self._video.encode(video_frame))
        self.frames_written += 1

    def audio(self, samples: np.ndarray) -> None:
        """The next samples: (n,) for mono, (channels, n) otherwise."""
        if self._audio is None:
            raise ValueError("this video was opened without sound")
        samples = np.asarray(samples, np.float32)
        if samples.shape[-1] == 0:
            return
        planes = np.ascontiguousarray(samples.reshape(self.audio_channels, -1))
        audio_frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=AUDIO_LAYOUTS[self.audio_channels])
        audio_frame.sample_rate = self.sample_rate
        audio_frame.pts = self._samples_written
        audio_frame.time_base = Fraction(1, self.sample_rate)
        self._container.mux(self._audio.encode(audio_frame))
        self._samples_written += planes.shape[1]

    def close(self) -> None:
        """Flushes the encoders and finishes the file."""
        self._container.mux(self._video.encode(None))
        if self._audio is not None:
            self._container.mux(self._audio.encode(None))
        self._container.close()

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self.close()
        else:  # what failed may be the encoder: leave it unflushed
            self._container.close()


def write_video(target: str | Path | BinaryIO, frames: Iterable[np.ndarray], fps: int | Fraction, crf: int = CRF,
                audio: np.ndarray | None = None, sample_rate: int = SAMPLE_RATE) -> None:
    """uint8 (H, W) grayscale frames at exactly fps frames per second, with the sound if given
    ((n,) mono or (channels, n) float32 samples at sample_rate); the same bytes on every run."""
    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"{target}: no frames to write")
    channels = 0 if audio is None else (1 if np.ndim(audio) == 1 else len(audio))
    height, width = first.shape
    with VideoWriter(target, width, height, fps, crf, channels, sample_rate) as writer:
        for frame in chain([first], frames):
            writer.frame(frame)
        if audio is not None:
            writer.audio(audio)
