"""Attempt -> reference time alignment: DTW on the model's own audio features.

Both recordings are cut to their speech (rtmri.lessons.activity, with ``MARGIN_S`` either
side), each mel band has its mean over the speech removed (a different voice or microphone
shifts whole bands; the sounds are in the changes), and librosa's DTW finds the cheapest
monotonic path. The path gives, for every instant of the reference, the instant of the
attempt said at the same point of the words; outside the speech the two run on at the same
pace.
"""

from __future__ import annotations

from dataclasses import dataclass

import librosa
import numpy as np

from rtmri.audio import MEL_COLUMNS_PER_SECOND, melspectrogram
from rtmri.lessons.activity import Activity

MARGIN_S = 0.1


@dataclass(frozen=True)
class Alignment:
    reference_s: np.ndarray  # increasing instants of the reference ...
    attempt_s: np.ndarray  # ... and the attempt's instants said at the same point (non-decreasing)
    cost: float  # mean feature distance along the path

    def attempt_time(self, reference_s) -> np.ndarray:
        """Attempt instants for reference instants; beyond the path both advance together."""
        t = np.asarray(reference_s, float)
        inside = np.interp(t, self.reference_s, self.attempt_s)
        before = self.attempt_s[0] + (t - self.reference_s[0])
        after = self.attempt_s[-1] + (t - self.reference_s[-1])
        return np.where(t < self.reference_s[0], before, np.where(t > self.reference_s[-1], after, inside))


def speech_columns(wav: np.ndarray, span: Activity) -> tuple[np.ndarray, int]:
    """Mean-removed mel columns of the speech (with its margin) and the first column's index."""
    mel = melspectrogram(wav)
    first = max(0, int((span.start_s - MARGIN_S) * MEL_COLUMNS_PER_SECOND))
    last = min(mel.shape[1], int(np.ceil((span.end_s + MARGIN_S) * MEL_COLUMNS_PER_SECOND)))
    columns = mel[:, first:last]
    return columns - columns.mean(axis=1, keepdims=True), first


def align(reference: np.ndarray, reference_span: Activity, attempt: np.ndarray, attempt_span: Activity) -> Alignment:
    ref, ref_first = speech_columns(reference, reference_span)
    att, att_first = speech_columns(attempt, attempt_span)
    cost, path = librosa.sequence.dtw(X=ref, Y=att, metric="euclidean")
    path = path[::-1]  # librosa returns it end first
    ref_cols = np.arange(ref.shape[1])
    # several attempt columns may pair with one reference column (the attempt lingered): their mean
    sums = np.bincount(path[:, 0], weights=path[:, 1], minlength=len(ref_cols))
    counts = np.bincount(path[:, 0], minlength=len(ref_cols))
    att_cols = sums / np.maximum(counts, 1)
    att_cols = np.maximum.accumulate(att_cols)
    return Alignment((ref_cols + ref_first) / MEL_COLUMNS_PER_SECOND, (att_cols + att_first) / MEL_COLUMNS_PER_SECOND,
                     float(cost[-1, -1] / len(path)))
