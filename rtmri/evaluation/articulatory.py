"""The articulatory side of `rtmri eval` (DESIGN §5b): every system's frames measured on the
speaker's analysis grid and compared with the true frames' measures, per condition; the
image measure on the true frames checked against the synthesizer's geometry where the
clips carry it. A dataset without grids (prepared before them) gives no rows here; one
without geometry gives its geometry rows as not available."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rtmri.articulation import compare
from rtmri.articulation import regions as R
from rtmri.articulation.measure import Measures, measure
from rtmri.articulation.outlines import true_gaps
from rtmri.articulation.state import STATE_FILE, ArticulatoryState
from rtmri.articulation.state import load as load_state

NOT_AVAILABLE = "n/a"


@dataclass
class ClipArticulation:
    clip_id: str
    split: str
    system: str
    scores: dict  # compare.clip_scores
    closures: dict  # compare.closure_counts
    phones: list  # compare.phone_errors
    geometry_rmse_mm: float | None  # the system's distance function against the geometry; None without geometry
    degree_mm: dict  # region -> (frames,), for the plots
    frames: int
    state: dict | None = None  # against the true state: scores, closures, and whether the model's own state or its images'


@dataclass
class ArticulationLog:
    clips: list[ClipArticulation] = field(default_factory=list)
    truth_degrees: dict = field(default_factory=dict)  # clip id -> region -> (frames,)
    geometry_checks: list[tuple[str, float, int, float]] = field(default_factory=list)  # (split, squared error sum, count, mm/px)
    missing: list[str] = field(default_factory=list)  # speakers without a grid
    grids: dict = field(default_factory=dict)  # (speaker, size) -> grid at the evaluated size, or None

    def grid(self, dataset, speaker: str, size: int):
        """The speaker's grid at the evaluated frame size, or None."""
        if (speaker, size) not in self.grids:
            grid = dataset.grid(speaker)
            self.grids[speaker, size] = grid if grid is None or size == dataset.image_size else grid.resized(dataset.image_size, size)
        return self.grids[speaker, size]

    def add_clip(self, dataset, clip, split: str, original: np.ndarray, systems: list[tuple[str, np.ndarray]],
                 states: dict | None = None) -> None:
        """Measure each system's frames against the true frames; where the clip has its true
        state, score each system's state against it too: the model's own (``states``:
        system -> (frames, state size)) or, for a system that gives none, what its images show."""
        grid = self.grid(dataset, clip.speaker, original.shape[-1])
        if grid is None:
            if clip.speaker not in self.missing:
                self.missing.append(clip.speaker)
            return
        truth = measure(original, grid)
        self.truth_degrees[clip.clip_id] = truth.degree_mm
        geometry = clip.geometry()
        true_distance = None
        source_grid = dataset.grid(clip.speaker)  # in the clips' pixels: the outlines' and the state's
        if geometry is not None:
            true_distance = true_gaps(geometry, source_grid, (dataset.image_size, dataset.image_size)) * source_grid.mm_per_px
            error = (truth.distance_mm - true_distance)[:, truth.tract_lines]
            error = error[np.isfinite(error)]
            self.geometry_checks.append((split, float(np.sum(error**2)), int(error.size), grid.mm_per_px))
        phones = clip.info.get("phones") or []
        true_state = clip_state(clip)
        for system, frames in systems:
            other = measure(frames, grid)
            said = None
            if true_state is not None:
                given = (states or {}).get(system)
                said = state_scores(true_state.measures(source_grid),
                                    other if given is None else ArticulatoryState.from_vector(given).measures(source_grid),
                                    phones, "model's state" if given is not None else "image measure")
            self.clips.append(ClipArticulation(
                clip.clip_id, split, system, compare.clip_scores(truth, other), compare.closure_counts(truth, other, phones),
                compare.phone_errors(truth, other, phones),
                None if true_distance is None else compare.rmse(true_distance[:, truth.tract_lines], other.distance_mm[:, truth.tract_lines]),
                other.degree_mm, len(frames), said))

    # ---------------------------------------------------------------- tables

    def table(self, conditions, condition_names) -> list[dict]:
        rows = []
        for split in conditions:
            for system in dict.fromkeys(c.system for c in self.clips):
                clips = [c for c in self.clips if c.split == split and c.system == system]
                if clips:
                    rows.append({"condition": condition_names[split], "split": split, "system": system, "videos": len(clips),
                                 **_summary(clips)})
        return rows

    def region_table(self, conditions, condition_names) -> list[dict]:
        rows = []
        for split in conditions:
            for system in dict.fromkeys(c.system for c in self.clips):
                clips = [c for c in self.clips if c.split == split and c.system == system]
                for region in R.REGIONS if clips else ():
                    per = [c.scores["regions"][region] for c in clips]
                    rows.append({"condition": condition_names[split], "split": split, "system": system, "region": region,
                                 **{key: _round(compare.mean_ignoring_nan(p[key] for p in per))
                                    for key in ("cd_rmse_mm", "cd_r", "roi_r", "amplitude_ratio")}})
        return rows

    def phone_table(self, conditions, condition_names) -> list[dict]:
        rows = []
        for split in conditions:
            for system in dict.fromkeys(c.system for c in self.clips):
                totals: dict[tuple[str, str], list[float]] = {}
                for c in self.clips:
                    if c.split == split and c.system == system:
                        for phone, place, error, frames in c.phones:
                            entry = totals.setdefault((phone, place), [0.0, 0])
                            entry[0] += error * frames
                            entry[1] += frames
                for (phone, place), (total, frames) in sorted(totals.items(), key=lambda kv: (kv[0][1], kv[0][0])):
                    rows.append({"condition": condition_names[split], "split": split, "system": system, "phone": phone,
                                 "place": place, "japanese": phone in R.JAPANESE_PHONES, "frames": frames,
                                 "cd_error_mm": round(total / frames, 3)})
        return rows

    def geometry_table(self, conditions, condition_names) -> list[dict]:
        rows = []
        for split in conditions:
            checks = [c for c in self.geometry_checks if c[0] == split]
            if not checks:
                continue
            total, count = sum(c[1] for c in checks), sum(c[2] for c in checks)
            rows.append({"condition": condition_names[split], "split": split, "clips": len(checks), "measurements": count,
                         "rmse_mm": round(float(np.sqrt(total / count)), 3) if count else None,
                         "mm_per_px": round(checks[0][3], 4)})
        return rows


