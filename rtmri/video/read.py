"""Reading rtMRI videos with PyAV: header probe, grayscale frames with their timestamps,
crop and resize.

Timestamps are the frames' presentation times (pts x time base) relative to the first
decoded frame, so any frame rate works (14, 23.18, 27, 83.28 fps, or a variable one);
a frame without a pts gets index / nominal rate. Colour video is reduced to its luma
(what ``to_ndarray(format="gray")`` returns, full range 0-255).

Every problem (not a video, corrupt data, unknown codec, truncated file) is a
:class:`VideoError` naming the file and the reason; the pipeline skips the recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from rtmri import RtmriError


class VideoError(RtmriError, ValueError):
    """A video that cannot be read, or not completely."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float | None  # nominal (average) rate from the header, None if unknown
    declared_frames: int  # from the header, 0 if unknown
    codec: str
    has_audio: bool
    audio_offset_s: float  # audio stream start minus video stream start (embedded audio)
    duration_s: float | None = None  # from the header (frame count, stream or container duration), None if unknown


def probe(path: str | Path) -> VideoInfo:
    """The stream headers of a video, without decoding it."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"{path.name}: no such video file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path.name}: has no video stream")
            stream = container.streams.video[0]
            width, height = stream.codec_context.width, stream.codec_context.height
            rate = stream.average_rate or stream.guessed_rate or stream.base_rate
            audio_offset = 0.0
            has_audio = bool(container.streams.audio)
            if has_audio:
                audio = container.streams.audio[0]
                if audio.start_time is not None and stream.start_time is not None:
                    audio_offset = float(audio.start_time * audio.time_base - stream.start_time * stream.time_base)
            return VideoInfo(
                width=int(width), height=int(height), fps=float(rate) if rate else None,
                declared_frames=int(stream.frames or 0), codec=stream.codec_context.name,
                has_audio=has_audio, audio_offset_s=audio_offset, duration_s=_header_duration(container, stream, rate),
            )
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises FFmpegError subclasses, OSError, ValueError...
        raise VideoError(f"{path.name}: cannot open video ({_describe(exc)})") from exc


def _header_duration(container, stream, rate) -> float | None:
    """The video's length by its header: frame count over rate, else the stream's duration,
    else the container's (Matroska, for one, gives only the last)."""
    if stream.frames and rate:
        return stream.frames / float(rate)
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _describe(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.replace("\n", " ")[:300]


def check_crop(crop: tuple[int, int, int, int], width: int, height: int) -> str | None:
    """None if crop lies inside a width x height frame, else what is wrong."""
    x, y, w, h = crop
    if w <= 0 or h <= 0:
        return f"crop {x},{y},{w},{h} has no area"
    if x < 0 or y < 0 or x + w > width or y + h > height:
        return (
            f"crop {x},{y},{w},{h} (x {x}..{x + w}, y {y}..{y + h}) lies outside the "
            f"{width}x{height} frame (width x height)"
        )
    return None


class CropResize:
    """Grayscale frame -> its crop, resized to size x size (Lanczos: anti-aliased when
    shrinking, sharp when enlarging). crop None means the whole frame."""

    def __init__(self, crop: tuple[int, int, int, int] | None, size: int) -> None:
        self.crop = crop
        self.size = size
        self._image = Image
        self._filter = Image.Resampling.LANCZOS

    def __call__(self, gray: np.ndarray) -> np.ndarray:
        if self.crop is not None:
            x, y, w, h = self.crop
            gray = gray[y : y + h, x : x + w]
        if gray.shape == (self.size, self.size):
            return np.ascontiguousarray(gray)
        image = self._image.fromarray(np.ascontiguousarray(gray))
        return np.asarray(image.resize((self.size, self.size), self._filter))


@dataclass
class DecodeStats:
    decoded: int = 0
    dropped_timestamps: int = 0  # frames whose timestamp did not increase
    first_time: float | None = None
    last_time: float = 0.0  # relative to the first frame
    period: float | None = None  # median frame interval

    @property
    def duration(self) -> float:
        """From the first frame's start to the last frame's end."""
        return self.last_time + (self.period or 0.0)

    @property
    def fps(self) -> float | None:
        return 1.0 / self.period if self.period else None


def frames(path: str | Path, info: VideoInfo | None = None, stats: DecodeStats | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """(timestamp in s from the first frame, uint8 (H, W) grayscale) for each frame in
    presentation order. Raises VideoError on corrupt data, and at the end when fewer
    frames came out than the header declares (a truncated file)."""
    path = Path(path)
    info = info or probe(path)
    stats = stats if stats is not None else DecodeStats()
    nominal = 1.0 / info.fps if info.fps else None
    intervals: list[float] = []
    previous: float | None = None
    try:
        container = av.open(str(path))
    except Exception as exc:
        raise VideoError(f"{path.name}: cannot open video ({_describe(exc)})") from exc
    try:
        to_gray = VideoReformatter()  # keeps its conversion context: ~7x faster than to_ndarray(format=)
        stream = container.streams.video[0]
        index = 0
        try:
            for frame in container.decode(stream):
                t = frame.time
                if t is None:
                    if nominal is None:
                        raise VideoError(f"{path.name}: frames have no timestamps and the header no frame rate")
                    t = index * nominal + (stats.first_time or 0.0)
                index += 1
                if stats.first_time is None:
                    stats.first_time = float(t)
                t = float(t) - stats.first_time
                if previous is not None and t <= previous:
                    stats.dropped_timestamps += 1
                    continue
                if previous is not None:
                    intervals.append(t - previous)
                previous = t
                gray = to_gray.reformat(frame, format="gray").to_ndarray()
                if gray.shape != (info.height, info.width):
                    raise VideoError(f"{path.name}: frame {index - 1} is {gray.shape[1]}x{gray.shape[0]}, the header says {info.width}x{info.height}")
                stats.decoded += 1
                stats.last_time = t
                yield t, gray
        except VideoError:
            raise
        except Exception as exc:
            raise VideoError(f"{path.name}: corrupt or unreadable video data after {stats.decoded} frames ({_describe(exc)})") from exc
    finally:
        container.close()
    if stats.decoded == 0:
        raise VideoError(f"{path.name}: no video frames could be decoded")
    stats.period = float(np.median(intervals)) if intervals else nominal
    declared = info.declared_frames
    if declared and stats.decoded + stats.dropped_timestamps < declared - max(1, declared // 100):
        raise VideoError(f"{path.name}: truncated or damaged: decoded {stats.decoded} of the {declared} frames its header declares")


def read_frame(path: str | Path, position: float = 0.5) -> tuple[np.ndarray, VideoInfo]:
    """One grayscale frame at about ``position`` (0..1) of the video, for previews."""
    info = probe(path)
    target = int(max(0.0, min(1.0, position)) * max(info.declared_frames - 1, 0))
    chosen = None
    for i, (_, gray) in enumerate(_frames_lenient(path, info)):
        chosen = gray
        if i >= target:
            break
    if chosen is None:
        raise VideoError(f"{Path(path).name}: no video frames could be decoded")
    return chosen, info


def _frames_lenient(path, info):
    """frames() but stopping quietly where decoding fails (a preview of a damaged file is
    still useful)."""
    iterator = frames(path, info)
    while True:
        try:
            yield next(iterator)
        except StopIteration:
            return
        except VideoError:
            return

