"""The mistakes of the benchmark: what a learner says instead of the lesson's words, where in
the words, which articulators are wrong there, and where the L2 literature reports it.

A variant is said either as other romaji (``said``: the synthesizer's own timing for those
words, e.g. "kite" for "kitte") or as the lesson's words with one phone swapped (``swap``,
with the timing class its onset takes: a flap said as a held /d/ or an English /l/). Every
variant has the lesson's number of phones, so ``phone`` (an index into the lesson's phones)
names the mistaken phone in both the reference and the attempt.

What could not be made is in ``LEFT_OUT``, with the reason (the benchmark's manifest lists it).
"""

from __future__ import annotations

from dataclasses import dataclass

from rtmri.articulation import regions as R

ARTICULATION, DURATION = "articulation", "duration"  # what is wrong: the shape of the tract, or how long it is held

# Places of articulation (rtmri.articulation.regions) -> the comparison's articulator there.
ARTICULATOR_AT = {R.LIPS: "lips", R.ALVEOLAR: "tongue_tip", R.PALATAL: "tongue_body", R.VELAR: "tongue_back",
                  R.PHARYNGEAL: "tongue_root", R.VELOPHARYNGEAL: "velum"}


@dataclass(frozen=True)
class MistakeType:
    key: str
    en: str
    kind: str  # ARTICULATION or DURATION
    sources: tuple[str, ...]  # keys of SOURCES


@dataclass(frozen=True)
class Variant:
    lesson: str  # a lesson id of rtmri.lessons.catalogue
    mistake: str  # a MistakeType key
    phone: int  # index of the mistaken phone in the lesson's phones
    articulators: tuple[str, ...]  # the articulators wrong there, the main one first
    said: str | None = None  # romaji said instead of the lesson's
    swap: str | None = None  # SAMPA phone said instead of the lesson's at ``phone``
    swap_class: str | None = None  # onset class (rtmri.synth.japanese) whose share of the mora the swapped phone takes

    @property
    def key(self) -> str:
        return f"{self.lesson}.{self.mistake}" + (f".{self.said.replace(' ', '_')}" if self.said else f".{self.swap}")


SOURCES = {
    "motohashi2009": "Motohashi-Saigo, M. & Hardison, D. M. (2009). Acquisition of L2 Japanese geminates: training with "
                     "waveform displays. Language Learning & Technology 13(2), 29-47 (most production errors: a singleton "
                     "for a geminate).",
    "yamakawa2022gem": "Yamakawa, K., Amano, S. & Kondo, M. (2022). Vietnamese speakers' mispronunciation of Japanese "
                       "singleton and geminate stops. Acoustical Science and Technology 43(5), 241-250 (and the Korean, "
                       "Taiwanese and Thai studies it sums up: singletons held too long, geminates too short).",
    "knight": "Knight, K. J. L1 English vocalic transfer in L2 Japanese. MA thesis, University of Georgia (vowel-length "
              "errors are the most frequent vowel errors of English-speaking learners).",
    "yamakawa2022ts": "Yamakawa, K. & Amano, S. (2022). Japanese and Korean speakers' production of Japanese fricative /s/ "
                      "and affricate /ts/. Phonetics and Speech Sciences 14(1), 13-19.",
    "tufs": "Tokyo University of Foreign Studies, Japanese pronunciation for learners (coelang.tufs.ac.jp/ja/en/pmod/"
            "practical): tsu is commonly said as chu or su.",
    "ubc": "UBC Enunciate Japanese lessons: tsu vs su (English, Korean speakers), tsu vs chu (Korean speakers).",
    "liquids": "Japanese /r/ is an apico-alveolar tap; English /l/ is a lateral approximant with a longer alveolar contact "
               "(e.g. Picard, M. (2018). On the pronunciation of English /ɹ/ and /l/ by Japanese speakers. IJECS 1(1)); "
               "learners whose language has no tap substitute their /l/ or a full /d/.",
    "vance": "Vance, T. J. (2008). The Sounds of Japanese. Cambridge University Press (the moraic nasal takes the place "
             "of the following consonant; the five vowels, /ɯ/ unrounded).",
}

