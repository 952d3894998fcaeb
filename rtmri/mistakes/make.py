"""rtmri make-mistakes OUT --seed S: the benchmark of known learner mistakes (layout: ``layout.py``).

The native references are the lessons of ``rtmri.lessons.catalogue`` said the way `rtmri
make-lessons` says them in its male voice (``REFERENCE_VOICE``: its speaker, pace and timing draws). The learners are voices no
corpus has: drawn by ``rtmri.synth.speakers.make_speakers`` with the seed ``SPEAKER_SEED + S``
(the corpora use 0), ``--speakers-per-type`` of each type (male, female, child). For
every lesson, speaker type and speaking rate one voice says the words correctly and, for each
mistake of the lesson (``catalogue.VARIANTS``), another voice of that type says them with the
mistake: so every mistaken attempt has correct attempts by other voices of its type, at its
rate and at the others.

Resumable: an attempt whose audio and label exist is skipped; each file is written
atomically, the label last; ``bench.json`` is written when every attempt is there. Audio only
(16 kHz FLAC): it is what a learner gives. Needs the ``[synth]`` extra.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tempfile
import time
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import soundfile
import soxr
from tqdm import tqdm

from rtmri.audio import SAMPLE_RATE
from rtmri.files import atomic_write, remove_stale_temporaries
from rtmri.lessons import make as lesson_make
from rtmri.lessons.catalogue import LESSONS, LessonText
from rtmri.lessons.lesson import Lesson
from rtmri.mistakes import catalogue
from rtmri.mistakes.layout import ATTEMPTS, BENCH_FORMAT, BENCH_VERSION, LABEL_FORMAT, REFERENCES, SPEAKERS, BenchError, BenchFolder
from rtmri.synth import japanese, vtl
from rtmri.synth.errors import SpeakerRejected
from rtmri.synth.japanese_timing import ONSET_SHARE, japanese_segments
from rtmri.synth.segments import Segment, Utterance
from rtmri.synth.speakers import Speaker, build_speaker_tract, make_speakers
from rtmri.synth.tracts import DEFAULT_TYPES

SPEAKER_SEED = 25_000  # + --seed: a seed no corpus uses (they use 0), so every voice is unseen
SPARE_SPEAKERS = 2  # drawn per type beyond --speakers-per-type, for tracts VocalTractLab cannot make
REFERENCE_VOICE = "male"  # of rtmri make-lessons' voices
RATES = (4.0, 5.0, 6.0)  # morae per second: slower than, as fast as and faster than the lessons (5)
PEAK = 0.7  # each attempt is scaled to this peak, like a level-normalised recording
CORRECT = "correct"


@dataclass(frozen=True)
class Attempt:
    id: str
    lesson: LessonText
    speaker: Speaker
    rate: float
    variant: catalogue.Variant | None  # None: said correctly

    @property
    def said(self) -> str:
        return self.variant.said if self.variant and self.variant.said else self.lesson.romaji


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="benchmark folder (made, or resumed)")
    parser.add_argument("--seed", type=int, default=0, help="draws the voices and their timing (default 0)")
    parser.add_argument("--rates", type=float, nargs="+", default=list(RATES), help=f"speaking rates, morae/s (default {' '.join(map(str, RATES))})")
    parser.add_argument("--speakers-per-type", type=int, default=4, help="voices of each type (default 4; at least 2)")
    parser.add_argument("--types", nargs="+", default=list(DEFAULT_TYPES), help=f"speaker types (default {' '.join(DEFAULT_TYPES)})")
    parser.add_argument("--lessons", nargs="+", help="lesson ids (default all)")
    parser.add_argument("--mistakes", nargs="*", help=f"mistake types (default all: {' '.join(catalogue.TYPES)}; "
                        "none named: correct attempts only)")


def main(args) -> int:
    if args.speakers_per_type < 2:
        raise BenchError("--speakers-per-type must be at least 2: a mistake is set against correct attempts by other voices")
    bench = BenchFolder(args.out)
    (bench.path / ATTEMPTS).mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(bench.path / ATTEMPTS)
    remove_stale_temporaries(bench.path / REFERENCES)
    lessons = chosen_lessons(args.lessons)
    variants = chosen_variants(lessons, args.mistakes)
    started = time.process_time()
    voices, rejected = build_voices(bench, args.seed, tuple(args.types), args.speakers_per_type)
    reference_phones = {text.id: make_reference(bench, text) for text in lessons}
    attempts = plan_attempts(lessons, variants, voices, tuple(args.rates))
    todo = [a for a in attempts if not bench.done(a.id)]
    relabelled = sum(relabel(bench, a, reference_phones[a.lesson.id]) for a in attempts if a not in todo)
    print(f"rtmri make-mistakes: {len(attempts)} attempts ({len(attempts) - len(todo)} already written), "
          f"{sum(1 for a in attempts if a.variant)} with a mistake; {relabelled} labels brought up to the catalogue",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="rtmri-mistakes-") as scratch:
        for attempt in tqdm(todo, desc="make-mistakes", unit="attempt", file=sys.stderr):
            write_attempt(bench, attempt, reference_phones[attempt.lesson.id], args.seed, Path(scratch))
    manifest = bench_manifest(args, voices, rejected, variants, attempts, time.process_time() - started)
    atomic_write(bench.manifest, json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    size = sum(p.stat().st_size for p in bench.path.rglob("*") if p.is_file())
    print(f"rtmri make-mistakes: {bench.path}: {len(attempts)} attempts, {size / 1e6:.1f} MB")
    return 0


def chosen_lessons(ids) -> list[LessonText]:
    known = {text.id: text for text in LESSONS}
    unknown = [i for i in ids or () if i not in known]
    if unknown:
        raise BenchError(f"unknown lesson {unknown[0]!r}; the lessons are {', '.join(known)}")
    return [text for text in LESSONS if not ids or text.id in ids]


def chosen_variants(lessons: list[LessonText], mistakes) -> list[catalogue.Variant]:
    unknown = [m for m in mistakes or () if m not in catalogue.TYPES]
    if unknown:
        raise BenchError(f"unknown mistake type {unknown[0]!r}; the types are {', '.join(catalogue.TYPES)}")
    ids = {text.id for text in lessons}
    available = catalogue.VARIANTS + (rounded_u_variants() if has_rounded_u() else ())
    return [v for v in available if v.lesson in ids and (mistakes is None or v.mistake in mistakes)]


def has_rounded_u() -> bool:
    """The synthesizer has a Japanese /ɯ/ and the rounded /u/ apart (rtmri.synth.japanese)."""
    return hasattr(japanese, "JA_U") and hasattr(japanese, "ROUNDED_U")


def rounded_u_variants() -> tuple[catalogue.Variant, ...]:
    return tuple(replace(v, swap=japanese.ROUNDED_U) for v in catalogue.ROUNDED_U_VARIANTS)


def build_voices(bench: BenchFolder, seed: int, types: tuple[str, ...], per_type: int) -> tuple[dict[str, list[Speaker]], list[dict]]:
    """type -> per_type voices with their tracts built (kept in OUT/speakers), and the rejected."""
    drawn = make_speakers(len(types) * (per_type + SPARE_SPEAKERS), len(types) * (per_type + SPARE_SPEAKERS),
                          SPEAKER_SEED + seed, types, types)
    voices: dict[str, list[Speaker]] = {t: [] for t in types}
    rejected = []
    for speaker in tqdm(drawn, desc="voices", unit="tract", file=sys.stderr, leave=False):
        if len(voices[speaker.tract_type]) == per_type:
            continue
        try:
            voices[speaker.tract_type].append(build_speaker_tract(speaker, bench.speaker_folder(speaker.id)))
        except SpeakerRejected as exc:
            rejected.append({"speaker": speaker.id, "type": speaker.tract_type, "reason": str(exc)})
    short = [t for t, v in voices.items() if len(v) < per_type]
    if short:
        raise BenchError(f"VocalTractLab could make only {len(voices[short[0]])} {short[0]} voices of {per_type} asked for")
    return voices, rejected


def plan_attempts(lessons, variants, voices: dict[str, list[Speaker]], rates: tuple[float, ...]) -> list[Attempt]:
    """Per lesson, type and rate: one correct attempt, and each mistake by another voice of the type."""
    attempts = []
    for l_index, text in enumerate(lessons):
        mine = [v for v in variants if v.lesson == text.id]
        for type_name, speakers in voices.items():
            for r_index, rate in enumerate(rates):
                first = l_index + r_index
                correct = speakers[first % len(speakers)]
                attempts.append(Attempt(attempt_id(text.id, CORRECT, correct, rate), text, correct, rate, None))
                for v_index, variant in enumerate(mine):
                    speaker = speakers[(first + 1 + v_index % (len(speakers) - 1)) % len(speakers)]
                    attempts.append(Attempt(attempt_id(text.id, variant_name(variant), speaker, rate), text, speaker, rate, variant))
    return attempts


def variant_name(variant: catalogue.Variant) -> str:
    how = variant.said if variant.said else f"{variant.swap}{variant.phone}"
    return f"{variant.mistake}-{re.sub(r'[^A-Za-z0-9]+', '_', how).strip('_')}"


def attempt_id(lesson: str, what: str, speaker: Speaker, rate: float) -> str:
    return f"{lesson}.{what}.{speaker.id}.r{rate:g}"


def make_reference(bench: BenchFolder, text: LessonText) -> list[dict]:
    """The lesson said as `rtmri make-lessons` says it, written once; its phones."""
    path = bench.reference_text(text.id)
    if path.is_file() and bench.reference_audio(text.id).is_file():
        return json.loads(path.read_text(encoding="utf-8"))["phones"]
    # the shipped lessons' male voice, its tract kept with the learners' voices (built once)
    speaker = lesson_make.voice_speaker(REFERENCE_VOICE, bench.path / SPEAKERS)
    with tempfile.TemporaryDirectory(prefix="rtmri-mistakes-") as scratch:
        utterance = lesson_make.lesson_utterance(text, speaker)
        audio = spoken(utterance, speaker, Path(scratch))
    phones = lesson_make.phone_labels(text.romaji, utterance.phone_intervals())
    lesson = Lesson(text.id, text.name, bench.reference_audio(text.id), None, text.text, text.kana, text.romaji, text.gloss,
                    text.name_ja, tuple(phones), f"{speaker.id} (synthetic, VocalTractLab, {lesson_make.MORAE_PER_S:g} morae/s)")
    atomic_write(lesson.audio, flac_bytes(audio))
    atomic_write(path, json.dumps(lesson.to_json(), indent=1, ensure_ascii=False) + "\n")
    return phones


def spoken(utterance: Utterance, speaker: Speaker, scratch: Path) -> np.ndarray:
    """16 kHz float32 audio of the utterance in the speaker's voice, peak-normalised."""
    articulation = vtl.synthesize(utterance, speaker, scratch)
    audio = soxr.resample(articulation.audio, vtl.VTL_SAMPLE_RATE, SAMPLE_RATE, quality="HQ")
    return (audio * (PEAK / max(float(np.max(np.abs(audio))), 1e-9))).astype(np.float32)


