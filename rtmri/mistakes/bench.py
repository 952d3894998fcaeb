"""rtmri compare-bench BENCH [--bundle B]: the learner comparison (rtmri.lessons.compare, as
`rtmri compare` and the learner page run it) on the benchmark of known mistakes.

Every attempt is compared with its lesson's native reference (BENCH/references) by the
bundle (default: the shipped one); ``scoring.py`` turns the results into detection (AUC),
localisation and false alarms, over everything, per mistake type and per speaker type.
Writes OUT/compare_bench.json (figures, and each attempt's score and named differences),
OUT/compare_bench.md (the table), OUT/compare_bench.png (the plot) and prints the table.
No synthesizer: the benchmark is read from disk.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from rtmri.audio import load_audio
from rtmri.bundle.engine import Engine
from rtmri.demo import shipped
from rtmri.files import atomic_write, atomic_writer
from rtmri.lessons.articulators import articulate
from rtmri.lessons.compare import compare
from rtmri.lessons.grid import bundle_grid
from rtmri.lessons.lesson import read_lesson
from rtmri.mistakes import scoring
from rtmri.mistakes.layout import BenchFolder

JSON_FILE, MD_FILE, PNG_FILE = "compare_bench.json", "compare_bench.md", "compare_bench.png"
TARGETS = {"auc": 0.9, "localisation": 0.8, "false_alarm": 0.1}  # issue 25: at least, at least, at most
COLUMNS = (("auc", "AUC"), ("localisation", "localised"), ("false_alarm", "false alarm"),
           ("wrong_difference", "wrong difference"), ("mean_score_mistaken", "score (mistake)"),
           ("mean_score_correct", "score (correct)"), ("n_mistaken", "mistaken"), ("n_correct", "correct"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bench", type=Path, help="benchmark folder (rtmri make-mistakes)")
    parser.add_argument("--bundle", type=Path, help="model bundle (default: the shipped one)")
    parser.add_argument("--provider", help="onnxruntime provider: tensorrt, cuda or cpu (default: the best available)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (default 1)")
    parser.add_argument("-o", "--out", type=Path, help="folder for the results (default: BENCH/results)")
    parser.add_argument("--no-plot", action="store_true", help=f"write no {PNG_FILE}")


def main(args) -> int:
    bench = BenchFolder(args.bench)
    manifest = bench.read_manifest()
    labels = bench.read_labels()
    engine = Engine(args.bundle or shipped().bundle, provider=args.provider, threads=args.threads)
    grid = bundle_grid(engine.bundle)
    lessons = {lesson: read_lesson(bench.reference_audio(lesson)) for lesson in sorted({label["lesson"] for label in labels})}
    references = {lesson: load_audio(l.audio) for lesson, l in lessons.items()}
    started = time.perf_counter()
    drawn = {lesson: articulate(engine, wav, grid, draw=False) for lesson, wav in references.items()}
    results = [attempt_result(label, compare(load_audio(bench.attempt_audio(label["attempt"])), references[label["lesson"]],
                                             engine, grid, lessons[label["lesson"]].phones, draw=False,
                                             reference=drawn[label["lesson"]]))
               for label in tqdm(labels, desc="compare-bench", unit="attempt", file=sys.stderr)]
    seconds = time.perf_counter() - started
    summary = scoring.summary(results)
    out = args.out or bench.path / "results"
    out.mkdir(parents=True, exist_ok=True)
    report = {"bench": str(bench.path), "bench_seed": manifest["seed"], "bundle": str(engine.bundle.path),
              "attempts": len(results), "seconds": round(seconds, 1), "targets": TARGETS, "near_s": scoring.NEAR_S,
              "summary": summary, "results": results}
    atomic_write(out / JSON_FILE, json.dumps(finite(report), indent=1, ensure_ascii=False, allow_nan=False) + "\n")
    atomic_write(out / MD_FILE, markdown(summary) + "\n" + headroom_line(summary["correct_headroom"]) + "\n")
    Console(width=None if sys.stdout.isatty() else 150).print(table(summary))
    print(headroom_line(summary["correct_headroom"]))
    if not args.no_plot:
        try:
            name = engine.bundle.path.parent.name if engine.bundle.path.is_file() else engine.bundle.path.name
            plot(summary, out / PNG_FILE, f"bundle {name}: {len(results)} attempts of {bench.path.name}")
        except ImportError as exc:  # matplotlib comes with the [eval] extra, not the core
            print(f"rtmri compare-bench: note: no {PNG_FILE} ({exc}; pip install 'rtmri-live[eval]')", file=sys.stderr)
    print(f"rtmri compare-bench: {len(results)} attempts in {seconds:.0f} s; wrote {out}/")
    return 0


def finite(value):
    """NaN (a figure with nothing to measure: no pair, no attempt) as null, so the JSON is standard."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


