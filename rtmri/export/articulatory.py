"""Inverter + renderer checkpoints -> one articulatory bundle (the shared DESIGN.md §4b):
``model.onnx`` (mel windows with their past -> states) and ``model.renderer.onnx`` (states
drawn on the reference speaker's grid, and the reference -> frames), with the reference
speaker's grid in the manifest, parity of both graphs against PyTorch, and the validation
figures of the whole chain."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from rtmri import RtmriError
from rtmri.alignment import FPS, frame_windows
from rtmri.articulation.grid import MANIFEST_KEY
from rtmri.articulation import regions as R
from rtmri.articulation.compare import near, phone_frames
from rtmri.audio import SAMPLE_RATE, melspectrogram
from rtmri.articulation.state import CLOSED, CLOSED_AT, CLOSURE_PLACES, STATE_FILE, STATE_SIZE, StateRaster
from rtmri.articulation.state import load as load_state
from rtmri.bundle import FACE_INPUT, FRAMES_OUTPUT, MEL_INPUT, STATE_OUTPUT, encode_png, new_manifest, write_bundle
from rtmri.bundle import architectures
from rtmri.bundle.engine import Engine, face_input
from rtmri.bundle.reference import speaker_reference
from rtmri.clips import ClipDataset
from rtmri.export.onnx_graph import to_onnx
from rtmri.export.parity import FP32_TOLERANCE, ParityError, clip_windows, quality
from rtmri.training.augment import steady_noise
from rtmri.training.models.checkpoints import (
    INVERTER_KIND,
    RENDERER_KIND,
    build_from_meta,
    checkpoint_kind,
    checkpoint_meta,
    load_state_dict_checked,
    read_checkpoint,
)

PARITY_CLIPS = 4
QUALITY_CLIPS = 8
# Noise alone, as a room sounds before anyone speaks (a microphone's hiss, a fan's rumble), that the
# closure calibration keeps open: (kind, dBFS RMS), QUIET_ROOM_S each. Seeds of their own:
# tools/noise_closures.py measures other stretches of the same noises.
QUIET_ROOMS = tuple((kind, level) for kind in ("white", "pink") for level in (-70.0, -65.0, -60.0, -50.0))
QUIET_ROOM_S = 5.0
QUIET_ROOM_SEED = 1000


def load(path: Path, kind: str):
    """(network in eval mode, meta, checkpoint) of an inverter or renderer checkpoint of ours."""
    ckpt = read_checkpoint(path)
    found = checkpoint_kind(ckpt)
    if found != kind:
        raise RtmriError(f"{path}: a {found or 'unrecognised'} checkpoint, expected the articulatory model's {kind}")
    meta = checkpoint_meta(ckpt)
    network = build_from_meta(kind, meta)
    load_state_dict_checked(network, ckpt["state_dict"], str(path))
    return network.eval().float(), meta, ckpt


# What a researcher needs to know of a half's training run (its checkpoint's config), in its manifest.
RUN_KEYS = ("data", "also_data", "init", "teacher", "distill_weight", "steps", "batch_size", "lr", "augment", "input_norm",
            "closure_weight", "phone_weight", "pause_share", "phone_balance", "train_only", "state_noise_mm", "closure_pixel_weight", "seed")


def half_record(path: Path, ckpt: dict, meta: dict) -> dict:
    """The manifest's training record of one half: its checkpoint, step, architecture and, where
    the checkpoint keeps its run's config (a shipped checkpoint is stripped of it), the run."""
    run = {k: v for k, v in (ckpt.get("config") or {}).items() if k in RUN_KEYS}
    if run and ckpt.get("init_source"):
        run["init_sha256"] = ckpt["init_source"]["sha256"]
    return {"checkpoint": path.name, "global_step": int(ckpt.get("global_step", 0)), **meta, **({"run": run} if run else {})}


