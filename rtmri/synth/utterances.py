"""The utterances of the three corpus conditions: random Japanese-like sentences for
training speakers; the fixed Japanese passage and German sentences for held-out ones."""

from __future__ import annotations

import numpy as np

from rtmri.synth.german_timing import german_segments
from rtmri.synth.japanese_timing import japanese_segments
from rtmri.synth.segments import Segment, Utterance
from rtmri.synth.sentences import random_sentence
from rtmri.synth.texts import NON_JA, PASSAGE_JA

TRAIN, PASSAGE, NON_JAPANESE = "train", "passage_ja", "non_ja"
TRAIN_UTTERANCE_S = (2.5, 7.0)  # sentences are added until the lower bound, never past the upper
UTTERANCE_RATE_SPREAD = (0.88, 1.14)  # per-utterance tempo around the speaker's rate


def training_utterance(utt_id: str, morae_per_s: float, rng: np.random.Generator) -> Utterance:
    mora_s = 1.0 / (morae_per_s * rng.uniform(*UTTERANCE_RATE_SPREAD))
    sentences: list[str] = []
    segments: list[Segment] = []
    while not segments or _length(segments) < TRAIN_UTTERANCE_S[0]:
        candidate = sentences + [random_sentence(rng)]
        trial = japanese_segments(" ".join(candidate), mora_s, rng)
        if segments and _length(trial) > TRAIN_UTTERANCE_S[1]:
            break
        sentences, segments = candidate, trial
    return Utterance(utt_id, TRAIN, " ".join(sentences), tuple(segments))


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
