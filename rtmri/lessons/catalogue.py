"""The shipped lesson set: what each lesson says and what it teaches."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LessonText:
    id: str
    name: str
    name_ja: str
    text: str
    kana: str
    romaji: str  # also what the synthesizer speaks (rtmri.synth.japanese)
    gloss: str


LESSONS: tuple[LessonText, ...] = (
    LessonText("01_vowels", "The five vowels", "五つの母音", "あ い う え お", "あ い う え お", "a i u e o",
               "the vowels a, i, u, e, o: the tongue body moves from low (a) to high front (i) to high back (u)"),
    LessonText("02_moraic_nasal", "The moraic nasal ん", "撥音「ん」", "散歩", "さんぽ", "sanpo",
               "a walk: ん is a mora of its own and closes where the next consonant does (here at the lips)"),
    LessonText("03_geminate", "Geminate っ", "促音「っ」", "切手", "きって", "kitte",
               "a stamp: the tongue tip holds the t closure for a whole extra mora"),
    LessonText("04_long_vowel", "Long vowels", "長音", "おばあさん", "おばあさん", "obaasan",
               "grandmother: the long aa lasts two morae (obasan, one a, is aunt)"),
    LessonText("05_tsu", "The syllable tsu", "「つ」", "机", "つくえ", "tsukue",
               "a desk: ts starts with a tongue-tip closure released into s"),
    LessonText("06_fu", "The syllable fu", "「ふ」", "船", "ふね", "fune",
               "a ship: f is made with both lips close together, not lip and teeth"),
    LessonText("07_flap_r", "The flap r", "ら行（弾き音）", "空", "そら", "sora",
               "the sky: r is one quick tap of the tongue tip on the ridge behind the teeth"),
    LessonText("08_passage", "Passage: this morning", "文：今朝", "今朝は早く起きました。", "けさは はやく おきました。",
               "kesa wa hayaku okimashita.", "I got up early this morning."),
)
