"""rtmri eval BUNDLE DATA: SSIM / NMSE and the articulatory measures per condition, next to baselines."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Column, Table

from rtmri.bundle.engine import Engine
from rtmri.clips import CONDITIONS, ClipDataset
from rtmri.evaluation.report import cell, phone_markdown


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="model bundle")
    parser.add_argument("data", type=Path, help="prepared dataset (its test, unseen_ja and unseen_nonja splits)")
    parser.add_argument("-o", "--out", type=Path, default=Path("eval"), help="folder for the table, CSV, videos, plot")
    parser.add_argument("--max-clips", type=int, help="at most this many clips per condition")
    parser.add_argument("--examples", type=int, default=2, help="side-by-side videos per condition (default 2)")
    parser.add_argument("--baseline", type=Path, action="append", default=[], metavar="BUNDLE",
                        help="another bundle to score on the same clips, e.g. `rtmri train baseline` exported (repeatable)")
    parser.add_argument("--provider", help="onnxruntime provider (default: the best available)")
    parser.add_argument("--no-robustness", dest="robust", action="store_false",
                        help="leave out the robustness conditions (test clips in held-out rooms; unseen speakers by type)")


def main(args) -> int:
    # scikit-image (the eval extra) and scipy.signal (~0.7 s, the room perturbations): evaluating needs them, --help not
    from rtmri.evaluation.run import evaluate, write_outputs

    engine = Engine(args.bundle, provider=args.provider)
    baselines = [Engine(path, provider=args.provider) for path in args.baseline]
    dataset = ClipDataset(args.data)
    total = sum(len(dataset.split(s)[: args.max_clips]) for s in CONDITIONS)
    total += len(dataset.split("test")[: args.max_clips]) if args.robust else 0
    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating clips", total=total)
        evaluation = evaluate(engine, dataset, args.max_clips, args.examples, progress=lambda: progress.advance(task),
                              baselines=baselines, robust=args.robust)
    outputs = write_outputs(evaluation, args.out, engine.bundle.path)
    table = Table("condition", "system", "videos", "SSIM", "NMSE", title=f"rtmri eval {args.bundle}")
    for r in outputs["table"]:
        table.add_row(r["condition"], r["system"], str(r["videos"]), f"{r['ssim_mean']:.4f} ± {r['ssim_std']:.4f}",
                      f"{r['nmse_mean']:.4f} ± {r['nmse_std']:.4f}")
    console = Console()
    console.print(table)
    print_articulation(console, outputs["articulation"], Table)
    for note in outputs["notes"]:
        print(note)
    print(f"wrote {args.out}/table.md, results.json, per_frame.csv, articulation_*.csv, {len(outputs['videos'])} videos, "
          f"{outputs['plot']}, constriction_over_time.png, phone_errors.png")
    return 0


TERMINAL_SYSTEMS = {"reference held still": "still", "noise ceiling (second acquisition)": "2nd scan",
                    "FC-LSTM baseline (Csapó 2020)": "FC-LSTM", "renderer from the true state": "true state"}


def print_articulation(console, articulation: dict, Table) -> None:
    """The articulatory table, narrow enough for an 80-column terminal (the full one is table.md)."""
    if not articulation["table"]:
        console.print("articulation: not available (no analysis grids in the dataset; prepare it again with this version)")
        return
    headings = ["c", "system", "DF", "CD", "CD r", "lips P/R", "tip P/R", "ROI r", "amp", "geom"]
    table = Table(*[Column(h, no_wrap=True, min_width=9 if "P/R" in h else None) for h in headings],
                  title="articulation (DESIGN §5b)", box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, collapse_padding=True,
                  caption="c: condition; DF, CD: distance function, constriction degree RMSE (mm); P/R: closure "
                          "precision/recall in stops and nasals; amp: generated/true motion amplitude; geom: DF RMSE "
                          "against the true outlines (mm); all columns in table.md")
    for r in articulation["table"]:
        pair = lambda region: f"{cell(r[f'closure_{region}_precision'])}/{cell(r[f'closure_{region}_recall'])}"  # noqa: E731
        table.add_row(r["condition"].split(":")[0], TERMINAL_SYSTEMS.get(r["system"], r["system"][:12]), cell(r["df_rmse_mm"]),
                      cell(r["cd_rmse_mm"]), cell(r["cd_r"]), pair("lips"), pair("alveolar"), cell(r["roi_r"]),
                      cell(r["amplitude_ratio"]), cell(r["df_rmse_vs_geometry_mm"]))
    console.print(table)
    states = [r for r in articulation["table"] if r.get("state_source", "n/a") != "n/a"]
    if states:
        table = Table(*[Column(h, no_wrap=True, min_width=9 if "P/R" in h else None) for h in
                        ("c", "system", "from", "DF", "CD", "CD r", "lips P/R", "tip P/R", "amp")],
                      title="against the true articulatory state (DESIGN.md §4b)", box=box.SIMPLE_HEAD, padding=(0, 1),
                      pad_edge=False, collapse_padding=True,
                      caption="from: the model's own state, or the image measure of its frames; all columns in table.md")
        for r in states:
            pair = lambda region: f"{cell(r[f'state_closure_{region}_precision'])}/{cell(r[f'state_closure_{region}_recall'])}"  # noqa: E731
            table.add_row(r["condition"].split(":")[0], TERMINAL_SYSTEMS.get(r["system"], r["system"][:12]),
                          "state" if r["state_source"] == "model's state" else "image", cell(r["state_df_rmse_mm"]),
                          cell(r["state_cd_rmse_mm"]), cell(r["state_cd_r"]), pair("lips"), pair("alveolar"),
                          cell(r["state_amplitude_ratio"]))
        console.print(table)
    for g in articulation["geometry_check"]:
        console.print(f"geometry check, condition {g['condition'].split(':')[0]}: image measure on the true frames vs the "
                      f"synthesizer's outlines, RMSE {cell(g['rmse_mm'])} mm ({g['measurements']} measurements, {g['mm_per_px']} mm/px)",
                      highlight=False)
    if not articulation["geometry_check"]:
        console.print("geometry check: not available (the clips carry no synthesizer outlines)")
    for line in phone_markdown(articulation["phones"]):
        if line:
            console.print(line, highlight=False)
