"""Romanised Japanese -> timed segments with pitch targets.

Mora-timed: every mora lasts about 1 / (speaking rate), its onset taking a share that
depends on the kind of consonant; a geminate adds a mora to the next closure, a long
vowel or moraic nasal is a mora of its own, phrase-final morae are lengthened. Pitch
follows a Tokyo-like word accent: a low first mora rising to high (unaccented words),
or high up to the accented mora and low after it.
"""

from __future__ import annotations

import zlib

import numpy as np

from rtmri.synth import inventory
from rtmri.synth.japanese import (
    AFFRICATE, FLAP, FRICATIVE, GEMINATE, GLIDE, LONG_VOWEL, MORAIC_NASAL, NASAL, PALATAL, STOP, Mora, Word, parse_text,
)
from rtmri.synth.segments import (
    HIGH_PITCH_ST, LEADING_PAUSE_S, PHRASE_FINAL_LENGTHENING, TRAILING_PAUSE_S, Segment, jitter, pause,
)
from rtmri.synth.sentences import PARTICLES

# Share of a mora's duration taken by each onset phone, by class.
ONSET_SHARE = {STOP: 0.42, FRICATIVE: 0.5, AFFRICATE: 0.52, NASAL: 0.38, FLAP: 0.17, GLIDE: 0.3, PALATAL: 0.18}
MIN_VOWEL_SHARE = 0.35
MORAIC_NASAL_SHARE = 0.9
P_UNACCENTED, P_INITIAL_ACCENT = 0.45, 0.25
PHRASE_PAUSE_S = (0.12, 0.30)
SENTENCE_PAUSE_S = (0.35, 0.55)
LONG_VOWEL_MARK = ":"


def japanese_segments(text: str, mora_s: float, rng: np.random.Generator,
                      phrase_pause_s: tuple[float, float] = PHRASE_PAUSE_S) -> list[Segment]:
    """Timed segments of a romanised Japanese text, with pauses at the edges and between phrases."""
    segments = [pause(LEADING_PAUSE_S, rng)]
    for s_index, sentence in enumerate(parse_text(text)):
        if s_index:
            segments.append(pause(SENTENCE_PAUSE_S, rng))
        for p_index, phrase in enumerate(sentence):
            if p_index:
                segments.append(pause(phrase_pause_s, rng))
            segments.extend(phrase_segments(phrase, mora_s, rng))
    segments.append(pause(TRAILING_PAUSE_S, rng))
    return segments


def phrase_segments(phrase: list[Word], mora_s: float, rng: np.random.Generator) -> list[Segment]:
    morae = list(zip([mora for _, word in phrase for mora in word], phrase_pitches(phrase)))
    segments: list[Segment] = []
    extra_closure = 0.0
    for index, (mora, pitch) in enumerate(morae):
        duration = mora_s * jitter(rng)
        if index == len(morae) - 1:
            duration *= PHRASE_FINAL_LENGTHENING
        if mora.kind == GEMINATE:
            extra_closure = duration
        elif mora.kind == LONG_VOWEL:
            _lengthen_last(segments, duration)
        elif mora.kind == MORAIC_NASAL:
            following = morae[index + 1][0] if index + 1 < len(morae) else None
            segments.append(Segment(_nasal_before(following), duration * MORAIC_NASAL_SHARE, pitch))
        else:
            segments.extend(_cv_segments(mora, duration, pitch, extra_closure))
            extra_closure = 0.0
    return segments


def _cv_segments(mora: Mora, duration: float, pitch: float, extra_closure: float) -> list[Segment]:
    """Onset phones, the first one lengthened by a preceding geminate, then the vowel."""
    segments, onset_total = [], 0.0
    for position, (phone, kind) in enumerate(mora.onset):
        share = duration * ONSET_SHARE[kind]
        segments.append(Segment(phone, share + (extra_closure if position == 0 else 0.0), pitch))
        onset_total += share
    segments.append(Segment(mora.vowel, max(duration - onset_total, duration * MIN_VOWEL_SHARE), pitch))
    return segments


def word_pitch(romaji: str, n_morae: int, follows_high: bool) -> list[float]:
    """Pitch target per mora. A particle continues the preceding word's level; other words
    get an accent type fixed by their spelling (hashed), like entries of a lexicon."""
    if romaji in PARTICLES:
        return [HIGH_PITCH_ST if follows_high else 0.0] * n_morae
    if n_morae == 1:
        return [HIGH_PITCH_ST]
    draw = (zlib.crc32(romaji.encode()) % 1000) / 1000.0
    if draw < P_UNACCENTED:
        return [0.0] + [HIGH_PITCH_ST] * (n_morae - 1)
    if draw < P_UNACCENTED + P_INITIAL_ACCENT:
        return [HIGH_PITCH_ST] + [0.0] * (n_morae - 1)
    accent = 2 + int(draw * 1000) % (n_morae - 1)  # the last high mora, 2..n
    return [0.0] + [HIGH_PITCH_ST if i < accent else 0.0 for i in range(1, n_morae)]


def phrase_pitches(phrase: list[Word]) -> list[float]:
    pitches: list[float] = []
    for romaji, morae in phrase:
        pitches.extend(word_pitch(romaji, len(morae), follows_high=bool(pitches) and pitches[-1] == HIGH_PITCH_ST))
    return pitches


def _nasal_before(next_mora: Mora | None) -> str:
    """The moraic nasal takes the place of articulation of the following consonant."""
    onset = next_mora.onset[0][0] if next_mora is not None and next_mora.onset else ""
    if onset in ("p", "b", "m"):
        return "m"
    if onset in ("t", "d", "n", "s", "z", "ts", "tS", "dZ", "S"):
        return "n"
    return "N"


def _lengthen_last(segments: list[Segment], extra: float) -> None:
    """Make the last segment (a vowel) long: SAMPA ':' where VocalTractLab has it."""
    last = segments[-1]
    phone = last.phone + LONG_VOWEL_MARK if last.phone + LONG_VOWEL_MARK in inventory.VTL_PHONES else last.phone
    segments[-1] = Segment(phone, last.duration + extra, last.pitch)
