"""Frame <-> mel-window alignment (the shared DESIGN.md §3): the one place that says which 16 mel
columns video frame k is generated from.

Lookahead: how far past frame k's timestamp (k / FPS) the newest audio sample that the
frame depends on lies, STFT window included. ``window_start`` returns the latest window
whose newest sample is at most ``lookahead_ms`` past the frame's timestamp, so the true
lookahead of every frame lies in (lookahead_ms - 12.5 ms, lookahead_ms].

The default, 132.5 ms, is DESIGN.md §3's reading of wav2lip's training: the window starts
two frames before the frame, at column int(80 * (k - 2) / 25), which with the 16-column
window and the 25 ms half STFT window puts the newest sample 120 to 132.5 ms ahead.
(wav2lip's code counts frames from 1 there, so relative to 0-based frames its training
window starts one frame later, about 172.5 ms ahead, and its inference window at
int(80 * k / 25), about 212.5 ms; the public checkpoints fine-tune to any lookahead.)
"""

from __future__ import annotations

import numpy as np

from rtmri import RtmriError

from rtmri.audio import HALF_WINDOW, HOP_LENGTH, N_MELS, SAMPLE_RATE, SILENCE_VALUE

FPS = 25
WINDOW_COLUMNS = 16
# 5: the frames one window spans (0.2 s), wav2lip's SyncNet window and generator sequence
SYNC_FRAMES = WINDOW_COLUMNS * HOP_LENGTH * FPS // SAMPLE_RATE
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640
WAV2LIP_LOOKAHEAD_MS = 132.5
DEFAULT_LOOKAHEAD_MS = WAV2LIP_LOOKAHEAD_MS
_SAMPLES_PER_MS = SAMPLE_RATE // 1000


class AlignmentError(RtmriError, ValueError):
    """A lookahead or frame index that no window can satisfy."""


def lookahead_samples(lookahead_ms: float) -> int:
    samples = lookahead_ms * _SAMPLES_PER_MS
    if lookahead_ms < 0 or abs(samples - round(samples)) > 1e-6:
        raise AlignmentError(
            f"lookahead {lookahead_ms} ms must be >= 0 and a whole number of samples at "
            f"{SAMPLE_RATE} Hz (a multiple of {1000 / SAMPLE_RATE} ms)"
        )
    return int(round(samples))


def window_end_sample(start_column: int) -> int:
    """One past the newest signal sample that the window starting at start_column uses."""
    return (start_column + WINDOW_COLUMNS - 1) * HOP_LENGTH + HALF_WINDOW


def window_start(frame_index: int, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS) -> int:
    """First mel column of frame ``frame_index``'s window (may be negative near the start).

    The newest sample the window depends on, ``window_end_sample(start) - 1``, lies at most
    ``lookahead_ms`` after the frame's timestamp: window_end_sample(start) <=
    frame_index * SAMPLES_PER_FRAME + lookahead samples, with the largest such start.
    """
    limit = frame_index * SAMPLES_PER_FRAME + lookahead_samples(lookahead_ms)
    return (limit - window_end_sample(0)) // HOP_LENGTH


def samples_needed(frame_index: int, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS) -> int:
    """How many samples of the signal must have arrived before frame_index can be made."""
    return window_end_sample(window_start(frame_index, lookahead_ms))


def true_lookahead_ms(frame_index: int, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS) -> float:
    """The actual lookahead of frame_index's window (<= lookahead_ms)."""
    newest = samples_needed(frame_index, lookahead_ms) - 1
    return (newest - frame_index * SAMPLES_PER_FRAME) * 1000.0 / SAMPLE_RATE


def first_column(frame_index: int, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS, columns: int = WINDOW_COLUMNS) -> int:
    """First mel column of a window of ``columns`` columns that ends where frame_index's
    window ends: a model with a longer window (an articulatory model's past context) sees
    more of the past, never more of the future."""
    return window_start(frame_index, lookahead_ms) + WINDOW_COLUMNS - columns


def mel_window(mel: np.ndarray, frame_index: int, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
               columns: int = WINDOW_COLUMNS) -> np.ndarray:
    """(N_MELS, columns) window of frame_index from a whole-signal mel; columns outside the
    signal are silence."""
    return slice_columns(mel, first_column(frame_index, lookahead_ms, columns), columns)


def slice_columns(mel: np.ndarray, start: int, count: int) -> np.ndarray:
    """Columns [start, start + count) of mel, silence where that runs off either end."""
    out = np.full((N_MELS, count), SILENCE_VALUE, np.float32)
    lo, hi = max(start, 0), min(start + count, mel.shape[1])
    if hi > lo:
        out[:, lo - start : hi - start] = mel[:, lo:hi]
    return out


def n_frames_for_samples(n_samples: int) -> int:
    """Number of whole video frames in n_samples of audio."""
    return n_samples // SAMPLES_PER_FRAME


def frame_windows(mel: np.ndarray, n_frames: int, lookahead_ms: float = DEFAULT_LOOKAHEAD_MS,
                  columns: int = WINDOW_COLUMNS) -> np.ndarray:
    """(n_frames, N_MELS, columns) windows of frames 0..n_frames-1."""
    out = np.empty((n_frames, N_MELS, columns), np.float32)
    for k in range(n_frames):
        out[k] = mel_window(mel, k, lookahead_ms, columns)
    return out
