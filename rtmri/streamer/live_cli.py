"""rtmri live --bundle B: microphone (or a file played in real time) -> rtMRI frames at
25 fps in a local window, optionally recorded to MP4."""

from __future__ import annotations

import argparse
import os
import sys

from rtmri import RtmriError
from rtmri.bundle.engine import Engine
from rtmri.streamer.display import COLORMAPS, WindowSink
from rtmri.streamer.mp4 import Mp4Sink
from rtmri.streamer.sources import FileSource, MicrophoneSource, device_argument, list_devices
from rtmri.streamer.stream import Streamer
from rtmri.streamer.summary import print_summary, write_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", required=False, help="model bundle (folder, model.onnx or model.onnx.json)")
    parser.add_argument("--device", type=device_argument, help="input device number or name (see --list-devices); default: the system's")
    parser.add_argument("--list-devices", action="store_true", help="list the audio devices and exit")
    parser.add_argument("--file", help="stream this audio file in real time instead of the microphone")
    parser.add_argument("--audible", action="store_true", help="with --file: play it aloud while streaming")
    parser.add_argument("--fullscreen", action="store_true", help="fullscreen window (for a projector)")
    parser.add_argument("--colormap", choices=COLORMAPS, default="gray")
    parser.add_argument("--no-window", action="store_true", help="no local window (e.g. only --record)")
    parser.add_argument("--record", metavar="OUT.mp4", help="also write the frames and the audio to an MP4")
    parser.add_argument("--seconds", type=float, help="stop after this many seconds of audio")
    parser.add_argument("--smooth", type=float, default=0.0, help="temporal smoothing 0..1 (default 0: off)")
    parser.add_argument("--provider", help="onnxruntime provider: tensorrt, cuda or cpu (default: the best available)")
    parser.add_argument("--json", help="write the figures as JSON here at the end")


def open_window(fullscreen: bool, colormap: str, prog: str = "rtmri live"):
    """The pygame window, or None (with the reason said) where there is no display."""
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("SDL_VIDEODRIVER")):
        print(f"{prog}: no display here (DISPLAY is not set); running without a window", file=sys.stderr)
        return None

    try:
        window = WindowSink(fullscreen=fullscreen, colormap=colormap)
    except Exception as exc:  # pygame.error: no video device
        print(f"{prog}: cannot open a window ({exc}); running without one", file=sys.stderr)
        return None
    if not window.paints and os.environ.get("SDL_VIDEODRIVER") != window.driver:
        print(f"{prog}: the window opened on SDL's {window.driver} driver and shows nothing "
              f"(is the display {os.environ.get('DISPLAY') or os.environ.get('WAYLAND_DISPLAY')} running?)", file=sys.stderr)
    return window


def main(args) -> int:
    if args.list_devices:
        print(list_devices())
        return 0
    if not args.bundle:
        raise RtmriError("--bundle is required (a folder with model.onnx and model.onnx.json)")

    source = FileSource(args.file, realtime=True, audible=args.audible) if args.file else MicrophoneSource(args.device)
    engine = Engine(args.bundle, provider=args.provider)
    engine.warm_up()
    sinks = []
    if not args.no_window:
        window = open_window(args.fullscreen, args.colormap)
        if window is not None:
            sinks.append(window)
    if args.record:
        sinks.append(Mp4Sink(args.record))
    print(f"rtmri live: {source.description} -> {engine.bundle.path.parent.name} "
          f"(lookahead {engine.bundle.lookahead_ms} ms, {', '.join(engine.providers)}); Ctrl+C to stop", file=sys.stderr)
    try:
        stats = Streamer(engine, sinks, realtime=True, smoothing=args.smooth).run(source, max_seconds=args.seconds)
    except KeyboardInterrupt:
        return 130
    summary = stats.summary()
    summary["capture_latency_ms"] = round(source.capture_latency_s * 1000.0, 1)
    summary["lookahead_ms"] = engine.bundle.lookahead_ms
    print_summary(summary, "rtmri live")
    if args.json:
        write_json(summary, args.json)
    return 0
