"""The run's manifest (``OUT/manifest.json``, for programs) and report (``OUT/report.md``,
for people): clips per split in the layout of the study's Table 1, hours per split and per
speaker, every skipped recording with its reason, every warning, and what this run did
(prepared, reused from an earlier run, skipped).

Where the clips carry the synthesizer's geometry, ``write_geometry_check`` adds the image
measure (DESIGN §5b) on every clip's frames against that geometry: RMSE over the distance
function's lines (glottis to lips) and, apart, over the velopharyngeal port's lines, per
speaker and in all (``python -m rtmri.prepare.report DATA`` on a prepared dataset)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtmri.alignment import FPS
from rtmri.articulation import regions as R
from rtmri.clips import ALL_SPLITS, CLIPS_DIR, FILELISTS_DIR, HEADER_FILE, REQUIRED_FILES, Clip, ClipDataset
from rtmri.files import atomic_write

MANIFEST_FORMAT = "rtmri-prepare-manifest"
MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.md"
STUDY_TABLE_1 = {"train": 11206, "val": 1401, "test": 1316}
GEOMETRY_CHECK = "geometry_check"
TRACT, VELUM = "tract", "velum"  # the distance function's lines; the velopharyngeal port's
# ... the distance function's lines on the frames that stand at a source frame's instant (within
# SOURCE_INSTANT of a source period): no cross-fade of two source frames, whose double contour
# matches neither frame's outlines nor their average (the outlines the check compares with)
TRACT_AT_SOURCE = "tract_at_source_frames"
SOURCE_INSTANT = 0.1
MAX_TRACT_RMSE_MM = 1.3  # what the image measure must reach on synthetic frames (issue 24)


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
    if manifest.get(GEOMETRY_CHECK):
        lines += ["", *geometry_check_lines(manifest[GEOMETRY_CHECK])]
    lines += [
        "",
        f"Files: `{HEADER_FILE}` (header), `{FILELISTS_DIR}/<split>.txt` (one clip id a line), "
        f"`{CLIPS_DIR}/<speaker>/<recording>_cNN/` ({', '.join(REQUIRED_FILES)}), `{MANIFEST_FILE}` (this report as data).",
        "",
    ]
    return "\n".join(lines)


def clip_errors(clip: Clip, grid, image_size: int) -> dict[str, np.ndarray] | None:
    """Image measure minus geometry (mm) on the clip's frames, by line group; None without geometry."""
    from rtmri.articulation.measure import measure  # scikit-image, scipy: only for this check
    from rtmri.articulation.outlines import true_gaps

    geometry = clip.geometry()
    if geometry is None:
        return None
    measured = measure(clip.frames(), grid).distance_mm
    truth = true_gaps(geometry, grid, (image_size, image_size)) * grid.mm_per_px
    error = measured - truth
    at_source = at_source_frames(clip.info, len(error))
    return {TRACT: error[:, grid.tract_lines], VELUM: error[:, grid.lines_of(R.VELOPHARYNGEAL)],
            TRACT_AT_SOURCE: error[at_source][:, grid.tract_lines]}


def at_source_frames(info: dict, n_frames: int) -> np.ndarray:
    """(n_frames,) whether each of a clip's frames stands within SOURCE_INSTANT of a source
    period from a source frame's instant (all of them where the clip does not say its source rate)."""
    source_fps, start_s = info.get("source_fps"), info.get("start_s")
    if not isinstance(source_fps, (int, float)) or not isinstance(start_s, (int, float)) or source_fps <= 0:
        return np.ones(n_frames, bool)
    position = (start_s + np.arange(n_frames) / FPS) * source_fps
    return np.abs(position - np.round(position)) <= SOURCE_INSTANT


