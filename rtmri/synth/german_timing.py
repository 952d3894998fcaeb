"""German words in SAMPA -> timed segments (the non-Japanese condition).

Durations by phone class, consonants in clusters shortened, the phrase's last word
lengthened; the first vowel of each word is stressed (a pitch accent).
"""

from __future__ import annotations

import numpy as np

from rtmri.synth import inventory
from rtmri.synth.segments import (
    HIGH_PITCH_ST, LEADING_PAUSE_S, PHRASE_FINAL_LENGTHENING, TRAILING_PAUSE_S, Segment, jitter, pause,
)

NOMINAL_MORAE_PER_S = 7.5  # the speaking rate these durations are for
DURATION_S = {"tense": 0.12, "long": 0.15, "lax": 0.075, "schwa": 0.06, "diphthong": 0.17,
              "stop": 0.065, "fric": 0.085, "affr": 0.1, "nasal": 0.06, "approx": 0.055}
CLUSTER_SHORTENING = 0.8


def german_segments(words: tuple[str, ...], morae_per_s: float, rng: np.random.Generator) -> list[Segment]:
    """Timed segments of words given as space-separated SAMPA phones."""
    tempo = morae_per_s / NOMINAL_MORAE_PER_S
    phones_per_word = [word.split() for word in words]
    for phones in phones_per_word:
        inventory.check_phones(phones, f"German word {' '.join(phones)!r}")
    segments = [pause(LEADING_PAUSE_S, rng)]
    for w_index, phones in enumerate(phones_per_word):
        stressed = next((i for i, p in enumerate(phones) if inventory.is_vowel(p)), -1)
        for index, phone in enumerate(phones):
            duration = DURATION_S[phone_class(phone)] / tempo * jitter(rng)
            neighbours = phones[max(0, index - 1) : index] + phones[index + 1 : index + 2]
            if not inventory.is_vowel(phone) and any(not inventory.is_vowel(p) for p in neighbours):
                duration *= CLUSTER_SHORTENING
            if w_index == len(phones_per_word) - 1:
                duration *= PHRASE_FINAL_LENGTHENING
            segments.append(Segment(phone, duration, HIGH_PITCH_ST if index == stressed else 0.0))
    segments.append(pause(TRAILING_PAUSE_S, rng))
    return segments


def phone_class(phone: str) -> str:
    if phone in inventory.DIPHTHONGS:
        return "diphthong"
    if phone in ("@", "6"):
        return "schwa"
    if phone in inventory.LAX_VOWELS or phone in ("9", "Y"):
        return "lax"
    if phone in inventory.VOWELS:
        return "long" if phone.endswith(":") else "tense"
    for members, name in ((inventory.STOPS, "stop"), (inventory.FRICATIVES, "fric"), (inventory.AFFRICATES, "affr"), (inventory.NASALS, "nasal")):
        if phone in members:
            return name
    return "approx"
