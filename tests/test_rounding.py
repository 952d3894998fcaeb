"""A /ɯ/ said as a rounded /u/ (rtmri.lessons.rounding): F2 of /ɯ/ against the same attempt's
/e/, on source-filter vowels of known formants: a child's voice (every formant higher) is not a
mistake, a lowered F2 is; a noisy recording or a short vowel is not measured."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from rtmri.audio import SAMPLE_RATE
from rtmri.lessons import rounding

VOWEL_S = 0.25


def vowel(formants, f0=120.0, seconds=VOWEL_S):
    """An impulse train at f0 through one resonance per formant (bandwidth 80 Hz)."""
    n = int(seconds * SAMPLE_RATE)
    out = np.zeros(n)
    out[:: int(SAMPLE_RATE / f0)] = 1.0
    for f in formants:
        r = np.exp(-np.pi * 80.0 / SAMPLE_RATE)
        out = signal.lfilter([1.0 - r], [1.0, -2 * r * np.cos(2 * np.pi * f / SAMPLE_RATE), r * r], out)
    return out / np.abs(out).max() * 0.5


def word(u_formants, e_formants, scale=1.0, f0=120.0, noise_db=None, seed=0):
    """silence, /ɯ/, /e/, silence (0.1 s each side); phones and their spans."""
    gap = np.zeros(int(0.1 * SAMPLE_RATE))
    wav = np.concatenate([gap, vowel([f * scale for f in u_formants], f0), vowel([f * scale for f in e_formants], f0), gap])
    if noise_db is not None:
        wav = wav + np.random.default_rng(seed).normal(size=len(wav)) * 0.2 * 10 ** (-noise_db / 20)
    phones = ({"phone": "M", "start": 0.1, "end": 0.1 + VOWEL_S}, {"phone": "e", "start": 0.1 + VOWEL_S, "end": 0.1 + 2 * VOWEL_S})
    return wav.astype(np.float32), phones


JA_U, ROUNDED_U, E = (350, 1330, 2500), (350, 850, 2300), (500, 1950, 2650)


def spans(phones):
    return np.array([p["start"] for p in phones]), np.array([p["end"] for p in phones])


def test_second_formant_is_found_within_a_tenth():
    wav, phones = word(JA_U, E)
    floor = rounding.floor_db(wav)
    for entry, f2 in zip(phones, (1330, 1950)):
        assert rounding.second_formant_hz(wav, entry["start"], entry["end"], rounding.REFERENCE_CEILING_HZ, floor) == \
            pytest.approx(f2, rel=0.1)


def test_a_childs_voice_is_not_rounding_and_a_lowered_f2_is():
    reference, phones = word(JA_U, E)
    child, _ = word(JA_U, E, scale=1.3, f0=260.0)
    (same,) = rounding.roundings(reference, child, phones, *spans(phones), warp=1.3)
    assert same.severity < 1
    rounded, _ = word(ROUNDED_U, E, scale=1.3, f0=260.0)
    (named,) = rounding.roundings(reference, rounded, phones, *spans(phones), warp=1.3)
    assert named.severity >= 1 and named.attempt_ratio < named.reference_ratio


def test_a_noisy_or_short_vowel_is_not_measured():
    reference, phones = word(JA_U, E)
    noisy, _ = word(ROUNDED_U, E, noise_db=20)
    assert rounding.roundings(reference, noisy, phones, *spans(phones), warp=1.0) == []
    starts, ends = spans(phones)
    short = ends.copy()
    short[0] = starts[0] + rounding.MIN_VOWEL_S / 2
    assert rounding.roundings(reference, reference, phones, starts, short, warp=1.0) == []
    # the attempt's /e/ too short to measure: no yardstick both share (its /i/ would be another), nothing said
    short = ends.copy()
    short[1] = starts[1] + rounding.MIN_VOWEL_S / 2
    assert rounding.roundings(reference, reference, phones, starts, short, warp=1.0) == []


def test_the_rounding_threshold_lies_beyond_every_correct_attempt():
    from rtmri.mistakes import thresholds

    def attempt(correct, *ratios):
        return {"correct": correct, "by_phone": [{"phone": "M", "rounding": r} for r in ratios] + [{"phone": "e"}]}

    assert thresholds.rounding_named([attempt(True, -0.06, 0.3), attempt(True, -0.02), attempt(False, -0.5)]) == \
        pytest.approx(0.09)  # RELEASE_MARGIN x 0.06
    assert thresholds.rounding_named([attempt(True)]) is None