TYPES = {t.key: t for t in (
    MistakeType("missing_geminate", "a singleton for a geminate (きって said as きて)", DURATION, ("motohashi2009", "yamakawa2022gem")),
    MistakeType("extra_geminate", "a geminate for a singleton (つくえ said as つっくえ)", DURATION, ("yamakawa2022gem",)),
    MistakeType("short_vowel", "a short vowel for a long one (おばあさん said as おばさん)", DURATION, ("knight",)),
    MistakeType("long_vowel", "a long vowel for a short one (そら said as そおら)", DURATION, ("knight",)),
    MistakeType("su_for_tsu", "/su/ for /tsu/ (no tongue-tip closure)", ARTICULATION, ("yamakawa2022ts", "tufs", "ubc")),
    MistakeType("chu_for_tsu", "/tʃu/ for /tsu/ (closure behind the ridge)", ARTICULATION, ("tufs", "ubc")),
    MistakeType("flap_lateral", "an English /l/ for the flap", ARTICULATION, ("liquids",)),
    MistakeType("flap_stop", "a held /d/ for the flap", DURATION, ("liquids",)),
    MistakeType("nasal_place", "the moraic nasal at the wrong place before /p/", ARTICULATION, ("vance",)),
    MistakeType("i_e_confusion", "/i/ and /e/ confused", ARTICULATION, ("vance",)),
    MistakeType("rounded_u", "a rounded /u/ for /ɯ/", ARTICULATION, ("vance",)),
)}

T, L, B, K, ROOT = "tongue_tip", "lips", "tongue_body", "tongue_back", "tongue_root"
VARIANTS: tuple[Variant, ...] = (
    # /i/ and /e/: in the synthesizer's true geometry they differ most at the tongue root (the
    # pharynx 8 mm wider for /i/) and the tongue tip, less at the body
    Variant("01_vowels", "i_e_confusion", 1, (B, ROOT, T), said="a e u e o"),
    Variant("01_vowels", "i_e_confusion", 3, (B, ROOT, T), said="a i u i o"),
    Variant("02_moraic_nasal", "nasal_place", 2, (L, T), swap="n"),
    Variant("02_moraic_nasal", "nasal_place", 2, (L, K, B), swap="N"),  # the dorsum: the back of the tongue or its body
    Variant("03_geminate", "missing_geminate", 2, (T,), said="kite"),
    Variant("03_geminate", "i_e_confusion", 1, (B, ROOT, T), said="kette"),
    Variant("04_long_vowel", "short_vowel", 2, (ROOT,), said="obasan"),
    Variant("05_tsu", "su_for_tsu", 0, (T,), said="sukue"),
    Variant("05_tsu", "chu_for_tsu", 0, (T, B), said="chukue"),
    Variant("05_tsu", "extra_geminate", 2, (K,), said="tsukkue"),
    Variant("06_fu", "long_vowel", 1, (K, L), said="fuune"),
    Variant("07_flap_r", "flap_lateral", 2, (T,), swap="l", swap_class="nasal"),
    Variant("07_flap_r", "flap_stop", 2, (T,), swap="d", swap_class="stop"),
    Variant("07_flap_r", "long_vowel", 1, (K, L), said="soora"),
    Variant("08_passage", "extra_geminate", 19, (T,), said="kesa wa hayaku okimashitta."),
    Variant("08_passage", "long_vowel", 1, (B,), said="keesa wa hayaku okimashita."),
)
# A rounded /u/ for /ɯ/: made only when the synthesizer has both (rtmri.synth.japanese JA_U, ROUNDED_U).
ROUNDED_U_VARIANTS: tuple[Variant, ...] = (
    Variant("01_vowels", "rounded_u", 2, (L, K)),
    Variant("05_tsu", "rounded_u", 1, (L, K)),
    Variant("06_fu", "rounded_u", 1, (L, K)),
)

LEFT_OUT = {
    "f_for_phi": "labiodental /f/ for /ɸ/: VocalTractLab has no [ɸ]; the synthesizer says f for it, so the native "
                 "reference already has the labiodental /f/ and no attempt could differ from it",
    "english_r_for_flap": "English /ɹ/ for the flap: VocalTractLab has no postalveolar or retroflex approximant "
                          "(its r and R are not [ɹ]); the lateral /l/ and a held /d/ are in",
    "voiced_vowel": "a vowel voiced where Japanese devoices it: the synthesizer voices every vowel (so the native "
                    "references are voiced), and the comparison reads the tract's articulatory state, which has no "
                    "voicing (the glottis is not in it): nothing the comparison sees would change",
    "nasal_before_t_k": "the moraic nasal before /t/ and /k/: no lesson has one (only さんぽ, before /p/)",
}


def place_of(articulator: str) -> str:
    """The region an articulator of the comparison reads (its first)."""
    return next(region for region, key in ARTICULATOR_AT.items() if key == articulator)
