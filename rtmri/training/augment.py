"""Audio augmentation of the training samples (the held-out perturbations the evaluator uses
for its robustness condition, never used in training, are ``rtmri.perturbations``).

Training kinds, each with its own probability (``--augment``); they apply in the order room
or hall, noise, babble, microphone, band, gain, then vtlp on the features:

  room        reverberation: the impulse response of a shoebox room (pyroomacoustics'
              image-source model, its order from Sabine's formula), 3-8 m, RT60 0.2-0.7 s,
              microphone 0.3-2 m from the talker; a bank of ROOMS rooms drawn from the run seed
              (``rtmri.perturbations``)
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
  hall        (not in 'default') a classroom or lecture hall with a distant microphone:
              8-18 m, RT60 0.6-1.4 s, 1.5-5 m away, from the run's own bank of ROOMS halls;
              applied in place of room when both are drawn
  band        (not in 'default') a narrow channel, as a telephone or a cheap headset passes:
              band-pass, low edge 200-500 Hz, high edge 2.8-4 kHz (4th-order Butterworth)

hall and band cover what the evaluator's held-out condition is made of (a hall, a
telephone band) with other rooms and filters: with them, that condition measures rooms and
channels of a kind training has seen, not new kinds.

The audio kinds perturb the stretch of the clip a sample's mel windows read (with a
PREROLL_S lead so a room has its tail) and the features come from rtmri.audio as always;
vtlp then warps those features. Everything a sample draws is a function of (seed, sample
index, kind): the same run seed gives the same augmentation, switching one kind off leaves
the others' draws as they were.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import librosa
import numpy as np
from scipy.signal import butter, sosfilt

from rtmri import RtmriError
from rtmri.audio import FMAX, FMIN, HALF_WINDOW, HOP_LENGTH, N_MELS, SAMPLE_RATE, melspectrogram
from rtmri.perturbations import ROOMS, library_rngs, mix_at_snr, reverberate, room_impulse_response

KINDS = ("room", "noise", "babble", "microphone", "gain", "vtlp", "hall", "band")  # new kinds go last: a kind's draws follow its index
DEFAULT_PROBABILITIES = {"room": 0.4, "noise": 0.3, "babble": 0.2, "microphone": 0.5, "gain": 0.5, "vtlp": 0.5}
OPTIONAL_PROBABILITIES = {"hall": 0.3, "band": 0.2}  # kinds only a setting that names them uses
OFF = "none"
DEFAULT = "default"

NOISE_SNR_DB = (5.0, 30.0)
NOISE_SLOPE_DB_PER_OCTAVE = (-6.0, 6.0)
BABBLE_TALKERS = (4, 8)
BAND_LOW_HZ = (200.0, 500.0)
BAND_HIGH_HZ = (2800.0, 4000.0)
GAIN_DB = (-12.0, 6.0)
VTLP_FACTOR = (0.9, 1.1)
VTLP_BOUNDARY_HZ = 4800.0  # Jaitly & Hinton's: below it the warp is linear
PREROLL_S = 0.3  # audio before a sample's first column that a room's tail may reach from
ROOM_TONE_DBFS = (-80.0, -40.0)  # a room's own noise with nobody speaking, RMS

_AUGMENT_STREAM = 0xA06  # keeps the augmentation draws apart from the sample's picks


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
            p = float(value) if value.strip() else {**DEFAULT_PROBABILITIES, **OPTIONAL_PROBABILITIES}[name]
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
        drawn = {kind: self._drawn(kind, key) for kind in _AUDIO_KINDS}
        if drawn["hall"] is not None:
            drawn["room"] = None  # one room at a time
        for kind, apply in _AUDIO_KINDS.items():
            if drawn[kind] is not None:
                audio = apply(audio, sr, drawn[kind], self.seed)
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


def coloured(white: np.ndarray, slope_db_per_octave: float, level_dbfs: float) -> np.ndarray:
    """``white`` noise given a spectral slope (power, dB per octave: 0 white, -3.01 pink) and an RMS level."""
    spectrum = np.fft.rfft(white)
    spectrum *= 10.0 ** (slope_db_per_octave * np.log2(np.maximum(np.arange(len(spectrum)), 1)) / 20.0)
    tone = np.fft.irfft(spectrum, len(white))
    return (tone / max(float(tone.std()), 1e-12) * 10.0 ** (level_dbfs / 20.0)).astype(np.float32)


# Steady noises a room has with nobody speaking: a microphone's hiss (white) and a fan's or the
# street's rumble (pink: 1/f power, -3.01 dB per octave).
STEADY_NOISE_DB_PER_OCTAVE = {"white": 0.0, "pink": -10.0 * math.log10(2.0)}


def steady_noise(kind: str, n: int, level_dbfs: float, seed: int) -> np.ndarray:
    """``n`` samples of white or pink noise (STEADY_NOISE_DB_PER_OCTAVE) at ``level_dbfs`` RMS."""
    return coloured(np.random.default_rng(seed).standard_normal(n), STEADY_NOISE_DB_PER_OCTAVE[kind], level_dbfs)


def room_tone(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of a room's own noise (a fan, a microphone's hiss): coloured noise of a
    spectral slope in NOISE_SLOPE_DB_PER_OCTAVE at an RMS level in ROOM_TONE_DBFS."""
    white = rng.standard_normal(n)
    return coloured(white, rng.uniform(*NOISE_SLOPE_DB_PER_OCTAVE), rng.uniform(*ROOM_TONE_DBFS))


