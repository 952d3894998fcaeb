"""Audio augmentation of the training samples, and the held-out perturbations the evaluator
uses for its robustness condition (never used in training).

Training kinds, in the order they apply (each with its own probability, ``--augment``):

  room        reverberation: the impulse response of a shoebox room (pyroomacoustics'
              image-source model, its order from Sabine's formula), 3-8 m, RT60 0.2-0.7 s,
              microphone 0.3-2 m from the talker; a bank of ROOMS rooms drawn from the run seed
  noise       coloured noise, spectral slope -6..+6 dB/octave (brown, pink, white, blue,
              violet; audiomentations.AddColorNoise) at 5-30 dB SNR
  babble      babble-like noise at 5-30 dB SNR: 4-8 talkers of speech-shaped noise whose
              three bands follow their own syllable-rate envelopes (after the ICRA noises,
              Dreschler et al. 2001, Audiology 40:148-157); generated, nothing is downloaded
  microphone  microphone and channel: a high-pass at 80-400 Hz (small laptop capsules), a
              band limit (low-pass 3.5-7.5 kHz), a 2-6 kHz resonance, seven-band EQ +-6 dB
  gain        -12..+6 dB
  vtlp        vocal-tract-length perturbation of the features: the mel frequency axis
              warped by a factor 0.9-1.1 (Jaitly & Hinton 2013's piecewise-linear warp)

The audio kinds perturb the stretch of the clip a sample's mel windows read (with a
PREROLL_S lead so a room has its tail) and the features come from rtmri.audio as always;
vtlp then warps those features. Everything a sample draws is a function of (seed, sample
index, kind): the same run seed gives the same augmentation, switching one kind off leaves
the others' draws as they were.

Held out (``heldout_perturbation``): large halls (10-16 m, RT60 0.8-1.1 s, 2-4 m away),
mains hum and fan noise at 5-20 dB SNR, telephone / headset responses (band-pass and
shelves, mild saturation): other rooms, noises and microphones than training's.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rtmri import RtmriError
from rtmri.audio import FMAX, FMIN, HALF_WINDOW, HOP_LENGTH, N_MELS, SAMPLE_RATE, melspectrogram

KINDS = ("room", "noise", "babble", "microphone", "gain", "vtlp")  # the order they apply in
DEFAULT_PROBABILITIES = {"room": 0.4, "noise": 0.3, "babble": 0.2, "microphone": 0.5, "gain": 0.5, "vtlp": 0.5}
OFF = "none"
DEFAULT = "default"

NOISE_SNR_DB = (5.0, 30.0)
NOISE_SLOPE_DB_PER_OCTAVE = (-6.0, 6.0)
BABBLE_TALKERS = (4, 8)
GAIN_DB = (-12.0, 6.0)
VTLP_FACTOR = (0.9, 1.1)
VTLP_BOUNDARY_HZ = 4800.0  # Jaitly & Hinton's: below it the warp is linear
ROOMS = 32
PREROLL_S = 0.3  # audio before a sample's first column that a room's tail may reach from

HELDOUT_ROOMS = 8
HELDOUT_BANK_SEED = 16_000  # the held-out halls are one fixed set, whatever the run seed
HELDOUT_SNR_DB = (5.0, 20.0)

_AUGMENT_STREAM = 0xA06  # keeps the augmentation draws apart from the sample's picks
_ROOM_STREAM = 0x5005
_HELDOUT_STREAM = 0x4E1D


class AugmentError(RtmriError, ValueError):
    """An augmentation setting that cannot be parsed."""


# ---- the setting: 'none', 'default' or 'kind=p,...' ---------------------------------------


def parse_spec(spec: str) -> dict[str, float]:
    """Kind -> probability. 'none' -> {}; 'default' -> every kind at its default
    probability; 'room,noise=0.8' -> only those kinds, at the default probability or the one
    given. Kinds at probability 0 are dropped."""
    spec = spec.strip().lower()
    if spec in (OFF, "off", ""):
        return {}
    if spec == DEFAULT:
        return dict(DEFAULT_PROBABILITIES)
    probabilities = {}
    for item in spec.split(","):
        name, _, value = item.strip().partition("=")
        name = name.strip()
        if name not in KINDS:
            raise AugmentError(f"augment {spec!r}: unknown kind {name!r}; kinds: {', '.join(KINDS)} (or 'none', 'default')")
        try:
            p = float(value) if value.strip() else DEFAULT_PROBABILITIES[name]
        except ValueError:
            raise AugmentError(f"augment {spec!r}: {name}={value!r} is not a probability") from None
        if not 0.0 <= p <= 1.0:
            raise AugmentError(f"augment {spec!r}: {name}={p:g} is not a probability in [0, 1]")
        if p > 0:
            probabilities[name] = p
    return {k: probabilities[k] for k in KINDS if k in probabilities}


def format_spec(probabilities: dict[str, float]) -> str:
    """The canonical setting (what run.toml records): 'none' or 'kind=p,...' in KINDS order."""
    shown = [f"{k}={probabilities[k]:g}" for k in KINDS if probabilities.get(k, 0) > 0]
    return ",".join(shown) or OFF


def canonical_spec(spec: str) -> str:
    return format_spec(parse_spec(spec))


# ---- training augmentation ------------------------------------------------------------------


@dataclass(frozen=True)
class Augmentation:
    """The training kinds at their probabilities; ``seed`` draws the room bank."""

    probabilities: dict[str, float]
    seed: int = 0

    @classmethod
    def from_spec(cls, spec: str, seed: int = 0) -> Augmentation | None:
        """None when the setting switches every kind off."""
        probabilities = parse_spec(spec)
        return cls(probabilities, seed) if probabilities else None

    def mel(self, audio: np.ndarray, mel: np.ndarray, first: int, end: int, key: Sequence[int]) -> np.ndarray:
        """The clip's ``mel`` with its columns [first, end) (those a sample reads) as this
        sample's augmentation makes them from the clip's 16 kHz ``audio``; ``mel`` itself when
        nothing is drawn for ``key``."""
        first, end = max(first, 0), min(end, mel.shape[1])
        audio_drawn = any(self._drawn(kind, key) is not None for kind in _AUDIO_KINDS)
        if end <= first or not (audio_drawn or self._drawn("vtlp", key)):
            return mel
        columns = self._audio_columns(audio, first, end, key) if audio_drawn else mel[:, first:end]
        augmented = mel.copy()
        augmented[:, first:end] = self.warp(columns, key)
        return augmented

    def _audio_columns(self, audio: np.ndarray, first: int, end: int, key: Sequence[int]) -> np.ndarray:
        """Mel columns [first, end) of the perturbed clip: only the stretch they read (and
        PREROLL_S before it) is perturbed, from a column boundary so that its columns are
        the clip's (to float rounding, when nothing is drawn)."""
        lead = math.ceil((HALF_WINDOW + PREROLL_S * SAMPLE_RATE) / HOP_LENGTH) + 1  # +1: pre-emphasis
        start_column = max(0, first - lead)
        start, stop = start_column * HOP_LENGTH, min(len(audio), end * HOP_LENGTH + HALF_WINDOW)
        segment = self.perturb(np.asarray(audio[start:stop], np.float32), SAMPLE_RATE, key)
        return melspectrogram(segment)[:, first - start_column : end - start_column]

    def perturb(self, audio: np.ndarray, sr: int, key: Sequence[int]) -> np.ndarray:
        """The audio kinds drawn for ``key`` applied to ``audio`` (same length)."""
        for kind, apply in _AUDIO_KINDS.items():
            rng = self._drawn(kind, key)
            if rng is not None:
                audio = apply(audio, sr, rng, self.seed)
        return audio.astype(np.float32, copy=False)

    def warp(self, mel: np.ndarray, key: Sequence[int]) -> np.ndarray:
        rng = self._drawn("vtlp", key)
        if rng is None:
            return mel
        return vtlp(mel, float(rng.uniform(*VTLP_FACTOR)))

    def _drawn(self, kind: str, key: Sequence[int]) -> np.random.Generator | None:
        """The kind's own generator when it applies to this sample, else None."""
        p = self.probabilities.get(kind, 0.0)
        if p <= 0:
            return None
        rng = np.random.default_rng([*map(int, key), _AUGMENT_STREAM, KINDS.index(kind)])
        return rng if rng.random() < p else None


