"""The utterances of the three corpus conditions: random Japanese-like sentences (and, with
--material mixed, isolated words and syllables, sustained vowels, minimal pairs, sentences
with pauses; with --material multilingual, pseudo-words over the whole phone inventory) for
training speakers; the fixed Japanese passage and German sentences for
held-out ones."""

from __future__ import annotations

import numpy as np

from rtmri.synth import pseudowords
from rtmri.synth.german_timing import german_segments
from rtmri.synth.japanese import VOWEL_LETTERS
from rtmri.synth.japanese_timing import PHRASE_PAUSE_S, japanese_segments
from rtmri.synth.segments import Segment, Utterance
from rtmri.synth.sentences import random_mora, random_sentence, random_word
from rtmri.synth.texts import NON_JA, PASSAGE_JA

TRAIN, PASSAGE, NON_JAPANESE = "train", "passage_ja", "non_ja"
TRAIN_UTTERANCE_S = (2.5, 7.0)  # pieces are added until the lower bound, never past the upper
UTTERANCE_RATE_SPREAD = (0.88, 1.14)  # per-utterance tempo around the speaker's rate (no --rates)

# What learners and teachers say, as well as read sentences (`rtmri synth --material mixed`).
READ, PAUSES, WORDS, SYLLABLES, VOWELS, PAIRS = "read", "pauses", "words", "syllables", "vowels", "pairs"
MIXED = "mixed"
MIXED_SHARES = {READ: 0.4, PAUSES: 0.15, WORDS: 0.15, SYLLABLES: 0.1, VOWELS: 0.1, PAIRS: 0.1}
# Sounds outside Japanese as well (`rtmri synth --material multilingual`): half the utterances
# are phrases of pseudo-words over VocalTractLab's whole inventory (``pseudowords``).
INVENTORY = "inventory"
MULTILINGUAL = "multilingual"
MULTILINGUAL_SHARES = {READ: 0.5, INVENTORY: 0.5}
SHARES = {MIXED: MIXED_SHARES, MULTILINGUAL: MULTILINGUAL_SHARES}
MATERIALS = (READ, MIXED, MULTILINGUAL)
HESITATION_PAUSE_S = (0.4, 0.9)  # between the phrases of a sentence said with pauses
SUSTAINED_MORAE = (4, 9)  # a sustained vowel lasts this many morae
# Japanese minimal pairs: vowel length, geminates, voicing, /ts/-/s/, /i/-/e/, the moraic nasal.
MINIMAL_PAIRS = (
    ("obasan", "obaasan"), ("ojisan", "ojiisan"), ("biru", "biiru"), ("koko", "kooko"), ("yuki", "yuuki"),
    ("toru", "tooru"), ("kite", "kitte"), ("kako", "kakko"), ("oto", "otto"), ("shite", "shitte"), ("ita", "itta"),
    ("mata", "matta"), ("kaki", "kagi"), ("kin", "gin"), ("tenki", "denki"), ("tsuki", "suki"), ("tsumi", "sumi"),
    ("ki", "ke"), ("ima", "ema"), ("kanai", "kannai"), ("hon", "hoon"), ("kona", "konna"),
)


def _read_piece(rng: np.random.Generator) -> str:
    return random_sentence(rng)


def _word_piece(rng: np.random.Generator) -> str:
    return random_word(rng) + "."


def _syllable_piece(rng: np.random.Generator) -> str:
    return random_mora(rng) + "."


def _vowel_piece(rng: np.random.Generator) -> str:
    return str(rng.choice(list(VOWEL_LETTERS))) * int(rng.integers(*SUSTAINED_MORAE)) + "."


def _pair_piece(rng: np.random.Generator) -> str:
    pair = MINIMAL_PAIRS[int(rng.integers(len(MINIMAL_PAIRS)))]
    first = int(rng.integers(2))
    return f"{pair[first]}. {pair[1 - first]}."


PIECES = {READ: _read_piece, PAUSES: _read_piece, WORDS: _word_piece, SYLLABLES: _syllable_piece, VOWELS: _vowel_piece,
          PAIRS: _pair_piece}


def training_utterance(utt_id: str, morae_per_s: float, rng: np.random.Generator, material: str = READ,
                       rates: tuple[float, float] | None = None) -> Utterance:
    """Pieces of one material (a kind of MIXED_SHARES or MULTILINGUAL_SHARES) at one tempo: the
    speaker's rate times a factor drawn from rates (log-uniform), or from UTTERANCE_RATE_SPREAD
    without rates."""
    rate = rng.uniform(*UTTERANCE_RATE_SPREAD) if rates is None else float(np.exp(rng.uniform(*np.log(rates))))
    mora_s = 1.0 / (morae_per_s * rate)
    phrase_pause = HESITATION_PAUSE_S if material == PAUSES else PHRASE_PAUSE_S
    pieces: list[str] = []
    segments: list[Segment] = []
    while not segments or _length(segments) < TRAIN_UTTERANCE_S[0]:
        if material == INVENTORY:  # SAMPA words, a phrase each piece, timed as the German sentences
            phrase = pseudowords.random_phrase(rng)
            candidate = pieces + [" ".join(f"[{word}]" for word in phrase) + "."]
            trial = segments + german_segments(phrase, morae_per_s * rate, rng)
        else:
            candidate = pieces + [PIECES[material](rng)]
            trial = japanese_segments(" ".join(candidate), mora_s, rng, phrase_pause)
        if segments and _length(trial) > TRAIN_UTTERANCE_S[1]:
            break
        pieces, segments = candidate, trial
    return Utterance(utt_id, TRAIN, " ".join(pieces), tuple(segments), material, rate)


def draw_material(material: str, rng: np.random.Generator) -> str:
    """The kind of one utterance: material itself, or for MIXED and MULTILINGUAL one drawn by its SHARES."""
    if material not in SHARES:
        return material
    shares = SHARES[material]
    kinds = list(shares)
    return kinds[int(rng.choice(len(kinds), p=np.array([shares[k] for k in kinds])))]


def _length(segments: list[Segment]) -> float:
    return sum(segment.duration for segment in segments)


def passage_utterances(morae_per_s: float, rng: np.random.Generator, limit: int | None = None) -> list[Utterance]:
    """The fixed Japanese passage, one utterance per sentence (the first `limit` sentences)."""
    return [
        Utterance(f"passage_ja_{index + 1:02d}", PASSAGE, sentence, tuple(japanese_segments(sentence, 1.0 / morae_per_s, rng)))
        for index, sentence in enumerate(PASSAGE_JA[:limit])
    ]


def non_japanese_utterances(morae_per_s: float, rng: np.random.Generator, limit: int | None = None) -> list[Utterance]:
    return [
        Utterance(f"non_ja_{index + 1:02d}", NON_JAPANESE, f"German: {orthography}", tuple(german_segments(words, morae_per_s, rng)))
        for index, (orthography, words) in enumerate(NON_JA[:limit])
    ]
