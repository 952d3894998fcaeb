"""Planning a corpus: every utterance of every speaker, fixed by the seed before any synthesis.

Training speakers share --minutes of random Japanese-like sentences (or, with --material
mixed, the kinds of ``utterances.MIXED_SHARES``, at --rates); held-out speakers
read the Japanese passage and the German sentences. Each utterance's phones, durations,
pitch and image noise depend only on the seed, the speaker and the utterance, so the
corpus does not depend on the number of workers or on the order the jobs finish in.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from rtmri.synth import utterances
from rtmri.synth.segments import Utterance
from rtmri.synth.speakers import Speaker

TRAINING_STREAM, EVALUATION_STREAM = 1, 2  # separate random streams per speaker
REPEAT_STREAM = 1  # the noise of the repeated acquisition


@dataclass(frozen=True)
class Job:
    speaker: Speaker
    utterance: Utterance
    out: str  # the corpus folder
    seed: int

    @property
    def name(self) -> str:
        return f"{self.speaker.id}/{self.utterance.id}"

    @property
    def noise_seed(self) -> list[int]:
        return [self.seed, self.speaker.index, zlib.crc32(self.utterance.id.encode())]

    @property
    def repeat_noise_seed(self) -> list[int]:
        return self.noise_seed + [REPEAT_STREAM]


def plan_jobs(speakers: list[Speaker], minutes: float, seed: int, eval_sentences: int | None, out: str,
              material: str = utterances.READ, rates: tuple[float, float] | None = None) -> list[Job]:
    """SynthError (naming it) if any utterance holds a phone VocalTractLab does not know."""
    seconds_each = minutes * 60.0 / sum(1 for s in speakers if not s.held_out)
    jobs = []
    for speaker in speakers:
        if speaker.held_out:
            planned = evaluation_utterances(speaker, seed, eval_sentences)
        else:
            planned = training_utterances(speaker, seed, seconds_each, material, rates)
        for utterance in planned:
            utterance.check_phones()
            jobs.append(Job(speaker, utterance, out, seed))
    return jobs


def training_utterances(speaker: Speaker, seed: int, seconds: float, material: str = utterances.READ,
                        rates: tuple[float, float] | None = None) -> list[Utterance]:
    rng = np.random.default_rng([seed, speaker.index, TRAINING_STREAM])
    planned, total = [], 0.0
    while total < seconds:
        kind = utterances.draw_material(material, rng)
        utterance = utterances.training_utterance(f"utt{len(planned) + 1:04d}", speaker.morae_per_s, rng, kind, rates)
        planned.append(utterance)
        total += utterance.duration
    return planned


def evaluation_utterances(speaker: Speaker, seed: int, limit: int | None) -> list[Utterance]:
    rng = np.random.default_rng([seed, speaker.index, EVALUATION_STREAM])
    passage = utterances.passage_utterances(speaker.morae_per_s, rng, limit)
    return passage + utterances.non_japanese_utterances(speaker.morae_per_s, rng, limit)