def flac_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    soundfile.write(buffer, np.clip(audio, -1, 1), SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def attempt_segments(attempt: Attempt, seed: int) -> list[Segment]:
    rng = np.random.default_rng([seed, attempt.speaker.index, zlib.crc32(attempt.id.encode())])
    segments = japanese_segments(attempt.said, 1.0 / attempt.rate, rng)
    if attempt.variant is not None and attempt.variant.swap:
        segments = swapped(segments, attempt.variant)
    return segments


def swapped(segments: list[Segment], variant: catalogue.Variant) -> list[Segment]:
    """The phone at variant.phone said as variant.swap; with a swap_class it takes that class's
    share of its mora from the vowel after it (the mora keeps its length)."""
    spoken_at = [i for i, s in enumerate(segments) if s.phone]
    k = spoken_at[variant.phone]
    out = list(segments)
    out[k] = replace(out[k], phone=variant.swap)
    if variant.swap_class:
        mora = out[k].duration + out[k + 1].duration
        onset = mora * ONSET_SHARE[variant.swap_class]
        out[k] = replace(out[k], duration=onset)
        out[k + 1] = replace(out[k + 1], duration=mora - onset)
    return out


def write_attempt(bench: BenchFolder, attempt: Attempt, reference_phones: list[dict], seed: int, scratch: Path) -> None:
    utterance = Utterance(attempt.id, CORRECT if attempt.variant is None else attempt.variant.mistake, attempt.said,
                          tuple(attempt_segments(attempt, seed)))
    phones = lesson_make.phone_labels(attempt.said, utterance.phone_intervals())
    if attempt.variant is not None and attempt.variant.swap:
        phones[attempt.variant.phone]["phone"] = attempt.variant.swap
    if len(phones) != len(reference_phones):
        raise BenchError(f"attempt {attempt.id}: {len(phones)} phones said for the lesson's {len(reference_phones)}: "
                         "a variant of the catalogue must keep the lesson's phones one to one")
    audio = spoken(utterance, attempt.speaker, scratch)
    atomic_write(bench.attempt_audio(attempt.id), flac_bytes(audio))
    label = attempt_label(attempt, phones, reference_phones)
    atomic_write(bench.attempt_label(attempt.id), json.dumps(label, indent=1, ensure_ascii=False) + "\n")


def relabel(bench: BenchFolder, attempt: Attempt, reference_phones: list[dict]) -> bool:
    """A written attempt's label made again from the catalogue (its audio and phones kept); True if it changed."""
    path = bench.attempt_label(attempt.id)
    label = json.loads(path.read_text(encoding="utf-8"))
    fresh = attempt_label(attempt, label["phones"], reference_phones)
    if fresh == label:
        return False
    atomic_write(path, json.dumps(fresh, indent=1, ensure_ascii=False) + "\n")
    return True


def attempt_label(attempt: Attempt, phones: list[dict], reference_phones: list[dict]) -> dict:
    speaker = attempt.speaker
    label = {"format": LABEL_FORMAT, "version": BENCH_VERSION, "attempt": attempt.id, "lesson": attempt.lesson.id,
             "correct": attempt.variant is None, "mistake": attempt.variant.mistake if attempt.variant else None,
             "said": attempt.said, "expected": attempt.lesson.romaji,
             "speaker": {"id": speaker.id, "type": speaker.tract_type, "f0_hz": round(speaker.f0_hz, 1)},
             "morae_per_s": attempt.rate, "phones": phones}
    if attempt.variant is not None:
        variant, k = attempt.variant, attempt.variant.phone
        label["wrong"] = {
            "articulator": variant.articulators[0], "articulators": list(variant.articulators),
            "place": catalogue.place_of(variant.articulators[0]), "phone_index": k,
            "phone": reference_phones[k]["phone"], "said_phone": phones[k]["phone"],
            "kind": catalogue.TYPES[variant.mistake].kind, "what": catalogue.TYPES[variant.mistake].en,
            "start_s": phones[k]["start"], "end_s": phones[k]["end"],
            "reference_start_s": reference_phones[k]["start"], "reference_end_s": reference_phones[k]["end"],
        }
    return label


def bench_manifest(args, voices, rejected, variants, attempts, cpu_s: float) -> dict:
    return {
        "format": BENCH_FORMAT, "version": BENCH_VERSION, "seed": args.seed, "speaker_seed": SPEAKER_SEED + args.seed,
        "options": {"types": list(args.types), "speakers_per_type": args.speakers_per_type, "lessons": args.lessons,
                    "mistakes": args.mistakes},
        "generator": vtl.generator_name(), "rates_morae_per_s": list(args.rates),
        "speakers": [{"id": s.id, "type": s.tract_type, "f0_hz": round(s.f0_hz, 1)} for v in voices.values() for s in v],
        "rejected_speakers": rejected,
        "mistakes": {k: {"en": t.en, "kind": t.kind, "sources": [catalogue.SOURCES[s] for s in t.sources]}
                     for k, t in catalogue.TYPES.items() if any(v.mistake == k for v in variants)},
        "left_out": dict(catalogue.LEFT_OUT, **({} if has_rounded_u() else {
            "rounded_u": "a rounded /u/ for /ɯ/: this synthesizer has no Japanese /ɯ/ apart from the rounded u yet "
                         "(rtmri.synth.japanese JA_U, ROUNDED_U)"})),
        "attempts": [a.id for a in attempts],
        "n_mistaken": sum(1 for a in attempts if a.variant), "n_correct": sum(1 for a in attempts if not a.variant),
        "cpu_s_this_run": round(cpu_s, 1),
    }
