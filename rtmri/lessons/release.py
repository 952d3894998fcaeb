"""An affricate's release: /ts/ (つ) and /tʃ/ (ち) are a tongue closure let go into a hiss, and
the hiss starts at once (a burst); said as /s/ or /ʃ/, with no closure, it swells gradually.

Word-initially the closure itself is silent (nothing before it to stop), so neither the model's
articulatory state nor the spectral envelope tells つくえ from すくえ: only how the hiss begins
does. Per voiceless affricate of the reference, the hiss's steepest rise (its level above
``HISS_HZ``, in dB, gained over ``RISE_S``, at its steepest) is measured around where the
phone starts, in the reference and, at the instant the alignment gives, in the attempt. Named
(severity 1) when the attempt's is ``RELEASE_NAMED`` (log units) below the reference's. A hiss
that does not stand ``CLEAR_DB`` clear of the floor around it (a noisy room, a whisper) is not
judged: nothing is said rather than a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import signal

from rtmri.audio import SAMPLE_RATE

AFFRICATES = frozenset({"ts", "tS"})  # voiceless: a voiced one (ず, じ) is said as a fricative by natives too
HISS_HZ = 4000.0
LEVEL_HOP_S, LEVEL_WINDOW_S = 0.001, 0.002
RISE_S = 0.005  # a burst gains most of DEPTH_DB in this time, a fricative's onset a fraction
BEFORE_S, AFTER_S = 0.05, 0.08  # searched around the phone's start (the alignment's error, the hiss's growth)
DEPTH_DB = 30.0  # the rise counted within this far below the hiss's peak
CLEAR_DB = DEPTH_DB + 6.0  # the hiss's peak must stand this far above the quietest instant searched
LEAST_RISE_DB = 1.0  # a rise counted at least this (a flat level is not an infinitely slow one)
# log(reference's rise / attempt's rise) named: set on the correct attempts of dev1, dev2, dev4 and
# dev5 (docs/mistakes_benchmark.md; never on the benchmarks measured).
RELEASE_NAMED = 0.15


@dataclass(frozen=True)
class Release:
    phone_index: int
    reference_db: float  # the steepest rise of the reference's hiss, dB per RISE_S
    attempt_db: float  # ... and of the attempt's

    @property
    def log_ratio(self) -> float:
        """log(reference's rise / attempt's rise): above 0, the attempt's hiss began more gradually."""
        return float(np.log(max(self.reference_db, LEAST_RISE_DB) / max(self.attempt_db, LEAST_RISE_DB)))

    @property
    def severity(self) -> float:
        """How much more gradually the attempt's hiss began, in units of a named difference (0: as abruptly or more)."""
        return max(self.log_ratio, 0.0) / RELEASE_NAMED


@lru_cache(maxsize=1)
def _high_pass():
    return signal.butter(4, HISS_HZ, "highpass", fs=SAMPLE_RATE, output="sos")


def hiss_level_db(wav: np.ndarray) -> np.ndarray:
    """The level above HISS_HZ in dB, one value per LEVEL_HOP_S (value k: the window starting at k hops)."""
    high = signal.sosfilt(_high_pass(), np.asarray(wav, np.float64))
    window, hop = int(LEVEL_WINDOW_S * SAMPLE_RATE), int(LEVEL_HOP_S * SAMPLE_RATE)
    if len(high) < window:
        return np.zeros(0)
    power = np.lib.stride_tricks.sliding_window_view(high**2, window)[::hop].mean(axis=1)
    return 10.0 * np.log10(power + 1e-12)


def steepest_rise_db(level_db: np.ndarray, start_s: float) -> float | None:
    """The most the hiss near start_s gained over RISE_S (dB), counted only within DEPTH_DB of its
    peak (a quiet room's floor and a digital silence give the same); None where the hiss does not
    stand CLEAR_DB above the quietest instant searched."""
    step = round(RISE_S / LEVEL_HOP_S)
    lo, hi = max(int((start_s - BEFORE_S) / LEVEL_HOP_S), 0), min(int((start_s + AFTER_S) / LEVEL_HOP_S), len(level_db))
    span = level_db[lo:hi]
    if len(span) <= step or span.max() - span.min() < CLEAR_DB:
        return None
    top = np.maximum(span, span.max() - DEPTH_DB)
    return float(np.max(top[step:] - top[:-step]))


def releases(reference_wav: np.ndarray, attempt_wav: np.ndarray, phones, attempt_starts_s: np.ndarray) -> list[Release]:
    """Every voiceless affricate of the reference whose release both recordings let judge."""
    indices = [i for i, p in enumerate(phones) if p["phone"] in AFFRICATES]
    if not indices:
        return []
    reference, attempt = hiss_level_db(reference_wav), hiss_level_db(attempt_wav)
    out = []
    for i in indices:
        ours, theirs = steepest_rise_db(reference, phones[i]["start"]), steepest_rise_db(attempt, float(attempt_starts_s[i]))
        if ours is not None and theirs is not None:
            out.append(Release(i, ours, theirs))
    return out
