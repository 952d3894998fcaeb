"""wav2lip-compatible log-mel features (the shared DESIGN.md §2): one implementation, offline and streaming.

Column j of the spectrogram is centred on sample j * HOP_LENGTH and depends on the
samples [j * HOP_LENGTH - N_FFT // 2, j * HOP_LENGTH + N_FFT // 2) of the signal, the
signal being zero outside its extent (librosa's ``center=True`` with constant padding).
The streaming extractor keeps exactly that convention, so both give the same columns.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import av
import librosa
import numpy as np
import soundfile
import soxr

from rtmri import RtmriError

SAMPLE_RATE = 16000
N_FFT = 800
HOP_LENGTH = 200
WIN_LENGTH = 800
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
PREEMPHASIS = 0.97
REF_LEVEL_DB = 20.0
MIN_LEVEL_DB = -100.0
MAX_ABS_VALUE = 4.0

MEL_COLUMNS_PER_SECOND = SAMPLE_RATE // HOP_LENGTH  # 80
HALF_WINDOW = N_FFT // 2
SILENCE_VALUE = -MAX_ABS_VALUE

_MIN_AMPLITUDE = 10.0 ** (MIN_LEVEL_DB / 20.0)

# Session normalisation (SessionNorm). Levels are in the features' units: 8 = 100 dB.
SESSION_PRIOR_COLUMNS = 160  # the prior weighs as 2 s of speech: a session's first words are not over-corrected
SESSION_GATE_BELOW_PEAK = 2.4  # a column counts when within 30 dB of the session's loudest so far...
SESSION_GATE_FLOOR = -3.2  # ...and above -80 dB: pauses and silence do not pull the mean down
SESSION_MIN_STD = 0.05
SESSION_MAX_SCALE = 3.0  # a band that hardly varies (cut off by a telephone line) is not blown up


class AudioError(RtmriError, ValueError):
    """An audio file or signal that cannot be turned into features."""


class AudioTooLongError(AudioError):
    """An audio file longer than its caller allows (found before reading the rest)."""


def feature_params() -> dict:
    """The feature parameters, as recorded in datasets, checkpoints and bundles."""
    return {
        "sample_rate": SAMPLE_RATE,
        "n_fft": N_FFT,
        "hop_length": HOP_LENGTH,
        "win_length": WIN_LENGTH,
        "n_mels": N_MELS,
        "fmin": FMIN,
        "fmax": FMAX,
        "preemphasis": PREEMPHASIS,
        "ref_level_db": REF_LEVEL_DB,
        "min_level_db": MIN_LEVEL_DB,
        "max_abs_value": MAX_ABS_VALUE,
        "window": "hann",
        "center": True,
        "pad_mode": "constant",
    }


@lru_cache(maxsize=1)
def _mel_basis() -> np.ndarray:
    return librosa.filters.mel(
        sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX
    ).astype(np.float32)


@lru_cache(maxsize=1)
def _window() -> np.ndarray:
    from scipy.signal import get_window  # ~0.6 s to import: paid by the first mel, not at every start

    return get_window("hann", WIN_LENGTH, fftbins=True).astype(np.float32)


def _normalise(mel_amplitude: np.ndarray) -> np.ndarray:
    db = 20.0 * np.log10(np.maximum(_MIN_AMPLITUDE, mel_amplitude)) - REF_LEVEL_DB
    scaled = 2.0 * MAX_ABS_VALUE * (db - MIN_LEVEL_DB) / -MIN_LEVEL_DB - MAX_ABS_VALUE
    return np.clip(scaled, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)


def _columns_from_padded(padded: np.ndarray, n_columns: int) -> np.ndarray:
    """Mel columns 0..n_columns-1 of a pre-emphasised signal that starts HALF_WINDOW
    samples before column 0's centre."""
    if n_columns <= 0:
        return np.zeros((N_MELS, 0), np.float32)
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_LENGTH][:n_columns]
    magnitude = np.abs(np.fft.rfft(frames * _window(), axis=1)).astype(np.float32)
    return _normalise(_mel_basis() @ magnitude.T)


def preemphasise(wav: np.ndarray, previous_sample: float = 0.0) -> np.ndarray:
    """y[n] = x[n] - 0.97 x[n-1], with x[-1] = previous_sample."""
    wav = np.asarray(wav, np.float32)
    shifted = np.concatenate(([previous_sample], wav[:-1])).astype(np.float32)
    return wav - np.float32(PREEMPHASIS) * shifted


def n_columns_for(n_samples: int) -> int:
    """Number of mel columns of a whole signal of n_samples (librosa center=True)."""
    return 1 + n_samples // HOP_LENGTH


def melspectrogram(wav: np.ndarray) -> np.ndarray:
    """(N_MELS, n_columns_for(len(wav))) float32 log-mel in [-4, 4] of 16 kHz mono audio."""
    wav = np.asarray(wav, np.float32)
    if wav.ndim != 1:
        raise AudioError(f"expected mono audio (1-D), got shape {wav.shape}")
    padded = np.pad(preemphasise(wav), (HALF_WINDOW, HALF_WINDOW))
    return _columns_from_padded(padded, n_columns_for(len(wav)))


