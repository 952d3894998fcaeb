"""rtmri demo: the shipped default model at work, with nothing to set up.

It streams the example recording through the default bundle in real time and serves the
learner page (speak into the browser; compare with native reference utterances); where
there is a display a local window shows the example's frames as they are made, looping.
``--headless`` streams the example once instead, writes generated | original to an MP4
and prints the latency summary.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from rtmri import RtmriError
from rtmri.bundle.engine import Engine
from rtmri.demo import DemoAssets, shipped
from rtmri.lessons.live import lesson_comparer, lesson_references
from rtmri.streamer.live_cli import open_window
from rtmri.streamer.mp4 import Mp4Sink
from rtmri.streamer.server.security import is_loopback, new_token
from rtmri.streamer.side_by_side import SideBySide
from rtmri.streamer.sources import FileSource
from rtmri.streamer.stream import StopStreaming, Streamer
from rtmri.streamer.summary import print_summary
from rtmri.video.compose import DISPLAY_SIZE


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--headless", action="store_true", help="no window, no server: write an MP4 and print the latency summary")
    parser.add_argument("-o", "--output", type=Path, default=Path("rtmri-demo.mp4"),
                        help="with --headless: the MP4 to write (default rtmri-demo.mp4)")
    parser.add_argument("--host", default="127.0.0.1", help="address of the page (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port of the page (default 8765; 0: any free one)")
    parser.add_argument("--assets", type=Path, help="another demo assets folder (rtmri package-demo)")
    parser.add_argument("--provider", help="onnxruntime provider: tensorrt, cuda or cpu (default: the best available)")


def main(args) -> int:
    assets = (DemoAssets(args.assets) if args.assets else shipped()).check()
    if args.headless:
        return headless(assets, args.output, args.provider)
    return interactive(assets, args.host, args.port, args.provider)


def headless(assets: DemoAssets, output: Path, provider: str | None) -> int:
    engine = Engine(assets.bundle, provider=provider)
    engine.warm_up()
    source = FileSource(assets.example_audio, realtime=True)
    sink = Mp4Sink(output, size=DISPLAY_SIZE, compose=SideBySide(assets.example_video, engine.bundle, DISPLAY_SIZE))
    print(f"rtmri demo: {source.description} -> {describe(engine)}", file=sys.stderr)
    stats = Streamer(engine, [sink], realtime=True).run(source)
    summary = stats.summary()
    summary["lookahead_ms"] = engine.bundle.lookahead_ms
    print_summary(summary, "rtmri demo")
    print(f"rtmri demo: wrote {output} (generated | true rtMRI, with the sound)")
    return 0


def interactive(assets: DemoAssets, host: str, port: int, provider: str | None) -> int:
    # websockets: the live extra, which the server needs and --headless does not
    from rtmri.streamer.serve_cli import join_url
    from rtmri.streamer.server.app import RtmriServer, ServerOptions, ServerThread

    engine = Engine(assets.bundle, provider=provider)
    engine.warm_up(batch_sizes=(1, 2, 8))
    references = lesson_references(assets.lessons if assets.lessons.is_dir() else assets.references, engine)
    token = None if is_loopback(host) else new_token()
    server = RtmriServer(engine, ServerOptions(mode="learner", host=host, port=port, token=token), references=references,
                         comparer=lesson_comparer(engine, references))
    try:
        thread = ServerThread(server).start()
    except RuntimeError as exc:
        raise RtmriError(f"cannot serve the page on {host}:{port}: {exc} (try --port 0)") from exc
    try:  # from here Ctrl+C (or a SIGINT as soon as the URL is out) stops the server cleanly
        print(f"rtmri demo: learner page ({describe(engine)}, {len(references)} native references): open {join_url(server, token)}",
              flush=True)
        window = open_window(fullscreen=False, colormap="gray", prog="rtmri demo")
        if window is None:
            print("rtmri demo: the page is served until Ctrl+C (--headless writes an MP4 instead)", file=sys.stderr)
            threading.Event().wait()
        else:
            loop_example(assets, window, provider)
    except KeyboardInterrupt:
        pass
    finally:
        thread.stop()
    return 0


class _Looping:
    """The window as a sink that outlives one pass of the example (the Streamer closes its
    sinks at the end of each run) and remembers whether the viewer closed it."""

    def __init__(self, window) -> None:
        self.window = window
        self.stopped = False

    def frame(self, frame) -> None:
        try:
            self.window.frame(frame)
        except StopStreaming:
            self.stopped = True
            raise

    def close(self) -> None:
        pass


def loop_example(assets: DemoAssets, window, provider: str | None) -> None:
    """The example again and again in the window, aloud where there is a speaker, until it is closed."""
    engine = Engine(assets.bundle, provider=provider)  # its own session: the server's runs in another thread
    engine.warm_up()
    print("rtmri demo: the example loops in the window (q or Esc closes it)", file=sys.stderr)
    sink = _Looping(window)
    try:
        while not sink.stopped:
            Streamer(engine, [sink], realtime=True).run(FileSource(assets.example_audio, realtime=True, audible=True))
    finally:
        window.close()


def describe(engine) -> str:
    bundle = engine.bundle
    return f"{bundle.path.parent.name} bundle, lookahead {bundle.lookahead_ms} ms, {', '.join(engine.providers)}"
