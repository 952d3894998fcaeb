"""Audio perturbations that training's augmentation and the evaluator's robustness condition
share: shoebox rooms, mixing at an SNR, and the held-out perturbations (never used in training).

Held out (``heldout_perturbation``): large halls (10-16 m, RT60 0.8-1.1 s, 2-4 m away),
mains hum and fan noise at 5-20 dB SNR, telephone / headset responses (band-pass and
shelves, mild saturation): other rooms, noises and microphones than training's
(``rtmri.training.augment``).

No torch: pyroomacoustics and audiomentations (the train extra) are imported where used.
"""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import butter, fftconvolve, sosfilt

ROOMS = 32  # the training rooms: a bank drawn from the run seed
HELDOUT_ROOMS = 8
HELDOUT_BANK_SEED = 16_000  # the held-out halls are one fixed set, whatever the run seed
HELDOUT_SNR_DB = (5.0, 20.0)

_ROOM_STREAM = 0x5005
_HELDOUT_STREAM = 0x4E1D


@dataclass(frozen=True)
class RoomRanges:
    size_m: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    rt60_s: tuple[float, float]
    distance_m: tuple[float, float]


TRAINING_ROOMS = RoomRanges(size_m=((3.0, 8.0), (3.0, 7.0), (2.5, 3.5)), rt60_s=(0.2, 0.7), distance_m=(0.3, 2.0))
# classrooms and lecture halls with a distant microphone: the held-out halls' range and beyond,
# drawn from the run's own bank (never the held-out bank's rooms)
TRAINING_HALLS = RoomRanges(size_m=((8.0, 18.0), (6.0, 14.0), (3.0, 5.5)), rt60_s=(0.6, 1.4), distance_m=(1.5, 5.0))
HELDOUT_HALLS = RoomRanges(size_m=((10.0, 16.0), (8.0, 12.0), (3.5, 5.0)), rt60_s=(0.8, 1.1), distance_m=(2.0, 4.0))
BANKS = {"room": TRAINING_ROOMS, "heldout": HELDOUT_HALLS, "hall": TRAINING_HALLS}  # the order seeds each bank


@lru_cache(maxsize=2 * ROOMS + HELDOUT_ROOMS)
def room_impulse_response(bank_seed: int, room: int, sr: int, bank: str = "room") -> np.ndarray:
    """Room ``room`` of the bank ``bank_seed`` of kind ``bank`` (BANKS: training rooms,
    training halls, or the held-out halls), starting at its direct path, unit peak."""
    import pyroomacoustics as pra  # the train extra

    ranges = BANKS[bank]
    rng = np.random.default_rng([bank_seed, _ROOM_STREAM, room, list(BANKS).index(bank)])
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


@contextlib.contextmanager
def library_rngs(rng: np.random.Generator):
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


def heldout_perturbation(audio: np.ndarray, sr: int, seed: int) -> np.ndarray:
    """``audio`` as a held-out hall, noise and microphone make it (same length): one of
    HELDOUT_ROOMS halls, hum-and-fan noise at 5-20 dB SNR, a telephone / headset response.
    None of them is a training kind; ``seed`` picks the draws."""
    audio = np.asarray(audio, np.float32)
    rng = np.random.default_rng([int(seed), _HELDOUT_STREAM])
    hall = room_impulse_response(HELDOUT_BANK_SEED, int(rng.integers(HELDOUT_ROOMS)), sr, bank="heldout")
    audio = reverberate(audio, hall)
    audio = mix_at_snr(audio, hum_and_fan_noise(len(audio), sr, rng), float(rng.uniform(*HELDOUT_SNR_DB)))
    return _heldout_microphone(audio, sr, rng)


def hum_and_fan_noise(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum (50 or 60 Hz and its harmonics) over a fan's low rumble and blade tone."""
    t = np.arange(n) / sr
    mains = float(rng.choice([50.0, 60.0]))
    hum = sum(rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * mains * k * t + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    rumble = sosfilt(butter(2, rng.uniform(300.0, 800.0), fs=sr, output="sos"), rng.standard_normal(n))
    blade = rng.uniform(80.0, 200.0)
    tone = sum(np.sin(2 * np.pi * blade * k * t + rng.uniform(0, 2 * np.pi)) / k for k in (1, 2, 3))
    return (hum + 3.0 * rumble / (rumble.std() + 1e-12) + 0.5 * tone).astype(np.float32)


def _heldout_microphone(audio: np.ndarray, sr: int, rng: np.random.Generator) -> np.ndarray:
    from audiomentations import BandPassFilter, Compose, HighShelfFilter, LowShelfFilter, TanhDistortion  # the train extra

    channel = Compose([
        BandPassFilter(min_center_freq=900.0, max_center_freq=1400.0, min_bandwidth_fraction=1.3, max_bandwidth_fraction=1.9, p=1.0),
        LowShelfFilter(min_center_freq=150.0, max_center_freq=400.0, min_gain_db=-12.0, max_gain_db=-3.0, p=1.0),
        HighShelfFilter(min_center_freq=2500.0, max_center_freq=4000.0, min_gain_db=-9.0, max_gain_db=6.0, p=1.0),
        TanhDistortion(min_distortion=0.01, max_distortion=0.1, p=0.5),
    ])
    with library_rngs(rng):
        return channel(audio, sr).astype(np.float32)