class StreamingMel:
    """Feeds audio in chunks of any size and returns each mel column as soon as the
    samples it depends on have arrived; ``flush`` ends the signal (zero padding)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._previous_sample = 0.0
        # Pre-emphasised samples from the start of the next column's window.
        self._buffer = np.zeros(HALF_WINDOW, np.float32)
        self.columns_emitted = 0
        self.samples_received = 0

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add samples; return the new columns, shape (N_MELS, k), k >= 0."""
        chunk = np.asarray(chunk, np.float32).reshape(-1)
        if chunk.size:
            emphasised = preemphasise(chunk, self._previous_sample)
            self._previous_sample = float(chunk[-1])
            self._buffer = np.concatenate((self._buffer, emphasised))
            self.samples_received += chunk.size
        return self._emit_ready()

    def flush(self) -> np.ndarray:
        """End of signal: return the remaining columns (those that reach past the end)."""
        total = n_columns_for(self.samples_received)
        self._buffer = np.concatenate((self._buffer, np.zeros(N_FFT, np.float32)))
        return self._emit(total - self.columns_emitted)

    def _emit_ready(self) -> np.ndarray:
        ready = 0 if len(self._buffer) < N_FFT else 1 + (len(self._buffer) - N_FFT) // HOP_LENGTH
        return self._emit(ready)

    def _emit(self, n_columns: int) -> np.ndarray:
        columns = _columns_from_padded(self._buffer, n_columns)
        n_columns = columns.shape[1]
        self._buffer = self._buffer[n_columns * HOP_LENGTH :]
        self.columns_emitted += n_columns
        return columns


class SessionNorm:
    """Streaming mean and variance normalisation of log-mel columns over a session (a
    learner's connection, a microphone run, a file): each band's running mean and spread
    over the session's louder columns so far are taken out and the training corpus's
    (the prior) put in their place, so a room's, a microphone's or a voice's spectral colour
    is taken out while what changes within the session (the articulation) stays. Causal:
    column j depends on columns 0..j only, so ``push`` in chunks and ``normalise`` on the
    whole mel give the same columns. Before the session has much speech the prior weighs in
    as ``prior_columns`` columns of it."""

    def __init__(self, prior_mean, prior_std, prior_columns: int = SESSION_PRIOR_COLUMNS) -> None:
        self.prior_mean = np.asarray(prior_mean, np.float64).reshape(N_MELS)
        self.prior_std = np.maximum(np.asarray(prior_std, np.float64).reshape(N_MELS), SESSION_MIN_STD)
        self.prior_columns = float(prior_columns)
        self.reset()

    @classmethod
    def from_dict(cls, spec: dict) -> "SessionNorm":
        return cls(spec["prior_mean"], spec["prior_std"], spec.get("prior_columns", SESSION_PRIOR_COLUMNS))

    def to_dict(self) -> dict:
        """What a bundle's manifest records (``input_norm``)."""
        return {"kind": "session", "prior_mean": [round(float(v), 5) for v in self.prior_mean],
                "prior_std": [round(float(v), 5) for v in self.prior_std], "prior_columns": self.prior_columns,
                "gate_below_peak": SESSION_GATE_BELOW_PEAK, "gate_floor": SESSION_GATE_FLOOR}

    def fresh(self) -> "SessionNorm":
        """A new session with the same prior."""
        return SessionNorm(self.prior_mean, self.prior_std, self.prior_columns)

    def reset(self) -> None:
        self._count = self.prior_columns
        self._sum = self.prior_mean * self.prior_columns
        self._sum_sq = (self.prior_std**2 + self.prior_mean**2) * self.prior_columns
        self._peak = -np.inf

    def push(self, columns: np.ndarray) -> np.ndarray:
        """(N_MELS, k) columns of the session, in order -> the same columns normalised."""
        columns = np.asarray(columns, np.float32)
        if columns.shape[1] == 0:
            return columns
        x = columns.astype(np.float64)
        loud, peak = _counted_and_peak(x.mean(axis=0), self._peak)
        counted = loud.astype(np.float64)
        count = self._count + np.cumsum(counted)
        total = self._sum[:, None] + np.cumsum(x * counted, axis=1)
        total_sq = self._sum_sq[:, None] + np.cumsum(x * x * counted, axis=1)
        mean = total / count
        std = np.sqrt(np.maximum(total_sq / count - mean**2, SESSION_MIN_STD**2))
        scale = np.clip(self.prior_std[:, None] / std, 1.0 / SESSION_MAX_SCALE, SESSION_MAX_SCALE)
        self._count, self._sum, self._sum_sq, self._peak = count[-1], total[:, -1], total_sq[:, -1], peak[-1]
        out = (x - mean) * scale + self.prior_mean[:, None]
        return np.clip(out, -MAX_ABS_VALUE, MAX_ABS_VALUE).astype(np.float32)

    def normalise(self, mel: np.ndarray) -> np.ndarray:
        """A whole session's mel (N_MELS, n) normalised from its start (this object untouched)."""
        return self.fresh().push(mel)


