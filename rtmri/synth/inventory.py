"""The SAMPA phones that VocalTractLab turns into gestures, and their classes.

VocalTractLab's segment-to-gesture rules silently ignore a phone they do not know (the
utterance then lacks that sound), so every phone is checked here before synthesis. A vowel
of the project's own (Japanese /ɯ/, a shape every speaker's tract gets) reaches those rules
as its stand-in, a VocalTractLab vowel of the same timing, and its gestures take its own
shape afterwards (``rtmri.synth.vtl``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rtmri.articulation.regions import LONG, NASALS
from rtmri.synth.errors import SynthError
from rtmri.synth.japanese import JA_U, ROUNDED_U

PAUSE = ""

TENSE_VOWELS = ("a", "e", "i", "o", "u", "a:", "e:", "i:", "o:", "u:", "E:")
FRONT_ROUNDED_VOWELS = ("y", "y:", "2", "2:", "9", "Y")
LAX_VOWELS = ("I", "E", "O", "U", "@", "6")
DIPHTHONGS = ("aI", "aU", "OY")


@dataclass(frozen=True)
class StandIn:
    written: str  # the VocalTractLab vowel written in the segment file in its place
    gesture: str  # the vowel gesture VocalTractLab makes of that
    shape: str  # the tract shape the gesture is given instead


# Vowels VocalTractLab's rules do not know.
STAND_INS = {JA_U: StandIn(ROUNDED_U, ROUNDED_U, JA_U), JA_U + LONG: StandIn(ROUNDED_U + LONG, ROUNDED_U, JA_U)}
VOWELS = frozenset(TENSE_VOWELS + FRONT_ROUNDED_VOWELS + LAX_VOWELS + DIPHTHONGS + tuple(STAND_INS))

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