def _add_room(audio, sr, rng, bank_seed):
    return reverberate(audio, room_impulse_response(bank_seed, int(rng.integers(ROOMS)), sr))


def _add_noise(audio, sr, rng, bank_seed):
    from audiomentations import AddColorNoise

    noise = AddColorNoise(min_snr_db=NOISE_SNR_DB[0], max_snr_db=NOISE_SNR_DB[1], min_f_decay=NOISE_SLOPE_DB_PER_OCTAVE[0],
                          max_f_decay=NOISE_SLOPE_DB_PER_OCTAVE[1], p=1.0)
    with _library_rngs(rng):
        return noise(audio, sr)


def _add_babble(audio, sr, rng, bank_seed):
    return mix_at_snr(audio, babble_noise(len(audio), sr, rng), float(rng.uniform(*NOISE_SNR_DB)))


def _colour_microphone(audio, sr, rng, bank_seed):
    from audiomentations import Compose, HighPassFilter, LowPassFilter, PeakingFilter, SevenBandParametricEQ

    channel = Compose([
        HighPassFilter(min_cutoff_freq=80.0, max_cutoff_freq=400.0, p=1.0),
        LowPassFilter(min_cutoff_freq=3500.0, max_cutoff_freq=7500.0, p=0.5),
        PeakingFilter(min_center_freq=2000.0, max_center_freq=6000.0, min_gain_db=3.0, max_gain_db=10.0, min_q=1.0, max_q=4.0, p=0.5),
        SevenBandParametricEQ(min_gain_db=-6.0, max_gain_db=6.0, p=1.0),
    ])
    with _library_rngs(rng):
        return channel(audio, sr)