def _add_room(audio, sr, rng, bank_seed):
    return reverberate(audio, room_impulse_response(bank_seed, int(rng.integers(ROOMS)), sr))


def _add_hall(audio, sr, rng, bank_seed):
    return reverberate(audio, room_impulse_response(bank_seed, int(rng.integers(ROOMS)), sr, bank="hall"))


def _narrow_band(audio, sr, rng, bank_seed):
    edges = [rng.uniform(*BAND_LOW_HZ), rng.uniform(*BAND_HIGH_HZ)]
    return sosfilt(butter(4, edges, btype="bandpass", fs=sr, output="sos"), audio).astype(np.float32)


def _add_noise(audio, sr, rng, bank_seed):
    from audiomentations import AddColorNoise  # the train extra

    noise = AddColorNoise(min_snr_db=NOISE_SNR_DB[0], max_snr_db=NOISE_SNR_DB[1], min_f_decay=NOISE_SLOPE_DB_PER_OCTAVE[0],
                          max_f_decay=NOISE_SLOPE_DB_PER_OCTAVE[1], p=1.0)
    with library_rngs(rng):
        return noise(audio, sr)


def _add_babble(audio, sr, rng, bank_seed):
    return mix_at_snr(audio, babble_noise(len(audio), sr, rng), float(rng.uniform(*NOISE_SNR_DB)))


def _colour_microphone(audio, sr, rng, bank_seed):
    from audiomentations import Compose, HighPassFilter, LowPassFilter, PeakingFilter, SevenBandParametricEQ  # the train extra

    channel = Compose([
        HighPassFilter(min_cutoff_freq=80.0, max_cutoff_freq=400.0, p=1.0),
        LowPassFilter(min_cutoff_freq=3500.0, max_cutoff_freq=7500.0, p=0.5),
        PeakingFilter(min_center_freq=2000.0, max_center_freq=6000.0, min_gain_db=3.0, max_gain_db=10.0, min_q=1.0, max_q=4.0, p=0.5),
        SevenBandParametricEQ(min_gain_db=-6.0, max_gain_db=6.0, p=1.0),
    ])
    with library_rngs(rng):
        return channel(audio, sr)


def _change_gain(audio, sr, rng, bank_seed):
    return audio * np.float32(10.0 ** (rng.uniform(*GAIN_DB) / 20.0))


# in the order they apply (a room's reverberation before the noise in it, the channel after)
_AUDIO_KINDS = {"room": _add_room, "hall": _add_hall, "noise": _add_noise, "babble": _add_babble, "microphone": _colour_microphone,
                "band": _narrow_band, "gain": _change_gain}


# ---- the pieces: babble, vtlp ------------------------------------------------------------------


BABBLE_BANDS_HZ = ((100.0, 800.0), (800.0, 2400.0), (2400.0, 6000.0))  # ICRA's three bands
SYLLABLE_RATE_HZ = 4.0
_ENVELOPE_RATE_HZ = 100
ENVELOPE_MIN_S = 2.0


def babble_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Babble-like noise: in each band, 4-8 talkers' noise, each under its own log-normal
    syllable-rate envelope; speech-shaped (-6 dB/octave above 500 Hz). The talkers' sum is
    drawn as one Gaussian noise whose variance is the sum of theirs (the same distribution)."""
    talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
    points = n * _ENVELOPE_RATE_HZ // sr + 2
    position = np.arange(n) * _ENVELOPE_RATE_HZ / sr
    out = np.zeros(n, np.float64)
    for low, high in BABBLE_BANDS_HZ:
        # the envelope drawn over at least ENVELOPE_MIN_S: its spread over a few points is no scale (exp overflowed)
        levels = _syllable_levels(talkers, max(points, int(ENVELOPE_MIN_S * _ENVELOPE_RATE_HZ)), rng)[:, :points]
        level = np.sqrt(np.square(levels).sum(axis=0))
        excitation = np.interp(position, np.arange(points), level) * rng.standard_normal(n)
        out += sosfilt(_butter(2, (low, min(high, 0.45 * sr)), "bandpass", sr), excitation)
    return sosfilt(_butter(1, 500.0, "lowpass", sr), out).astype(np.float32)


def _syllable_levels(talkers: int, points: int, rng: np.random.Generator) -> np.ndarray:
    """(talkers, points) levels at _ENVELOPE_RATE_HZ: slow (syllable-rate) log-normal
    fluctuations with near-pauses."""
    settle = 50  # the filter's start-up, dropped
    slow = sosfilt(_butter(2, SYLLABLE_RATE_HZ, "lowpass", _ENVELOPE_RATE_HZ), rng.standard_normal((talkers, points + settle)))[:, settle:]
    return np.exp(2.0 * slow / (slow.std(axis=1, keepdims=True) + 1e-12))


@lru_cache(maxsize=32)
def _butter(order: int, cutoff, btype: str, fs: float) -> np.ndarray:
    return butter(order, cutoff, btype=btype, fs=fs, output="sos")


@lru_cache(maxsize=1)
def _mel_centres_hz() -> np.ndarray:
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
