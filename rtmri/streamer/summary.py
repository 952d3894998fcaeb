"""A stream's figures as a table a person reads (and JSON for machines)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.table import Table

STAGE_LABELS = {
    "features": "features (mel) per frame",
    "inference": "inference per frame",
    "sink": "sinks (encode / display)",
    "queue": "waiting for the engine",
    "audio_to_frame": "sound -> frame on screen",
}


def print_summary(summary: dict, title: str) -> None:
    console = Console(stderr=True)
    console.print(
        f"[bold]{title}[/]: {summary['frames']} frames, {summary['dropped']} dropped, "
        f"{summary['audio_s']:.1f} s of audio in {summary['wall_s']:.1f} s "
        f"({summary['fps']:.1f} fps, real-time factor {summary['real_time_factor']:.2f})"
    )
    table = Table("stage", "p50 ms", "p95 ms", "p99 ms")
    for stage, label in STAGE_LABELS.items():
        if stage in summary:
            row = summary[stage]
            table.add_row(label, f"{row['p50_ms']:.1f}", f"{row['p95_ms']:.1f}", f"{row['p99_ms']:.1f}")
    console.print(table)


def write_json(summary: dict, path: str | Path) -> None:
    Path(path).write_text(json.dumps(summary, indent=2))
