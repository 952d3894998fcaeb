"""A learner's attempt against a native reference: articulator by articulator, phone by phone
for how long each is held, and for how it sounds.

1. Both recordings are checked for speech (rtmri.lessons.activity): a silent or too-short
   attempt is refused with a message (AttemptError), never scored.
2. The attempt is aligned to the reference by DTW on the audio features with the voice taken
   out (rtmri.lessons.sound: band levels, and a vocal-tract-length warp), which also says how
   unlike the reference each instant sounds.
3. Both are drawn by the same bundle with the same reference anatomy (the engine's), and
   measured on the bundle's analysis grid (rtmri.articulation): one constriction curve per
   articulator (rtmri.lessons.articulators), from the model's articulatory state.
4. The attempt's curves are carried onto the reference's time axis (frame k at k / 25 s) by
   the alignment, and compared over the reference's speech (its phones, else its activity).
   Each reference frame is compared with the attempt within ``TIMING_TOLERANCE_FRAMES`` of
   its aligned instant, where the two agree best: DTW on audio places a fast movement a frame
   early or late; that is timing. The reference's frame itself stays put, so a one-frame event
   (a flap's tap) must be matched in the attempt.

How much a difference changes the sound: a gap is compared as log(1 + gap / ``SOFT_MM``):
closing 2 mm to 0 changes the sound far more than widening 15 mm to 20 (the acoustics follow
the narrowest part of the tract), and that scale weighs them so.

The speaker: a smaller tract (a child's) has smaller gaps everywhere, which is not a mistake.
The attempt's gaps are divided by their typical ratio to the reference's over the words (the
median over every articulator's frames where both are open, within ``SCALE_LIMITS``: one scale
for the voice, as a tract is smaller throughout; per articulator, a wrong vowel over half a
short word set the tongue tip's scale and made a correct /s/ before it a mistake), and what
the attempt does throughout (its median difference, within ``CENTRE_LIMIT``; for the sound,
``SOUND_CENTRE_LIMIT``) is its voice's habit: what is left is how it departs locally.

Lengths: per reference phone, the length the alignment gives it in the attempt (its boundaries
by ``Alignment.boundary_time``: where a held sound turns, not spread over a 50 ms column)
against its length in the reference times the attempt's tempo (the median of those ratios
over the phones): a phone held for half the time the attempt's own pace gives it (a geminate said as
a single consonant, a long vowel said short) or twice (the reverse) is a mistake, a slow
or quick attempt is not. DTW keeps the tempo out of the articulation; this puts length back.

Differences named (with the reference's phones): per phone, an articulator whose difference
averages ``NAMED`` or more there, a length ratio beyond what is named at that phone
(``PHONE_NAMED``: the phone's own spread over correct attempts, in units of ``LENGTH_NAMED``), or
a sound unlike the reference's by what is named at that phone (in units of ``SOUND_NAMED``)
where neither is named (then the articulator at the phone's place is given), or two vowels the
reference keeps apart said alike (rtmri.lessons.contrast: named at the one that moved); without
phones, runs of frames of at least ``MIN_RUN_S``. Each is described in words with the reference
phone there, ranked by how far beyond its threshold it goes (severity), the ``MAX_SEGMENTS``
largest returned. Nothing below the thresholds is named, however low the score: an attempt's
largest difference below them named nothing right in the benchmark and told correct attempts
of a mistake. The thresholds are set on correct attempts by unseen voices (rtmri compare-bench).

Score (0-100): 100 x exp(-d / ``SCORE_SCALE``), d the root mean square, over the reference's
speech frames, of each frame's severity (articulators, the length of its phone, its sound and,
over a vowel, how far it merged with another, together; 1 = as large as a difference named
there): 100 for the same articulation and timing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from rtmri.alignment import FPS
from rtmri.articulation import regions as R
from rtmri.lessons.activity import activity, check_attempt
from rtmri.lessons.align import Alignment
from rtmri.lessons import contrast, release, rounding
from rtmri.lessons.articulators import ARTICULATORS, BY_KEY, Articulation, articulate
from rtmri.lessons.ipa import ipa, with_ipa
from rtmri.lessons.sound import Sound, compare_sound
from rtmri.lessons.words import describe, where

SOFT_MM = 2.0
# How large a difference is named (severity 1), per articulator (log(1 + gap / SOFT_MM) units):
# set on correct attempts by voices the model never heard, none of them in the benchmark the
# comparison is measured on (`rtmri make-mistakes dev1 --seed 1 --mistakes --speakers-per-type
# 3 --rates 4.5 5.5` and dev2 --seed 2 --rates 4 6: 96 attempts) by `python -m
# rtmri.mistakes.thresholds`: each articulator's 97.5th percentile of an attempt's largest
# per-phone difference, then one factor so that 97.5 % of those attempts get no articulator
# named, at least 0.3. They belong to the shipped inverter: fitted again whenever it changes
# (README; stop 42's fine-tune with the phones balanced). The inverters since stop 34 close the tongue tip
# readily, and whether they close it at a /t/ or an /ɸ/ varies from voice to voice: their tongue
# tip's threshold is twice the first one's.
NAMED = {"lips": 0.74, "tongue_tip": 0.79, "tongue_body": 0.74, "tongue_back": 0.81, "velum": 0.3, "tongue_root": 1.05}
MIN_RUN_S = 0.06
CENTRE_LIMIT = 0.25  # an attempt's median difference (log units) taken for its voice's, at most
SCALE_LIMITS = (0.5, 2.0)
LENGTH_NAMED = np.log(1.89)  # a phone held 1.89 times as long (or as short) as the attempt's pace gives it
LENGTH_FLOOR_S = 0.02  # added to both lengths: a few ms of alignment error on a short phone is not a length
MAX_SEGMENTS = 5
SCORE_SCALE = 1.0
SPEECH_MARGIN_S = 0.04  # one frame either side of the reference's speech
TIMING_TOLERANCE_FRAMES = 1
ARTICULATION, LENGTH, SOUND = "articulation", "length", "sound"
SOUND_NAMED = 3.1  # spectral-envelope distance (rtmri.lessons.sound) above the attempt's usual one that is named
SOUND_CENTRE_LIMIT = 5.0  # the usual distance of the same words in another voice, at most (every correct one's is below)
# A sound named where no articulator is: the articulator differing most is named with it from this
# share of a named difference (below it, the state shows nothing that explains the sound).
HINT_NAMED = 0.5
# Per reference phone, for its length and its sound: the difference named there, in units of the
# channel's threshold above (LENGTH_NAMED, SOUND_NAMED; a phone not listed: 1). A phone's own
# spread over the correct attempts of dev1 and dev2 (rtmri.mistakes.thresholds, then one factor
# so that 97.5 % of them get no length or sound named): one threshold per channel is as high as its
# noisiest phone makes it (an /s/, a final moraic nasal vary much from voice to voice; a /t/, a
# flap or /a/ little), so a rounded /u/ or /tʃu/ for /tsu/ went unnamed. The articulators keep
# one threshold each: the model's reading of an unheard voice is unsteady everywhere.
PHONE_NAMED: dict[str, dict[str, float]] = {
    "M": {"length": 0.79, "sound": 0.45},
    "N": {"length": 0.59, "sound": 0.98},
    "S": {"length": 1.05, "sound": 1.12},
    "a": {"length": 0.6, "sound": 0.36},
    "a:": {"length": 0.43, "sound": 0.39},
    "b": {"length": 0.52, "sound": 0.5},
    "e": {"length": 0.53, "sound": 0.44},
    "f": {"length": 0.57, "sound": 0.63},
    "h": {"length": 0.68, "sound": 0.38},
    "i": {"length": 0.63, "sound": 0.59},
    "j": {"length": 0.61, "sound": 0.47},
    "k": {"length": 0.93, "sound": 0.64},
    "m": {"length": 0.46, "sound": 0.52},
    "n": {"length": 0.78, "sound": 0.93},
    "o": {"length": 0.51, "sound": 0.55},
    "p": {"length": 0.67, "sound": 0.45},
    "r": {"length": 0.72, "sound": 0.4},
    "s": {"length": 0.61, "sound": 1.18},
    "t": {"length": 0.58, "sound": 0.33},
    "ts": {"length": 0.49, "sound": 0.95},
}


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
    severity: float = 1.0  # how far beyond the named threshold (1: at it)
    kind: str = ARTICULATION
    reference_len_s: float | None = None  # a length difference: the reference's length at the attempt's pace ...
    attempt_len_s: float | None = None  # ... and the attempt's

    @property
    def difference_mm(self) -> float:
        return self.attempt_mm - self.reference_mm

    def to_json(self) -> dict:
        lengths = ({} if self.kind != LENGTH else
                   {"reference_len_s": round(self.reference_len_s, 3), "attempt_len_s": round(self.attempt_len_s, 3)})
        return {"articulator": self.articulator, "kind": self.kind, "start_s": round(self.start_s, 3),
                "end_s": round(self.end_s, 3), "peak_s": round(self.peak_s, 3), "phone": self.phone, "ipa": ipa(self.phone),
                "reference_mm": _rounded(self.reference_mm), "attempt_mm": _rounded(self.attempt_mm),
                "difference_mm": _rounded(self.difference_mm), "severity": round(self.severity, 2), **lengths,
                "en": self.en, "ja": self.ja}


@dataclass(frozen=True)
class Comparison:
    score: int
    distance: float  # the root mean square severity the score is made from
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
    speaker_scale: dict[str, float] = field(default_factory=dict)  # articulator -> the attempt's gaps over the reference's
    lengths: tuple[dict, ...] = ()  # per reference phone: its length, the attempt's, the ratio at the attempt's pace
    tempo: float = 1.0  # the attempt's length over the reference's (median over the phones)
    by_phone: tuple[dict, ...] = ()  # per reference phone: its severities (articulators: signed mean; length; sound)
    releases: tuple = ()  # the affricates' releases judged (rtmri.lessons.release.Release)
    roundings: tuple = ()  # the /ɯ/s measured (rtmri.lessons.rounding.Rounding)

    def to_json(self) -> dict:
        curves = lambda d: {k: [None if not np.isfinite(v) else round(float(v), 2) for v in c] for k, c in d.items()}
        return {
            "score": self.score, "distance": round(self.distance, 3) if np.isfinite(self.distance) else None,
            "score_rule": (f"100 x exp(-d / {SCORE_SCALE:g}), d the root mean square over the reference's speech of each "
                           "frame's difference (articulators, the length of its phone, its sound, a vowel merged with "
                           "another, an affricate's release and a /ɯ/'s rounding) in units of a difference named there"),
            "named": dict(NAMED), "phone_named": PHONE_NAMED, "contrast_named": contrast.CONTRAST_NAMED, "soft_mm": SOFT_MM,
            "length_named": round(float(np.exp(LENGTH_NAMED)), 2),
            "closed_mm": round(self.closed_mm, 3), "fps": FPS,
            "speaker_scale": {k: round(v, 3) for k, v in self.speaker_scale.items()}, "tempo": round(self.tempo, 3),
            "articulators": [{"key": a.key, "en": a.en, "ja": a.ja, "regions": list(a.regions)} for a in ARTICULATORS],
            "times_s": [round(float(t), 3) for t in self.times_s],
            "attempt_times_s": [round(float(t), 3) for t in self.attempt_times_s],
            "speech": [bool(v) for v in self.speech],
            "reference": curves(self.reference), "attempt": curves(self.attempt),
            "phones": with_ipa(self.phones), "lengths": list(self.lengths), "by_phone": list(self.by_phone),
            "segments": [s.to_json() for s in self.segments],
            "releases": [{"phone_index": r.phone_index, "reference_rise_db": round(r.reference_db, 1),
                          "attempt_rise_db": round(r.attempt_db, 1), "severity": round(r.severity, 2)}
                         for r in self.releases],
            "release_named": release.RELEASE_NAMED,
            "roundings": [{"phone_index": r.phone_index, "reference_f2_ratio": round(r.reference_ratio, 3),
                           "attempt_f2_ratio": round(r.attempt_ratio, 3), "severity": round(r.severity, 2)}
                          for r in self.roundings],
            "rounding_named": rounding.ROUNDING_NAMED,
            "dtw_cost": round(self.alignment.cost, 3),
        }


def _rounded(value: float) -> float | None:
    return round(float(value), 2) if np.isfinite(value) else None


def compare(attempt_wav: np.ndarray, reference_wav: np.ndarray, engine, grid, phones=(), draw: bool = True,
            reference: Articulation | None = None, attempt: Articulation | None = None) -> Comparison:
    """AttemptError (rtmri.lessons.activity) for an attempt that cannot be scored. draw=False:
    no frames (an articulatory bundle's state is enough to compare); reference, attempt: their
    articulations when already made (of the same bundle and grid)."""
    reference_span = activity(reference_wav)
    attempt_span = check_attempt(attempt_wav, reference_span)
    ref = reference if reference is not None else articulate(engine, reference_wav, grid, draw)
    att = attempt if attempt is not None else articulate(engine, attempt_wav, grid, draw)
    sound = compare_sound(reference_wav, reference_span, attempt_wav, attempt_span, len(ref.frames))
    phones = tuple(phones)
    spans = attempt_spans(phones, sound.alignment) if phones else (np.zeros(0), np.zeros(0))
    released = release.releases(reference_wav, attempt_wav, phones, spans[0]) if phones else []
    rounded = rounding.roundings(reference_wav, attempt_wav, phones, *spans, sound.warp) if phones else []
    return compare_articulations(ref, att, sound, phones, speech_span(phones, reference_span), released, rounded)


def speech_span(phones, span) -> tuple[float, float]:
    if phones:
        return phones[0]["start"] - SPEECH_MARGIN_S, phones[-1]["end"] + SPEECH_MARGIN_S
    return span.start_s - SPEECH_MARGIN_S, span.end_s + SPEECH_MARGIN_S


def sound_scale(gap_mm: np.ndarray) -> np.ndarray:
    """How a gap weighs in the sound: log(1 + gap / SOFT_MM) (a closure is 0)."""
    return np.log1p(np.maximum(gap_mm, 0.0) / SOFT_MM)


def compare_articulations(ref: Articulation, att: Articulation, sound: Sound, phones: tuple[dict, ...],
                          span: tuple[float, float], released: list = (), rounded: list = ()) -> Comparison:
    """released: the affricates' releases judged (rtmri.lessons.release); rounded: the /ɯ/s
    measured against the front vowel (rtmri.lessons.rounding)."""
    alignment = sound.alignment
    times = np.arange(len(ref.frames)) / FPS
    attempt_times = alignment.attempt_time(times)
    position = np.clip(attempt_times * FPS, 0, max(len(att.frames) - 1, 0))
    source = np.arange(len(att.frames))
    attempt = {k: np.interp(position, source, c) for k, c in att.curves.items()}
    speech = (times >= span[0]) & (times <= span[1])
    closed = ref.mm_per_px + 1e-6
    scale = dict.fromkeys(BY_KEY, speaker_scale(ref.curves, attempt, speech, closed))
    pairs = {a.key: nearest_pair(sound_scale(ref.curves[a.key]), sound_scale(att.curves[a.key] / scale[a.key]), position)
             for a in ARTICULATORS}
    severity = {k: habit_removed(pair[1] - pair[0], speech, NAMED[k], (-CENTRE_LIMIT, CENTRE_LIMIT))
                for k, pair in pairs.items()}  # signed, per frame
    spans = attempt_spans(phones, alignment)
    lengths, tempo = phone_lengths(phones, *spans)
    lowest, merged = contrast.kept(sound, phones, *spans) if phones else ({}, [])
    frame_length = length_per_frame(lengths, times)
    unlike = np.nan_to_num(np.clip(habit_removed(sound.distance, speech, SOUND_NAMED, (0.0, SOUND_CENTRE_LIMIT)), 0, None))
    # the score counts a length and a sound in units of what is named at their phone
    scored_length, scored_sound = frame_length / frame_named(phones, times, LENGTH), unlike / frame_named(phones, times, SOUND)
    scored_contrast = contrast_per_frame(phones, times, lowest)
    scored_release = per_phone_frames(phones, times, released)
    scored_rounding = per_phone_frames(phones, times, rounded)
    articulation = np.nanmean(np.stack([severity[a.key] ** 2 for a in ARTICULATORS]), axis=0)
    per_frame = np.sqrt(articulation + scored_length**2 + scored_sound**2 + scored_contrast**2 + scored_release**2
                        + scored_rounding**2)
    with np.errstate(all="ignore"):
        distance = float(np.sqrt(np.nanmean(per_frame[speech] ** 2))) if np.isfinite(per_frame[speech]).any() else float("nan")
    score = round(100 * float(np.exp(-distance / SCORE_SCALE))) if np.isfinite(distance) else 0
    named = partial(differences, times, speech, severity, unlike, lengths, merged, released, rounded, ref, attempt, scale,
                    phones, closed)
    segments = named(1.0)[:MAX_SEGMENTS]
    aligned_frames = att.frames[np.rint(position).astype(int)] if len(att.frames) else att.frames
    # the instant of the attempt shown: before and after the alignment's path the attempt runs on at the
    # reference's pace, which passes its first frame (a reference whose speech starts later) or its last
    shown_times = position / FPS
    return Comparison(score, distance, times, speech, dict(ref.curves), attempt, shown_times, segments, phones, alignment,
                      ref.frames, aligned_frames, closed, scale, tuple(lengths), tempo,
                      tuple(phone_severities(phones, times, severity, lengths, unlike, lowest, released, rounded)),
                      tuple(released), tuple(rounded))


def differences(times, speech, severity, unlike, lengths, merged, released, rounded, ref: Articulation, attempt: dict, scale: dict, phones,
                closed: float, at_least: float) -> list[Segment]:
    """Every difference of at_least this severity (1: a named one), the largest first."""
    if phones:
        found = [s for a in ARTICULATORS for s in phone_segments(a.key, times, severity[a.key], ref.curves[a.key],
                                                                 attempt[a.key] / scale[a.key], phones, closed, at_least)]
    else:
        found = [s for a in ARTICULATORS for s in runs(a.key, times, speech, severity[a.key], ref.curves[a.key],
                                                       attempt[a.key] / scale[a.key], phones, closed)]
    found += length_segments(lengths, ref, attempt, times, at_least)
    found += finding_segments(merged, phones, ref, attempt, times, at_least, describe_merge, SOUND)
    found += finding_segments(released, phones, ref, attempt, times, at_least, describe_release, ARTICULATION, at_start=True)
    found += finding_segments(rounded, phones, ref, attempt, times, at_least, describe_rounding, SOUND, articulator="lips")
    found += sound_segments(phones or speech_phones(unlike, speech, times), unlike, ref, attempt, times, found, at_least,
                            severity, closed)
    return sorted(found, key=lambda s: -s.severity)


def habit_removed(difference: np.ndarray, speech: np.ndarray, named: float, centre_limits: tuple[float, float]) -> np.ndarray:
    """The difference in units of a named one, less what this attempt does throughout, as far as a
    voice can: its median over the speech, within centre_limits (other words than the lesson's
    stay far from it)."""
    values = difference[speech & np.isfinite(difference)]
    centre = float(np.clip(np.median(values), *centre_limits)) if values.size else 0.0
    return (difference - centre) / named


def speaker_scale(reference: dict[str, np.ndarray], attempt: dict[str, np.ndarray], speech: np.ndarray,
                  closed_mm: float) -> float:
    """The attempt's gaps over the reference's, typically: the median ratio over the speech frames
    where both are open, every articulator's frames together."""
    ratios = []
    for key in BY_KEY:
        ref, att = reference[key], attempt[key]
        both = speech & (ref > closed_mm) & (att > closed_mm) & np.isfinite(ref) & np.isfinite(att)
        ratios.append(np.log(att[both] / ref[both]))
    logs = np.concatenate(ratios)
    return float(np.clip(np.exp(np.median(logs)), *SCALE_LIMITS)) if logs.size else 1.0


def nearest_pair(reference: np.ndarray, curve: np.ndarray, position: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per reference frame k, the (reference, attempt) values compared: the reference's at k and
    the attempt's within TIMING_TOLERANCE_FRAMES of its aligned position, the one that agrees
    best. A movement a frame early or late is timing, not articulation; the reference's own
    frame stays fixed, so a one-frame event in it (the flap's tap) must be matched by the
    attempt within a frame (with the reference shifted too, its neighbours hid a flap said as
    /l/ entirely)."""
    shifts = np.arange(-TIMING_TOLERANCE_FRAMES, TIMING_TOLERANCE_FRAMES + 1)
    frames = np.arange(len(reference))
    source = np.arange(len(curve))
    atts = np.stack([np.interp(np.clip(position + s, 0, len(curve) - 1), source, curve) for s in shifts])
    best = np.argmin(np.nan_to_num(np.abs(atts - reference[None, :]), nan=np.inf), axis=0)
    return reference, atts[best, frames]


def runs(key: str, times, speech, severity, reference, attempt, phones, closed_mm: float) -> list[Segment]:
    """Runs of speech frames whose severity is 1 or more, one sign each, lasting MIN_RUN_S or more."""
    value = np.nan_to_num(np.where(speech, severity, 0.0))
    sign = np.where(value >= 1, 1, np.where(value <= -1, -1, 0))
    out, k = [], 0
    while k < len(sign):
        if sign[k] == 0:
            k += 1
            continue
        end = k
        while end + 1 < len(sign) and sign[end + 1] == sign[k]:
            end += 1
        if (end + 1 - k) / FPS >= MIN_RUN_S - 1e-9:
            peak = k + int(np.argmax(np.abs(value[k : end + 1])))
            phone = phone_at(phones, times[peak])
            en, ja = describe(key, float(reference[peak]), float(attempt[peak]), closed_mm)
            place_en, place_ja = where(phone, float(times[peak]))
            out.append(Segment(key, float(times[k]), float(times[end] + 1 / FPS), float(times[peak]), phone,
                               float(reference[peak]), float(attempt[peak]), en + place_en, ja + place_ja,
                               float(abs(value[peak]))))
        k = end + 1
    return out


def frames_of(phone: dict, times: np.ndarray) -> np.ndarray:
    """The reference frames a phone is seen in (at least the one it starts in, even if shorter than a frame)."""
    first = int(np.clip(np.floor(phone["start"] * FPS), 0, len(times) - 1))
    last = int(np.clip(np.ceil(phone["end"] * FPS) - 1, first, len(times) - 1))
    return np.arange(first, last + 1)


def frame_span(frames: np.ndarray) -> tuple[float, float]:
    """(start, end) s of a run of reference frames: what the page marks and seeks to."""
    return float(frames[0] / FPS), float((frames[-1] + 1) / FPS)


def phone_segments(key: str, times, severity, reference, attempt, phones, closed_mm: float, at_least: float) -> list[Segment]:
    """The phones over which the articulator's severity is 1 or more on average (phones make a
    difference steadier than single frames do). A glottal consonant (/h/) is not one of them: no
    articulator of the tract makes it, the tract holds its neighbours' shapes, and a difference
    there is theirs (it still counts in the score)."""
    out = []
    for entry in phones:
        if entry["phone"] in R.GLOTTAL:
            continue
        frames = frames_of(entry, times)
        values = severity[frames]
        if not np.isfinite(values).any():
            continue
        named = abs(np.nanmean(values)) / phone_named(entry["phone"], key)
        if named < at_least:
            continue
        peak = signed_peak(frames, severity)
        en, ja = describe(key, float(reference[peak]), float(attempt[peak]), closed_mm)
        place_en, place_ja = where(entry["phone"], float(times[peak]))
        out.append(Segment(key, *frame_span(frames), float(times[peak]), entry["phone"], float(reference[peak]),
                           float(attempt[peak]), en + place_en, ja + place_ja, float(named)))
    return out


def frame_named(phones, times: np.ndarray, channel: str) -> np.ndarray:
    """Each reference frame's threshold on a channel: its phone's (1 outside the phones)."""
    out = np.ones(len(times))
    for entry in phones:
        out[frames_of(entry, times)] = phone_named(entry["phone"], channel)
    return out


def phone_named(phone: str | None, channel: str) -> float:
    """The difference named on a channel at this phone, in units of the channel's threshold."""
    return PHONE_NAMED.get(phone, {}).get(channel, 1.0)


def attempt_spans(phones, alignment: Alignment) -> tuple[np.ndarray, np.ndarray]:
    """The attempt instants of each reference phone's start and of its end (a pause after a
    phone stays out of it)."""
    return (alignment.boundary_time(np.array([p["start"] for p in phones])),
            alignment.boundary_time(np.array([p["end"] for p in phones])))


def phone_lengths(phones: tuple[dict, ...], starts: np.ndarray, ends: np.ndarray) -> tuple[list[dict], float]:
    """Per reference phone: its length, the attempt's (its start and end there, by the
    alignment), and their ratio at the attempt's tempo; and the tempo (the median ratio)."""
    if not phones:
        return [], 1.0
    reference = np.array([p["end"] - p["start"] for p in phones])
    attempt = np.maximum(ends - starts, 0.0)
    tempo = float(np.median((attempt + LENGTH_FLOOR_S) / (reference + LENGTH_FLOOR_S)))
    paced = reference * tempo
    log_ratio = np.log((attempt + LENGTH_FLOOR_S) / (paced + LENGTH_FLOOR_S))
    return [{"phone": p["phone"], "start": p["start"], "end": p["end"], "reference_s": round(float(r), 3),
             "attempt_s": round(float(a), 3), "paced_s": round(float(e), 3), "log_ratio": round(float(q), 3),
             "severity": round(float(abs(q) / LENGTH_NAMED), 3)}
            for p, r, a, e, q in zip(phones, reference, attempt, paced, log_ratio)], tempo


def contrast_per_frame(phones, times: np.ndarray, lowest: dict[str, float]) -> np.ndarray:
    """Each reference frame's contrast severity: over a vowel, how far its quality merged with
    another (0 for a contrast kept or widened; 1 at CONTRAST_NAMED)."""
    out = np.zeros(len(times))
    for entry in phones:
        kept = lowest.get(contrast.quality(entry["phone"]))
        if kept is not None and kept < 0:
            out[frames_of(entry, times)] = kept / contrast.CONTRAST_NAMED
    return out


def per_phone_frames(phones, times: np.ndarray, found_at_phones) -> np.ndarray:
    """Each reference frame's severity of a difference judged per phone (an affricate's release,
    rtmri.lessons.release; a /ɯ/'s rounding, rtmri.lessons.rounding): its phone's."""
    out = np.zeros(len(times))
    for found in found_at_phones:
        out[frames_of(phones[found.phone_index], times)] = found.severity
    return out


def length_per_frame(lengths: list[dict], times: np.ndarray) -> np.ndarray:
    """Each reference frame's length severity: its phone's (0 outside the phones)."""
    out = np.zeros(len(times))
    for entry in lengths:
        frames = frames_of(entry, times)
        out[frames] = np.maximum(out[frames], entry["severity"])
    return out


def phone_segment(entry: dict, frames: np.ndarray, key: str, peak: int, ref: Articulation, attempt: dict,
                  text: tuple[str, str], severity: float, kind: str, *lengths: float) -> Segment:
    """A difference over a whole reference phone (a length, a sound, a merged vowel): its frames,
    its middle instant, its words (English, Japanese) with the phone and the time, the
    articulator's gaps at the peak frame."""
    middle = (entry["start"] + entry["end"]) / 2
    place_en, place_ja = where(entry["phone"], middle)
    return Segment(key, *frame_span(frames), middle, entry["phone"], float(ref.curves[key][peak]), float(attempt[key][peak]),
                   text[0] + place_en, text[1] + place_ja, severity, kind, *lengths)


def length_segments(lengths: list[dict], ref: Articulation, attempt: dict, times, at_least: float) -> list[Segment]:
    out = []
    for entry in lengths:
        named = entry["severity"] / phone_named(entry["phone"], LENGTH)
        if named < at_least:
            continue
        frames = frames_of(entry, times)
        key = articulator_of(entry["phone"], ref, frames)
        text = describe_length(entry["phone"], entry["paced_s"], entry["attempt_s"])
        out.append(phone_segment(entry, frames, key, int(frames[len(frames) // 2]), ref, attempt, text, named, LENGTH,
                                 entry["paced_s"], entry["attempt_s"]))
    return out


def phone_severities(phones, times, severity: dict, lengths: list[dict], unlike: np.ndarray, lowest: dict[str, float],
                     released=(), rounded=()) -> list[dict]:
    """Per reference phone: each articulator's mean severity, its length's and sound's; a vowel
    also the lowest log contrast its quality keeps with another (rtmri.lessons.contrast), an
    affricate the log ratio of its release's rise to the reference's (rtmri.lessons.release), a
    /ɯ/ the log ratio of its F2 against the front vowel to the reference's (rtmri.lessons.rounding)."""
    rises = {r.phone_index: r.log_ratio for r in released}
    backs = {r.phone_index: r.log_ratio for r in rounded}
    out = []
    for index, (entry, length) in enumerate(zip(phones, lengths)):
        frames = frames_of(entry, times)
        mean = lambda v: round(float(np.nanmean(v[frames])), 3) if np.isfinite(v[frames]).any() else None
        out.append({"phone": entry["phone"], "start": entry["start"], "end": entry["end"],
                    "articulators": {k: mean(v) for k, v in severity.items()}, "length": length["severity"],
                    "sound": mean(unlike), "contrast": _rounded(lowest.get(contrast.quality(entry["phone"]), np.nan)),
                    "release": _rounded(rises.get(index, np.nan)), "rounding": _rounded(backs.get(index, np.nan))})
    return out


def speech_phones(unlike: np.ndarray, speech: np.ndarray, times: np.ndarray) -> tuple[dict, ...]:
    """Without the reference's phones: its runs of speech frames that sound unlike it, as unnamed phones."""
    loud = np.concatenate([[False], speech & (unlike >= 1), [False]])
    edges = np.flatnonzero(np.diff(loud.astype(int)))
    return tuple({"phone": None, "start": float(times[a]), "end": float(times[b - 1] + 1 / FPS)}
                 for a, b in zip(edges[::2], edges[1::2]) if (b - a) / FPS >= MIN_RUN_S - 1e-9)


def sound_segments(phones, unlike: np.ndarray, ref: Articulation, attempt: dict, times, named: list[Segment],
                   at_least: float, severity: dict | None = None, closed_mm: float = 0.0) -> list[Segment]:
    """Phones that sound unlike the reference's (mean severity 1 or more over the phone) where no
    articulator or length is named: named after the phone and the articulator that differs most
    there, with its direction, where it reaches HINT_NAMED of a named difference (the sound says
    something is wrong, the state says what most likely); else the articulator at its place."""
    out = []
    for entry in phones:
        frames = frames_of(entry, times)
        if any(s.start_s <= times[frames].mean() <= s.end_s or s.phone == entry["phone"] and
                                  abs(s.peak_s - times[frames].mean()) < 1.5 / FPS for s in named):
            continue
        heard = float(np.mean(unlike[frames])) / phone_named(entry["phone"], SOUND)
        if heard < at_least:
            continue
        name = ipa(entry["phone"])
        what_en, what_ja = (f"/{name}/", f"/{name}/ の音") if name else ("the sound", "音")
        key = leading_articulator(entry, frames, severity or {})
        if key is None:
            key = articulator_of(entry["phone"], ref, frames)
            text = (f"{what_en} sounded unlike the reference's (made with the {BY_KEY[key].en})",
                    f"{what_ja}がお手本と違いました（{BY_KEY[key].ja}）")
        else:
            peak = signed_peak(frames, severity[key])
            en, ja = describe(key, float(ref.curves[key][peak]), float(attempt[key][peak]), closed_mm)
            text = f"{what_en} sounded unlike the reference's: {en}", f"{what_ja}がお手本と違いました：{ja}"
        out.append(phone_segment(entry, frames, key, int(frames[np.argmax(unlike[frames])]), ref, attempt, text, heard, SOUND))
    return out


def leading_articulator(entry: dict, frames: np.ndarray, severity: dict[str, np.ndarray]) -> str | None:
    """The articulator whose mean difference over the phone, in units of a named one there, is the
    largest, if it reaches HINT_NAMED."""
    weighed = [(abs(float(np.nanmean(severity[a.key][frames]))) / phone_named(entry["phone"], a.key), a.key)
               for a in ARTICULATORS if a.key in severity and np.isfinite(severity[a.key][frames]).any()]
    largest, key = max(weighed, default=(0.0, None))
    return key if largest >= HINT_NAMED else None


def signed_peak(frames: np.ndarray, values: np.ndarray) -> int:
    """The frame of the largest difference of the phone's prevailing sign."""
    values = values[frames]
    return int(frames[np.nanargmax(np.abs(values) * (np.sign(values) == np.sign(np.nanmean(values))))])


def finding_segments(findings, phones, ref: Articulation, attempt: dict, times, at_least: float, describe, kind: str,
                     at_start: bool = False, articulator: str | None = None) -> list[Segment]:
    """Findings at a reference phone (each with its phone_index and severity: a merged vowel, a
    release, a rounding) of at_least this severity: a difference over the phone, with the
    articulator at its place (or the one given), its peak in the phone's middle (or at its
    start), in the words of describe(phone, articulator, finding) -> (English, Japanese)."""
    out = []
    for found in findings:
        if found.severity < at_least:
            continue
        entry = phones[found.phone_index]
        frames = frames_of(entry, times)
        key = articulator or articulator_of(entry["phone"], ref, frames)
        peak = int(frames[0] if at_start else frames[len(frames) // 2])
        text = describe(entry["phone"], key, found)
        out.append(phone_segment(entry, frames, key, peak, ref, attempt, text, found.severity, kind))
    return out


def describe_merge(phone: str, key: str, found) -> tuple[str, str]:
    """A vowel said like another the reference keeps apart (rtmri.lessons.contrast)."""
    name, like = ipa(phone), ipa(found.said_like)
    return (f"/{name}/ sounded like /{like}/ (the reference keeps them apart)",
            f"/{name}/ が /{like}/ のように聞こえました（お手本では区別されています）")


def describe_release(phone: str, key: str, found) -> tuple[str, str]:
    """An affricate begun without its closure (rtmri.lessons.release)."""
    name = ipa(phone)
    return (f"/{name}/ began without the {BY_KEY[key].en} closing first: its hiss swelled gradually, as a fricative's "
            f"does (the reference's starts at once)",
            f"/{name}/ の前に{BY_KEY[key].ja}が閉じていませんでした：息の音が摩擦音のように徐々に始まりました"
            f"（お手本は一気に始まります）")


def describe_rounding(phone: str, key: str, found) -> tuple[str, str]:
    """/ɯ/ said further back than the reference's against the front vowel (rtmri.lessons.rounding);
    named with the lips: the model cannot show their rounding, it is heard."""
    name = ipa(phone)
    return (f"/{name}/ sounded like a rounded /u/: the lips rounded, or the tongue pulled back (Japanese /{name}/ keeps "
            "the lips unrounded)",
            f"/{name}/ が唇を丸めた /u/ のように聞こえました：唇が丸まったか、舌が奥に引かれています（日本語の /{name}/ "
            "は唇を丸めません）")


def describe_length(phone: str, paced_s: float, attempt_s: float) -> tuple[str, str]:
    """(English, Japanese) for a phone held too long or too short, without the time."""
    phone = ipa(phone)
    if attempt_s < paced_s:
        return (f"/{phone}/ was too short ({attempt_s:.2f} s; the reference at your pace holds it {paced_s:.2f} s)",
                f"/{phone}/ が短すぎました（{attempt_s:.2f} 秒、お手本はあなたの速さで {paced_s:.2f} 秒）")
    return (f"/{phone}/ was held too long ({attempt_s:.2f} s; the reference at your pace holds it {paced_s:.2f} s)",
            f"/{phone}/ が長すぎました（{attempt_s:.2f} 秒、お手本はあなたの速さで {paced_s:.2f} 秒）")


def articulator_of(phone: str, ref: Articulation, frames: np.ndarray) -> str:
    """The articulator at the phone's place; else the one the reference narrows most during it."""
    place = R.place_of(phone)
    for articulator in ARTICULATORS:
        if place in articulator.regions:
            return articulator.key
    tract = [a for a in ARTICULATORS if a.key != "velum"]
    if not frames.size:
        return tract[0].key
    return min(tract, key=lambda a: np.nan_to_num(np.nanmean(ref.curves[a.key][frames]), nan=np.inf)).key


def phone_at(phones, time_s: float) -> str | None:
    """The reference phone at an instant, else the nearest one within a frame."""
    for entry in phones:
        if entry["start"] <= time_s < entry["end"]:
            return entry["phone"]
    near = [e for e in phones if min(abs(e["start"] - time_s), abs(e["end"] - time_s)) <= 1 / FPS]
    return min(near, key=lambda e: min(abs(e["start"] - time_s), abs(e["end"] - time_s)))["phone"] if near else None