def _change_gain(audio, sr, rng, bank_seed):
    return audio * np.float32(10.0 ** (rng.uniform(*GAIN_DB) / 20.0))


# in KINDS order
_AUDIO_KINDS = {"room": _add_room, "noise": _add_noise, "babble": _add_babble, "microphone": _colour_microphone, "gain": _change_gain}


@contextlib.contextmanager
def _library_rngs(rng: np.random.Generator):
    """audiomentations draws from Python's and numpy's global generators: seed them from
    the sample's generator for the call, then put the run's states back."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    seed = int(rng.integers(2**32))
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


# ---- the pieces: rooms, noises, mixing, vtlp ----------------------------------------------------


@dataclass(frozen=True)
class RoomRanges:
    size_m: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    rt60_s: tuple[float, float]
    distance_m: tuple[float, float]


TRAINING_ROOMS = RoomRanges(size_m=((3.0, 8.0), (3.0, 7.0), (2.5, 3.5)), rt60_s=(0.2, 0.7), distance_m=(0.3, 2.0))
HELDOUT_HALLS = RoomRanges(size_m=((10.0, 16.0), (8.0, 12.0), (3.5, 5.0)), rt60_s=(0.8, 1.1), distance_m=(2.0, 4.0))


@lru_cache(maxsize=ROOMS + HELDOUT_ROOMS)
def room_impulse_response(bank_seed: int, room: int, sr: int, heldout: bool = False) -> np.ndarray:
    """Room ``room`` of the bank ``bank_seed`` (training rooms, or the held-out halls),
    starting at its direct path, unit peak."""
    import pyroomacoustics as pra

    ranges = HELDOUT_HALLS if heldout else TRAINING_ROOMS
    rng = np.random.default_rng([bank_seed, _ROOM_STREAM, room, int(heldout)])
    size = np.array([rng.uniform(*r) for r in ranges.size_m])
    absorption, max_order = pra.inverse_sabine(rng.uniform(*ranges.rt60_s), size)
    source, microphone = _placements(size, ranges.distance_m, rng)
    shoebox = pra.ShoeBox(size, fs=sr, materials=pra.Material(absorption), max_order=max_order)
    shoebox.add_source(source)
    shoebox.add_microphone(microphone)
    shoebox.compute_rir()
    rir = np.asarray(shoebox.rir[0][0], np.float64)
    # from the direct path on (less half the fractional-delay filter): reverberation, not a
    # shift of the audio against the video
    onset = max(0, int(np.argmax(np.abs(rir))) - pra.constants.get("frac_delay_length") // 2)
    rir = rir[onset:]
    return (rir / np.abs(rir).max()).astype(np.float32)


def _placements(size: np.ndarray, distance_m: tuple[float, float], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A standing talker and a microphone at desk height ``distance_m`` away, both 0.3 m
    inside the walls."""
    margin = 0.3
    source = np.array([rng.uniform(margin, size[0] - margin), rng.uniform(margin, size[1] - margin), rng.uniform(1.4, 1.8)])
    for _ in range(100):
        angle, distance = rng.uniform(0, 2 * np.pi), rng.uniform(*distance_m)
        microphone = source + np.array([distance * np.cos(angle), distance * np.sin(angle), 0.0])
        microphone[2] = rng.uniform(0.7, 1.2)
        if np.all(microphone[:2] > margin) and np.all(microphone[:2] < size[:2] - margin):
            return source, microphone
    return source, np.array([size[0] / 2, size[1] / 2, 1.0])  # a room too small for the distance


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``audio`` through the room, same length and RMS."""
    from scipy.signal import fftconvolve

    wet = fftconvolve(audio, rir)[: len(audio)]
    dry_rms, wet_rms = _rms(audio), _rms(wet)
    return (wet * (dry_rms / wet_rms) if wet_rms > 0 else wet).astype(np.float32)


def mix_at_snr(audio: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``audio`` plus ``noise`` scaled so that their power ratio is ``snr_db``."""
    signal_rms, noise_rms = _rms(audio), _rms(noise)
    if signal_rms == 0 or noise_rms == 0:
        return audio
    scale = signal_rms / (noise_rms * 10.0 ** (snr_db / 20.0))
    return (audio + scale * noise).astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0


