"""rtmri eval BUNDLE DATA: SSIM / NMSE and the articulatory measures per condition, next to baselines."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="model bundle")
    parser.add_argument("data", type=Path, help="prepared dataset (its test, unseen_ja and unseen_nonja splits)")
    parser.add_argument("-o", "--out", type=Path, default=Path("eval"), help="folder for the table, CSV, videos, plot")
    parser.add_argument("--max-clips", type=int, help="at most this many clips per condition")
    parser.add_argument("--examples", type=int, default=2, help="side-by-side videos per condition (default 2)")
    parser.add_argument("--baseline", type=Path, action="append", default=[], metavar="BUNDLE",
                        help="another bundle to score on the same clips, e.g. `rtmri train baseline` exported (repeatable)")
    parser.add_argument("--provider", help="onnxruntime provider (default: the best available)")


def main(args) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from rtmri.clips import CONDITIONS, ClipDataset
    from rtmri.evaluation.run import evaluate, write_outputs
    from rtmri.bundle.engine import Engine

    engine = Engine(args.bundle, provider=args.provider)
    baselines = [Engine(path, provider=args.provider) for path in args.baseline]
    dataset = ClipDataset(args.data)
    total = sum(len(dataset.split(s)[: args.max_clips]) for s in CONDITIONS)
    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating clips", total=total)
        evaluation = evaluate(engine, dataset, args.max_clips, args.examples, progress=lambda: progress.advance(task),
                              baselines=baselines)
    outputs = write_outputs(evaluation, args.out, engine.bundle.path)
    table = Table("condition", "system", "videos", "SSIM", "NMSE", title=f"rtmri eval {args.bundle}")
    for r in outputs["table"]:
        table.add_row(r["condition"], r["system"], str(r["videos"]), f"{r['ssim_mean']:.4f} ± {r['ssim_std']:.4f}",
                      f"{r['nmse_mean']:.4f} ± {r['nmse_std']:.4f}")
    console = Console()
    console.print(table)
    print_articulation(console, outputs["articulation"], Table)
    print(f"wrote {args.out}/table.md, results.json, per_frame.csv, {len(outputs['videos'])} videos, {outputs['plot']}")
    return 0


def print_articulation(console, articulation: dict, Table) -> None:
    from rtmri.evaluation.report import ARTICULATION_COLUMNS, cell, phone_markdown

    if not articulation["table"]:
        console.print("articulation: not available (no analysis grids in the dataset; prepare it again with this version)")
        return
    table = Table("condition", "system", *[h for _, h, _ in ARTICULATION_COLUMNS], title="articulation (mm; DESIGN §5b)")
    for r in articulation["table"]:
        table.add_row(r["condition"][:2].rstrip(":") + " " + r["split"], r["system"], *[cell(r[k], f) for k, _, f in ARTICULATION_COLUMNS])
    console.print(table)
    for g in articulation["geometry_check"]:
        console.print(f"geometry check, {g['condition']}: image measure on the true frames vs the synthesizer's outlines: "
                      f"RMSE {cell(g['rmse_mm'])} mm over {g['measurements']} gridline measurements ({g['mm_per_px']} mm per px)")
    if not articulation["geometry_check"]:
        console.print("geometry check: not available (the clips carry no synthesizer outlines)")
    for line in phone_markdown(articulation["phones"]):
        if line:
            console.print(line, highlight=False)
