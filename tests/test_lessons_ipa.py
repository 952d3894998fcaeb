"""The lessons' phones in IPA (rtmri.lessons.ipa): every phone a lesson, the synthesizer's
Japanese or the comparison's thresholds name has an IPA form, and the Japanese ones are the
textbook's symbols, not the synthesizer's SAMPA."""

from __future__ import annotations

import json

import pytest

from rtmri.demo import ASSETS
from rtmri.lessons.catalogue import LESSONS
from rtmri.lessons.compare import PHONE_NAMED
from rtmri.lessons.ipa import IPA, ipa, knows, with_ipa
from rtmri.synth import inventory
from rtmri.synth.japanese import LONG_VOWEL, MORAE, MORAIC_NASAL, VOWEL_PHONES, parse_text

LONG = ":"


def shipped_lesson_phones() -> set[str]:
    return {p["phone"] for path in (ASSETS / "lessons").glob("*.json")
            for p in json.loads(path.read_text(encoding="utf-8"))["phones"]}


def japanese_phones() -> set[str]:
    """Every phone the synthesizer's Japanese can say: each mora's onset and vowel, the moraic
    nasal, each vowel long, and the flap the lessons label r."""
    onsets = {phone for mora in MORAE.values() for phone, _ in mora.onset}
    vowels = set(VOWEL_PHONES.values())
    return onsets | vowels | {v + LONG for v in vowels} | {"N", "r"}


def test_every_phone_of_the_lessons_has_an_ipa_form():
    used = shipped_lesson_phones()
    assert {"M", "N", "ts", "S", "a:", "r"} <= used  # what the shipped set shows a learner
    missing = sorted(p for p in used | japanese_phones() | set(PHONE_NAMED) | set(inventory.VTL_PHONES) if not knows(p))
    assert not missing


def test_japanese_phones_read_as_a_textbook_writes_them():
    expected = {"M": "ɯ", "N": "ɴ", "ts": "t͡s", "S": "ɕ", "tS": "t͡ɕ", "dZ": "d͡ʑ", "C": "ç", "r": "ɾ", "4": "ɾ",
                "f": "ɸ", "g": "ɡ", "a": "a", "k": "k", "a:": "aː", "M:": "ɯː", "o:": "oː"}
    assert {p: ipa(p) for p in expected} == expected
    assert not any(set(symbol) & set("MNS4:") for symbol in IPA.values())  # no SAMPA left in what is shown


def test_every_lessons_words_through_the_synthesizers_parser_have_ipa():
    """The catalogue's romaji (what make-lessons speaks), mora by mora: onsets, vowels, the
    moraic nasal, long vowels."""
    phones = set()
    for text in LESSONS:
        for sentence in parse_text(text.romaji):
            for phrase in sentence:
                for _, morae in phrase:
                    for mora in morae:
                        phones |= {phone for phone, _ in mora.onset} | ({mora.vowel} if mora.vowel else set())
                        phones |= {"N"} if mora.kind == MORAIC_NASAL else set()
                        phones |= {mora.vowel + LONG} if mora.kind == LONG_VOWEL else set()
    assert {"N", "a:", "M", "ts", "S"} <= phones
    assert all(knows(p) for p in phones)


def test_the_sampa_stays_beside_the_ipa_and_unknown_phones_show_as_they_are():
    entries = [{"phone": "M", "start": 0.1, "end": 0.2}, {"phone": "xyz", "start": 0.2, "end": 0.3}]
    assert with_ipa(entries) == [dict(entries[0], ipa="ɯ"), dict(entries[1], ipa="xyz")]
    assert entries[0] == {"phone": "M", "start": 0.1, "end": 0.2}  # not changed in place
    assert ipa(None) is None
    assert not knows("xyz")


@pytest.mark.parametrize("phone", sorted(IPA))
def test_each_ipa_form_differs_from_another_sampa_symbols_unless_the_same_sound(phone):
    # two SAMPA symbols share an IPA form only where they are the same sound (the flap: r as the
    # lessons label it, 4 as X-SAMPA writes it)
    same = {p for p, symbol in IPA.items() if symbol == IPA[phone]}
    assert same == {phone} or same == {"r", "4"}
