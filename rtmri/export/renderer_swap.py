"""A new renderer for an articulatory bundle (``rtmri export RENDERER.pt OUT --into BUNDLE
--data DATA``): the bundle's inverter graph, reference, analysis grid, closure offsets and
input normalisation are kept byte for byte, so it says the same state for the same sound; only
the pictures of that state change. The new renderer graph is checked against PyTorch on the
states the bundle's own inverter gives for DATA's clips."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from rtmri import RtmriError
from rtmri.articulation.grid import grid_of_bundle
from rtmri.articulation.state import STATE_SIZE, StateRaster
from rtmri.bundle import FACE_INPUT, FRAMES_OUTPUT, STATE_OUTPUT, read_manifest, write_bundle
from rtmri.bundle.engine import Engine, face_input
from rtmri.clips import ClipDataset
from rtmri.export.articulatory import PARITY_CLIPS, half_record, load, renderer_difference
from rtmri.export.onnx_graph import to_onnx
from rtmri.export.parity import FP32_TOLERANCE, ParityError, clip_windows
from rtmri.training.models.checkpoints import RENDERER_KIND

# Figures of the whole chain at export time (both graphs' parity too): they were the previous renderer's.
CHAIN_FIGURES = ("ssim", "nmse", "clips", "parity_max_abs_error_fp32")


def bundle_to_swap(bundle_path: Path, out: Path, overwrite: bool, half: str):
    """The articulatory bundle one of whose halves (``half``) goes into ``out``; refused for a
    bundle without one or an ``out`` that holds files (unless ``overwrite``)."""
    old = read_manifest(bundle_path)
    if not old.gives_state:
        raise RtmriError(f"{bundle_path}: a {old.manifest.architecture} bundle has no {half} to replace")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise RtmriError(f"{out} already holds files; pass --overwrite to replace them")
    return old


def swap_renderer(renderer_path: Path, out: Path, bundle_path: Path, data: Path, overwrite: bool = False) -> dict:
    old = bundle_to_swap(bundle_path, out, overwrite, "renderer")
    renderer, meta, ckpt = load(renderer_path, RENDERER_KIND)
    if int(meta["image_size"]) != old.image_size:
        raise RtmriError(f"{renderer_path} draws {meta['image_size']} px frames, {bundle_path} {old.image_size} px")
    face = face_input(old.reference_frames()[0], 1)
    graph = to_onnx(renderer, (torch.zeros(2, STATE_SIZE), torch.from_numpy(np.repeat(face, 2, axis=0))),
                    [STATE_OUTPUT, FACE_INPUT], FRAMES_OUTPUT)
    manifest = old.manifest
    training = {**manifest.training,
                "renderer": half_record(renderer_path, ckpt, meta),
                "renderer_replaced": {"previous": manifest.training.get("renderer"),
                                      "previous_onnx_sha256": manifest.renderer.get("onnx_sha256")}}
    evaluation = {k: v for k, v in manifest.evaluation.items() if k not in CHAIN_FIGURES}
    manifest = dataclasses.replace(manifest, training=training, evaluation=evaluation)
    state_graph = old.onnx_path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        staged = write_bundle(Path(tmp) / "staged", state_graph, manifest, renderer_bytes=graph)
        parity = renderer_parity(renderer, Engine(staged), data, face)
        manifest = dataclasses.replace(manifest, evaluation={**evaluation, "renderer_parity_max_abs_error_fp32": parity})
        if out.exists():
            shutil.rmtree(out)
        bundle = write_bundle(out, state_graph, manifest, renderer_bytes=graph)
    return {"bundle": str(bundle.path), "renderer": str(renderer_path), "kept_from": str(old.path),
            "renderer_parity_max_abs_error": parity, "renderer_mb": round(bundle.renderer_path.stat().st_size / 2**20, 2)}


def renderer_parity(renderer, engine: Engine, data: Path, face: np.ndarray) -> float:
    """Max abs difference of the frames between PyTorch and onnxruntime, drawing the states the
    bundle's inverter gives for a few of DATA's clips on its reference speaker's grid."""
    dataset = ClipDataset(data)
    clips = (dataset.split("val") or dataset.require_split("train"))[:PARITY_CLIPS]
    raster = StateRaster(grid_of_bundle(engine.bundle.manifest), engine.image_size)
    norm = engine.bundle.session_norm()
    worst = 0.0
    for _, windows in clip_windows(clips, engine.bundle.lookahead_ms, columns=engine.bundle.window_columns, norm=norm):
        worst = max(worst, renderer_difference(renderer, engine, raster, engine.states(windows), face))
    if worst > FP32_TOLERANCE:
        raise ParityError(f"the renderer's ONNX frames differ from PyTorch by up to {worst:.2e} (tolerance {FP32_TOLERANCE:.0e})")
    return worst
