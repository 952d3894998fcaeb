"""rtmri render BUNDLE AUDIO -o OUT.mp4: audio file -> rtMRI video, as fast as possible,
through the same streaming code path as live."""

from __future__ import annotations

import argparse

from rtmri.alignment import FPS
from rtmri.audio import AudioError
from rtmri.bundle.engine import Engine
from rtmri.streamer.mp4 import Mp4Sink
from rtmri.streamer.side_by_side import SideBySide
from rtmri.streamer.sources import FileSource
from rtmri.streamer.stream import Streamer
from rtmri.streamer.summary import print_summary, write_json
from rtmri.video.compose import DISPLAY_SIZE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle (folder, model.onnx or model.onnx.json)")
    parser.add_argument("audio", help="speech to render (wav, flac, mp3, or a video with sound)")
    parser.add_argument("-o", "--output", required=True, help="MP4 file to write")
    parser.add_argument("--side-by-side", metavar="ORIGINAL", help="original rtMRI video to show next to the generated one")
    parser.add_argument("--size", type=int, default=DISPLAY_SIZE,
                        help=f"side of the written picture in pixels (default {DISPLAY_SIZE})")
    parser.add_argument("--provider", help="onnxruntime provider: tensorrt, cuda or cpu (default: the best available)")
    parser.add_argument("--smooth", type=float, default=0.0, help="temporal smoothing 0..1 (default 0: off)")
    parser.add_argument("--json", help="also write the figures as JSON here")


def main(args) -> int:
    engine = Engine(args.bundle, provider=args.provider)
    engine.warm_up()
    source = FileSource(args.audio, realtime=False)
    if source.duration_s * FPS < 1:
        raise AudioError(f"{args.audio}: {source.duration_s * 1000:.0f} ms of audio is shorter than one frame ({1000 // FPS} ms): nothing to render")
    compose = None
    if args.side_by_side:
        compose = SideBySide(args.side_by_side, engine.bundle, args.size)
    sink = Mp4Sink(args.output, size=args.size, compose=compose)
    stats = Streamer(engine, [sink], realtime=False, smoothing=args.smooth).run(source)
    summary = stats.summary()
    print_summary(summary, f"rendered {args.output}")
    if args.json:
        write_json(summary, args.json)
    return 0
