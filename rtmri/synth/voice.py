"""The voice source over time: f0 contour and breath pauses, sampled at the tract-state times.

VocalTractLab's own segment-to-gesture rules give every utterance the same f0 gestures
and keep the voice running through pauses inside an utterance; both are replaced here.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d

from rtmri.synth.inventory import PAUSE

PITCH_SMOOTHING_S = 0.035  # the larynx does not jump between pitch targets
DECLINATION_ST = (1.0, -1.5)  # pitch drift from the start to the end of each breath group
PAUSE_RAMP_S = 0.04  # lung pressure fades out and back in over this, inside the pause


def _segment_bounds(segments) -> tuple[np.ndarray, np.ndarray]:
    ends = np.cumsum([segment.duration for segment in segments])
    return ends - np.array([segment.duration for segment in segments]), ends


def _segment_at(segments, times: np.ndarray) -> np.ndarray:
    _, ends = _segment_bounds(segments)
    return np.minimum(np.searchsorted(ends, times, side="right"), len(segments) - 1)


def _breath_groups(segments) -> list[tuple[float, float]]:
    """(start, end) in seconds of each run of speech between pauses."""
    starts, ends = _segment_bounds(segments)
    groups, group_start = [], None
    for segment, start, end in zip(segments, starts, ends):
        if segment.phone != PAUSE and group_start is None:
            group_start = start
        if segment.phone == PAUSE and group_start is not None:
            groups.append((group_start, start))
            group_start = None
    if group_start is not None:
        groups.append((group_start, ends[-1]))
    return groups


def pitch_contour_st(segments, times: np.ndarray, state_rate: float) -> np.ndarray:
    """Semitones above the speaker's base f0 at each time."""
    targets = np.array([np.nan if s.phone == PAUSE else s.pitch for s in segments])
    held = _hold_through_pauses(targets)
    contour = held[_segment_at(segments, times)]
    for start, end in _breath_groups(segments):
        inside = (times >= start) & (times < end)
        contour[inside] += np.interp(times[inside], [start, end], DECLINATION_ST)
    return gaussian_filter1d(contour, PITCH_SMOOTHING_S * state_rate, mode="nearest")


def _hold_through_pauses(targets: np.ndarray) -> np.ndarray:
    """A pause keeps the previous target (the first speech target before any speech)."""
    held = targets.copy()
    first = np.flatnonzero(~np.isnan(held))
    held[: first[0] if first.size else len(held)] = held[first[0]] if first.size else 0.0
    for i in range(1, len(held)):
        if np.isnan(held[i]):
            held[i] = held[i - 1]
    return held


def pause_gate(segments, times: np.ndarray) -> np.ndarray:
    """1 while speaking, 0 inside the pauses between breath groups (raised-cosine edges)."""
    gate = np.ones_like(times)
    groups = _breath_groups(segments)
    for (_, pause_start), (pause_end, _) in zip(groups, groups[1:]):
        ramp = min(PAUSE_RAMP_S, (pause_end - pause_start) / 2)
        inside = (times >= pause_start) & (times < pause_end)
        t = times[inside]
        fade_out = np.clip((t - pause_start) / ramp, 0.0, 1.0)
        fade_in = np.clip((pause_end - t) / ramp, 0.0, 1.0)
        gate[inside] = 0.5 + 0.5 * np.cos(np.pi * np.minimum(fade_out, fade_in))
    return gate
