"""Writing what an rtMRI session delivers: grayscale MP4 video and 48 kHz 16-bit WAV audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import soundfile as sf
import soxr

AUDIO_SAMPLE_RATE = 48000
AUDIO_PEAK = 0.7  # each utterance is scaled to this peak (-3 dBFS), like a level-normalised recording
VIDEO_CODEC = "libx264"
VIDEO_PIX_FMT = "yuv420p"  # what every player and OpenCV decode; the chroma planes stay neutral
VIDEO_CRF = "10"  # near-lossless: the Rician noise survives encoding
VIDEO_PRESET = "veryfast"  # 3x faster than "medium" at this size, no larger, within 1.5 levels


def corpus_audio(audio: np.ndarray, source_rate: int, n_samples: int) -> np.ndarray:
    """Resampled to 48 kHz, peak-normalised, padded or cut to n_samples: int16."""
    resampled = soxr.resample(audio.astype(np.float64), source_rate, AUDIO_SAMPLE_RATE, quality="HQ")
    peak = float(np.max(np.abs(resampled))) if resampled.size else 0.0
    scaled = resampled * (AUDIO_PEAK / peak) if peak > 0 else resampled
    fitted = np.zeros(n_samples, dtype=np.float64)
    fitted[: min(n_samples, len(scaled))] = scaled[:n_samples]
    return np.round(np.clip(fitted, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_wav(path: Path, pcm16: np.ndarray) -> None:
    sf.write(str(path), pcm16, AUDIO_SAMPLE_RATE, subtype="PCM_16")


def write_video(path: Path, frames: np.ndarray, fps: int) -> None:
    """uint8 (n, H, W) grayscale frames as H.264 at exactly fps frames per second."""
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(VIDEO_CODEC, rate=Fraction(fps))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = VIDEO_PIX_FMT
        stream.options = {"crf": VIDEO_CRF, "preset": VIDEO_PRESET}
        stream.codec_context.thread_count = 1  # one thread: the same bytes on every run
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="gray")
            video_frame.pts = index  # in 1 / fps: the codec's time base (the muxer picks its own)
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
