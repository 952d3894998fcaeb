"""An affricate's release (rtmri.lessons.release): a hiss that starts at once (a burst, /ts/)
against one that swells (/s/), measured within DEPTH_DB of its peak so that a room's floor does
not change it, and not judged at all where the hiss does not stand clear of that floor."""

from __future__ import annotations

import numpy as np
import pytest

from rtmri.audio import SAMPLE_RATE
from rtmri.lessons import release

START_S = 0.30
PHONES = ({"phone": "ts", "start": START_S, "end": START_S + 0.1}, {"phone": "M", "start": START_S + 0.1, "end": START_S + 0.2})


def hiss(onset_s: float, floor_db: float | None = None, seed: int = 0) -> np.ndarray:
    """0.6 s: silence (or a white floor floor_db below the hiss), then a hiss from START_S whose
    level rises linearly over onset_s (0: at once) and holds for 0.1 s."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(0.6 * SAMPLE_RATE)) / SAMPLE_RATE
    gain = np.clip((t - START_S) / max(onset_s, 1e-4), 0, 1) * (t < START_S + 0.1)
    out = 0.3 * rng.normal(size=len(t)) * gain
    if floor_db is not None:
        out += 0.3 * 10 ** (-floor_db / 20) * rng.normal(size=len(t))
    return out.astype(np.float32)


def judged(reference, attempt, attempt_start_s=START_S):
    return release.releases(reference, attempt, PHONES, np.array([attempt_start_s, START_S + 0.1]))


def test_a_hiss_that_swells_is_named_and_a_burst_is_not_even_a_little_late():
    burst = hiss(0.0)
    (same,) = judged(burst, hiss(0.0, seed=1), attempt_start_s=START_S + 0.03)  # the alignment 30 ms off
    assert same.phone_index == 0 and same.severity < 0.5
    (swelled,) = judged(burst, hiss(0.06, seed=1))
    assert swelled.severity >= 1 and swelled.attempt_db < swelled.reference_db


def test_a_quiet_rooms_floor_changes_nothing_and_a_noisy_one_is_not_judged():
    burst, swelled = hiss(0.0), hiss(0.06, seed=1)
    clean = judged(burst, swelled)[0].log_ratio
    (quiet,) = judged(burst, hiss(0.06, floor_db=45, seed=1))
    assert quiet.log_ratio == pytest.approx(clean, abs=0.1)
    assert judged(burst, hiss(0.06, floor_db=20, seed=1)) == []  # the hiss is not 36 dB clear of it: nothing said
    assert judged(burst, burst, attempt_start_s=0.0) == []  # no hiss where the alignment says


def test_only_voiceless_affricates_are_judged():
    phones = ({"phone": "s", "start": START_S, "end": START_S + 0.1}, {"phone": "dz", "start": 0.5, "end": 0.55})
    assert release.releases(hiss(0.0), hiss(0.06), phones, np.array([START_S, 0.5])) == []


def test_the_release_threshold_lies_above_every_correct_attempt():
    from rtmri.mistakes import thresholds

    def attempt(correct, *ratios):
        return {"correct": correct, "by_phone": [{"phone": "ts", "release": r} for r in ratios] + [{"phone": "M"}]}

    results = [attempt(True, 0.08, -0.2), attempt(True, 0.1), attempt(False, 0.9)]
    assert thresholds.release_named(results) == pytest.approx(0.15)  # RELEASE_MARGIN x 0.1
    assert thresholds.release_named([attempt(True, -0.3)]) == pytest.approx(0.02)  # never at or below a correct one
    assert thresholds.release_named([attempt(True)]) is None
