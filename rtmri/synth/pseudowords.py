"""Random pseudo-words over the synthesizer's whole phone inventory, in SAMPA.

Japanese-like sentences never say front rounded or lax vowels, [l], or consonant clusters, so a
model trained on them meets those sounds first in a learner's or teacher's other language.
These words say every phone VocalTractLab knows in simple European-like syllables:
(onset cluster) vowel (coda), one to three syllables a word. They are timed as the German
sentences are (``german_timing``); a word that the German evaluation sentences say is drawn
again, so condition 3's words stay unheard.
"""

from __future__ import annotations

import numpy as np

from rtmri.synth import inventory
from rtmri.synth.texts import NON_JA

WORD_SYLLABLES = (1, 4)  # [low, high)
PHRASE_WORDS = (2, 6)
P_ONSET, P_CLUSTER, P_CODA, P_CODA_CLUSTER = 0.85, 0.25, 0.45, 0.15
LIQUIDS = ("l", "R")
# Obstruent + liquid and /s S/ + stop onsets, as many European languages allow.
CLUSTER_FIRSTS = ("p", "b", "t", "d", "k", "g", "f", "v", "S", "s")
SIBILANT_STOPS = (("S", "p"), ("S", "t"), ("s", "p"), ("s", "t"), ("s", "k"))
CODA_SECONDS = ("t", "s", "n", "k")

VOWELS = tuple(sorted(inventory.VOWELS - set(inventory.STAND_INS)))
CONSONANTS = tuple(sorted(inventory.CONSONANTS - {"?"}))
EVALUATION_WORDS = frozenset(word for _, words in NON_JA for word in words)


def _choice(rng: np.random.Generator, options) -> str:
    return options[int(rng.integers(len(options)))]


def _onset(rng: np.random.Generator) -> list[str]:
    if rng.random() > P_ONSET:
        return []
    if rng.random() < P_CLUSTER:
        if rng.random() < 0.3:
            return list(_choice(rng, SIBILANT_STOPS))
        return [_choice(rng, CLUSTER_FIRSTS), _choice(rng, LIQUIDS)]
    return [_choice(rng, CONSONANTS)]


def _coda(rng: np.random.Generator) -> list[str]:
    if rng.random() > P_CODA:
        return []
    first = _choice(rng, CONSONANTS)
    if rng.random() < P_CODA_CLUSTER:
        second = _choice(rng, CODA_SECONDS)
        return [first] if second == first else [first, second]
    return [first]


def random_word(rng: np.random.Generator) -> str:
    """Space-separated SAMPA phones of one word none of the evaluation sentences says."""
    while True:
        phones = []
        for _ in range(int(rng.integers(*WORD_SYLLABLES))):
            phones += _onset(rng) + [_choice(rng, VOWELS)] + _coda(rng)
        word = " ".join(phones)
        if word not in EVALUATION_WORDS:
            return word


def random_phrase(rng: np.random.Generator) -> tuple[str, ...]:
    return tuple(random_word(rng) for _ in range(int(rng.integers(*PHRASE_WORDS))))
