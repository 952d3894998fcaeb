"""The `rtmri` command. Each subcommand lives in its own module, imported only when that
subcommand runs, so `rtmri live` never pays for (or needs) torch."""

from __future__ import annotations

import argparse
import importlib
import sys

from rtmri import RtmriError, __version__

# name -> (module exposing add_arguments(parser) and main(args) -> int, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("rtmri.demo.cli", "the shipped default model: example streamed, learner page served, window or --headless MP4"),
    "synth": ("rtmri.synth.cli", "write a synthetic rtMRI corpus with VocalTractLab"),
    "contact-sheet": ("rtmri.video.contact_sheet", "PNG contact sheet of frames from a video"),
    "prepare": ("rtmri.prepare.cli", "turn rtMRI recordings into a 25 fps clip dataset"),
    "train": ("rtmri.training.train_cli", "train the SyncNet expert, the generator or the FC-LSTM baseline; `train sizes` for the widths"),
    "export": ("rtmri.export.cli", "checkpoint (generator or baseline) -> model bundle (ONNX + manifest), with parity checks"),
    "eval": ("rtmri.evaluation.cli", "SSIM / NMSE of a bundle per condition of the study, next to baselines"),
    "benchmark-variants": ("rtmri.export.bench_variants", "ms per frame and validation SSIM of every export variant"),
    "live": ("rtmri.streamer.live_cli", "microphone or file -> rtMRI frames at 25 fps in a window (and MP4)"),
    "render": ("rtmri.streamer.render_cli", "audio file -> rtMRI video (MP4 with the audio), as fast as possible"),
    "benchmark-latency": ("rtmri.streamer.benchmarks.latency", "latency per stage (p50/p95/p99) against the budget: file, microphone, browser, window"),
    "benchmark-soak": ("rtmri.streamer.benchmarks.soak", "stream for minutes in real time: memory and latency per minute (no drift)"),
    "serve": ("rtmri.streamer.serve_cli", "frames in browsers over WebSocket: classroom broadcast or learner microphone sessions"),
    "benchmark-serve": ("rtmri.streamer.benchmarks.serve", "`rtmri serve` under load on loopback: viewers at 25 fps, learner sessions that keep up"),
    "deploy": ("rtmri.deploy.cli", "`deploy haproxy`: the HAProxy configuration for `rtmri serve` workers on several machines"),
    "package-demo": ("rtmri.demo.package", "write the demo's files (bundle, example, references) from a dataset and a bundle"),
    "make-lessons": ("rtmri.lessons.make", "synthesize the shipped lesson set (native reference utterances with their words)"),
    "compare": ("rtmri.lessons.compare_cli", "compare a learner's attempt with a native reference: aligned MP4, curves PNG, score JSON"),
    "make-mistakes": ("rtmri.mistakes.make", "synthesize the benchmark of known learner mistakes (unseen voices, labelled)"),
    "compare-bench": ("rtmri.mistakes.bench", "score the learner comparison on the benchmark of mistakes: detection, localisation, false alarms"),
}


def build_parser(argv: list[str]) -> tuple[argparse.ArgumentParser, object]:
    parser = argparse.ArgumentParser(prog="rtmri", description="rtmri-live: speech in, real-time MRI video of the vocal tract out.")
    parser.add_argument("--version", action="version", version=f"rtmri-live {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    runner = None
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if argv and argv[0] == name:
            module = importlib.import_module(module_name)
            module.add_arguments(command_parser)
            runner = module.main
    return parser, runner


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser, runner = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(runner(args) or 0)
    except RtmriError as exc:
        print(f"rtmri {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rtmri {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