def export_articulatory(inverter_path: Path, renderer_path: Path, out: Path, data: Path, speaker: str | None = None,
                        overwrite: bool = False, training_extra: dict | None = None,
                        calibrate_on: tuple[str, ...] | None = None) -> dict:
    """An articulatory bundle of the two checkpoints; the closure decision set on the clips of
    ``calibrate_on`` (splits of ``data``; default its validation clips, else its training clips)."""
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RtmriError(f"{out} already holds files; pass --overwrite to replace them")
    inverter, inverter_meta, inverter_ckpt = load(inverter_path, INVERTER_KIND)
    renderer, renderer_meta, renderer_ckpt = load(renderer_path, RENDERER_KIND)
    dataset = ClipDataset(data)
    size = int(renderer_meta["image_size"])
    if dataset.image_size != size:
        raise RtmriError(f"{data} has {dataset.image_size} px frames, the renderer draws {size} px")
    reference, speaker = speaker_reference(dataset, speaker)
    grid = dataset.grid(speaker)
    if grid is None:
        raise RtmriError(f"{data}: the reference speaker {speaker} has no analysis grid; the renderer draws the state on it")
    columns, lookahead_ms = int(inverter_meta["window_columns"]), float(inverter_meta["lookahead_ms"])
    val = dataset.split("val") or dataset.require_split("train")
    norm = inverter.session_norm()
    calibrate_on = calibration_splits(dataset, calibrate_on)
    offsets = calibrate_closures(inverter, calibration_clips(dataset, calibrate_on), lookahead_ms, columns, norm,
                                 quiet_room_windows(lookahead_ms, columns, norm))
    state_graph = to_onnx(inverter, (torch.zeros(2, 1, 80, columns),), [MEL_INPUT], STATE_OUTPUT)
    face = face_input(reference, 1)
    render_graph = to_onnx(renderer, (torch.zeros(2, STATE_SIZE), torch.from_numpy(np.repeat(face, 2, axis=0))),
                           [STATE_OUTPUT, FACE_INPUT], FRAMES_OUTPUT)
    manifest = new_manifest(
        lookahead_ms=lookahead_ms, image_size=size, channels=1, face_encoder="input", window_columns=columns,
        frames={"crop": dataset.header.get("crop"), "orientation": dataset.header.get("orientation", "as in the dataset"),
                "source_size": dataset.header.get("source_size")},
        reference={"frames": [encode_png(reference)], "source": f"typical frame of speaker {speaker} in {dataset.root.name}",
                   "speaker": speaker},
        training={"inverter": half_record(inverter_path, inverter_ckpt, inverter_meta),
                  "renderer": half_record(renderer_path, renderer_ckpt, renderer_meta),
                  "dataset": dataset.header.get("source", str(dataset.root)), "speakers": dataset.header.get("speakers"),
                  "heldout_speakers": dataset.header.get("heldout_speakers"), "hours": dataset.header.get("hours"),
                  **(training_extra or {})},
        evaluation={}, architecture=architectures.ARTICULATORY, renderer={"onnx": "model.renderer.onnx", "state_size": STATE_SIZE},
        **({} if norm is None else {"input_norm": norm.to_dict()}),
    )
    manifest = dataclasses.replace(manifest, extra={**manifest.extra, MANIFEST_KEY: grid.to_json()})
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine(write_bundle(Path(tmp) / "staged", state_graph, manifest, renderer_bytes=render_graph))
        parity = _parity(inverter, renderer, engine, clip_windows(val[:PARITY_CLIPS], lookahead_ms, columns=columns, norm=norm), grid, face)
        figures = quality(engine, clip_windows(val[:QUALITY_CLIPS], lookahead_ms, columns=columns, norm=norm))
        manifest = dataclasses.replace(manifest, evaluation={**figures, "split": "val", "variant": "fp32",
                                                             "parity_max_abs_error_fp32": parity,
                                                             "closure_offsets": {k: round(v, 3) for k, v in offsets.items()},
                                                             "closure_calibration_splits": list(calibrate_on),
                                                             "closure_calibration_quiet_rooms": quiet_rooms_record()})
        if out.exists():
            shutil.rmtree(out)
        bundle = write_bundle(out, state_graph, manifest, renderer_bytes=render_graph)
    return {"bundle": str(bundle.path), "parity_max_abs_error": parity, "fp32": figures, "closure_offsets": offsets,
            "onnx_mb": round((bundle.onnx_path.stat().st_size + bundle.renderer_path.stat().st_size) / 2**20, 2)}


def calibration_splits(dataset: ClipDataset, splits: tuple[str, ...] | None) -> tuple[str, ...]:
    """The splits whose clips set the closure decision: those named, else the validation split
    (else the training split)."""
    return tuple(splits) if splits else ("val",) if dataset.split("val") else ("train",)


def calibration_clips(dataset: ClipDataset, splits: tuple[str, ...]) -> list:
    """The clips of the splits (each must hold clips)."""
    return [clip for split in splits for clip in dataset.require_split(split)]


def quiet_rooms_record() -> list[str]:
    """The quiet rooms the calibration kept open, as the manifest says them."""
    return [f"{kind} noise {level:g} dBFS, {QUIET_ROOM_S:g} s" for kind, level in QUIET_ROOMS]


def quiet_room_windows(lookahead_ms: float, columns: int, norm=None) -> list[np.ndarray]:
    """The mel windows of QUIET_ROOMS, each streamed as a session of its own (normalised by ``norm``)."""
    out = []
    for seed, (kind, level) in enumerate(QUIET_ROOMS, start=QUIET_ROOM_SEED):
        mel = melspectrogram(steady_noise(kind, int(QUIET_ROOM_S * SAMPLE_RATE), level, seed))
        out.append(frame_windows(mel if norm is None else norm.normalise(mel), int(QUIET_ROOM_S * FPS), lookahead_ms, columns))
    return out