BABBLE_BANDS_HZ = ((100.0, 800.0), (800.0, 2400.0), (2400.0, 6000.0))  # ICRA's three bands
SYLLABLE_RATE_HZ = 4.0
_ENVELOPE_RATE_HZ = 100


def babble_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Babble-like noise: in each band, 4-8 talkers' noise, each under its own log-normal
    syllable-rate envelope; speech-shaped (-6 dB/octave above 500 Hz). The talkers' sum is
    drawn as one Gaussian noise whose variance is the sum of theirs (the same distribution)."""
    from scipy.signal import sosfilt

    talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
    points = n * _ENVELOPE_RATE_HZ // sr + 2
    position = np.arange(n) * _ENVELOPE_RATE_HZ / sr
    out = np.zeros(n, np.float64)
    for low, high in BABBLE_BANDS_HZ:
        level = np.sqrt(np.square(_syllable_levels(talkers, points, rng)).sum(axis=0))
        excitation = np.interp(position, np.arange(points), level) * rng.standard_normal(n)
        out += sosfilt(_butter(2, (low, min(high, 0.45 * sr)), "bandpass", sr), excitation)
    return sosfilt(_butter(1, 500.0, "lowpass", sr), out).astype(np.float32)


def _syllable_levels(talkers: int, points: int, rng: np.random.Generator) -> np.ndarray:
    """(talkers, points) levels at _ENVELOPE_RATE_HZ: slow (syllable-rate) log-normal
    fluctuations with near-pauses."""
    from scipy.signal import sosfilt

    settle = 50  # the filter's start-up, dropped
    slow = sosfilt(_butter(2, SYLLABLE_RATE_HZ, "lowpass", _ENVELOPE_RATE_HZ), rng.standard_normal((talkers, points + settle)))[:, settle:]
    return np.exp(2.0 * slow / (slow.std(axis=1, keepdims=True) + 1e-12))


@lru_cache(maxsize=32)
def _butter(order: int, cutoff, btype: str, fs: float) -> np.ndarray:
    from scipy.signal import butter

    return butter(order, cutoff, btype=btype, fs=fs, output="sos")


@lru_cache(maxsize=1)
def _mel_centres_hz() -> np.ndarray:
    import librosa

    return librosa.mel_frequencies(N_MELS + 2, fmin=FMIN, fmax=FMAX)[1:-1]


def vtlp_warp_hz(f: np.ndarray, factor: float, f_max: float = FMAX) -> np.ndarray:
    """Jaitly & Hinton's piecewise-linear warp: f * factor up to the boundary, then the
    line that keeps f_max in place."""
    knee = VTLP_BOUNDARY_HZ * min(factor, 1.0) / factor
    upper = f_max - (f_max - VTLP_BOUNDARY_HZ * min(factor, 1.0)) / (f_max - knee) * (f_max - f)
    return np.where(f <= knee, f * factor, upper)


def vtlp(mel: np.ndarray, factor: float) -> np.ndarray:
    """``mel`` (N_MELS, n) with its frequency axis warped: the value at a band's centre
    is the unwarped spectrum's at the frequency the warp takes there."""
    centres = _mel_centres_hz()
    grid = np.linspace(0.0, FMAX, 4096)
    source_hz = np.interp(centres, vtlp_warp_hz(grid, factor), grid)  # the inverse warp
    position = np.interp(source_hz, centres, np.arange(N_MELS))  # fractional band index
    below = np.minimum(position.astype(int), N_MELS - 2)
    weight = (position - below)[:, None].astype(np.float32)
    return ((1 - weight) * mel[below] + weight * mel[below + 1]).astype(np.float32)


