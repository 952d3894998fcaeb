"""Keeping the articulations of a re-sized tract valid, measured on its tube.

The linear map of ``speaker_file.adapt_articulation`` does not keep contact right: in a
small tract the tongue of /i/ and /e/ runs into the palate (a closed "vowel": no formants),
a velar closure may open, and /i/ keeps an adult-shaped palatal channel (its F2 hardly
rises). Two steps, both on VocalTractLab's own tube (``tract_state_to_tube_state``):

1. constrictions: a vowel narrowed at the palate below its share of JD3's area gets its
   tongue lowered (bisection on TCY, TBY, TTY together); a closure that no longer closes gets
   its articulator raised until it does;
2. vowel area functions: the tongue, jaw and lip parameters of the main vowels are fitted
   (bounded least squares) so that the log area along the normalised tract length matches
   JD3's scaled by the oral cross-section ratio, never closing.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import vocaltractlab_cython as vtl
from scipy.optimize import least_squares

from rtmri.synth import speaker_file
from rtmri.synth.errors import SpeakerRejected
from rtmri.synth.speaker_file import T

CLOSED_CM2 = 0.01  # VocalTractLab reports a small positive area for a closure
MUST_STAY_OPEN = ("a", "i", "u", "e", "o")  # the Japanese vowels: one closed rejects the tract
TONGUE_SECTIONS = slice(6, 37)  # of the 40 tube sections, between the larynx and the lips
PALATAL_FROM = 22  # a narrowing from this section on is tongue against palate or velum
NARROWING_KEPT = 0.8  # a vowel keeps at least this share of its scaled JD3 minimum area
VOWEL_LOWER = ("TCY", "TBY", "TTY")
CLOSURE_RAISE = {"tb-": (("TCY", "TBY"), 1.0), "tt-": (("TTY",), 1.0), "ll-": (("LD",), -1.0)}
MAX_SHIFT_CM, BISECTIONS = 1.5, 14

FITTED_VOWELS = ("a", "i", "u", "e", "o", "@", "E:")
FITTED_PARAMS = ("TCX", "TCY", "TBX", "TBY", "TTX", "TTY", "JA", "LD")
LENGTH_GRID = np.linspace(0.02, 0.98, 60)  # normalised position glottis -> lips
AREA_FLOOR_CM2 = 0.05  # inside the log: narrow sections count, closed ones do not explode
OPEN_FROM = int(0.15 * len(LENGTH_GRID))  # the glottal end may be narrow
HINGE_WEIGHT = 20.0
MAX_EVALUATIONS = 200
INSIDE_BOUNDS = 1e-6  # least_squares needs a start strictly inside its bounds


def min_area(state: np.ndarray) -> tuple[float, int]:
    """(smallest cross-section cm^2, its tube section) between larynx and lips."""
    area = vtl.tract_state_to_tube_state(state)["tube_area"][TONGUE_SECTIONS]
    return float(area.min()), int(area.argmin()) + TONGUE_SECTIONS.start


def area_on_grid(state: np.ndarray) -> np.ndarray:
    tube = vtl.tract_state_to_tube_state(state)
    ends = np.cumsum(tube["tube_length"])
    centres = (ends - tube["tube_length"] / 2) / ends[-1]
    return np.interp(LENGTH_GRID, centres, tube["tube_area"])


@lru_cache(maxsize=1)
def _reference_measures() -> tuple[dict[str, float], dict[str, np.ndarray]]:
    speaker_file.load(speaker_file.REFERENCE_FILE)
    shapes = dict(speaker_file.reference_shapes())
    minima = {name: min_area(values)[0] for name, values in shapes.items()}
    areas = {name: area_on_grid(shapes[name]) for name in FITTED_VOWELS}
    return minima, areas


def repair_constrictions(path: Path, anatomy: np.ndarray, reference: np.ndarray) -> list[str]:
    """Fix the shapes in the file; returns what changed. SpeakerRejected('vowel-closed') if a
    Japanese vowel stays closed however far its tongue is lowered."""
    reference_minima, _ = _reference_measures()
    speaker_file.load(path, force=True)
    scale = speaker_file.area_scale(anatomy, reference)
    limits = speaker_file.active_tract_limits()
    changed, notes = {}, []
    for name, _ in speaker_file.reference_shapes():
        state = vtl.get_shape(name, "tract")
        reference_min = reference_minima[name]
        current, section = min_area(state)
        rule = CLOSURE_RAISE.get(name[:3])
        if rule:
            if not (reference_min < CLOSED_CM2 <= current):
                continue
            keys, sign = rule
            wanted = lambda area: area < CLOSED_CM2
        else:
            target = NARROWING_KEPT * reference_min * scale
            if current >= target or section < PALATAL_FROM:  # pharyngeal narrowings scale with the tract
                continue
            keys, sign = VOWEL_LOWER, -1.0
            wanted = lambda area, target=target: area >= target

        def moved(shift: float, state=state, keys=keys, sign=sign) -> np.ndarray:
            out = state.copy()
            for key in keys:
                out[T[key]] = np.clip(out[T[key]] + sign * shift, *limits[key])
            return out

        if not wanted(min_area(moved(MAX_SHIFT_CM))[0]):
            if name in MUST_STAY_OPEN and not rule and current < CLOSED_CM2:
                raise SpeakerRejected("vowel-closed", f"/{name}/: the tongue closes the tract and cannot be lowered enough")
            notes.append(f"{name}: not repaired (min area {current:.3f} cm^2 at section {section})")
            continue
        low, high = 0.0, MAX_SHIFT_CM
        for _ in range(BISECTIONS):
            middle = 0.5 * (low + high)
            low, high = (low, middle) if wanted(min_area(moved(middle))[0]) else (middle, high)
        changed[name] = moved(high)
        notes.append(f"{name}: {'+'.join(keys)} {sign * high:+.3f} cm")
    if changed:
        speaker_file.update_shapes(path, changed)
    return notes


def fit_vowels(path: Path, anatomy: np.ndarray, reference: np.ndarray) -> None:
    """Fit the main vowels' area functions to JD3's, scaled to the new oral cross-section."""
    _, reference_areas = _reference_measures()
    speaker_file.load(path, force=True)
    scale = speaker_file.area_scale(anatomy, reference)
    limits = speaker_file.active_tract_limits()
    index = [T[k] for k in FITTED_PARAMS]
    low = np.array([limits[k][0] for k in FITTED_PARAMS])
    high = np.array([limits[k][1] for k in FITTED_PARAMS])
    fitted = {}
    for name in FITTED_VOWELS:
        start = vtl.get_shape(name, "tract")
        target = np.log(scale * reference_areas[name] + AREA_FLOOR_CM2)

        def residuals(x, start=start, target=target):
            state = start.copy()
            state[index] = x
            area = area_on_grid(state)
            closing = np.maximum(0.0, AREA_FLOOR_CM2 - area[OPEN_FROM:]) * HINGE_WEIGHT
            return np.concatenate([np.log(area + AREA_FLOOR_CM2) - target, closing])

        x0 = np.clip(start[index], low + INSIDE_BOUNDS, high - INSIDE_BOUNDS)
        result = least_squares(residuals, x0, bounds=(low, high), diff_step=1e-2, max_nfev=MAX_EVALUATIONS, xtol=1e-4)
        state = start.copy()
        state[index] = result.x
        fitted[name] = state
    speaker_file.update_shapes(path, fitted)
    speaker_file.load(path, force=True)



def check_vowels_open(path: Path) -> None:
    """The final check: every Japanese vowel of the file leaves the tract open."""
    speaker_file.load(path, force=True)
    for name in MUST_STAY_OPEN:
        area, section = min_area(vtl.get_shape(name, "tract"))
        if area < CLOSED_CM2:
            raise SpeakerRejected("vowel-closed", f"/{name}/: min area {area:.4f} cm^2 at tube section {section}")
