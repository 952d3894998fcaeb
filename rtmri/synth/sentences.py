"""Random Japanese-like sentences in romanisation, built from the mora inventory.

Words are 2-4 CV morae with an occasional moraic nasal, long vowel or geminate,
often followed by a particle; phrases hold 1-3 words, sentences 1-3 phrases. Onset and
vowel frequencies roughly follow Japanese text, so common morae dominate.
"""

from __future__ import annotations

import numpy as np

from rtmri.synth.japanese import GEMINABLE, MORAE, Mora

ONSET_WEIGHTS = {
    "": 12, "k": 14, "s": 6, "sh": 4, "t": 7, "ch": 3, "ts": 2, "n": 8, "h": 4, "f": 1,
    "m": 7, "y": 4, "r": 7, "w": 3, "g": 4, "z": 2, "j": 2, "d": 3, "b": 3, "p": 1,
    "ky": 1, "gy": 0.5, "ny": 0.5, "hy": 0.5, "my": 0.3, "ry": 0.5, "by": 0.3, "py": 0.2,
}
VOWEL_WEIGHTS = {"a": 25, "i": 20, "u": 20, "e": 12, "o": 23}
PARTICLES = ("wa", "ga", "o", "ni", "de", "to", "no", "mo", "e", "kara", "made", "yori")

WORD_MORAE = (2, 5)  # CV morae per content word, [low, high)
PHRASE_WORDS = (1, 4)
SENTENCE_PHRASES = (1, 4)
P_PARTICLE = 0.5
P_MORAIC_NASAL = 0.08
P_LONG_VOWEL = 0.07
P_GEMINATE = 0.06


def _onset_of(romaji: str) -> str:
    return romaji.rstrip("aiueo")


def _mora_table() -> tuple[list[Mora], np.ndarray]:
    morae, weights = [], []
    for romaji, mora in sorted(MORAE.items()):
        onset = _onset_of(romaji)
        weight = ONSET_WEIGHTS.get(onset, 0.0) * VOWEL_WEIGHTS[romaji[len(onset) :]]
        if romaji == "wo" or weight <= 0:  # "wo" is the object particle only
            continue
        morae.append(mora)
        weights.append(weight)
    weights = np.asarray(weights, float)
    return morae, weights / weights.sum()


_MORAE, _WEIGHTS = _mora_table()
_GEMINABLE_MASK = np.array([bool(m.onset) and m.onset[0][0] in GEMINABLE for m in _MORAE])


def _draw_mora(rng: np.random.Generator, geminable_only: bool = False) -> Mora:
    weights = np.where(_GEMINABLE_MASK, _WEIGHTS, 0.0) if geminable_only else _WEIGHTS
    return _MORAE[rng.choice(len(_MORAE), p=weights / weights.sum())]


def _romaji_after(previous: str, mora: Mora) -> str:
    """The mora's spelling; a moraic n (the only final n) before a vowel or y needs an apostrophe."""
    if previous.endswith("n") and mora.romaji[0] in "aiueoy":
        return "'" + mora.romaji
    return mora.romaji


def random_mora(rng: np.random.Generator) -> str:
    """One mora said on its own (a syllable drill)."""
    return _draw_mora(rng).romaji


def random_word(rng: np.random.Generator) -> str:
    word = ""
    n_morae = int(rng.integers(*WORD_MORAE))
    for position in range(n_morae):
        geminate = 0 < position and rng.random() < P_GEMINATE
        mora = _draw_mora(rng, geminable_only=geminate)
        if geminate:
            word += "t" if mora.romaji.startswith("ch") else mora.romaji[0]
        word += _romaji_after(word, mora)
        if rng.random() < P_LONG_VOWEL:
            word += mora.romaji[-1]
        elif position < n_morae - 1 and rng.random() < P_MORAIC_NASAL:
            word += "n"
    if rng.random() < P_MORAIC_NASAL:
        word += "n"
    return word


def random_sentence(rng: np.random.Generator) -> str:
    phrases = []
    for _ in range(int(rng.integers(*SENTENCE_PHRASES))):
        words = []
        for _ in range(int(rng.integers(*PHRASE_WORDS))):
            words.append(random_word(rng))
            if rng.random() < P_PARTICLE:
                words.append(PARTICLES[rng.integers(len(PARTICLES))])
        phrases.append(" ".join(words))
    return ", ".join(phrases) + "."