def loud_columns(mel: np.ndarray) -> np.ndarray:
    """The columns of ``mel`` that SessionNorm would count for a session of this mel alone."""
    return mel[:, _counted_and_peak(mel.mean(axis=0), -np.inf)[0]]


def _counted_and_peak(level: np.ndarray, previous_peak: float) -> tuple[np.ndarray, np.ndarray]:
    """Which columns (by their mean level) a session counts, and the session's peak level so far at each."""
    peak = np.maximum.accumulate(np.maximum(level, previous_peak))
    return level >= np.maximum(SESSION_GATE_FLOOR, peak - SESSION_GATE_BELOW_PEAK), peak


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Read an audio file (wav, flac, mp3, or the audio stream of a video) as mono float32
    at sample_rate. Raises AudioError naming the file on any problem, AudioTooLongError when
    it lasts more than max_seconds (memory stays within max_seconds of audio)."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        wav, rate = _read_any(path, max_seconds)
    except AudioError:
        raise
    except Exception as exc:  # decoders raise many types; the caller needs the file and the reason
        raise AudioError(f"{path}: cannot read audio ({exc})") from exc
    if wav.size == 0:
        raise AudioError(f"{path}: audio is empty")
    require_finite(wav, path, rate)
    return resample(wav, rate, sample_rate)


def non_finite_samples(wav: np.ndarray) -> np.ndarray:
    """Indices of the NaN or infinite samples of ``wav`` (usually none)."""
    # A float64 sum is NaN or infinite exactly when a sample is (float32 samples cannot overflow
    # it), and needs no array of flags as long as the signal.
    if np.isfinite(np.sum(wav, dtype=np.float64)):
        return np.empty(0, np.int64)
    return np.flatnonzero(~np.isfinite(wav))


def non_finite_error(path: str | Path, count: int, first_s: float) -> AudioError:
    return AudioError(f"{path}: {count} audio samples are NaN or infinite (the first at {first_s:.3f} s): the file is damaged")


def require_finite(wav: np.ndarray, path: str | Path, rate: int, start_sample: int = 0) -> np.ndarray:
    """Refuse NaN or infinite samples (a damaged float file): every feature column they touch
    would be NaN, encoders fail on them and clips would get clicks. ``start_sample``: where
    ``wav`` (a block read from the file, or all of it) starts in the file."""
    bad = non_finite_samples(wav)
    if len(bad):
        raise non_finite_error(path, len(bad), (start_sample + bad[0]) / rate)
    return wav


def audio_duration(path: str | Path) -> float | None:
    """Seconds of audio in a file (or a video's audio stream) by its header, without decoding;
    None when the header does not say or the file cannot be opened (load_audio then tells why)."""
    try:
        info = soundfile.info(str(path))
        return info.frames / info.samplerate if info.samplerate else None
    except (soundfile.LibsndfileError, RuntimeError, OSError):
        pass

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            return container.duration / av.time_base if container.duration is not None else None
    except Exception:  # PyAV raises many types; an unreadable file is load_audio's to report
        return None


def _too_long(path: Path, max_seconds: float) -> AudioTooLongError:
    return AudioTooLongError(f"{path}: the audio lasts more than {max_seconds:.3f} s")


def _read_any(path: Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    try:
        with soundfile.SoundFile(str(path)) as handle:
            rate = int(handle.samplerate)
            # one sample past the limit tells a file that goes on from one that ends there
            limit = -1 if max_seconds is None else int(max_seconds * rate) + 1
            data = handle.read(frames=limit, dtype="float32", always_2d=True)
    except soundfile.LibsndfileError:
        return _read_with_pyav(path, max_seconds)
    if max_seconds is not None and len(data) > max_seconds * rate:
        raise _too_long(path, max_seconds)
    return data.mean(axis=1), rate


def _read_with_pyav(path: Path, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    with av.open(str(path)) as container:
        if not container.streams.audio:
            raise AudioError(f"{path}: has no audio stream")
        stream = container.streams.audio[0]
        rate = int(stream.rate)
        limit = None if max_seconds is None else max_seconds * rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        pieces, total = [], 0
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                pieces.append(out.to_ndarray().reshape(-1))
                total += len(pieces[-1])
            if limit is not None and total > limit:
                raise _too_long(path, max_seconds)
        for out in resampler.resample(None):
            pieces.append(out.to_ndarray().reshape(-1))
    wav = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
    if limit is not None and len(wav) > limit:
        raise _too_long(path, max_seconds)
    return wav.astype(np.float32), rate


def resample(wav: np.ndarray, rate: int, target_rate: int = SAMPLE_RATE) -> np.ndarray:
    wav = np.asarray(wav, np.float32)
    if rate == target_rate:
        return wav

    return soxr.resample(wav, rate, target_rate, quality="HQ").astype(np.float32)