def clip_state(clip) -> ArticulatoryState | None:
    """The clip's true articulatory state (``state.npz``, written by prepare), or None."""
    path = clip.folder / STATE_FILE
    return load_state(path) if path.is_file() else None


def state_scores(truth: Measures, other: Measures, phones, source: str) -> dict:
    return {"scores": compare.clip_scores(truth, other), "closures": compare.closure_counts(truth, other, phones), "source": source}


def _round(value: float, digits: int = 3):
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _summary(clips: list[ClipArticulation]) -> dict:
    regions = [c.scores["regions"] for c in clips]
    mean_over = lambda key: compare.mean_ignoring_nan(  # noqa: E731
        compare.mean_ignoring_nan(r[region][key] for region in R.REGIONS) for r in regions)
    summary = {
        "df_rmse_mm": _round(compare.mean_ignoring_nan(c.scores["df_rmse_mm"] for c in clips)),
        "cd_rmse_mm": _round(mean_over("cd_rmse_mm")),
        "cd_r": _round(mean_over("cd_r")),
        "roi_r": _round(mean_over("roi_r")),
        "amplitude_ratio": _round(mean_over("amplitude_ratio")),
    }
    for region in R.CLOSING_REGIONS:
        counts = {k: sum(c.closures[region][k] for c in clips) for k in ("tp", "fn", "frames", "shut", "fp")}
        precision, recall = compare.precision_recall(counts)
        summary[f"closure_{region}_precision"] = _round(precision)
        summary[f"closure_{region}_recall"] = _round(recall)
        summary[f"closure_{region}_frames"] = counts["frames"]
        summary[f"closure_{region}_outside_speech"] = _outside_speech(c.closures[region] for c in clips)
    geometry = [c.geometry_rmse_mm for c in clips if c.geometry_rmse_mm is not None]
    summary["df_rmse_vs_geometry_mm"] = _round(compare.mean_ignoring_nan(geometry)) if geometry else NOT_AVAILABLE
    return {**summary, **_state_summary([c.state for c in clips if c.state is not None])}


def _state_summary(states: list[dict]) -> dict:
    """The articulation against the true state (DF and CD in mm, CD r, closures at the lips
    and tongue tip during their stops and nasals), from the model's state where it gives one."""
    if not states:
        return {"state_source": NOT_AVAILABLE}
    mean_over = lambda key: compare.mean_ignoring_nan(  # noqa: E731
        compare.mean_ignoring_nan(s["scores"]["regions"][region][key] for region in R.TRACT_REGIONS) for s in states)
    summary = {"state_source": states[0]["source"],
               "state_df_rmse_mm": _round(compare.mean_ignoring_nan(s["scores"]["df_rmse_mm"] for s in states)),
               "state_cd_rmse_mm": _round(mean_over("cd_rmse_mm")), "state_cd_r": _round(mean_over("cd_r")),
               "state_amplitude_ratio": _round(mean_over("amplitude_ratio"))}
    for region in R.CLOSING_REGIONS:
        counts = {k: sum(s["closures"][region][k] for s in states) for k in ("tp", "fn", "shut", "fp")}
        precision, recall = compare.precision_recall(counts)
        summary[f"state_closure_{region}_precision"] = _round(precision)
        summary[f"state_closure_{region}_recall"] = _round(recall)
        summary[f"state_closure_{region}_outside_speech"] = _outside_speech(s["closures"][region] for s in states)
    return summary


def _outside_speech(counts) -> float | str:
    """The share of the frames outside speech shown closed where the truth is open."""
    counts = list(counts)
    quiet = sum(c["quiet"] for c in counts)
    return _round(sum(c["quiet_fp"] for c in counts) / quiet) if quiet else NOT_AVAILABLE
