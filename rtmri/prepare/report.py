"""The run's manifest (``OUT/manifest.json``, for programs) and report (``OUT/report.md``,
for people): clips per split in the layout of the study's Table 1, hours per split and per
speaker, every skipped recording with its reason, every warning, and what this run did
(prepared, reused from an earlier run, skipped)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from rtmri.alignment import FPS
from rtmri.clips import ALL_SPLITS, CLIPS_DIR, FILELISTS_DIR, HEADER_FILE, REQUIRED_FILES
from rtmri.files import atomic_write

MANIFEST_FORMAT = "rtmri-prepare-manifest"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.md"
STUDY_TABLE_1 = {"train": 11206, "val": 1401, "test": 1316}


def _hours(seconds: float) -> float:
    return round(seconds / 3600.0, 4)


def build_manifest(opts: dict, layout: str, speakers: list[str], heldout: list[str], results: list[dict], assigned: dict[str, list[str]], elapsed_s: float) -> dict:
    clip_seconds, clip_speaker = {}, {}
    for r in results:
        for clip in r.get("clips", []) if r["status"] != "skipped" else []:
            clip_seconds[clip["id"]] = clip["n_frames"] / FPS
            clip_speaker[clip["id"]] = clip["speaker"]
    split_table, per_speaker = {}, {}
    for speaker in speakers:
        per_speaker[speaker] = {
            "heldout": speaker in heldout,
            "recordings": sum(1 for r in results if r["speaker"] == speaker and r["status"] != "skipped"),
            "skipped": sum(1 for r in results if r["speaker"] == speaker and r["status"] == "skipped"),
            "splits": {},
        }
    for name in ALL_SPLITS:
        ids = assigned.get(name, [])
        seconds = sum(clip_seconds[i] for i in ids)
        split_table[name] = {
            "clips": len(ids),
            "seconds": round(seconds, 3),
            "hours": _hours(seconds),
            "speakers": sorted({clip_speaker[i] for i in ids}),
        }
        for i in ids:
            entry = per_speaker[clip_speaker[i]]["splits"].setdefault(name, {"clips": 0, "seconds": 0.0})
            entry["clips"] += 1
            entry["seconds"] = round(entry["seconds"] + clip_seconds[i], 3)
    for entry in per_speaker.values():
        for split in entry["splits"].values():
            split["hours"] = _hours(split["seconds"])
    counts = {status: sum(1 for r in results if r["status"] == status) for status in ("prepared", "reused", "skipped")}
    return {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "layout": layout,
        "options": opts,
        "speakers": speakers,
        "heldout_speakers": heldout,
        "splits": split_table,
        "total": {
            "clips": sum(v["clips"] for v in split_table.values()),
            "hours": _hours(sum(v["seconds"] for v in split_table.values())),
        },
        "per_speaker": per_speaker,
        "run": {"recordings": len(results), **counts, "elapsed_s": round(elapsed_s, 2), "workers": opts.get("workers")},
        "skipped": [{"recording": r["recording"], "speaker": r["speaker"], "reason": r["reason"]} for r in results if r["status"] == "skipped"],
        "warnings": [{"recording": r["recording"], "warning": w} for r in results for w in r.get("warnings", [])],
        "recordings": results,
    }


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render(manifest: dict) -> str:
    o, run, table = manifest["options"], manifest["run"], manifest["splits"]
    fractions = "/".join(f"{f:g}" for f in o["fractions"])
    crop = ",".join(map(str, o["crop"])) if o.get("crop") else "from the corpus metadata, else the full frame"
    lines = [
        "# rtmri prepare: report",
        "",
        f"- source: `{o['src']}` ({manifest['layout']} layout), output `{o['out']}`",
        f"- image size {o['size']} px, crop {crop}, 25 fps ({o['interpolation']} by timestamp), "
        f"clips of about {o['clip_seconds']:g} s, split {fractions} with seed {o['seed']}",
        f"- speakers: {len(manifest['speakers'])}; held out: {', '.join(manifest['heldout_speakers']) or 'none'}",
        f"- recordings: {run['recordings']} found; {run['prepared']} prepared in this run, "
        f"{run['reused']} reused from an earlier run, {run['skipped']} skipped; {run['elapsed_s']} s",
        "",
        "## Clips per split (as in the study's Table 1)",
        "",
        "| | " + " | ".join(ALL_SPLITS) + " | total |",
        "|---|" + "---:|" * (len(ALL_SPLITS) + 1),
        "| clips | " + " | ".join(str(table[s]["clips"]) for s in ALL_SPLITS) + f" | {manifest['total']['clips']} |",
        "| hours | " + " | ".join(f"{table[s]['hours']:.3f}" for s in ALL_SPLITS) + f" | {manifest['total']['hours']:.3f} |",
        "| speakers | " + " | ".join(str(len(table[s]["speakers"])) for s in ALL_SPLITS) + f" | {len(manifest['speakers'])} |",
        "",
        f"The study (ATR, 32 speakers, about 15 h): train {STUDY_TABLE_1['train']:,} / val {STUDY_TABLE_1['val']:,} / "
        f"test {STUDY_TABLE_1['test']:,} clips of about 5 s.",
        "",
        "## Hours per speaker and split",
        "",
        "Each cell: clips / hours.",
        "",
        "| speaker | held out | recordings | skipped | " + " | ".join(ALL_SPLITS) + " |",
        "|---|---|---:|---:|" + "---:|" * len(ALL_SPLITS),
    ]
    for speaker, entry in manifest["per_speaker"].items():
        cells = []
        for s in ALL_SPLITS:
            e = entry["splits"].get(s)
            cells.append(f"{e['clips']} / {e['hours']:.3f}" if e else "")
        lines.append(f"| {_cell(speaker)} | {'yes' if entry['heldout'] else ''} | {entry['recordings']} | {entry['skipped']} | " + " | ".join(cells) + " |")
    lines += ["", f"## Skipped recordings ({len(manifest['skipped'])})", ""]
    if manifest["skipped"]:
        lines += ["| recording | speaker | reason |", "|---|---|---|"]
        lines += [f"| `{_cell(s['recording'])}` | {_cell(s['speaker'])} | {_cell(s['reason'])} |" for s in manifest["skipped"]]
    else:
        lines.append("None.")
    lines += ["", f"## Warnings ({len(manifest['warnings'])})", ""]
    if manifest["warnings"]:
        lines += ["| recording | warning |", "|---|---|"]
        lines += [f"| `{_cell(w['recording'])}` | {_cell(w['warning'])} |" for w in manifest["warnings"]]
    else:
        lines.append("None.")
    lines += [
        "",
        f"Files: `{HEADER_FILE}` (header), `{FILELISTS_DIR}/<split>.txt` (one clip id a line), "
        f"`{CLIPS_DIR}/<speaker>/<recording>_cNN/` ({', '.join(REQUIRED_FILES)}), `{MANIFEST_FILE}` (this report as data).",
        "",
    ]
    return "\n".join(lines)


def write(out: Path, manifest: dict) -> None:
    out = Path(out)
    atomic_write(out / MANIFEST_FILE, json.dumps(manifest, indent=1))
    atomic_write(out / REPORT_FILE, render(manifest))


def read_options(out: Path) -> dict:
    """The options a prepared dataset was made with (its manifest's); OSError, ValueError,
    KeyError or TypeError when it has no readable manifest."""
    return json.loads((Path(out) / MANIFEST_FILE).read_text(encoding="utf-8"))["options"]
