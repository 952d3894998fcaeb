"""Is there speech in an attempt? An energy check on the same STFT frames as the features.

A frame is active when its RMS level is within ``ACTIVE_RANGE_DB`` of the recording's
loudest frame and above ``FLOOR_DBFS``. A recording whose loudest frame is below
``SILENT_DBFS`` is silent; one with less than ``MIN_SPEECH_S`` of active frames, or less than
``MIN_SHARE`` of the reference's, is too short to compare.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtmri import RtmriError
from rtmri.audio import HOP_LENGTH, N_FFT, SAMPLE_RATE

SILENT_DBFS = -45.0
FLOOR_DBFS = -55.0
ACTIVE_RANGE_DB = 35.0
MIN_SPEECH_S = 0.15
MIN_SHARE = 0.3


class AttemptError(RtmriError, ValueError):
    """An attempt that cannot be compared (silent, too short): the message says what to do."""


@dataclass(frozen=True)
class Activity:
    start_s: float  # first active frame
    end_s: float  # end of the last active frame
    speech_s: float  # active frames in all
    peak_dbfs: float


def activity(wav: np.ndarray) -> Activity:
    import librosa

    wav = np.asarray(wav, np.float32)
    if len(wav) < N_FFT:
        wav = np.pad(wav, (0, N_FFT - len(wav)))
    rms = librosa.feature.rms(y=wav, frame_length=N_FFT, hop_length=HOP_LENGTH, center=True)[0]
    level = 20 * np.log10(np.maximum(rms, 1e-10))
    peak = float(level.max())
    active = np.flatnonzero(level >= max(peak - ACTIVE_RANGE_DB, FLOOR_DBFS))
    hop_s = HOP_LENGTH / SAMPLE_RATE
    if len(active) == 0:
        return Activity(0.0, 0.0, 0.0, peak)
    return Activity(float(active[0] * hop_s), float((active[-1] + 1) * hop_s), float(len(active) * hop_s), peak)


def check_attempt(wav: np.ndarray, reference: Activity | None = None, where: str = "the attempt") -> Activity:
    """The attempt's activity, or AttemptError saying why it cannot be scored."""
    found = activity(wav)
    if found.peak_dbfs < SILENT_DBFS:
        raise AttemptError(f"{where} is silent (loudest {found.peak_dbfs:.0f} dBFS, speech needs at least "
                           f"{SILENT_DBFS:.0f} dBFS): check the microphone and say the item again")
    needed = max(MIN_SPEECH_S, MIN_SHARE * reference.speech_s) if reference else MIN_SPEECH_S
    if found.speech_s < needed:
        raise AttemptError(f"{where} is too short to compare: {found.speech_s:.2f} s of speech, at least {needed:.2f} s "
                           "needed: say the whole item")
    return found
