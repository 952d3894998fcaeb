"""Writing what an rtMRI session delivers: grayscale MP4 video and 48 kHz 16-bit WAV audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from rtmri.video import write as video

AUDIO_SAMPLE_RATE = 48000
AUDIO_PEAK = 0.7  # each utterance is scaled to this peak (-3 dBFS), like a level-normalised recording
VIDEO_CRF = 10  # near-lossless: the Rician noise survives encoding


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
    """uint8 (n, H, W) grayscale frames as near-lossless H.264 at exactly fps frames per second."""
    video.write_video(path, frames, fps, crf=VIDEO_CRF)
