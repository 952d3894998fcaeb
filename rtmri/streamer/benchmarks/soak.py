"""rtmri benchmark-soak BUNDLE --minutes 10: the live loop in real time for a long while,
watching memory and latency minute by minute (flat memory, no drift)."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
from rich.console import Console
from rich.table import Table

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE, load_audio
from rtmri.bundle.engine import Engine
from rtmri.streamer.benchmarks.signals import speech_file
from rtmri.streamer.sources import FileSource
from rtmri.streamer.stream import Streamer

SAMPLE_EVERY_S = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle")
    parser.add_argument("--minutes", type=float, default=10.0, help="how long to stream (default 10)")
    parser.add_argument("--audio", help="speech to loop (default: espeak-ng speech, else noise bursts)")
    parser.add_argument("-o", "--out", type=Path, default=Path("soak.json"), help="JSON with the per-minute figures")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


class Watch:
    """A sink that samples memory and latency as frames go by."""

    def __init__(self) -> None:
        self.samples: list[dict] = []
        self._latencies: list[float] = []
        self._frames = self._dropped = 0
        self._next = time.monotonic() + SAMPLE_EVERY_S
        self._start = time.monotonic()

    def frame(self, frame) -> None:
        now = time.monotonic()
        self._latencies.append((now - frame.spoken_at) * 1000.0)
        self._frames += 1
        self._dropped += frame.dropped_before
        if now >= self._next:
            self.samples.append({
                "t_s": round(now - self._start, 1), "rss_mb": round(rss_mb(), 1),
                "audio_to_frame_p50_ms": round(float(np.median(self._latencies)), 2),
                "fps": round(self._frames / SAMPLE_EVERY_S, 2), "dropped": self._dropped,
                "audio_s": round(frame.timestamp_s, 2),
            })
            self._latencies, self._frames, self._dropped = [], 0, 0
            self._next += SAMPLE_EVERY_S

    def close(self) -> None:
        pass


def looped_speech(folder: Path, minutes: float, audio: str | None) -> Path:
    wav = load_audio(audio) if audio else load_audio(speech_file(folder, 30.0))
    total = int(minutes * 60 * SAMPLE_RATE)
    path = folder / "soak.wav"
    soundfile.write(path, np.tile(wav, total // len(wav) + 1)[:total], SAMPLE_RATE, subtype="PCM_16")
    return path


def verdict(samples: list[dict]) -> dict:
    """Memory growth after the first minute, and the latency trend (ms per minute)."""
    settled = [s for s in samples if s["t_s"] >= 60.0] or samples
    t = np.array([s["t_s"] for s in settled]) / 60.0
    latency = np.array([s["audio_to_frame_p50_ms"] for s in settled])
    slope = float(np.polyfit(t, latency, 1)[0]) if len(settled) > 2 else 0.0
    growth = settled[-1]["rss_mb"] - settled[0]["rss_mb"]
    drift_s = samples[-1]["t_s"] - samples[-1]["audio_s"] - (samples[0]["t_s"] - samples[0]["audio_s"])
    return {"rss_growth_mb_after_first_minute": round(growth, 1), "latency_trend_ms_per_minute": round(slope, 3),
            "wall_minus_audio_drift_s": round(drift_s, 3), "mean_fps": round(float(np.mean([s["fps"] for s in samples])), 2),
            "dropped": int(sum(s["dropped"] for s in samples))}


def main(args) -> int:
    engine = Engine(args.bundle)
    engine.warm_up()
    watch = Watch()
    with tempfile.TemporaryDirectory() as tmp:
        source = FileSource(looped_speech(Path(tmp), args.minutes, args.audio), realtime=True)
        Console(stderr=True).print(f"soak: {args.minutes:g} min of {source.description} through {engine.bundle.path.parent.name} at {FPS} fps")
        Streamer(engine, [watch], realtime=True).run(source)
    result = {"bundle": str(engine.bundle.path), "minutes": args.minutes, "samples": watch.samples, "verdict": verdict(watch.samples)}
    args.out.write_text(json.dumps(result, indent=2))
    table = Table("t (s)", "RSS MB", "sound->frame p50 ms", "fps", "dropped", title="soak, every 60 s")
    for s in watch.samples[5::6]:
        table.add_row(f"{s['t_s']:.0f}", f"{s['rss_mb']:.1f}", f"{s['audio_to_frame_p50_ms']:.1f}", f"{s['fps']:.1f}", str(s["dropped"]))
    console = Console()
    console.print(table)
    console.print(result["verdict"])
    return 0
