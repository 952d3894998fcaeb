"""rtmri benchmark-latency BUNDLE: the latency budget per stage (the shared DESIGN.md §6).

Runs the real paths: a speech file played in real time through the streamer; the
microphone where there is one; and, with --browser, the broadcast server with headless
Chromium painting the frames (the page reports when it painted each one, on a clock
offset estimated against the server's); and, with --window, `rtmri live`'s pygame window
on a real display (DISPLAY, else an Xvfb started for the run), timed to the return of
pygame.display.flip() for each frame. Prints a table, writes JSON, Markdown and a bar
chart.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from rtmri.bundle.engine import Engine
from rtmri.streamer.benchmarks.signals import speech_file
from rtmri.streamer.display import PAINTLESS_DRIVERS, WindowSink
from rtmri.streamer.sinks import CollectSink
from rtmri.streamer.sources import AudioSourceError, FileSource, MicrophoneSource
from rtmri.streamer.stream import Streamer

FRAME_BUDGET_MS = 40.0
# p99 budgets per stage (ms). Compute stages share the 40 ms frame budget.
BUDGETS_MS = {"features": 5.0, "inference": 25.0, "sink": 10.0, "queue": 40.0, "transport_display": 50.0}
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
STAGE_ORDER = ("capture", "lookahead", "features", "inference", "sink", "queue", "transport_display", "window_paint",
               "audio_to_frame", "audio_to_photon")
XVFB_SCREEN = "1280x1024x24"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle")
    parser.add_argument("--audio", help="speech to play (default: espeak-ng speech, else noise bursts)")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds of audio per path (default 20)")
    parser.add_argument("--browser", action="store_true", help="also measure the browser path with headless Chromium")
    parser.add_argument("--microphone", action="store_true", help="also measure the microphone path (needs one)")
    parser.add_argument("--window", action="store_true",
                        help="also measure the local window path (pygame, as `rtmri live`): on DISPLAY, else on an Xvfb started for the run")
    parser.add_argument("-o", "--out", type=Path, default=Path("latency"), help="folder for JSON, Markdown and the chart")
    parser.add_argument("--provider", help="onnxruntime provider (default: the best available)")


def percentiles(values) -> dict:
    p50, p95, p99 = np.percentile(np.asarray(values, float), [50, 95, 99])
    return {"p50_ms": round(float(p50), 2), "p95_ms": round(float(p95), 2), "p99_ms": round(float(p99), 2), "n": len(values)}


def load_average() -> list[float]:
    """The machine's 1, 5 and 15 minute load: figures taken beside other work say so."""
    return [round(x, 2) for x in os.getloadavg()]


def constant(ms: float) -> dict:
    return {"p50_ms": round(ms, 2), "p95_ms": round(ms, 2), "p99_ms": round(ms, 2), "n": 1}


def measure_stream(engine, source, seconds: float, sinks=None) -> dict:
    stats = Streamer(engine, sinks or [CollectSink()], realtime=True).run(source, max_seconds=seconds)
    summary = stats.summary()
    stages = {k: summary[k] for k in ("features", "inference", "sink", "queue", "audio_to_frame") if k in summary}
    stages["capture"] = constant(source.capture_latency_s * 1000.0)
    stages["lookahead"] = constant(engine.bundle.lookahead_ms)
    return {"source": source.description, "frames": summary["frames"], "dropped": summary["dropped"],
            "sustained_fps": summary["fps"], "real_time_factor": summary["real_time_factor"], "stages": stages}


def measure_browser(engine, audio: Path, seconds: float) -> dict:
    from playwright.sync_api import sync_playwright  # playwright: the test extra

    from rtmri.streamer.server.app import RtmriServer, ServerOptions, ServerThread  # websockets: the live extra

    server = RtmriServer(engine, ServerOptions(mode="broadcast", port=0), lambda: FileSource(audio, realtime=True))
    thread = ServerThread(server).start()
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            page.goto(thread.server.url)
            page.wait_for_function("() => window.rtmriStats.painted >= 10", timeout=30000)
            painted_before = page.evaluate("() => window.rtmriStats.painted")
            started = time.monotonic()
            time.sleep(min(seconds, 8.0))  # the page keeps its last 200 figures (8 s at 25 fps)
            stats = page.evaluate("() => window.rtmriStats")
            elapsed = time.monotonic() - started
            browser.close()
    finally:
        thread.stop()
    return {"source": f"broadcast server -> headless Chromium ({audio.name})",
            "painted_fps": round((stats["painted"] - painted_before) / elapsed, 2),
            "stages": {"transport_display": percentiles(stats["transport"]), "audio_to_photon": percentiles(stats["a2p"])}}


