"""The regions of the vocal tract the measures are reported for, and each phone's place.

Regions, in the canonical grid (``grid.CANONICAL``, VocalTractLab millimetres of the
rest tract, x forward, y down), from the glottis to the lips:

- pharyngeal (tongue root): the horizontal gridlines of the pharynx, from above the
  epiglottis (y 28 mm) to the level of the uvula (y 8 mm), tongue root to posterior wall;
- velar (tongue dorsum): radial gridlines whose rest outer wall is the velum or uvula
  (they meet the upper outline behind x = 5 mm, where the hard palate begins);
- palatal: radial gridlines meeting the hard palate (x 5 to 38 mm);
- alveolar (tongue tip): radial gridlines meeting the alveolar ridge and the back of the
  upper incisors (x 38 to 48 mm);
- lips: vertical gridlines in front of the incisors (x 56.5 to 62.5 mm), lower lip to
  upper lip;
- velopharyngeal port: horizontal gridlines through the nasopharynx at the height of the
  velum and uvula (y -3 to 3 mm), from the posterior pharynx wall forward to the velum's nasal
  surface: the gap there is the port.

The first five make the distance function (glottis to lips); the port lines are apart.
"""

from __future__ import annotations

PHARYNGEAL, VELAR, PALATAL, ALVEOLAR, LIPS, VELOPHARYNGEAL = (
    "pharyngeal", "velar", "palatal", "alveolar", "lips", "velopharyngeal")
REGIONS = (LIPS, ALVEOLAR, PALATAL, VELAR, PHARYNGEAL, VELOPHARYNGEAL)
TRACT_REGIONS = (PHARYNGEAL, VELAR, PALATAL, ALVEOLAR, LIPS)  # glottis -> lips
CLOSING_REGIONS = (LIPS, ALVEOLAR)  # where stops and nasals close fully and the closure is scored

# Japanese /ɯ/ (X-SAMPA M): unrounded, compressed lips, the tongue body fronter than German /u/.
# VocalTractLab has no such vowel: the synthesizer adds its shape to every speaker's tract
# (rtmri.synth.japanese.JA_U names it there).
UNROUNDED_U = "M"
LONG = ":"

# Place of articulation of each SAMPA phone the corpora use (VocalTractLab's set). Vowels by
# their narrowest point: front vowels at the palate, back rounded at the velum, open at the
# pharynx. h and the glottal stop have no place on the grid.
PLACE = {
    **dict.fromkeys(("p", "b", "m", "f", "v", "pf"), LIPS),
    **dict.fromkeys(("t", "d", "n", "s", "z", "ts", "l", "r", "T", "D"), ALVEOLAR),
    **dict.fromkeys(("S", "Z", "tS", "dZ", "C", "j"), PALATAL),
    **dict.fromkeys(("k", "g", "N", "x"), VELAR),
    **dict.fromkeys(("R",), PHARYNGEAL),
    **dict.fromkeys(("i", "i:", "I", "e", "e:", "E", "E:", "y", "y:", "Y", "2", "2:", "9", "aI"), PALATAL),
    **dict.fromkeys(("u", "u:", "U", "o", "o:", "O", "OY", "aU", UNROUNDED_U, UNROUNDED_U + LONG), VELAR),
    **dict.fromkeys(("a", "a:", "6", "@"), PHARYNGEAL),
}
GLOTTAL = frozenset({"h", "?"})  # no place on the grid: the tract takes its neighbours' shapes
NASALS = frozenset({"m", "n", "N"})
STOPS_AND_NASALS = frozenset({"p", "b", "t", "d", "k", "g"}) | NASALS
# Phones of the Japanese the training speakers speak (the synthesizer's Japanese rules):
# the others are the sounds condition 3 tests. (N is the moraic nasal, C the palatal
# fricative of "hi", ts and S of "tsu" and "shi", R the Japanese flap as VocalTractLab voices it;
# the rounded German u is not among them.)
JAPANESE_PHONES = frozenset({
    "a", "i", UNROUNDED_U, "e", "o", "a:", "i:", UNROUNDED_U + LONG, "e:", "o:",
    "k", "g", "s", "z", "t", "d", "n", "h", "b", "p", "m", "j", "r", "w", "N", "C", "S", "ts", "tS", "dZ", "?",
})


def place_of(phone: str) -> str | None:
    return PLACE.get(phone)
