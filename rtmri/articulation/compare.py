"""A generated video's articulation against the true one (the shared DESIGN.md §5b): distance-function and
constriction-degree RMSE (mm), Pearson r per region, closure precision and recall during
stops and nasals, ROI-intensity correlation, motion amplitude ratio, and the error at each
phone's place of articulation.

Every function takes ``Measures`` of the same frames (the truth first); per-clip figures
are combined over clips by the caller (``pool``).
"""

from __future__ import annotations

import numpy as np

from rtmri.alignment import FPS
from rtmri.articulation import regions as R
from rtmri.articulation.measure import Measures

MIN_MOTION_MM = 0.05  # a true series that moves less than this has no amplitude to compare with
PHONE_CORE = (0.25, 0.75)  # the middle half of a phone is where its target is held
CLOSURE_TOLERANCE_FRAMES = 1  # a closure shown this many frames before or after the truth's is timing, not a false one


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    diff = np.asarray(a, float) - np.asarray(b, float)
    diff = diff[np.isfinite(diff)]
    return float(np.sqrt(np.mean(diff**2))) if diff.size else float("nan")


def pearson(truth: np.ndarray, other: np.ndarray) -> float:
    """Pearson r over the frames where both are known; 0 for a series that does not move
    (a still picture follows nothing), NaN if the truth itself does not move."""
    ok = np.isfinite(truth) & np.isfinite(other)
    t, o = np.asarray(truth, float)[ok], np.asarray(other, float)[ok]
    if t.size < 3 or np.std(t) < 1e-9:
        return float("nan")
    if np.std(o) < 1e-9:
        return 0.0
    return float(np.corrcoef(t, o)[0, 1])


def amplitude_ratio(truth: np.ndarray, other: np.ndarray) -> float:
    """Standard deviation over time, generated over true: below 1 the model under-articulates."""
    ok = np.isfinite(truth) & np.isfinite(other)
    spread = float(np.std(np.asarray(truth, float)[ok])) if ok.any() else 0.0
    return float(np.std(np.asarray(other, float)[ok]) / spread) if spread >= MIN_MOTION_MM else float("nan")


def phone_frames(phones, n_frames: int, core: tuple[float, float] | None = None) -> list[tuple[str, np.ndarray]]:
    """(phone, frame indices) for each phone interval (its core only, if given)."""
    out = []
    times = np.arange(n_frames) / FPS
    for phone in phones or []:
        start, end = float(phone["start"]), float(phone["end"])
        if core is not None:
            start, end = start + core[0] * (end - start), start + core[1] * (end - start)
        frames = np.flatnonzero((times >= start) & (times < end))
        if frames.size:
            out.append((phone["phone"], frames))
    return out


def closure_counts(truth: Measures, other: Measures, phones) -> dict[str, dict[str, int]]:
    """Per closing region: over the frames of the stops and nasals made there, true positives
    (both closed), false negatives (the truth closed, the other open) and their frame count;
    over every phone's frames, the frames the other shows closed ("shut") and those of them the
    truth shows open within ``CLOSURE_TOLERANCE_FRAMES`` ("fp": a closure a frame early or late is
    timing). Precision counts a closure shown anywhere in the speech: a model that kept the lips
    shut through the vowels was precise when only the stops were looked at. Apart, the frames
    outside speech ("quiet": before, between and after the phones) and those of them shown
    closed where the truth is open ("quiet_fp"): a closure held through a pause is drawn too."""
    counts = {region: {"tp": 0, "fn": 0, "frames": 0, "shut": 0, "fp": 0, "quiet": 0, "quiet_fp": 0}
              for region in R.CLOSING_REGIONS}
    n = len(truth.distance_mm)
    spoken = phone_frames(phones, n)
    speech = speech_frames(spoken)
    quiet = np.setdiff1d(np.arange(n), speech)
    for region, c in counts.items():
        shown = other.closed(region)
        wrong = shown & ~near(truth.closed(region))
        c["shut"], c["fp"] = int(np.sum(shown[speech])), int(np.sum(wrong[speech]))
        c["quiet"], c["quiet_fp"] = len(quiet), int(np.sum(wrong[quiet]))
    for phone, frames in spoken:
        region = R.place_of(phone)
        if phone not in R.STOPS_AND_NASALS or region not in counts:
            continue
        true_closed, closed = truth.closed(region)[frames], other.closed(region)[frames]
        counts[region]["tp"] += int(np.sum(true_closed & closed))
        counts[region]["fn"] += int(np.sum(true_closed & ~closed))
        counts[region]["frames"] += len(frames)
    return counts


def speech_frames(spoken: list[tuple[str, np.ndarray]]) -> np.ndarray:
    """The frames inside any phone of ``phone_frames``' list, in order."""
    return np.unique(np.concatenate([frames for _, frames in spoken])) if spoken else np.array([], int)


def near(flags: np.ndarray) -> np.ndarray:
    """Frames within CLOSURE_TOLERANCE_FRAMES of a flagged one."""
    out = flags.copy()
    for shift in range(1, CLOSURE_TOLERANCE_FRAMES + 1):
        out[shift:] |= flags[:-shift]
        out[:-shift] |= flags[shift:]
    return out


def clip_scores(truth: Measures, other: Measures) -> dict:
    """Per-clip figures: distance-function RMSE over the tract lines, and per region the
    constriction-degree RMSE, Pearson r, ROI-intensity r and amplitude ratio."""
    tract = truth.tract_lines
    scores = {"df_rmse_mm": rmse(truth.distance_mm[:, tract], other.distance_mm[:, tract]), "regions": {}}
    for region in R.REGIONS:
        t, o = truth.degree_mm[region], other.degree_mm[region]
        scores["regions"][region] = {
            "cd_rmse_mm": rmse(t, o), "cd_r": pearson(t, o),
            "roi_r": pearson(truth.roi[region], other.roi[region]), "amplitude_ratio": amplitude_ratio(t, o),
        }
    return scores


def phone_errors(truth: Measures, other: Measures, phones) -> list[tuple[str, str, float, int]]:
    """(phone, place, mean |constriction-degree error| mm at the place, frames) over each phone's core."""
    out = []
    for phone, frames in phone_frames(phones, len(truth.distance_mm), PHONE_CORE):
        region = R.place_of(phone)
        if region is None:
            continue
        error = np.abs(other.degree_mm[region][frames] - truth.degree_mm[region][frames])
        error = error[np.isfinite(error)]
        if error.size:
            out.append((phone, region, float(error.mean()), int(error.size)))
    return out


def mean_ignoring_nan(values) -> float:
    values = np.asarray([v for v in values if v is not None], float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def precision_recall(counts: dict[str, int]) -> tuple[float, float]:
    """Precision over the closures shown anywhere in the speech, recall over the truth's at the
    place's stops and nasals (closure_counts)."""
    shut, fp, tp, fn = counts["shut"], counts["fp"], counts["tp"], counts["fn"]
    precision = (shut - fp) / shut if shut else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    return precision, recall
