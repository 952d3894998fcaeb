"""Is there speech in an attempt? An energy check on the same STFT frames as the features.

A frame is active when its RMS level is within ``ACTIVE_RANGE_DB`` of the recording's
loudest frame and above ``FLOOR_DBFS``. A recording whose loudest frame is below
``SILENT_DBFS`` is silent; one whose level hardly changes (``STEADY_DB`` between its 5th and
95th percentile frame: noise, hum; speech comes and goes with its syllables and pauses) holds
no speech; one with less than ``MIN_SPEECH_S`` of active frames, or less than ``MIN_SHARE`` of
the reference's, is too short to compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from rtmri import RtmriError
from rtmri.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE

SILENT_DBFS = -45.0
FLOOR_DBFS = -55.0
ACTIVE_RANGE_DB = 35.0
MIN_SPEECH_S = 0.15
MIN_SHARE = 0.3
STEADY_DB = 10.0


class AttemptError(RtmriError, ValueError):
    """An attempt that cannot be compared (silent, too short): the message says what to do."""


@dataclass(frozen=True)
class Activity:
    start_s: float  # first active frame
    end_s: float  # end of the last active frame
    speech_s: float  # active frames in all
    peak_dbfs: float
    spread_db: float  # between the 5th and the 95th percentile frame level


def activity(wav: np.ndarray) -> Activity:
    wav = np.asarray(wav, np.float32)
    if len(wav) < N_FFT:
        wav = np.pad(wav, (0, N_FFT - len(wav)))
    rms = librosa.feature.rms(y=wav, frame_length=N_FFT, hop_length=HOP_LENGTH, center=True)[0]
    level = 20 * np.log10(np.maximum(rms, 1e-10))
    peak = float(level.max())
    spread = float(np.percentile(level, 95) - np.percentile(level, 5))
    active = np.flatnonzero(level >= max(peak - ACTIVE_RANGE_DB, FLOOR_DBFS))
    hop_s = HOP_LENGTH / SAMPLE_RATE
    if len(active) == 0:
        return Activity(0.0, 0.0, 0.0, peak, spread)
    return Activity(float(active[0] * hop_s), float((active[-1] + 1) * hop_s), float(len(active) * hop_s), peak, spread)


def check_attempt(wav: np.ndarray, reference: Activity | None = None, where: str = "the attempt") -> Activity:
    """The attempt's activity, or AttemptError saying why it cannot be scored."""
    found = activity(wav)
    if found.peak_dbfs < SILENT_DBFS:
        raise AttemptError(f"{where} is silent (loudest {found.peak_dbfs:.0f} dBFS, speech needs at least "
                           f"{SILENT_DBFS:.0f} dBFS): check the microphone and say the item again")
    if found.spread_db < STEADY_DB:
        raise AttemptError(f"{where} holds no speech, only a steady sound (its level varies by {found.spread_db:.0f} dB; "
                           "noise or hum?): say the item, with a moment of quiet before it")
    needed = max(MIN_SPEECH_S, MIN_SHARE * reference.speech_s) if reference else MIN_SPEECH_S
    if found.speech_s < needed:
        raise AttemptError(f"{where} is too short to compare: {found.speech_s:.2f} s of speech, at least {needed:.2f} s "
                           "needed: say the whole item")
    return found
