"""What a bundle's state says while nobody speaks: noise alone (a quiet room, a fan, a microphone's
hiss) streamed through the live path (rtmri.streamer.windows, the bundle's session normalisation),
and for each place how often the state says it is closed, how long the session's first closure
lasts, and the tongue tip's closure probability over the first frames.

    python tools/noise_closures.py [BUNDLE] [--seconds 5] [--levels=-80,-60,-45,-40] [--kinds white,pink]
                                   [--audio ROOM.wav ...] [--json OUT]

``--audio`` measures recordings of a room with nobody speaking instead (as they are, at their own level).

A closure said in noise is drawn on the learner's page and the projector; a pause should be open.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from rtmri.articulation.regions import ALVEOLAR
from rtmri.articulation.state import CLOSED, CLOSED_AT, CLOSURE_NAMES, CLOSURE_PLACES
from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE, load_audio
from rtmri.bundle.engine import Engine
from rtmri.streamer.windows import FrameWindows
from rtmri.training.augment import STEADY_NOISE_DB_PER_OCTAVE, steady_noise  # numpy and scipy only, no torch

DEFAULT_BUNDLE = Path(__file__).resolve().parents[1] / "rtmri/demo/assets/model"
FIRST_FRAMES = 20
TIP = CLOSURE_PLACES.index(ALVEOLAR)


def closure_probabilities(engine: Engine, audio: np.ndarray) -> np.ndarray:
    """(frames, places) closure probabilities of ``audio`` as a live session streams it."""
    windows = FrameWindows.for_bundle(engine.bundle)
    frames = windows.push(audio) + windows.flush()
    return engine.states(np.stack([w.mel for w in frames]))[:, CLOSED]


def first_run_seconds(closed: np.ndarray) -> float:
    """How long the first closure lasts if the session starts closed, else 0."""
    if not closed[0]:
        return 0.0
    opened = np.flatnonzero(~closed)
    return (opened[0] if len(opened) else len(closed)) / FPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", type=Path, default=DEFAULT_BUNDLE)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--levels", default="-80,-60,-45,-40", help="noise levels in dBFS RMS")
    parser.add_argument("--kinds", default="white,pink", help=f"of {', '.join(STEADY_NOISE_DB_PER_OCTAVE)}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--audio", type=Path, nargs="+", default=[], help="recordings of a room nobody speaks in")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    engine = Engine(args.bundle, threads=1)
    names = [CLOSURE_NAMES[place] for place in CLOSURE_PLACES]
    table = Table(title=f"closures said in noise alone: {args.bundle}")
    for column in ("noise", "dBFS", *[f"{n} closed %" for n in names], "first closure s", "tip p, first frames"):
        table.add_column(column)
    sources = [(path.name, None, load_audio(path)) for path in args.audio] or [
        (kind, level, steady_noise(kind, int(args.seconds * SAMPLE_RATE), level, args.seed))
        for kind in args.kinds.split(",") for level in (float(v) for v in args.levels.split(","))]
    rows = []
    for name, level, audio in sources:
        p = closure_probabilities(engine, audio)
        closed = p > CLOSED_AT
        if level is None:
            level = 20.0 * np.log10(max(float(np.sqrt(np.mean(np.square(audio, dtype=np.float64)))), 1e-10))
        row = {"noise": name, "level_dbfs": round(level, 1), "frames": len(p),
               "closed_fraction": {n: round(float(closed[:, k].mean()), 4) for k, n in enumerate(names)},
               "first_closure_s": round(max(first_run_seconds(closed[:, k]) for k in range(len(names))), 2),
               "tip_probability_first_frames": [round(float(v), 3) for v in p[:FIRST_FRAMES, TIP]]}
        rows.append(row)
        tip = row["tip_probability_first_frames"]
        table.add_row(name, f"{level:.1f}", *[f"{100 * row['closed_fraction'][n]:.1f}" for n in names],
                      f"{row['first_closure_s']:.2f}", f"{tip[0]:.2f} .. {min(tip):.2f}-{max(tip):.2f}")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps({"bundle": str(args.bundle), "seconds": args.seconds, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
