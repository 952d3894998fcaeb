"""Lessons in three voices: every shipped lesson by a male, a female and a child speaker with
their own tracts, and the demo's references spread over the held-out speakers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from rtmri.audio import SAMPLE_RATE, load_audio
from rtmri.demo import ASSETS
from rtmri.demo.package import spread_over_speakers
from rtmri.lessons.catalogue import LESSONS
from rtmri.lessons.lesson import read_lessons

VOICES = ("male", "female", "child")


def _f0(wav: np.ndarray) -> float:
    """Median f0 of the voiced frames (parselmouth, the synth extra), Hz."""
    parselmouth = pytest.importorskip("parselmouth")
    pitch = parselmouth.Sound(wav.astype(np.float64), SAMPLE_RATE).to_pitch(pitch_floor=60, pitch_ceiling=600)
    values = pitch.selected_array["frequency"]
    return float(np.median(values[values > 0]))


def test_every_lesson_comes_in_three_voices():
    lessons = read_lessons(ASSETS / "lessons")
    by_voice = {(lesson.lesson, lesson.voice): lesson for lesson in lessons}
    assert set(by_voice) == {(text.id, voice) for text in LESSONS for voice in VOICES}
    for text in LESSONS:
        speakers = {by_voice[text.id, voice].speaker.split()[0] for voice in VOICES}
        assert len(speakers) == 3, f"{text.id}: one speaker per voice"
        for voice in VOICES:
            described = by_voice[text.id, voice].describe()
            assert described["voice"] == voice and described["lesson"] == text.id
            assert described["romaji"] == text.romaji


def test_the_voices_sound_like_their_type():
    lessons = {lesson.voice: lesson for lesson in read_lessons(ASSETS / "lessons") if lesson.lesson == "01_vowels"}
    f0 = {voice: _f0(load_audio(lessons[voice].audio)) for voice in VOICES}
    assert f0["male"] < 0.75 * min(f0["female"], f0["child"]), f0  # an adult man's voice, then two higher ones


@dataclass
class _Clip:
    clip_id: str
    speaker: str


def test_references_are_spread_over_the_speakers():
    clips = [_Clip(f"{s}/passage_ja_{k:02d}", s) for s in ("spk13", "spk14", "spk15") for k in range(1, 6)]
    chosen = spread_over_speakers(clips, 4)
    assert [c.speaker for c in chosen] == ["spk13", "spk14", "spk15", "spk13"]
    assert [c.clip_id for c in chosen][:2] == ["spk13/passage_ja_01", "spk14/passage_ja_01"]
    assert spread_over_speakers(clips[:2], 4) == clips[:2]