class NoDisplay(Exception):
    """The window path has nowhere to paint; the message says why."""


@contextmanager
def window_display():
    """Names the display the window path paints on: DISPLAY's (or Wayland's), else an Xvfb
    started for the run and stopped after it. Raises NoDisplay where there is none."""
    driver = os.environ.get("SDL_VIDEODRIVER", "")
    if driver in PAINTLESS_DRIVERS:
        raise NoDisplay(f"SDL_VIDEODRIVER={driver} paints nothing")
    shown = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if shown:
        yield f"display {shown}"
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise NoDisplay("no display: DISPLAY is not set and Xvfb is not installed (apt-get install xvfb)")
    with xvfb_display(xvfb) as shown:
        yield f"Xvfb {shown}, started for this run"


@contextmanager
def xvfb_display(xvfb: str):
    """A virtual X server on a free display number (Xvfb -displayfd picks it), as DISPLAY."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen([xvfb, "-displayfd", str(write_end), "-screen", "0", XVFB_SCREEN, "-nolisten", "tcp"],
                              pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_end)
    with os.fdopen(read_end) as announced:
        number = announced.readline().strip()  # empty when Xvfb exits without starting
    previous = os.environ.get("DISPLAY")
    try:
        if not number:
            raise NoDisplay(f"no display: {xvfb} did not start (exit code {server.wait(5)})")
        os.environ["DISPLAY"] = f":{number}"
        yield f":{number}"
    finally:
        if previous is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = previous
        server.terminate()
        server.wait(5)


def measure_window(engine, audio: Path, seconds: float, display: str) -> dict:
    """The file streamed in real time into `rtmri live`'s window: sound to the return of
    the flip that showed each frame, and the draw + flip alone."""
    import pygame  # pygame: the live extra

    painted = []  # (spoken_at, draw_started, flipped) per frame, monotonic seconds
    try:
        window = WindowSink(title="rtmri benchmark-latency",
                            on_paint=lambda frame, started, flipped: painted.append((frame.spoken_at, started, flipped)))
    except pygame.error as exc:
        raise NoDisplay(f"cannot open a window on {display}: {exc}") from exc
    driver = window.driver
    if not window.paints:
        window.close()
        raise NoDisplay(f"the window on {display} opened on SDL's {driver} driver, which paints nothing")
    path = measure_stream(engine, FileSource(audio, realtime=True), seconds, [window])
    if not painted:
        raise NoDisplay(f"the window on {display} painted no frame")
    spoken, started, flipped = np.array(painted).T * 1000.0
    path["source"] = f"{path['source']} -> pygame window ({driver} on {display})"
    path["painted"] = len(painted)
    del path["stages"]["audio_to_frame"]  # taken after the sinks: here, the same paint a little later
    path["stages"]["window_paint"] = percentiles(flipped - started)
    path["stages"]["audio_to_photon"] = percentiles(flipped - spoken)
    return path


def verdicts(stages: dict) -> dict:
    out = {}
    for stage, figures in stages.items():
        budget = BUDGETS_MS.get(stage)
        if budget is not None:
            out[stage] = {"budget_p99_ms": budget, "verdict": "ok" if figures["p99_ms"] <= budget else "over budget"}
    compute_stages = [s for s in ("features", "inference", "sink") if s in stages]
    if not compute_stages:
        return out
    compute = sum(stages[s]["p99_ms"] for s in compute_stages)
    out["compute_per_frame"] = {"p99_sum_ms": round(compute, 2), "budget_p99_ms": FRAME_BUDGET_MS,
                                "verdict": "ok" if compute <= FRAME_BUDGET_MS else "over budget"}
    return out


def markdown(report: dict) -> str:
    load = report["load_average"]
    lines = [f"# Latency: {report['bundle']}", "", f"machine: {report['machine']}", "",
             f"load average (1, 5, 15 min): {load['before']} before, {load['after']} after", ""]
    for name, path in report["paths"].items():
        lines += [f"## {name}: {path['source']}", ""]
        extra = {k: v for k, v in path.items() if k not in ("source", "stages", "verdicts")}
        lines += [", ".join(f"{k} {v}" for k, v in extra.items()), ""]
        lines += ["| stage | p50 ms | p95 ms | p99 ms | budget p99 | verdict |", "|---|---|---|---|---|---|"]
        for stage in STAGE_ORDER:
            if stage in path["stages"]:
                f = path["stages"][stage]
                v = path.get("verdicts", {}).get(stage, {})
                lines.append(f"| {stage} | {f['p50_ms']} | {f['p95_ms']} | {f['p99_ms']} | {v.get('budget_p99_ms', '')} | {v.get('verdict', '')} |")
        if "compute_per_frame" in path.get("verdicts", {}):
            c = path["verdicts"]["compute_per_frame"]
            lines.append(f"| features + inference + sink | | | {c['p99_sum_ms']} | {c['budget_p99_ms']} | {c['verdict']} |")
        lines.append("")
    for name, why in report.get("not_measured", {}).items():
        lines.append(f"- {name}: not measured ({why})")
    return "\n".join(lines) + "\n"


def bar_chart(report: dict, path: Path) -> None:
    import matplotlib  # matplotlib: the live extra

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after use("Agg")

    rows = [(f"{name}: {stage}", f) for name, p in report["paths"].items() for stage, f in p["stages"].items()]
    fig, ax = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.2))
    y = np.arange(len(rows))
    for i, key in enumerate(("p50_ms", "p95_ms", "p99_ms")):
        ax.barh(y + (i - 1) * 0.27, [f[key] for _, f in rows], height=0.27, label=key.split("_")[0])
    ax.set_yticks(y, [label for label, _ in rows], fontsize=8)
    ax.axvline(FRAME_BUDGET_MS, color="red", linestyle="--", linewidth=0.8, label="40 ms frame")
    ax.set_xlabel("ms")
    ax.invert_yaxis()
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(args) -> int:
    engine = Engine(args.bundle, provider=args.provider)
    engine.warm_up()
    report = {"bundle": str(engine.bundle.path), "providers": engine.providers,
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}",
              "load_average": {"before": load_average()}, "paths": {}, "not_measured": {}}
    with tempfile.TemporaryDirectory() as tmp:
        audio = Path(args.audio) if args.audio else speech_file(Path(tmp), args.seconds)
        print(f"rtmri benchmark-latency: file source, {args.seconds:.0f} s in real time", file=sys.stderr)
        report["paths"]["file"] = measure_stream(engine, FileSource(audio, realtime=True), args.seconds)
        if args.microphone:
            try:
                report["paths"]["microphone"] = measure_stream(engine, MicrophoneSource(), args.seconds)
            except AudioSourceError as exc:
                report["not_measured"]["microphone"] = str(exc).splitlines()[0]
        else:
            report["not_measured"]["microphone"] = "not asked for (--microphone)"
        if args.browser:
            if CHROMIUM.exists():
                print("rtmri benchmark-latency: browser path (headless Chromium)", file=sys.stderr)
                report["paths"]["browser"] = measure_browser(engine, audio, args.seconds)
            else:
                report["not_measured"]["browser"] = f"no Chromium at {CHROMIUM}"
        else:
            report["not_measured"]["browser"] = "not asked for (--browser)"
        if args.window:
            try:
                with window_display() as display:
                    print(f"rtmri benchmark-latency: window path (pygame on {display})", file=sys.stderr)
                    report["paths"]["window"] = measure_window(engine, audio, args.seconds, display)
            except NoDisplay as exc:
                print(f"rtmri benchmark-latency: window path not measured: {exc}", file=sys.stderr)
                report["not_measured"]["window"] = str(exc)
        else:
            report["not_measured"]["window"] = "not asked for (--window)"
    report["load_average"]["after"] = load_average()
    for path in report["paths"].values():
        path["verdicts"] = verdicts(path["stages"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latency.json").write_text(json.dumps(report, indent=2))
    text = markdown(report)
    (args.out / "latency.md").write_text(text)
    bar_chart(report, args.out / "latency.png")
    print(text)
    print(f"wrote {args.out}/latency.json, latency.md, latency.png", file=sys.stderr)
    return 0
