"""`rtmri prepare SRC OUT`: rtMRI recordings -> 25 fps clip dataset (see the package's
docstring). `rtmri prepare --preview SRC [OUT_DIR]`: a PNG per speaker with the crop drawn.
Imports nothing heavy at the top."""

from __future__ import annotations

import argparse
from pathlib import Path

from rtmri.clips import IMAGE_SIZE, IMAGE_SIZES
from rtmri.prepare import PrepareError
from rtmri.prepare.report import REPORT_FILE
from rtmri.prepare.splits import parse_fractions

DEFAULT_PREVIEW_DIR = "prepare_preview"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        "layouts recognised: the rtmri synth corpus (crop, condition and phones from its metadata), "
        "USC-TIMIT (<speaker>/avi, <speaker>/wav), the USC 75-speaker database (subNNN/2drt/video, "
        "subNNN/2drt/audio), or any folder with --speaker-pattern.\n"
        "frame rate: converted to 25 fps by timestamp, each output frame a linear blend of the two "
        "source frames around its instant.\n"
        "output: OUT/dataset.json, OUT/filelists/{train,val,test,unseen_ja,unseen_nonja}.txt, "
        "OUT/clips/..., OUT/report.md, OUT/manifest.json. Re-running into the same OUT skips the "
        "recordings already done."
    )
    parser.add_argument("src", metavar="SRC", type=Path, help="folder of recordings")
    parser.add_argument("out", metavar="OUT", type=Path, nargs="?", help=f"output dataset folder (with --preview: the PNG folder, default ./{DEFAULT_PREVIEW_DIR})")
    parser.add_argument("--crop", metavar="X,Y,W,H", help="crop in source pixels, the lower half being the tongue region (default: the synth corpus's metadata, else the whole frame)")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, choices=IMAGE_SIZES, help=f"output image size in px (default {IMAGE_SIZE}, the wav2lip networks')")
    parser.add_argument("--clip-seconds", type=float, default=5.0, metavar="S", help="clip length, cut at pauses where there are some (default 5)")
    parser.add_argument("--split", default="0.8,0.1,0.1", metavar="TRAIN,VAL,TEST", help="fractions of the training speakers' clips (default 0.8,0.1,0.1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random split (default 0)")
    parser.add_argument("--heldout", default="", metavar="SPK[,SPK]", help="speakers kept out of train/val/test (added to the corpus's own held-out speakers)")
    parser.add_argument("--speaker-pattern", metavar="REGEX", help="any folder of videos: the speaker is the group 'speaker' (else group 1, else the match) of REGEX in each video's path relative to SRC")
    parser.add_argument("--trim", action="store_true", help="when audio and video lengths differ (by up to 0.5 s), cut both to the shorter")
    parser.add_argument("--strict", action="store_true", help="stop at the first problem instead of skipping the recording")
    parser.add_argument("--workers", type=int, default=2, help="recordings processed in parallel (default 2)")
    parser.add_argument("--interpolation", choices=("linear", "nearest"), default="linear", help="frame-rate conversion by timestamp (default linear)")
    parser.add_argument("--landmarks", type=Path, metavar="FILE",
                        help='analysis-grid landmarks per speaker in source pixels, for real recordings: {"pixel_mm": 1.0, '
                             '"speakers": {"SPK": {"glottis": [x, y], "alveolar_ridge": [x, y], "palate": [x, y], "upper_lip": [x, y]}}} '
                             "(synthetic corpora bring their own)")
    parser.add_argument("--preview", action="store_true", help="only write a PNG per speaker with the crop drawn on a frame")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.replace(" ", "").split(","))
    except ValueError as exc:
        raise PrepareError(f"--crop {text!r}: expected four whole numbers x,y,w,h") from exc
    if len(values) != 4:
        raise PrepareError(f"--crop {text!r}: expected four whole numbers x,y,w,h")
    if values[0] < 0 or values[1] < 0 or values[2] <= 0 or values[3] <= 0:
        raise PrepareError(f"--crop {text!r}: x and y must be >= 0, w and h > 0")
    return values  # type: ignore[return-value]


def main(args: argparse.Namespace) -> int:
    crop = parse_crop(args.crop)
    if args.preview:
        from rtmri.prepare.preview import run_preview  # scikit-image (the outlines): `rtmri prepare --help` stays light

        out_dir = args.out or Path(DEFAULT_PREVIEW_DIR)
        for path in run_preview(args.src, out_dir, crop, args.size, args.speaker_pattern, args.landmarks):
            print(path)
        return 0
    if args.out is None:
        raise PrepareError("OUT is required (the dataset folder to write), unless --preview")
    from rtmri.prepare.pipeline import Options, run  # scikit-image (the outlines): `rtmri prepare --help` stays light

    opts = Options(
        src=args.src, out=args.out, size=args.size, crop=crop, clip_seconds=args.clip_seconds,
        fractions=parse_fractions(args.split), seed=args.seed,
        heldout=tuple(s.strip() for s in args.heldout.split(",") if s.strip()), speaker_pattern=args.speaker_pattern,
        trim=args.trim, strict=args.strict, workers=args.workers, interpolation=args.interpolation,
        progress=not args.no_progress, landmarks=args.landmarks,
    )
    manifest = run(opts)
    r, s = manifest["run"], manifest["splits"]
    print(
        f"{r['recordings']} recordings: {r['prepared']} prepared, {r['reused']} already done, {r['skipped']} skipped "
        f"({r['elapsed_s']} s)"
    )
    print("clips: " + ", ".join(f"{name} {v['clips']} ({v['hours']:.3f} h)" for name, v in s.items()))
    print(f"report: {opts.out / REPORT_FILE}")
    return 0
