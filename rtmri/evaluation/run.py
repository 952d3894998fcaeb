"""Evaluate a bundle on the study's conditions (DESIGN §1, §5) next to baselines."""

from __future__ import annotations

import csv
import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtmri import RtmriError
from rtmri.bundle import architectures
from rtmri.bundle.reference import evenly_spaced_frames, typical_frame
from rtmri.clips import CONDITIONS, ClipDataset
from rtmri.evaluation import robustness
from rtmri.evaluation.articulatory import ArticulationLog, clip_state
from rtmri.evaluation.generate import Generated, generate_clip
from rtmri.evaluation.report import (articulation_markdown, plot_constriction_over_time, plot_phone_errors, plot_ssim_over_time,
                                     table_markdown, write_csv, write_example_video, write_strip)
from rtmri.metrics import per_frame
from rtmri.video import resize_frames

MODEL = "model"
STILL = "reference held still"
CEILING = "noise ceiling (second acquisition)"
TRUE_STATE_RENDERED = "renderer from the true state"
ARCHITECTURE_NAMES = {architectures.CSAPO2020_FC_LSTM: "FC-LSTM baseline (Csapó 2020)"}
CONDITION_NAMES = {
    "test": "1: test clips of training speakers",
    "unseen_ja": "2: unseen speakers, Japanese passage",
    "unseen_nonja": "3: unseen speakers, non-Japanese sounds",
}
REFERENCE_SAMPLE_FRAMES = 8


@dataclass
class ClipResult:
    clip_id: str
    split: str
    system: str
    ssim: np.ndarray
    nmse: np.ndarray


@dataclass
class Evaluation:
    results: list[ClipResult] = field(default_factory=list)
    examples: dict[str, tuple] = field(default_factory=dict)  # clip id -> (clip, original, generated)
    articulation: ArticulationLog = field(default_factory=ArticulationLog)
    conditions: dict = field(default_factory=lambda: dict(CONDITION_NAMES))  # split -> name, robustness ones added
    notes: list = field(default_factory=list)

    def table(self) -> list[dict]:
        rows = []
        for split in self.conditions:
            for system in dict.fromkeys(r.system for r in self.results):
                videos = [r for r in self.results if r.split == split and r.system == system]
                if not videos:
                    continue
                ssim = np.array([v.ssim.mean() for v in videos])
                nmse = np.array([v.nmse.mean() for v in videos])
                rows.append({
                    "condition": self.conditions[split], "split": split, "system": system, "videos": len(videos),
                    "ssim_mean": round(float(ssim.mean()), 4), "ssim_std": round(float(ssim.std()), 4),
                    "nmse_mean": round(float(nmse.mean()), 4), "nmse_std": round(float(nmse.std()), 4),
                })
        return rows


def speaker_references(clips, size: int) -> dict[str, np.ndarray]:
    """Per speaker, the typical frame over that speaker's clips of the split: the anatomy a
    user of the system would show for that speaker."""
    by_speaker: dict[str, list[np.ndarray]] = {}
    for clip in clips:
        by_speaker.setdefault(clip.speaker, []).append(evenly_spaced_frames(clip, REFERENCE_SAMPLE_FRAMES))
    return {s: resize_frames(typical_frame(np.concatenate(f))[None], size)[0] for s, f in by_speaker.items()}


def system_name(engine, fallback: str) -> str:
    return ARCHITECTURE_NAMES.get(engine.bundle.manifest.architecture, fallback)