def calibrate_closures(inverter, clips, lookahead_ms: float, columns: int, norm=None,
                       quiet: list[np.ndarray] = ()) -> dict[str, float]:
    """Set the inverter's closure offsets (added to its logits) to those that score best on
    ``clips``, per place: recall during the stops and nasals made there (as ``rtmri eval`` counts
    it, rtmri.articulation.compare.closure_counts), precision over every frame of the clip, speech
    and pauses alike, over offsets from -log(20) to +log(20). The training loss weighs a closed
    frame by up to 20, which shifts its probabilities towards closure; this takes the shift out
    where it costs precision (judged at the stops alone, it kept a fine-tuned inverter's lips
    shut through children's vowels; judged over the speech alone, a closure head learnt again
    kept the tongue tip shut through every pause and a quiet room, where a live session begins).
    ``quiet``: mel windows of noise alone (quiet_room_windows), every frame open: a live session
    begins in its room's noise, and a closure said there counts against precision too.
    Returns place -> offset."""
    logits, truth, tolerated, during = [], [], [], []
    for windows in quiet:
        logits.append(closure_logits(inverter, windows))
        for kept in (truth, tolerated, during):
            kept.append(np.zeros((len(windows), len(CLOSURE_PLACES)), bool))
    for clip, windows in clip_windows(clips, lookahead_ms, max_frames=10_000, columns=columns, norm=norm):
        path = clip.folder / STATE_FILE
        spoken = phone_frames(clip.info.get("phones") or [], len(windows))
        if not path.is_file() or not spoken:
            continue
        logits.append(closure_logits(inverter, windows))
        closed = load_state(path).closed[: len(windows)] > CLOSED_AT
        truth.append(closed)
        tolerated.append(np.stack([near(closed[:, i]) for i in range(len(CLOSURE_PLACES))], axis=1))
        stops = np.zeros((len(windows), len(CLOSURE_PLACES)), bool)
        for phone, frames in spoken:
            if phone in R.STOPS_AND_NASALS and R.place_of(phone) in CLOSURE_PLACES:
                stops[frames, CLOSURE_PLACES.index(R.place_of(phone))] = True
        during.append(stops)
    offsets = {}
    if len(logits) == len(quiet):  # no clip with a state and phones: nothing to judge closures by
        return offsets
    logits, truth, tolerated, during = (np.concatenate(a) for a in (logits, truth, tolerated, during))
    for i, place in enumerate(CLOSURE_PLACES):
        if truth[during[:, i], i].sum() == 0:
            continue
        offsets[place] = best_offset(logits[:, i], truth[:, i], during[:, i], tolerated[:, i])
        inverter.closure_offset[i] = offsets[place]
    return offsets


def closure_logits(inverter, windows: np.ndarray) -> np.ndarray:
    """(frames, places) the inverter's closure logits for these mel windows."""
    with torch.no_grad():
        return inverter.raw(torch.from_numpy(windows)[:, None])[:, CLOSED].numpy()


def best_offset(logits: np.ndarray, closed: np.ndarray, stops: np.ndarray | None = None,
                tolerated: np.ndarray | None = None) -> float:
    """The offset added to closure logits that scores the best F1 against ``closed``, from
    -log(20) to +log(20): a model fine-tuned on new voices may lean towards closure or away from it.
    Recall over the ``stops`` frames (default: all), precision over all frames, a closure said
    where ``tolerated`` (default: ``closed``) counted right."""
    stops = np.ones_like(closed) if stops is None else stops
    tolerated = closed if tolerated is None else tolerated
    candidates = np.linspace(-np.log(20.0), np.log(20.0), 61)
    scores = [_f1(logits + c > 0, closed, stops, tolerated) for c in candidates]
    return float(candidates[int(np.argmax(scores))])


def _f1(said: np.ndarray, closed: np.ndarray, stops: np.ndarray, tolerated: np.ndarray) -> float:
    recall = np.sum(said & closed & stops) / max(np.sum(closed & stops), 1)
    precision = np.sum(said & tolerated) / max(np.sum(said), 1)
    return float(2 * precision * recall / max(precision + recall, 1e-9))


def _parity(inverter, renderer, engine: Engine, windows_by_clip, grid, face: np.ndarray) -> float:
    """Max abs difference between PyTorch and onnxruntime: states (mm) and frames ([0, 1])."""
    raster = StateRaster(grid, engine.image_size)
    worst = 0.0
    for _, windows in windows_by_clip:
        with torch.no_grad():
            expected = inverter(torch.from_numpy(windows)[:, None]).numpy()
        got = engine.states(windows)
        worst = max(worst, float(np.abs(expected - got).max()) / 100.0)  # mm against frames: 0.1 mm ~ 1e-3
        worst = max(worst, renderer_difference(renderer, engine, raster, got, face))
    if worst > FP32_TOLERANCE:
        raise ParityError(f"ONNX output differs from PyTorch by up to {worst:.2e} (tolerance {FP32_TOLERANCE:.0e})")
    return worst


def renderer_difference(renderer, engine: Engine, raster: StateRaster, states: np.ndarray, face: np.ndarray) -> float:
    """Max abs difference of the frames ([0, 1]) the PyTorch renderer and the bundle's renderer
    graph draw of the same states on the same raster and reference."""
    drawn = np.repeat(face, len(states), axis=0)
    drawn[:, :1] = raster.draw(states)[:, None]
    with torch.no_grad():
        expected = renderer(torch.from_numpy(states), torch.from_numpy(drawn)).numpy()
    got = engine.renderer.run([FRAMES_OUTPUT], {STATE_OUTPUT: states, FACE_INPUT: drawn})[0]
    return float(np.abs(expected - got).max())
