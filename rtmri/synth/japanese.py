"""The Japanese mora inventory in VocalTractLab's SAMPA, and a parser for romanised text.

Romanisation (Hepburn-like, written as pronounced): long vowels are doubled letters
("ookii"), the moraic nasal is "n" before a consonant or at the end of a word ("n'"
before a vowel or y), a geminate doubles the next consonant letter ("kitte", "matcha").

VocalTractLab has no [ɯ], [ɾ], [ɸ] or [w]. [ɯ] is ``JA_U``, a vowel shape of its own added
to every speaker's tract (unrounded, compressed lips, the tongue body fronter than German
rounded ``ROUNDED_U``); the nearest sounds VocalTractLab has stand in for the others: a
short voiced alveolar closure (d) for the flap r, f for [ɸ], a short JA_U glide for w
(Japanese [ɰ] is no more rounded than [ɯ]).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rtmri.articulation.regions import UNROUNDED_U
from rtmri.synth.errors import SynthError

JA_U = UNROUNDED_U  # Japanese /ɯ/: what Japanese text speaks for u
ROUNDED_U = "u"  # German rounded /u/: VocalTractLab's own, for non-Japanese material

# Duration classes of onset phones (see utterances.ONSET_SHARE).
STOP, FRICATIVE, AFFRICATE, NASAL, FLAP, GLIDE, PALATAL = "stop", "fric", "affr", "nasal", "flap", "glide", "pal"

CV, MORAIC_NASAL, GEMINATE, LONG_VOWEL = "cv", "N", "Q", "long"

VOWEL_LETTERS = "aiueo"
VOWEL_PHONES = {"a": "a", "i": "i", "u": JA_U, "e": "e", "o": "o"}  # letter -> SAMPA
Onset = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Mora:
    romaji: str
    kind: str
    onset: Onset = ()
    vowel: str | None = None  # SAMPA nucleus of a CV mora (or the vowel a long mora extends)


_PLAIN_ONSETS: dict[str, Onset] = {
    "": (),
    "k": (("k", STOP),),
    "g": (("g", STOP),),
    "s": (("s", FRICATIVE),),
    "z": (("z", FRICATIVE),),
    "t": (("t", STOP),),
    "d": (("d", STOP),),
    "n": (("n", NASAL),),
    "h": (("h", FRICATIVE),),
    "b": (("b", STOP),),
    "p": (("p", STOP),),
    "m": (("m", NASAL),),
    "r": (("d", FLAP),),
}
_NOT_JAPANESE = {"si", "ti", "tu", "zi", "di", "du", "hu"}
_SPECIAL_MORAE: dict[str, tuple[Onset, str]] = {
    "shi": ((("S", FRICATIVE),), "i"),
    "chi": ((("tS", AFFRICATE),), "i"),
    "tsu": ((("ts", AFFRICATE),), JA_U),
    "fu": ((("f", FRICATIVE),), JA_U),
    "ji": ((("dZ", AFFRICATE),), "i"),
    "hi": ((("C", FRICATIVE),), "i"),
    "wa": (((JA_U, GLIDE),), "a"),
    "wo": ((), "o"),  # the object particle, pronounced o
}
# Rows with a palatal glide or a postalveolar onset: only a, u, o follow them.
_PALATAL_ONSETS: dict[str, Onset] = {
    "y": (("j", GLIDE),),
    "ky": (("k", STOP), ("j", PALATAL)),
    "gy": (("g", STOP), ("j", PALATAL)),
    "ny": (("n", NASAL), ("j", PALATAL)),
    "hy": (("C", FRICATIVE),),
    "my": (("m", NASAL), ("j", PALATAL)),
    "ry": (("d", FLAP), ("j", PALATAL)),
    "by": (("b", STOP), ("j", PALATAL)),
    "py": (("p", STOP), ("j", PALATAL)),
    "sh": (("S", FRICATIVE),),
    "ch": (("tS", AFFRICATE),),
    "j": (("dZ", AFFRICATE),),
}


def _build_inventory() -> dict[str, Mora]:
    morae: dict[str, Mora] = {}
    for onset_letters, onset in _PLAIN_ONSETS.items():
        for vowel in VOWEL_LETTERS:
            if onset_letters + vowel not in _NOT_JAPANESE:
                morae[onset_letters + vowel] = Mora(onset_letters + vowel, CV, onset, VOWEL_PHONES[vowel])
    for onset_letters, onset in _PALATAL_ONSETS.items():
        for vowel in "auo":
            morae[onset_letters + vowel] = Mora(onset_letters + vowel, CV, onset, VOWEL_PHONES[vowel])
    for romaji, (onset, vowel) in _SPECIAL_MORAE.items():
        morae[romaji] = Mora(romaji, CV, onset, vowel)
    return morae


MORAE: dict[str, Mora] = _build_inventory()
_LONGEST_MORA = max(len(romaji) for romaji in MORAE)
# Onsets a geminate may lengthen (voiceless obstruents).
GEMINABLE = frozenset({"k", "s", "t", "p", "S", "tS", "ts"})
_WORD = re.compile(r"^[a-z']+$")


def parse_word(word: str) -> list[Mora]:
    """Morae of one romanised word; SynthError naming what is not Japanese."""
    if not _WORD.match(word):
        raise SynthError(f"romanised Japanese word {word!r} has characters other than a-z and '")
    morae: list[Mora] = []
    i = 0
    while i < len(word):
        letter, following = word[i], word[i + 1 : i + 2]
        if letter == "'":
            i += 1
        elif letter == "n" and following not in tuple(VOWEL_LETTERS) + ("y",):
            morae.append(Mora("n", MORAIC_NASAL))
            i += 1
        elif letter not in VOWEL_LETTERS and (following == letter or word[i : i + 3] == "tch"):
            morae.append(Mora(letter, GEMINATE))
            i += 1
        elif letter in VOWEL_LETTERS and morae and morae[-1].vowel == VOWEL_PHONES[letter]:
            morae.append(Mora(letter, LONG_VOWEL, vowel=VOWEL_PHONES[letter]))
            i += 1
        else:
            mora = _longest_mora_at(word, i)
            morae.append(mora)
            i += len(mora.romaji)
    _check_geminates(morae, word)
    return morae


def _longest_mora_at(word: str, i: int) -> Mora:
    for length in range(_LONGEST_MORA, 0, -1):
        mora = MORAE.get(word[i : i + length])
        if mora is not None:
            return mora
    vowel = next((j for j in range(i, len(word)) if word[j] in VOWEL_LETTERS), len(word) - 1)
    raise SynthError(f"unknown Japanese syllable {word[i:vowel + 1]!r} in word {word!r}")


def _check_geminates(morae: list[Mora], word: str) -> None:
    for mora, following in zip(morae, morae[1:] + [None]):
        if mora.kind != GEMINATE:
            continue
        if following is None or following.kind != CV or not following.onset or following.onset[0][0] not in GEMINABLE:
            raise SynthError(f"geminate in {word!r} is not followed by a voiceless consonant")


Word = tuple[str, list[Mora]]  # (romaji, morae)


def parse_text(text: str) -> list[list[list[Word]]]:
    """Sentences -> phrases -> words of a romanised text ('.', '?', '!' end sentences, ',' phrases)."""
    sentences = []
    for sentence_text in re.split(r"[.?!]", text.lower()):
        phrases = []
        for phrase_text in sentence_text.split(","):
            words = [(word, parse_word(word)) for word in phrase_text.split()]
            if words:
                phrases.append(words)
        if phrases:
            sentences.append(phrases)
    if not sentences:
        raise SynthError(f"no Japanese words in {text!r}")
    return sentences