# ---- held out: for the evaluator's robustness condition ------------------------------------------


def heldout_perturbation(audio: np.ndarray, sr: int, seed: int) -> np.ndarray:
    """``audio`` as a held-out hall, noise and microphone make it (same length): one of
    HELDOUT_ROOMS halls, hum-and-fan noise at 5-20 dB SNR, a telephone / headset response.
    None of them is a training kind; ``seed`` picks the draws."""
    audio = np.asarray(audio, np.float32)
    rng = np.random.default_rng([int(seed), _HELDOUT_STREAM])
    hall = room_impulse_response(HELDOUT_BANK_SEED, int(rng.integers(HELDOUT_ROOMS)), sr, heldout=True)
    audio = reverberate(audio, hall)
    audio = mix_at_snr(audio, hum_and_fan_noise(len(audio), sr, rng), float(rng.uniform(*HELDOUT_SNR_DB)))
    return _heldout_microphone(audio, sr, rng)


def hum_and_fan_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 or 60 Hz and its harmonics) over a fan's low rumble and blade tone."""
    from scipy.signal import butter, sosfilt

    t = np.arange(n) / sr
    mains = float(rng.choice([50.0, 60.0]))
    hum = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    rumble = sosfilt(butter(2, rng.uniform(300.0, 800.0), fs=sr, output="sos"), rng.standard_normal(n))
    blade = rng.uniform(80.0, 200.0)
    tone = sum(np.sin(2 * np.pi * blade * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    return (hum + 3.0 * rumble / (rumble.std() + 1e-12) + 0.5 * tone).astype(np.float32)


def _heldout_microphone(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    from audiomentations import BandPassFilter, Compose, HighShelfFilter, LowShelfFilter, TanhDistortion

    channel = Compose([
        BandPassFilter(min_center_freq=900.0, max_center_freq=1400.0, min_bandwidth_fraction=1.3, max_bandwidth_fraction=1.9, p=1.0),
        LowShelfFilter(min_center_freq=150.0, max_center_freq=400.0, min_gain_db=-12.0, max_gain_db=-3.0, p=1.0),
        HighShelfFilter(min_center_freq=2500.0, max_center_freq=4000.0, min_gain_db=-9.0, max_gain_db=6.0, p=1.0),
        TanhDistortion(min_distortion=0.01, max_distortion=0.1, p=0.5),
    ])
    with _library_rngs(rng):
        return channel(audio, sr).astype(np.float32)
