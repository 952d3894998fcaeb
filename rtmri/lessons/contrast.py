"""Vowel contrasts: two vowels the reference keeps apart, said alike (an /i/ said as /e/).

An /i/ said as /e/ by a voice the model never heard moves the spectral envelope, and the
tongue the model draws, by less than voices differ from one another, so it hides under what a
correct attempt by another voice reaches at that phone. What does not depend on the voice is
that the attempt's /i/ and /e/ now sound alike where the reference's are apart. Per pair of
vowel qualities among the reference's phones (a long vowel has its short one's quality), the
distance between the attempt's mean envelopes (rtmri.lessons.sound: the voice's level and
tract length taken out) over the reference's gives the contrast kept: its log is 0 for a pair
as far apart as in the reference, and far below 0 for a pair merged. A pair merged beyond
``CONTRAST_NAMED`` is named at the vowel that moved (the one of the two whose attempt lies
nearer the reference's other vowel, against its own), at its occurrence farthest from its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from rtmri.articulation import regions as R

# The log of (the attempt's distance between two vowels over the reference's) at which the
# pair is named as merged: below every correct attempt by a voice the model never heard in the
# two benchmarks the comparison's thresholds are set on (python -m rtmri.mistakes.thresholds).
CONTRAST_NAMED = -0.88
CORE = 0.5  # the middle share of a vowel its envelope is taken over: away from its transitions
MIN_VOWEL_S = 0.025  # an attempt's vowel shorter than this (two spectral columns) is left out: a collapsed
# alignment, not a vowel (a missing one is the length check's)
LOWEST_LOG_RATIO = 3 * CONTRAST_NAMED  # a merge is counted at most this far (two spans on one column: log 0)
VOWEL_QUALITIES = frozenset({"a", "i", R.UNROUNDED_U, "u", "e", "o"})


@dataclass(frozen=True)
class Contrast:
    phone_index: int  # the reference phone named: the vowel that moved, where it moved most
    said_like: str  # the vowel quality it was said like
    log_ratio: float  # log of the attempt's distance between the two over the reference's

    @property
    def severity(self) -> float:
        return self.log_ratio / CONTRAST_NAMED


def quality(phone: str | None) -> str | None:
    """A vowel phone's quality (long and short alike); None for anything else."""
    base = (phone or "").removesuffix(R.LONG)
    return base if base in VOWEL_QUALITIES else None


def core_mean(envelope: np.ndarray, centres_s: np.ndarray, start_s: float, end_s: float) -> np.ndarray | None:
    """The mean envelope over the middle CORE of [start, end) (at least its nearest column)."""
    middle, half = (start_s + end_s) / 2, max(end_s - start_s, 0.0) * CORE / 2
    inside = np.abs(centres_s - middle) <= half
    if not inside.any():
        if not len(centres_s):
            return None
        inside = np.abs(centres_s - middle) == np.abs(centres_s - middle).min()
    return envelope[:, inside].mean(axis=1)


def vowel_means(envelope: np.ndarray, centres_s: np.ndarray, spans: list[tuple[int, str, float, float]]) -> dict[int, np.ndarray]:
    """phone index -> its mean envelope, for spans (index, quality, start s, end s)."""
    out = {}
    for index, _, start, end in spans:
        mean = core_mean(envelope, centres_s, start, end)
        if mean is not None:
            out[index] = mean
    return out


def by_quality(means: dict[int, np.ndarray], spans) -> dict[str, np.ndarray]:
    qualities = {q for _, q, _, _ in spans}
    grouped = {q: [means[i] for i, k, _, _ in spans if k == q and i in means] for q in qualities}
    return {q: np.mean(v, axis=0) for q, v in grouped.items() if v}


def said_as_other(attempt: np.ndarray, own: np.ndarray, other: np.ndarray) -> float:
    """How much nearer an attempt's vowel lies to the reference's other vowel than to its own
    (a voice's offset from the reference weighs on both alike)."""
    return float(np.linalg.norm(attempt - own) - np.linalg.norm(attempt - other))


def kept(sound, phones, starts_s: np.ndarray, ends_s: np.ndarray) -> tuple[dict[str, float], list[Contrast]]:
    """(quality -> the lowest log contrast of its pairs; the pairs merged beyond CONTRAST_NAMED,
    most merged first). sound: rtmri.lessons.sound.Sound; starts_s, ends_s: the attempt instants
    of each reference phone's start and end."""
    vowels = [(i, quality(p["phone"])) for i, p in enumerate(phones) if quality(p["phone"])]
    reference_spans = [(i, q, phones[i]["start"], phones[i]["end"]) for i, q in vowels]
    attempt_spans = [(i, q, starts_s[i], ends_s[i]) for i, q in vowels if ends_s[i] - starts_s[i] >= MIN_VOWEL_S]
    reference = vowel_means(sound.reference_envelope, sound.reference_centres_s, reference_spans)
    attempt = vowel_means(sound.attempt_envelope, sound.attempt_centres_s, attempt_spans)
    ref_q, att_q = by_quality(reference, reference_spans), by_quality(attempt, attempt_spans)
    lowest: dict[str, float] = {}
    merged = []
    for a, b in combinations(sorted(set(ref_q) & set(att_q)), 2):
        apart = float(np.linalg.norm(ref_q[a] - ref_q[b]))
        if apart <= 0:
            continue
        log_ratio = max(float(np.log(max(float(np.linalg.norm(att_q[a] - att_q[b])), 1e-9) / apart)), LOWEST_LOG_RATIO)
        for q in (a, b):
            lowest[q] = min(lowest.get(q, np.inf), log_ratio)
        if log_ratio <= CONTRAST_NAMED:
            moved = max((a, b), key=lambda q: said_as_other(att_q[q], ref_q[q], ref_q[b if q == a else a]))
            occurrences = [i for i, q in vowels if q == moved and i in attempt]
            where = max(occurrences, key=lambda i: np.linalg.norm(attempt[i] - ref_q[moved]))
            merged.append(Contrast(where, b if moved == a else a, log_ratio))
    return lowest, sorted(merged, key=lambda c: c.log_ratio)