def evaluate(engine, dataset: ClipDataset, max_clips: int | None = None, examples_per_condition: int = 2, progress=None,
             baselines=(), robust: bool = True) -> Evaluation:
    """The bundle on every clip of each condition; on the same clips the baseline bundles,
    the reference held still and, where the clip has a second acquisition, the noise ceiling.
    robust adds the robustness conditions (``robustness``): the test clips in a held-out room,
    the unseen speakers by speaker type."""
    evaluation = Evaluation()
    size = engine.image_size
    planned = {split: dataset.split(split)[:max_clips] for split in CONDITIONS}
    if not any(planned.values()):
        raise RtmriError(f"{dataset.root}: no clips in the test, unseen_ja or unseen_nonja splits")
    named_baselines = [(system_name(b, f"baseline {i + 1}"), b) for i, b in enumerate(baselines)]
    for split, clips in planned.items():
        references = speaker_references(clips, size)
        for i, clip in enumerate(clips):
            original = resize_frames(clip.frames(), size)
            made = {MODEL: generate_with_reference(engine, dataset, clip, references[clip.speaker])}
            made.update((name, generate_with_reference(b, dataset, clip, references[clip.speaker])) for name, b in named_baselines)
            generated = made[MODEL].frames
            systems = [(name, resize_frames(m.frames, size)) for name, m in made.items()]
            states = {name: m.states for name, m in made.items() if m.states is not None}
            true_state = clip_state(clip)
            if engine.bundle.gives_state and true_state is not None:  # the renderer's own floor (reference shown above)
                systems.append((TRUE_STATE_RENDERED, resize_frames(engine.render(true_state.to_vector()), size)))
            still = engine.bundle.reference_frames()[0] if engine.bundle.face_baked else references[clip.speaker]
            systems.append((STILL, np.repeat(still[None], len(original), axis=0)))
            repeat = clip.repeat_frames()
            if repeat is not None:
                systems.append((CEILING, resize_frames(repeat, size)))
            for system, frames in systems:
                scores = per_frame(original, frames)
                evaluation.results.append(ClipResult(clip.clip_id, split, system, scores["ssim"], scores["nmse"]))
            evaluation.articulation.add_clip(dataset, clip, split, original, systems, states)
            if i < examples_per_condition:
                evaluation.examples[clip.clip_id] = (clip, original, generated)
            if progress:
                progress()
    if robust:
        add_robustness(evaluation, engine, dataset, planned, progress)
    return evaluation


def add_robustness(evaluation: Evaluation, engine, dataset: ClipDataset, planned: dict, progress=None) -> None:
    """The model on the test clips in a held-out room, and the unseen speakers' scores by type."""
    unavailable = robustness.room_unavailable()
    if unavailable:
        evaluation.notes.append(unavailable)
    elif planned.get("test"):
        evaluation.conditions[robustness.ROOM] = robustness.ROOM_NAME
        references = speaker_references(planned["test"], engine.image_size)
        for clip in planned["test"]:
            original = resize_frames(clip.frames(), engine.image_size)
            show_reference(engine, dataset, clip.speaker, references[clip.speaker])
            made = robustness.generate_in_room(engine, clip)
            scores = per_frame(original, made.frames)
            evaluation.results.append(ClipResult(clip.clip_id, robustness.ROOM, MODEL, scores["ssim"], scores["nmse"]))
            evaluation.articulation.add_clip(dataset, clip, robustness.ROOM, original, [(MODEL, made.frames)],
                                             {} if made.states is None else {MODEL: made.states})
            if progress:
                progress()
        # The geometry check measures the true frames: the test condition's already has them.
        log = evaluation.articulation
        log.geometry_checks = [g for g in log.geometry_checks if g[0] != robustness.ROOM]
    types = robustness.speaker_types(robustness.corpus_of(dataset))
    voices = robustness.voice_conditions(dataset, types)
    if not voices:
        evaluation.notes.append("voice condition skipped: the speaker types are unknown (no synthetic corpus beside the dataset)")
        return
    evaluation.conditions.update(voices)
    speaker_of = {c.clip_id: c.speaker for c in planned.get(robustness.VOICE_SOURCE_SPLIT, [])}
    source = robustness.VOICE_SOURCE_SPLIT
    for r in [r for r in evaluation.results if r.split == source and r.clip_id in speaker_of]:
        split = robustness.voice_split(types, speaker_of[r.clip_id])
        if split:
            evaluation.results.append(dataclasses.replace(r, split=split))
    log = evaluation.articulation
    for c in [c for c in log.clips if c.split == source and c.clip_id in speaker_of]:
        split = robustness.voice_split(types, speaker_of[c.clip_id])
        if split:
            log.clips.append(dataclasses.replace(c, split=split))


