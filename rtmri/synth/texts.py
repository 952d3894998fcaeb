"""The fixed material that held-out speakers read (the shared DESIGN.md §1, evaluation conditions 2 and 3).

PASSAGE_JA was written for this project: a short morning scene, about 30 s when read,
one utterance per sentence. NON_JA holds German sentences chosen for sounds outside the
Japanese inventory that VocalTractLab's (German) speaker knows: front rounded vowels
(y: Y 2:), lax vowels (I E U O @ 6), [l] and consonant clusters (bl, kl, Str, Rpst).
Each is (orthography, words as SAMPA phones separated by spaces).
"""

from __future__ import annotations

PASSAGE_JA: tuple[str, ...] = (
    "kesa wa hayaku okimashita.",
    "mado o akeru to, sora wa mada kurakute, tooku no yama no ue ni, chiisana hoshi ga hitotsu hikatte imashita.",
    "watashi wa atatakai ocha o irete, shizuka na machi no oto o kikimashita.",
    "yagate tori ga nakihajime, eki no hoo kara densha no oto mo kikoete kimashita.",
    "kyoo wa tomodachi to issho ni, kawa no chikaku made aruite, hirugohan o taberu yakusoku desu.",
    "sukoshi samui keredomo, kitto ii hi ni naru deshoo.",
)

NON_JA: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Schöne Lilien blühen hell.", ("S 2: n @", "l i: l j @ n", "b l y: @ n", "h E l")),
    (
        "Die kleine Katze spielt im grünen Garten.",
        ("d i:", "k l aI n @", "k a ts @", "S p i: l t", "I m", "g R y: n @ n", "g a 6 t @ n"),
    ),
    (
        "Fünf müde Löwen schlafen unter blühenden Bäumen.",
        ("f Y n f", "m y: d @", "l 2: v @ n", "S l a: f @ n", "U n t 6", "b l y: @ n d @ n", "b OY m @ n"),
    ),
    (
        "Im Herbst fallen Blätter vom Apfelbaum.",
        ("I m", "h E R p s t", "f a l @ n", "b l E t 6", "f O m", "a pf @ l b aU m"),
    ),
    (
        "Ströme und Flüsse glitzern hell im Licht.",
        ("S t R 2: m @", "U n t", "f l Y s @", "g l I ts 6 n", "h E l", "I m", "l I C t"),
    ),
)