def geometry_check(out: Path, progress: bool = True) -> dict | None:
    """RMSE (mm) of the image measure against the geometry, by line group, per speaker and in
    all, over every clip with geometry and a grid; None when there is none."""
    dataset = ClipDataset(out)
    clip_ids = sorted({line.strip() for split in ALL_SPLITS for line in _filelist(out, split)})
    sums: dict[str, dict[str, list[float]]] = {}
    for clip_id in tqdm(clip_ids, desc="image measure vs geometry", unit="clip", disable=not progress):
        clip = Clip(dataset.root, clip_id)
        grid = dataset.grid(clip.speaker)
        errors = None if grid is None else clip_errors(clip, grid, dataset.image_size)
        if errors is None:
            continue
        for key in (clip.speaker, "all"):
            entry = sums.setdefault(key, {group: [0.0, 0] for group in errors})
            for group, values in errors.items():
                finite = values[np.isfinite(values)]
                entry[group][0] += float(np.sum(finite**2))
                entry[group][1] += int(finite.size)
    if not sums:
        return None
    rmse = {key: {group: (round(float(np.sqrt(s / n)), 3) if n else None) for group, (s, n) in entry.items()}
            for key, entry in sums.items()}
    return {"clips": len(clip_ids), "rmse_mm": rmse, "max_tract_rmse_mm": MAX_TRACT_RMSE_MM}


def _filelist(out: Path, split: str) -> list[str]:
    path = Path(out) / FILELISTS_DIR / f"{split}.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.is_file() else []


def geometry_check_lines(check: dict) -> list[str]:
    overall = check["rmse_mm"]["all"]
    verdict = "within" if overall[TRACT] is not None and overall[TRACT] <= check["max_tract_rmse_mm"] else "above"
    lines = [
        "## Image measure against the synthesizer's geometry",
        "",
        f"RMSE (mm) of the air gap the image measure reads on the frames against the gap of the drawn shapes, "
        f"{check['clips']} clips: the distance function's lines (glottis to lips; {verdict} the "
        f"{check['max_tract_rmse_mm']:g} mm bound) and, apart, the velopharyngeal port's lines; then the tract "
        f"lines on the frames at a source frame's instant (within {SOURCE_INSTANT:g} of a source period; the 25 fps "
        "conversion cross-fades the others, whose double contour matches no outline).",
        "",
        "| speaker | tract lines | velopharyngeal lines | tract lines at source frames |",
        "|---|---:|---:|---:|",
    ]
    fmt = lambda v: "–" if v is None else f"{v:.2f}"  # noqa: E731
    for key, entry in sorted(check["rmse_mm"].items(), key=lambda kv: (kv[0] == "all", kv[0])):
        lines.append(f"| {'all' if key == 'all' else _cell(key)} | {fmt(entry[TRACT])} | {fmt(entry[VELUM])} | "
                     f"{fmt(entry.get(TRACT_AT_SOURCE))} |")
    return lines


def write_geometry_check(out: Path, progress: bool = True) -> dict | None:
    """Add the image measure's check against the geometry to the manifest and the report."""
    check = geometry_check(out, progress)
    if check is not None:
        manifest = json.loads((Path(out) / MANIFEST_FILE).read_text(encoding="utf-8"))
        write(out, {**manifest, GEOMETRY_CHECK: check})
    return check


def write(out: Path, manifest: dict) -> None:
    out = Path(out)
    atomic_write(out / MANIFEST_FILE, json.dumps(manifest, indent=1))
    atomic_write(out / REPORT_FILE, render(manifest))


def read_options(out: Path) -> dict:
    """The options a prepared dataset was made with (its manifest's); OSError, ValueError,
    KeyError or TypeError when it has no readable manifest."""
    return json.loads((Path(out) / MANIFEST_FILE).read_text(encoding="utf-8"))["options"]


def main(argv=None) -> int:
    """python -m rtmri.prepare.report DATA: the image measure against the synthesizer's geometry
    on a prepared dataset, written into its manifest and report and printed."""
    parser = argparse.ArgumentParser(prog="python -m rtmri.prepare.report", description=main.__doc__)
    parser.add_argument("data", type=Path)
    args = parser.parse_args(argv)
    check = write_geometry_check(args.data)
    if check is None:
        print(f"{args.data}: no clip with geometry and a grid")
        return 1
    print("\n".join(geometry_check_lines(check)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