def show_reference(engine, dataset: ClipDataset, speaker: str, reference: np.ndarray) -> None:
    """Give the bundle the speaker's anatomy where it takes one (and an articulatory bundle
    the speaker's grid, on which it draws the state)."""
    if engine.bundle.face_baked:
        return
    grid = None
    if engine.bundle.gives_state:
        grid = dataset.grid(speaker)
        if grid is None:
            raise RtmriError(f"{dataset.root}: speaker {speaker} has no analysis grid; an articulatory bundle draws the state on it")
        grid = grid if dataset.image_size == engine.image_size else grid.resized(dataset.image_size, engine.image_size)
    engine.set_reference(resize_frames(reference[None], engine.image_size)[0], grid)


def generate_with_reference(engine, dataset: ClipDataset, clip, reference: np.ndarray) -> Generated:
    """The clip generated by the bundle, shown the speaker's reference where it takes one."""
    show_reference(engine, dataset, clip.speaker, reference)
    return generate_clip(engine, clip)


def articulation_tables(evaluation: Evaluation) -> dict:
    log, names = evaluation.articulation, evaluation.conditions
    return {
        "table": log.table(names, names),
        "regions": log.region_table(names, names),
        "phones": log.phone_table(names, names),
        "geometry_check": log.geometry_table(names, names),
        "speakers_without_grid": log.missing,
    }


def write_outputs(evaluation: Evaluation, out: Path, bundle_path: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    rows = evaluation.table()
    articulation = articulation_tables(evaluation)
    (out / "results.json").write_text(json.dumps({"bundle": str(bundle_path), "table": rows, "articulation": articulation,
                                                  "notes": evaluation.notes}, indent=2))
    (out / "table.md").write_text(table_markdown(rows) + "\n" + articulation_markdown(articulation))
    for name in ("table", "regions", "phones", "geometry_check"):
        write_csv(out / f"articulation_{name}.csv", articulation[name])
    with open(out / "per_frame.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["clip", "split", "system", "frame", "ssim", "nmse"])
        for r in evaluation.results:
            for k, (s, n) in enumerate(zip(r.ssim, r.nmse)):
                writer.writerow([r.clip_id, r.split, r.system, k, f"{s:.5f}", f"{n:.5f}"])
    videos = []
    for clip_id, (clip, original, generated) in evaluation.examples.items():
        path = out / "videos" / f"{clip_id.replace('/', '_')}.mp4"
        write_example_video(path, clip, original, generated)
        videos.append(str(path))
    plot = None
    if evaluation.examples:
        clip_id, (clip, original, generated) = next(iter(evaluation.examples.items()))
        model = next(r for r in evaluation.results if r.clip_id == clip_id and r.system == MODEL)
        plot = out / "ssim_over_time.png"
        plot_ssim_over_time(plot, clip, model.ssim)
        write_strip(out / "strip.png", clip, original, generated)
        generated_degrees = next((c.degree_mm for c in evaluation.articulation.clips if c.clip_id == clip_id and c.system == MODEL), None)
        if generated_degrees is not None:
            plot_constriction_over_time(out / "constriction_over_time.png", clip, evaluation.articulation.truth_degrees[clip_id],
                                        generated_degrees)
    if articulation["phones"]:
        # The study's three conditions; the robustness ones are in the tables.
        plot_phone_errors(out / "phone_errors.png", [r for r in articulation["phones"] if r["system"] == MODEL and r["split"] in CONDITIONS])
    return {"table": rows, "videos": videos, "plot": str(plot) if plot else None, "articulation": articulation,
            "notes": evaluation.notes}
