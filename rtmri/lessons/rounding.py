"""Japanese /ɯ/ said as a rounded /u/ (the commonest vowel mistake of English and German
speakers): rounding the lips, and pulling the tongue back, lowers the second formant.

The model cannot show it (its training speakers say only Japanese, so it has never drawn
rounded lips for a /u/), and the spectral envelope of an unheard voice at /ɯ/ varies about as
much as the mistake moves it. What does not depend on the voice is where the attempt's /ɯ/ lies
against its own front vowel: F2 of /ɯ/ over F2 of the attempt's /e/ (else /i/), compared with
the same ratio in the reference. Formants by linear prediction (``LPC_ORDER`` poles on the
recording resampled to twice a ceiling: ``REFERENCE_CEILING_HZ`` for the reference, scaled by
the alignment's vocal-tract-length warp for the attempt, as a child's formants lie higher). A
/ɯ/ whose ratio lies ``ROUNDING_NAMED`` (log units) below the reference's is named.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from rtmri.articulation import regions as R
from rtmri.audio import SAMPLE_RATE

UNROUNDED = frozenset({R.UNROUNDED_U, R.UNROUNDED_U + R.LONG})
FRONT = (("e", "e" + R.LONG), ("i", "i" + R.LONG))  # the attempt's own yardstick, /e/ first
REFERENCE_CEILING_HZ = 3500.0  # F1 and F2 of every vowel lie below it (a child's /e/: scaled by the warp)
LPC_ORDER = 8
CLEAR_DB = 30.0  # a vowel is measured only this far above the recording's floor: in noise LPC's F2 wanders
FLOOR_QUANTILE = 0.1  # the recording's floor: this quantile of its frames' levels
MIN_VOWEL_S = 0.06  # a shorter vowel is not measured: in running speech it never reaches its target
PRE_EMPHASIS = 0.97
FRAME_S = 0.025
MIDDLE = 0.4  # the middle share of a vowel measured (its transitions left out)
POINTS = 5  # frames measured across that middle; their median is the vowel's
MIN_FORMANT_HZ, MAX_BANDWIDTH_HZ = 150.0, 500.0  # a pole lower, or wider, is not a formant
# log(attempt's ratio / reference's) named, its magnitude: 1.5 times the farthest below 0 of the
# correct attempts of dev1 and dev2 (python -m rtmri.mistakes.thresholds).
ROUNDING_NAMED = 0.14


@dataclass(frozen=True)
class Rounding:
    phone_index: int
    reference_ratio: float  # F2 of the reference's /ɯ/ over F2 of its front vowel
    attempt_ratio: float  # ... and the attempt's

    @property
    def log_ratio(self) -> float:
        return float(np.log(self.attempt_ratio / self.reference_ratio))

    @property
    def severity(self) -> float:
        """How far the attempt's /ɯ/ lay further back than the reference's, in units of a named difference."""
        return max(-self.log_ratio, 0.0) / ROUNDING_NAMED


def frame_formants(frame: np.ndarray, rate: int) -> np.ndarray:
    """The formant frequencies (Hz, rising) of one frame, by linear prediction."""
    frame = np.append(frame[0], frame[1:] - PRE_EMPHASIS * frame[:-1]) * np.hamming(len(frame))
    if not np.any(frame):
        return np.zeros(0)
    roots = np.roots(librosa.lpc(frame, order=LPC_ORDER))
    roots = roots[np.imag(roots) > 0]
    frequency = np.angle(roots) * rate / (2 * np.pi)
    bandwidth = -np.log(np.abs(roots)) * rate / np.pi
    return np.sort(frequency[(frequency > MIN_FORMANT_HZ) & (bandwidth < MAX_BANDWIDTH_HZ)])


def floor_db(wav: np.ndarray) -> float:
    """The recording's floor: the FLOOR_QUANTILE of its FRAME_S frames' levels (dB)."""
    size = int(FRAME_S * SAMPLE_RATE)
    frames = np.asarray(wav[: len(wav) // size * size], np.float64).reshape(-1, size)
    return float(np.quantile(level_db(frames), FLOOR_QUANTILE)) if len(frames) else 0.0


def level_db(frames: np.ndarray) -> np.ndarray:
    return 10 * np.log10(np.mean(frames**2, axis=-1) + 1e-12)


def second_formant_hz(wav: np.ndarray, start_s: float, end_s: float, ceiling_hz: float, floor: float) -> float | None:
    """F2 of the vowel over [start_s, end_s): the median over POINTS frames across its middle; None
    if not found, if the vowel is shorter than MIN_VOWEL_S or does not stand CLEAR_DB above the
    recording's floor."""
    rate = int(2 * ceiling_hz)
    start_s, end_s = max(start_s, 0.0), min(end_s, len(wav) / SAMPLE_RATE)
    lo, hi = max(int((start_s - FRAME_S) * SAMPLE_RATE), 0), min(int((end_s + FRAME_S) * SAMPLE_RATE), len(wav))
    if end_s - start_s < MIN_VOWEL_S or hi - lo < FRAME_S * SAMPLE_RATE:
        return None
    core = np.asarray(wav[int(start_s * SAMPLE_RATE) : int(end_s * SAMPLE_RATE)], np.float64)
    if not len(core) or level_db(core) < floor + CLEAR_DB:
        return None
    piece = librosa.resample(np.asarray(wav[lo:hi], np.float64), orig_sr=SAMPLE_RATE, target_sr=rate)
    half = int(FRAME_S * rate / 2)
    middle = (start_s + end_s) / 2 - lo / SAMPLE_RATE
    found = []
    for t in np.linspace(middle - MIDDLE / 2 * (end_s - start_s), middle + MIDDLE / 2 * (end_s - start_s), POINTS):
        centre = int(t * rate)
        frame = piece[max(centre - half, 0) : centre + half]
        formants = frame_formants(frame, rate) if len(frame) == 2 * half else np.zeros(0)
        if len(formants) >= 2:
            found.append(formants[1])
    return float(np.median(found)) if found else None


