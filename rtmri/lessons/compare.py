"""A learner's attempt against a native reference, articulator by articulator.

1. Both recordings are checked for speech (rtmri.lessons.activity): a silent or too-short
   attempt is refused with a message (AttemptError), never scored.
2. The attempt is aligned to the reference by DTW on the audio features (rtmri.lessons.align).
3. Both are drawn by the same bundle with the same reference anatomy (the engine's), so
   only the articulation differs, and measured on the bundle's analysis grid
   (rtmri.articulation): one constriction curve per articulator (rtmri.lessons.articulators).
4. The attempt's curves are carried onto the reference's time axis (frame k at k / 25 s) by
   the alignment, and compared over the reference's speech (its phones, else its activity).
   Each reference frame is compared with the attempt within ``TIMING_TOLERANCE_FRAMES`` of
   its aligned instant, and with the reference within as many frames, where the two agree
   best: DTW on audio places a fast movement (o to r to a) a frame early or late, and the
   model's frames flicker for a frame now and then; both are timing, not articulation.

Differences: per articulator, the runs of frames where the attempt's gap differs from the
reference's by at least ``LARGE_MM``, each described in words at its largest frame, with
the reference phone there; the ``MAX_SEGMENTS`` largest are returned.

Score (0-100): 100 x exp(-d / ``SCORE_SCALE_MM``), d the root mean square of the
differences over the articulators and the speech frames: 100 for the same articulation,
about 82 for 1 mm, 50 for 3.5 mm, 37 for 5 mm.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtmri.alignment import FPS
from rtmri.lessons.activity import activity, check_attempt
from rtmri.lessons.align import Alignment, align
from rtmri.lessons.articulators import ARTICULATORS, Articulation, articulate
from rtmri.lessons.words import describe, where

LARGE_MM = 5.0  # re-recordings of the same words by another voice stay below it; a wrong vowel is 10-20 mm
MAX_SEGMENTS = 5
SCORE_SCALE_MM = 5.0
SPEECH_MARGIN_S = 0.04  # one frame either side of the reference's speech
TIMING_TOLERANCE_FRAMES = 1


@dataclass(frozen=True)
class Segment:
    articulator: str
    start_s: float
    end_s: float
    peak_s: float
    phone: str | None
    reference_mm: float
    attempt_mm: float
    en: str
    ja: str

    @property
    def difference_mm(self) -> float:
        return self.attempt_mm - self.reference_mm

    def to_json(self) -> dict:
        return {"articulator": self.articulator, "start_s": round(self.start_s, 3), "end_s": round(self.end_s, 3),
                "peak_s": round(self.peak_s, 3), "phone": self.phone, "reference_mm": round(self.reference_mm, 2),
                "attempt_mm": round(self.attempt_mm, 2), "difference_mm": round(self.difference_mm, 2),
                "en": self.en, "ja": self.ja}


@dataclass(frozen=True)
class Comparison:
    score: int
    rms_mm: float
    times_s: np.ndarray  # reference frame instants k / 25
    speech: np.ndarray  # bool per reference frame: compared
    reference: dict[str, np.ndarray]  # articulator -> curve (mm) per reference frame
    attempt: dict[str, np.ndarray]  # articulator -> the attempt's curve at the aligned instants
    attempt_times_s: np.ndarray  # the attempt instant shown at each reference frame
    segments: list[Segment]
    phones: tuple[dict, ...]
    alignment: Alignment
    reference_frames: np.ndarray = field(repr=False)
    attempt_frames: np.ndarray = field(repr=False)  # the attempt's frames, per reference frame (aligned)
    closed_mm: float = 0.0

    def to_json(self) -> dict:
        curves = lambda d: {k: [None if not np.isfinite(v) else round(float(v), 2) for v in c] for k, c in d.items()}
        return {
            "score": self.score, "rms_mm": round(self.rms_mm, 3) if np.isfinite(self.rms_mm) else None,
            "score_rule": f"100 x exp(-rms / {SCORE_SCALE_MM:g} mm), rms over the articulators and the reference's speech",
            "large_mm": LARGE_MM, "closed_mm": round(self.closed_mm, 3), "fps": FPS,
            "articulators": [{"key": a.key, "en": a.en, "ja": a.ja, "regions": list(a.regions)} for a in ARTICULATORS],
            "times_s": [round(float(t), 3) for t in self.times_s],
            "attempt_times_s": [round(float(t), 3) for t in self.attempt_times_s],
            "speech": [bool(v) for v in self.speech],
            "reference": curves(self.reference), "attempt": curves(self.attempt),
            "phones": list(self.phones),
            "segments": [s.to_json() for s in self.segments],
            "dtw_cost": round(self.alignment.cost, 3),
        }


def compare(attempt_wav: np.ndarray, reference_wav: np.ndarray, engine, grid, phones=()) -> Comparison:
    """AttemptError (rtmri.lessons.activity) for an attempt that cannot be scored."""
    reference_span = activity(reference_wav)
    attempt_span = check_attempt(attempt_wav, reference_span)
    alignment = align(reference_wav, reference_span, attempt_wav, attempt_span)
    ref = articulate(engine, reference_wav, grid)
    att = articulate(engine, attempt_wav, grid)
    return compare_articulations(ref, att, alignment, tuple(phones), speech_span(phones, reference_span))


def speech_span(phones, span) -> tuple[float, float]:
    if phones:
        return phones[0]["start"] - SPEECH_MARGIN_S, phones[-1]["end"] + SPEECH_MARGIN_S
    return span.start_s - SPEECH_MARGIN_S, span.end_s + SPEECH_MARGIN_S


def compare_articulations(ref: Articulation, att: Articulation, alignment: Alignment, phones: tuple[dict, ...],
                          span: tuple[float, float]) -> Comparison:
    times = np.arange(len(ref.frames)) / FPS
    attempt_times = alignment.attempt_time(times)
    position = np.clip(attempt_times * FPS, 0, max(len(att.frames) - 1, 0))
    source = np.arange(len(att.frames))
    attempt = {k: np.interp(position, source, c) for k, c in att.curves.items()}
    pairs = {a.key: nearest_pair(ref.curves[a.key], att.curves[a.key], position) for a in ARTICULATORS}
    speech = (times >= span[0]) & (times <= span[1])
    differences = np.stack([pairs[a.key][1] - pairs[a.key][0] for a in ARTICULATORS])[:, speech]
    with np.errstate(all="ignore"):
        rms = float(np.sqrt(np.nanmean(differences**2))) if np.isfinite(differences).any() else float("nan")
    score = round(100 * float(np.exp(-rms / SCORE_SCALE_MM))) if np.isfinite(rms) else 0
    closed = ref.mm_per_px + 1e-6
    segments = sorted((s for a in ARTICULATORS for s in runs(a.key, times, speech, *pairs[a.key], phones, closed)),
                      key=lambda s: -abs(s.difference_mm))[:MAX_SEGMENTS]
    aligned_frames = att.frames[np.rint(position).astype(int)] if len(att.frames) else att.frames
    return Comparison(score, rms, times, speech, dict(ref.curves), attempt, attempt_times, segments, phones, alignment,
                      ref.frames, aligned_frames, closed)


def nearest_pair(reference: np.ndarray, curve: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per reference frame k, the (reference, attempt) values compared: the reference within
    TIMING_TOLERANCE_FRAMES of k and the attempt within as many frames of its aligned position,
    the pair that agrees best. A movement a frame early or late, or a one-frame flicker of
    either picture, is timing, not articulation."""
    shifts = np.arange(-TIMING_TOLERANCE_FRAMES, TIMING_TOLERANCE_FRAMES + 1)
    frames = np.arange(len(reference))
    refs = np.stack([reference[np.clip(frames + s, 0, len(reference) - 1)] for s in shifts])
    source = np.arange(len(curve))
    atts = np.stack([np.interp(np.clip(position + s, 0, len(curve) - 1), source, curve) for s in shifts])
    gaps = np.abs(atts[None, :, :] - refs[:, None, :]).reshape(len(shifts) ** 2, len(frames))
    best = np.argmin(np.nan_to_num(gaps, nan=np.inf), axis=0)
    return refs[best // len(shifts), frames], atts[best % len(shifts), frames]


def runs(key: str, times, speech, reference, attempt, phones, closed_mm: float) -> list[Segment]:
    """Runs of speech frames where the attempt's gap differs from the reference's by LARGE_MM or more, one sign each."""
    difference = np.where(speech, attempt - reference, 0.0)
    difference = np.nan_to_num(difference)
    sign = np.where(difference >= LARGE_MM, 1, np.where(difference <= -LARGE_MM, -1, 0))
    out, k = [], 0
    while k < len(sign):
        if sign[k] == 0:
            k += 1
            continue
        end = k
        while end + 1 < len(sign) and sign[end + 1] == sign[k]:
            end += 1
        peak = k + int(np.argmax(np.abs(difference[k : end + 1])))
        phone = phone_at(phones, times[peak])
        en, ja = describe(key, float(reference[peak]), float(attempt[peak]), closed_mm)
        place_en, place_ja = where(phone, float(times[peak]))
        out.append(Segment(key, float(times[k]), float(times[end] + 1 / FPS), float(times[peak]), phone,
                           float(reference[peak]), float(attempt[peak]), en + place_en, ja + place_ja))
        k = end + 1
    return out


def phone_at(phones, time_s: float) -> str | None:
    """The reference phone at an instant, else the nearest one within a frame."""
    for entry in phones:
        if entry["start"] <= time_s < entry["end"]:
            return entry["phone"]
    near = [e for e in phones if min(abs(e["start"] - time_s), abs(e["end"] - time_s)) <= 1 / FPS]
    return min(near, key=lambda e: min(abs(e["start"] - time_s), abs(e["end"] - time_s)))["phone"] if near else None