def attempt_result(label: dict, comparison) -> dict:
    return {"attempt": label["attempt"], "lesson": label["lesson"], "correct": label["correct"], "mistake": label["mistake"],
            "speaker": label["speaker"]["id"], "speaker_type": label["speaker"]["type"], "morae_per_s": label["morae_per_s"],
            # distance: the score's d
            "score": comparison.score, "distance": round(comparison.distance, 4),
            "segments": [s.to_json() for s in comparison.segments], "wrong": label.get("wrong"),
            "by_phone": list(comparison.by_phone)}


def rows(summary: dict):
    yield "all", summary[scoring.ALL]
    for key, figures in summary["by_mistake"].items():
        yield key, figures
    for key, figures in summary["by_speaker_type"].items():
        yield f"{key} voices", figures


def cell(key: str, value) -> str:
    if isinstance(value, int):
        return str(value)
    if value != value:  # NaN
        return "-"
    return f"{value:.0f}" if key.startswith("mean_score") else (f"{value:.2f}" if key == "auc" else f"{100 * value:.0f} %")


def markdown(summary: dict) -> str:
    head = "| | " + " | ".join(name for _, name in COLUMNS) + " |\n|---|" + "---:|" * len(COLUMNS) + "\n"
    return head + "".join(f"| {name} | " + " | ".join(cell(k, f[k]) for k, _ in COLUMNS) + " |\n" for name, f in rows(summary))


def headroom_line(headroom: dict) -> str:
    return (f"correct attempts, largest difference per phone ({100 * scoring.QUANTILE:g}th percentile; 1 = named): "
            + ", ".join(f"{k} {v:.2f}" for k, v in headroom.items()))


def table(summary: dict) -> Table:
    out = Table(title="learner comparison on the benchmark of mistakes (targets: AUC >= 0.9, localised >= 80 %, false alarm <= 10 %)")
    out.add_column("")
    for _, name in COLUMNS:
        out.add_column(name, justify="right")
    for name, figures in rows(summary):
        out.add_row(name, *(cell(k, figures[k]) for k, _ in COLUMNS))
    return out


def plot(summary: dict, path: Path, title: str) -> None:
    import matplotlib  # the [eval] extra: not needed to run the benchmark

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [name for name, _ in rows(summary)]
    figures = [f for _, f in rows(summary)]
    shown = (("auc", "detection (AUC)"), ("localisation", "localised"), ("false_alarm", "false alarm"))
    fig, ax = plt.subplots(figsize=(max(8, 0.6 * len(names)), 4.2))
    x = np.arange(len(names))
    for k, (key, label) in enumerate(shown):
        values = [f[key] for f in figures]
        ax.bar(x + (k - 1) * 0.27, values, 0.27, label=label)
        ax.scatter(x + (k - 1) * 0.27, [TARGETS[key]] * len(x), marker="_", s=60, color="k", zorder=3)
    ax.set_xticks(x, names, rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_title(title + " (ticks: targets)", fontsize=9)
    ax.legend(fontsize=8, ncols=3, loc="upper right")
    fig.tight_layout()
    with atomic_writer(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
