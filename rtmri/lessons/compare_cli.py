"""rtmri compare ATTEMPT REFERENCE -o OUT: a learner's attempt against a native reference.

REFERENCE is a lesson folder or a recording (its ``.json`` and video beside it are used
where they exist). OUT gets ``compare.mp4`` (reference | attempt on the reference's clock;
reference sound on the left channel, the time-warped attempt on the right), ``curves.png``
(the constriction curves of both, with the reference's phones), ``compare.json`` (score,
curves, the differences in words) and ``compare.html`` (the learner page's comparison panel,
with no server: aligned replay at 1x, 0.5x, 0.25x with a scrubber and both sounds, labels on
the articulators, the curves, the differences, in English or Japanese). Recordings in any sample rate; a silent or too-short
attempt exits with status 2 and says why. The differences name phones in IPA (rtmri.lessons.ipa: /ɯ/, not the
synthesizer's M); compare.json keeps each phone's SAMPA as "phone", its IPA beside it as "ipa".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rtmri.audio import load_audio
from rtmri.bundle.engine import Engine
from rtmri.demo import shipped
from rtmri.files import atomic_write
from rtmri.lessons import outputs
from rtmri.lessons.activity import AttemptError
from rtmri.lessons.compare import compare
from rtmri.lessons.grid import bundle_grid
from rtmri.lessons.lesson import read_lesson
from rtmri.lessons.panel import panel_html, panel_payload

MP4_FILE, PNG_FILE, JSON_FILE, HTML_FILE = "compare.mp4", "curves.png", "compare.json", "compare.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("attempt", type=Path, help="the learner's recording (wav, flac, mp3, ogg, or a video with sound)")
    parser.add_argument("reference", type=Path, help="a lesson folder, or a native recording (with <name>.json beside it for its words)")
    parser.add_argument("-o", "--out", type=Path, required=True, help=f"folder for {MP4_FILE}, {PNG_FILE}, {JSON_FILE}, {HTML_FILE}")
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--provider", help="onnxruntime provider: tensorrt, cuda or cpu (default: the best available)")
    parser.add_argument("--no-video", action="store_true", help=f"write no {MP4_FILE}")


def main(args) -> int:
    lesson = read_lesson(args.reference)
    if lesson.note:
        print(f"rtmri compare: note: {lesson.audio}: {lesson.note}", file=sys.stderr)
    reference_wav = load_audio(lesson.audio)
    attempt_wav = load_audio(args.attempt)
    engine = Engine(args.bundle or shipped().bundle, provider=args.provider)
    grid = bundle_grid(engine.bundle)
    try:
        comparison = compare(attempt_wav, reference_wav, engine, grid, lesson.phones)
    except AttemptError as exc:
        raise AttemptError(f"{args.attempt}: {exc}") from exc
    args.out.mkdir(parents=True, exist_ok=True)
    outputs.write_json(args.out / JSON_FILE, comparison, lesson, args.attempt)
    title = f"{lesson.name}: {lesson.romaji or lesson.id}   score {comparison.score}/100"
    try:
        outputs.write_curves_png(args.out / PNG_FILE, comparison, title)
    except ImportError as exc:  # matplotlib comes with the [live] and [eval] extras, not the core
        print(f"rtmri compare: note: no {PNG_FILE} ({exc}; pip install 'rtmri-live[eval]')", file=sys.stderr)
    payload = panel_payload(comparison, lesson.describe(), reference_wav, attempt_wav, grid, engine.image_size)
    atomic_write(args.out / HTML_FILE, panel_html(payload, title))
    if not args.no_video:
        outputs.write_mp4(args.out / MP4_FILE, comparison, reference_wav, attempt_wav)
    print(f"rtmri compare: {lesson.name} ({lesson.romaji or lesson.id}): score {comparison.score}/100 "
          f"(distance {comparison.distance:.2f}: 1 = as large as a named difference)")
    for segment in comparison.segments:
        print(f"  - {segment.en}")
    if not comparison.segments:
        print("  no large difference from the reference")
    print(f"rtmri compare: wrote {args.out}/ ({', '.join(n for n in (JSON_FILE, PNG_FILE, HTML_FILE, MP4_FILE) if (args.out / n).exists())})")
    return 0
