"""The attempt's sound against the reference's, with the voice taken out: the alignment the
comparison uses, and how unlike the reference each instant sounds.

A voice differs from another in two ways that are not how the words are said: its level per
frequency band (a microphone, a voice quality) and its vocal tract's length (a child's formants
lie higher). The first is taken out as in rtmri.lessons.align (each mel band's mean over the
speech removed); the second by warping the attempt's frequency axis (vocal-tract-length
normalisation): each of ``WARPS`` is tried and the one whose DTW path is cheapest is kept.
That path is the alignment (rtmri.lessons.align.path_alignment); along it, the distance between
the two normalised spectral envelopes (``ENVELOPE``) at each reference instant says how unlike
the reference it sounds there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import librosa
import numpy as np
import scipy.fft

from rtmri.alignment import FPS
from rtmri.audio import FMAX, FMIN, MAX_ABS_VALUE, MEL_COLUMNS_PER_SECOND, MIN_LEVEL_DB, N_MELS, melspectrogram
from rtmri.lessons.activity import Activity
from rtmri.lessons.align import Alignment, column_start_s, path_alignment, speech_columns

# Frequency scalings tried: a band at f takes the attempt's level at f x warp (a child's tract,
# about 0.7 of an adult male's length, has its formants about 1.4 times as high).
WARPS = tuple(float(w) for w in 1.05 ** np.arange(-5, 9))  # 0.78 to 1.48, and 1 itself (the same voice)
QUIET_DB = 30.0
# How unlike the reference an instant sounds is measured on the spectral envelope: the first
# ENVELOPE cosine coefficients over the mel bands but the level (c1-c12, as speech recognisers
# keep): the formants, where the articulation is, not a voice's harmonics (a child's, a woman's
# pitch resolves into the low bands and would sound "unlike" everywhere). The DTW itself runs on
# the whole spectrum.
ENVELOPE = 12
DB_PER_UNIT = -MIN_LEVEL_DB / (2 * MAX_ABS_VALUE)  # the features' scale (rtmri.audio): 12.5 dB per unit
BAND_HZ = librosa.mel_frequencies(N_MELS + 2, fmin=FMIN, fmax=FMAX)[1:-1]  # centre of each mel band


@dataclass(frozen=True)
class Sound:
    alignment: Alignment
    warp: float  # the attempt's frequency scaling that matched the reference best
    distance: np.ndarray  # per reference frame (k / FPS): spectral distance to the attempt said there (NaN outside the speech)
    # each recording's spectral envelope per column (the attempt's warped), and the columns' centres (s)
    reference_envelope: np.ndarray = field(default_factory=lambda: np.zeros((ENVELOPE, 0)), repr=False)
    reference_centres_s: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    attempt_envelope: np.ndarray = field(default_factory=lambda: np.zeros((ENVELOPE, 0)), repr=False)
    attempt_centres_s: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


def warped(columns: np.ndarray, warp: float) -> np.ndarray:
    """Mel columns with the frequency axis scaled: band f gets the level at f x warp (linear
    between bands, the end bands beyond them: np.interp's rule, as one matrix for every column)."""
    return warp_matrix(warp) @ columns


@lru_cache(maxsize=len(WARPS) + 1)
def warp_matrix(warp: float) -> np.ndarray:
    """(bands, bands): row i interpolates the level at BAND_HZ[i] x warp from the bands."""
    return np.stack([np.interp(BAND_HZ * warp, BAND_HZ, unit) for unit in np.eye(N_MELS)], axis=1)


def compare_sound(reference: np.ndarray, reference_span: Activity, attempt: np.ndarray, attempt_span: Activity,
                  n_frames: int) -> Sound:
    ref, ref_first = speech_columns(reference, reference_span)
    raw, att_first = speech_columns(attempt, attempt_span)
    best = None
    for warp in WARPS:
        att = warped(raw, warp)
        att = att - att.mean(axis=1, keepdims=True)
        cost, path = librosa.sequence.dtw(X=ref, Y=att, metric="euclidean")
        mean_cost = float(cost[-1, -1] / len(path))
        if best is None or mean_cost < best[0]:
            best = (mean_cost, warp, att, path[::-1])
    mean_cost, warp, att, path = best
    ref_envelope, att_envelope = envelope(ref), envelope(att)
    distance = np.linalg.norm(ref_envelope[:, path[:, 0]] - att_envelope[:, path[:, 1]], axis=0)
    counts = np.bincount(path[:, 0], minlength=ref.shape[1])
    per_column = np.bincount(path[:, 0], weights=distance, minlength=ref.shape[1]) / np.maximum(counts, 1)
    per_column[quiet(reference, ref_first, ref.shape[1])] = np.nan  # a closure has no spectrum to compare
    alignment = path_alignment(path, ref_first, att_first, mean_cost, ref, att)
    centres = lambda n, first: column_start_s(np.arange(n) + 0.5, first)
    return Sound(alignment, warp, per_frame(per_column, ref_first, n_frames), ref_envelope, centres(ref.shape[1], ref_first),
                 att_envelope, centres(att.shape[1], att_first))


def envelope(columns: np.ndarray) -> np.ndarray:
    """Each column's spectral envelope: its cosine transform over the bands, the first ENVELOPE
    coefficients but the level (a voice's harmonics, at its pitch, are finer than the formants)."""
    return scipy.fft.dct(columns, type=2, norm="ortho", axis=0)[1 : ENVELOPE + 1]


def quiet(wav: np.ndarray, first: int, n_columns: int) -> np.ndarray:
    """Columns whose loudest band is QUIET_DB or more below the recording's loudest (a closure, a pause)."""
    level = melspectrogram(wav)[:, first : first + n_columns].max(axis=0)
    return level < level.max() - QUIET_DB / DB_PER_UNIT


def per_frame(per_column: np.ndarray, first: int, n_frames: int) -> np.ndarray:
    """Column values averaged into the reference's video frames (frame k: columns of [k, k+1) / FPS)."""
    out = np.full(n_frames, np.nan)
    frame_of = ((np.arange(len(per_column)) + first) * FPS) // MEL_COLUMNS_PER_SECOND
    inside = frame_of < n_frames
    known = inside & np.isfinite(per_column)
    sums = np.bincount(frame_of[known], weights=per_column[known], minlength=n_frames)
    counts = np.bincount(frame_of[known], minlength=n_frames)
    out[counts > 0] = sums[counts > 0] / counts[counts > 0]
    return out
