"""rtmri benchmark-variants CHECKPOINT... --data DATA: every export variant of each
checkpoint, with its ms per frame here (onnxruntime, batch 1) and its validation SSIM."""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from rtmri import RtmriError
from rtmri.alignment import WINDOW_COLUMNS
from rtmri.audio import N_MELS
from rtmri.bundle.engine import Engine
from rtmri.export.exporter import ExportOptions, export_bundle

VARIANTS = (("fp32", "input"), ("fp32", "baked"), ("int8", "input"), ("fp16", "input"))
RUNS = 200
WARMUP = 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoints", nargs="+", type=Path, help="generator checkpoints (e.g. one per width)")
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset (validation clips)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime threads (default 2)")
    parser.add_argument("-o", "--out", type=Path, default=Path("variants"), help="folder for variants.md and variants.json")


def time_engine(engine, runs: int = RUNS) -> dict:
    window = np.random.default_rng(0).uniform(-4, 1, (1, N_MELS, WINDOW_COLUMNS)).astype(np.float32)
    for _ in range(WARMUP):
        engine.run(window)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        engine.run(window)
        times.append((time.perf_counter() - start) * 1000.0)
    p50, p99 = np.percentile(times, [50, 99])
    return {"ms_p50": round(float(p50), 2), "ms_p99": round(float(p99), 2)}


def main(args) -> int:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for checkpoint in args.checkpoints:
            for variant, face in VARIANTS:
                out = Path(tmp) / f"{checkpoint.stem}_{variant}_{face}"
                row = {"checkpoint": str(checkpoint), "variant": variant, "face_encoder": face}
                try:
                    summary = export_bundle(ExportOptions(checkpoint, out, args.data, variant=variant, face_encoder=face))
                except RtmriError as exc:
                    rows.append({**row, "refused": str(exc)})
                    continue
                engine = Engine(out, provider="cpu", threads=args.threads)
                manifest = engine.bundle.manifest
                rows.append({**row, "width": manifest.training.get("width"), "lookahead_ms": manifest.lookahead_ms,
                             "onnx_mb": summary["onnx_mb"], **time_engine(engine),
                             "val_ssim": manifest.evaluation["ssim"], "val_nmse": manifest.evaluation["nmse"]})
                print(json.dumps(rows[-1]))
    machine = f"{platform.machine()}, {__import__('os').cpu_count()} cores, onnxruntime CPU, {args.threads} threads, batch 1"
    lines = [f"machine: {machine}", "", "| checkpoint | width | variant | face encoder | MB | ms/frame p50 | p99 | val SSIM | val NMSE |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "refused" in r:
            lines.append(f"| {Path(r['checkpoint']).name} | | {r['variant']} | {r['face_encoder']} | refused: {r['refused']} | | | | |")
        else:
            lines.append(f"| {Path(r['checkpoint']).name} | {r['width']} | {r['variant']} | {r['face_encoder']} | {r['onnx_mb']} | "
                         f"{r['ms_p50']} | {r['ms_p99']} | {r['val_ssim']} | {r['val_nmse']} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "variants.json").write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    (args.out / "variants.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0
