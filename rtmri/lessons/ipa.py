"""The lessons' phones as a learner reads them: IPA for the synthesizer's SAMPA.

Lesson files, the comparison's JSON and its thresholds name phones in the synthesizer's
SAMPA (``rtmri.synth.japanese``: ``M`` for /ɯ/, ``N`` for the moraic nasal, ``S`` for
"sh", a trailing ``:`` for a long vowel, ``r`` for the flap the lessons label so); what a
learner reads is the IPA a textbook of Japanese writes. The SAMPA stays the machine-readable
name; this is the one place its IPA form is defined.

Japanese values where a symbol stands for a Japanese sound in the lessons: ``S``, ``tS``,
``dZ`` are alveolo-palatal (ɕ, t͡ɕ, d͡ʑ), ``f`` is the bilabial ɸ of ふ (VocalTractLab's
stand-in for it), ``r`` and X-SAMPA's ``4`` the flap ɾ, ``w`` the unrounded ɰ. The rest of
VocalTractLab's set (German, for the corpus's other material) has its usual IPA.
"""

from __future__ import annotations

SAMPA_LONG, IPA_LONG = ":", "ː"

IPA: dict[str, str] = {
    # Japanese vowels and the moraic nasal
    "a": "a", "i": "i", "M": "ɯ", "e": "e", "o": "o", "N": "ɴ",
    # Japanese consonants
    "k": "k", "g": "ɡ", "s": "s", "z": "z", "t": "t", "d": "d", "n": "n", "h": "h", "b": "b", "p": "p",
    "m": "m", "j": "j", "r": "ɾ", "4": "ɾ", "w": "ɰ", "C": "ç", "S": "ɕ", "ts": "t͡s", "tS": "t͡ɕ",
    "dZ": "d͡ʑ", "f": "ɸ", "?": "ʔ",
    # the rest of VocalTractLab's set
    "u": "u", "E": "ɛ", "I": "ɪ", "O": "ɔ", "U": "ʊ", "@": "ə", "6": "ɐ", "y": "y", "2": "ø", "9": "œ",
    "Y": "ʏ", "aI": "aɪ", "aU": "aʊ", "OY": "ɔʏ", "v": "v", "T": "θ", "D": "ð", "Z": "ʒ", "x": "x",
    "R": "ʁ", "l": "l", "pf": "p͡f",
}


def knows(phone: str) -> bool:
    """Whether the phone (long or not) has an IPA form here."""
    return phone.removesuffix(SAMPA_LONG) in IPA


def ipa(phone: str | None) -> str | None:
    """The IPA of a SAMPA phone (a long one with ː); a phone not listed is shown as it is."""
    if phone is None:
        return None
    base = phone.removesuffix(SAMPA_LONG)
    return IPA.get(base, base) + (IPA_LONG if base != phone else "")


def with_ipa(phones) -> list[dict]:
    """{"phone", "start", "end"} entries with their "ipa" beside the SAMPA "phone"."""
    return [dict(entry, ipa=ipa(entry["phone"])) for entry in phones]
