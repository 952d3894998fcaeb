"""``rtmri synth OUT --minutes M --speakers N``: write a synthetic rtMRI corpus."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rtmri.synth.corpus import CorpusRequest, write_corpus
from rtmri.synth.errors import SynthError
from rtmri.synth.grid import rewrite_grids
from rtmri.synth.layout import utterance_videos
from rtmri.synth.tracts import DEFAULT_TYPES, TYPES
from rtmri.synth.utterances import MATERIALS, READ

DEFAULT_SPEAKERS = 4
DEFAULT_HELD_OUT = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, metavar="OUT", help="folder to write the corpus into")
    parser.add_argument("--minutes", type=float, help="minutes of training speech, over all training speakers (required)")
    parser.add_argument("--speakers", type=int, default=DEFAULT_SPEAKERS, help=f"number of speakers (default {DEFAULT_SPEAKERS})")
    parser.add_argument(
        "--heldout-speakers", type=int, default=DEFAULT_HELD_OUT,
        help=f"speakers never used in training, who read the Japanese passage and non-Japanese sentences (default {DEFAULT_HELD_OUT})",
    )
    parser.add_argument("--seed", type=int, default=0, help="the same seed writes the same corpus (default 0)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a corpus already in OUT (without it, an unfinished corpus of the same command resumes)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes (default: one per core)")
    parser.add_argument(
        "--eval-sentences", type=int, default=None, metavar="N",
        help="held-out speakers read only the first N passage sentences and N non-Japanese sentences (default: all)",
    )
    parser.add_argument(
        "--types", type=_types, default=DEFAULT_TYPES, metavar="T1,T2,...",
        help=f"speaker types the training speakers take in turn, of {', '.join(TYPES)} (default {','.join(DEFAULT_TYPES)})",
    )
    parser.add_argument(
        "--heldout-types", type=_types, default=None, metavar="T1,T2,...",
        help="speaker types the held-out speakers take in turn (default: --types)",
    )
    parser.add_argument(
        "--material", choices=MATERIALS, default=READ,
        help="what training speakers say: read sentences (default), or mixed: also isolated words and syllables, "
             "sustained vowels, minimal pairs and sentences with pauses, or multilingual: half the time phrases of "
             "pseudo-words over the synthesizer's whole phone inventory (front rounded and lax vowels, [l], clusters)",
    )
    parser.add_argument(
        "--rates", type=_rates, default=None, metavar="LOW,HIGH",
        help="speaking rate of each training utterance, drawn between LOW and HIGH times the speaker's own "
             "(e.g. 0.7,1.6; default: 0.88-1.14)",
    )
    parser.add_argument(
        "--edge-voices", type=int, default=0, metavar="N",
        help="the last N held-out speakers get a voice at the edge of the range (very low f0 and pressed, or very "
             "high f0 and breathy, in turn; default 0)",
    )
    parser.add_argument(
        "--only", type=_names, default=None, metavar="SPK1,SPK2,...",
        help="make only these speakers of the corpus, each saying what it says in the whole corpus (unless a speaker "
             "outside the sample is one VocalTractLab rejects; a sample of a "
             "large corpus; the same command without --only goes on to make the rest)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--grids-only", action="store_true",
        help="synthesize nothing: rewrite the analysis grid (<speaker>/grid.json) of the corpus already in OUT from its "
             "speakers' tract files, then re-run `rtmri prepare OUT DATA` (it resumes) to carry them into DATA/grids",
    )


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _types(text: str) -> tuple[str, ...]:
    names = _comma_list(text)
    unknown = [name for name in names if name not in TYPES]
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{text!r}: give speaker types separated by commas, of {', '.join(TYPES)}")
    return names


def _names(text: str) -> tuple[str, ...]:
    names = _comma_list(text)
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r}: give speaker ids separated by commas, e.g. spk001,spk002")
    return names


def _rates(text: str) -> tuple[float, float]:
    try:
        low, high = (float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give two numbers separated by a comma, e.g. 0.7,1.6") from None
    return low, high


def main(args: argparse.Namespace) -> int:
    if args.grids_only:
        print(f"rewrote the grids of {', '.join(rewrite_grids(args.out))} in {args.out}")
        return 0
    if args.minutes is None:
        raise SynthError("--minutes is required (or --grids-only)")
    request = CorpusRequest(
        out=args.out,
        minutes=args.minutes,
        n_speakers=args.speakers,
        n_held_out=args.heldout_speakers,
        seed=args.seed,
        overwrite=args.overwrite,
        workers=args.workers,
        eval_sentences=args.eval_sentences,
        progress=not args.quiet,
        types=args.types,
        heldout_types=args.heldout_types,
        material=args.material,
        rates=args.rates,
        edge_voices=args.edge_voices,
        only=args.only,
    )
    corpus = write_corpus(request)
    written = len(utterance_videos(args.out))
    print(f"wrote {written} utterances of {len(corpus['speakers'])} speakers to {args.out} ({len(corpus['skipped'])} skipped"
          + (f", {len(corpus['skipped_speakers'])} speakers skipped" if corpus["skipped_speakers"] else "") + ")")
    return 0
