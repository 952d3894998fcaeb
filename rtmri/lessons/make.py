"""rtmri make-lessons OUT: the shipped lesson set, spoken by synthetic native speakers in three voices.

Each lesson of ``catalogue.LESSONS`` is synthesized with the corpus synthesizer
(``rtmri.synth``: VocalTractLab, the corpus's MRI renderer) by each of the held-out speakers
of the default model's corpus (``VOICES``: a male, a female and a child, each with its own
tract; voices the model never heard), at a learner's pace, then written as loose lesson
files (<lesson>.<voice>.flac, .mp4, .json) the way the demo's references are: 16 kHz FLAC,
the rtMRI cropped with the speaker's crop, at 25 fps by timestamp, at the model's image
size, as H.264. Needs the ``[synth]`` extra.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile

from rtmri.audio import SAMPLE_RATE, load_audio
from rtmri.clips import IMAGE_SIZE
from rtmri.files import atomic_write
from rtmri.lessons.catalogue import LESSONS, LessonText
from rtmri.lessons.lesson import Lesson
from rtmri.streamer.side_by_side import original_frames_25fps
from rtmri.synth.errors import SynthError
from rtmri.synth.japanese import CV, FLAP, MORAIC_NASAL, parse_text
from rtmri.synth.japanese_timing import japanese_segments
from rtmri.synth.layout import SpeakerFolder
from rtmri.synth.segments import Utterance
from rtmri.video import resize_frames, write_video

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "demo" / "assets" / "lessons"
# The default model's corpus (README: c20) and its held-out speakers, one per voice.
CORPUS_SEED, CORPUS_SPEAKERS, CORPUS_HELD_OUT = 0, 15, 3
CORPUS_TYPES = ("male", "female", "child")
VOICES = {"male": "spk13", "female": "spk14", "child": "spk15"}
MORAE_PER_S = 5.0  # slower than the corpus (6.6-8.6): a lesson is said clearly
VIDEO_CRF = 23  # the lessons stay small; the model's frames are what is compared
AUDIO_SUFFIX, VIDEO_SUFFIX = ".flac", ".mp4"
CONDITION = "lesson"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, nargs="?", default=DEFAULT_OUT, help=f"lesson set folder (default {DEFAULT_OUT})")
    parser.add_argument("--only", nargs="*", help="lesson ids to make (default all)")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help=f"video size in px (default {IMAGE_SIZE})")
    parser.add_argument("--voices", type=_voices, default=tuple(VOICES), metavar="V1,V2,...",
                        help=f"voices to make, of {', '.join(VOICES)} (default all)")


def _voices(text: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    if not names or any(name not in VOICES for name in names):
        raise argparse.ArgumentTypeError(f"{text!r}: give voices separated by commas, of {', '.join(VOICES)}")
    return names


def main(args) -> int:
    chosen = [t for t in LESSONS if not args.only or t.id in args.only]
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="rtmri-lessons-") as scratch:
        for voice in args.voices:
            speaker = voice_speaker(voice, Path(scratch))
            for text in chosen:
                lesson = make_lesson(text, speaker, voice, Path(scratch), args.out, args.size)
                print(f"rtmri make-lessons: {lesson.id}: {lesson.romaji} ({lesson.phones[-1]['end']:.2f} s)", file=sys.stderr)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"rtmri make-lessons: {args.out}: {len(chosen)} lessons in {len(args.voices)} voices, {size / 1e3:.0f} KB")
    return 0


def voice_speaker(voice: str, scratch: Path):
    """The held-out speaker of the default model's corpus who speaks the voice, with its own tract built."""
    from rtmri.synth.speakers import build_speaker_tract, make_speakers  # VocalTractLab: not needed for --help

    speakers = make_speakers(CORPUS_SPEAKERS, CORPUS_HELD_OUT, CORPUS_SEED, CORPUS_TYPES)
    speaker = next(s for s in speakers if s.id == VOICES[voice])
    return build_speaker_tract(speaker, scratch / f"tract-{speaker.id}")


def lesson_id(text: LessonText, voice: str) -> str:
    return f"{text.id}.{voice}"


def make_lesson(text: LessonText, speaker, voice: str, scratch: Path, out: Path, size: int) -> Lesson:
    """Written as loose files with the text beside them (``<lesson>.<voice>.flac``, ``.mp4``, ``.json``):
    what earlier readers of a references folder also read."""
    # VocalTractLab (the synth extra): the synthesizer, not needed for --help
    from rtmri.synth.job import synthesize_job
    from rtmri.synth.plan import Job

    utterance = lesson_utterance(text, speaker)
    result = synthesize_job(Job(speaker, utterance, str(scratch), CORPUS_SEED))
    if result.error:
        raise SynthError(f"lesson {text.id} ({voice}): {result.error}")
    made = scratch / speaker.id
    meta = SpeakerFolder(made).read_meta(text.id)
    frames = resize_frames(original_frames_25fps(made / "video" / f"{text.id}.mp4", speaker.crop), size)
    audio = load_audio(made / "audio" / f"{text.id}.wav")
    stem = out / lesson_id(text, voice)
    audio_file, video_file = stem.parent / (stem.name + AUDIO_SUFFIX), stem.parent / (stem.name + VIDEO_SUFFIX)
    lesson = Lesson(stem.name, text.name, audio_file, video_file, text.text, text.kana, text.romaji, text.gloss,
                    text.name_ja, tuple(phone_labels(text.romaji, meta["phones"])),
                    f"{speaker.id} ({voice}, synthetic, VocalTractLab, {MORAE_PER_S:g} morae/s)", voice=voice, lesson=text.id)
    soundfile.write(str(lesson.audio), np.clip(audio, -1, 1), SAMPLE_RATE, subtype="PCM_16")
    write_video(lesson.video, frames, 25, crf=VIDEO_CRF)
    atomic_write(stem.parent / (stem.name + ".json"), json.dumps(lesson.to_json(), indent=1, ensure_ascii=False) + "\n")
    return lesson


def lesson_utterance(text: LessonText, speaker):
    rng = np.random.default_rng([CORPUS_SEED, speaker.index, zlib.crc32(text.id.encode())])
    utterance = Utterance(text.id, CONDITION, text.romaji, tuple(japanese_segments(text.romaji, 1.0 / MORAE_PER_S, rng)))
    utterance.check_phones()
    return utterance


def phone_labels(romaji: str, phones: list[dict]) -> list[dict]:
    """The synthesizer's phones, its stand-in for the flap (a short d) labelled r.

    The morae of the text give one phone per onset consonant and vowel, one per moraic nasal
    and none for a geminate or the second half of a long vowel; where that count is not the
    phones', the labels stay the synthesizer's."""
    kinds: list[str | None] = []
    for sentence in parse_text(romaji):
        for phrase in sentence:
            for _, morae in phrase:
                for mora in morae:
                    if mora.kind == CV:
                        kinds.extend(kind for _, kind in mora.onset)
                        kinds.append(None)
                    elif mora.kind == MORAIC_NASAL:
                        kinds.append(None)
    if len(kinds) != len(phones):
        return [dict(p) for p in phones]
    return [dict(p, phone="r") if kind == FLAP else dict(p) for p, kind in zip(phones, kinds)]
