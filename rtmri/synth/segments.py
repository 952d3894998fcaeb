"""An utterance as VocalTractLab will speak it: timed phone segments with pitch targets.

Also the prosody shared by every language here: edge pauses, duration jitter, phrase-final
lengthening and the height of a pitch accent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtmri.synth import inventory
from rtmri.synth.inventory import PAUSE

LEADING_PAUSE_S = (0.25, 0.35)  # VocalTractLab builds up lung pressure in it
TRAILING_PAUSE_S = (0.30, 0.40)
DURATION_JITTER = 0.1  # each mora or phone lasts up to this fraction more or less
PHRASE_FINAL_LENGTHENING = 1.35
HIGH_PITCH_ST = 3.5


@dataclass(frozen=True)
class Segment:
    phone: str  # VocalTractLab SAMPA; PAUSE for silence
    duration: float  # s
    pitch: float = 0.0  # target, semitones above the speaker's base f0


@dataclass(frozen=True)
class Utterance:
    id: str
    condition: str
    text: str
    segments: tuple[Segment, ...]
    material: str = "read"  # utterances.MATERIALS: what kind of speech it is
    rate: float = 1.0  # its speaking rate, relative to the speaker's own

    @property
    def duration(self) -> float:
        return float(sum(segment.duration for segment in self.segments))

    def phone_intervals(self) -> list[dict]:
        """[{"phone", "start", "end"}] of the non-pause segments, in seconds."""
        intervals, start = [], 0.0
        for segment in self.segments:
            end = start + segment.duration
            if segment.phone != PAUSE:
                intervals.append({"phone": segment.phone, "start": round(start, 5), "end": round(end, 5)})
            start = end
        return intervals

    def check_phones(self) -> None:
        inventory.check_phones((s.phone for s in self.segments), f"utterance {self.id!r}")


def pause(bounds: tuple[float, float], rng: np.random.Generator) -> Segment:
    return Segment(PAUSE, float(rng.uniform(*bounds)))


def jitter(rng: np.random.Generator) -> float:
    return 1.0 + rng.uniform(-DURATION_JITTER, DURATION_JITTER)