def front_f2(wav, spans, qualities, ceiling_hz: float, floor: float) -> float | None:
    """F2 of a front vowel quality (the median over its occurrences), None where none was measured."""
    values = [second_formant_hz(wav, start, end, ceiling_hz, floor) for phone, start, end in spans if phone in qualities]
    values = [v for v in values if v]
    return float(np.median(values)) if values else None


def warm_up() -> None:
    """librosa's LPC compiles on its first call (about 2 s): do it before the first learner asks."""
    frame_formants(np.random.default_rng(0).normal(size=int(FRAME_S * 2 * REFERENCE_CEILING_HZ)), int(2 * REFERENCE_CEILING_HZ))


def roundings(reference_wav: np.ndarray, attempt_wav: np.ndarray, phones, starts_s: np.ndarray, ends_s: np.ndarray,
              warp: float) -> list[Rounding]:
    """Every /ɯ/ of the reference whose F2 against the front vowel both recordings let measure."""
    targets = [i for i, p in enumerate(phones) if p["phone"] in UNROUNDED]
    if not targets:
        return []
    theirs_ceiling = REFERENCE_CEILING_HZ * warp
    our_floor, their_floor = floor_db(reference_wav), floor_db(attempt_wav)
    ours_spans = [(p["phone"], p["start"], p["end"]) for p in phones]
    theirs_spans = [(p["phone"], s, e) for p, s, e in zip(phones, starts_s, ends_s)]
    for qualities in FRONT:  # the first front vowel both recordings let measure: the same yardstick for both
        reference_front = front_f2(reference_wav, ours_spans, qualities, REFERENCE_CEILING_HZ, our_floor)
        attempt_front = front_f2(attempt_wav, theirs_spans, qualities, theirs_ceiling, their_floor)
        if reference_front and attempt_front:
            break
    else:
        return []
    out = []
    for i in targets:
        ours = second_formant_hz(reference_wav, phones[i]["start"], phones[i]["end"], REFERENCE_CEILING_HZ, our_floor)
        theirs = second_formant_hz(attempt_wav, float(starts_s[i]), float(ends_s[i]), theirs_ceiling, their_floor)
        if ours and theirs:
            out.append(Rounding(i, ours / reference_front, theirs / attempt_front))
    return out
