"""The SAMPA phones that VocalTractLab turns into gestures, and their classes.

VocalTractLab's segment-to-gesture rules silently ignore a phone they do not know (the
utterance then lacks that sound), so every phone is checked here before synthesis.
"""

from __future__ import annotations

from collections.abc import Iterable

from rtmri.articulation.regions import NASALS
from rtmri.synth.errors import SynthError

PAUSE = ""

TENSE_VOWELS = ("a", "e", "i", "o", "u", "a:", "e:", "i:", "o:", "u:", "E:")
FRONT_ROUNDED_VOWELS = ("y", "y:", "2", "2:", "9", "Y")
LAX_VOWELS = ("I", "E", "O", "U", "@", "6")
DIPHTHONGS = ("aI", "aU", "OY")
VOWELS = frozenset(TENSE_VOWELS + FRONT_ROUNDED_VOWELS + LAX_VOWELS + DIPHTHONGS)

STOPS = frozenset({"p", "b", "t", "d", "k", "g", "?"})
FRICATIVES = frozenset({"f", "v", "T", "D", "s", "z", "S", "Z", "C", "x", "R", "h"})
AFFRICATES = frozenset({"pf", "ts", "tS", "dZ"})
APPROXIMANTS = frozenset({"j", "l", "r"})
CONSONANTS = STOPS | NASALS | FRICATIVES | AFFRICATES | APPROXIMANTS

VTL_PHONES = VOWELS | CONSONANTS


def is_vowel(phone: str) -> bool:
    return phone in VOWELS


def check_phones(phones: Iterable[str], where: str) -> None:
    """Raise SynthError naming the first phone VocalTractLab does not support."""
    for phone in phones:
        if phone != PAUSE and phone not in VTL_PHONES:
            known = " ".join(sorted(VTL_PHONES))
            raise SynthError(f"unknown phone {phone!r} in {where}; VocalTractLab supports: {known}")
