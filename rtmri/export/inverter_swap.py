"""A new inverter for an articulatory bundle (``rtmri export INVERTER.pt OUT --into BUNDLE
--data DATA``): the bundle's renderer graph, reference and analysis grid are kept byte for byte,
so the same state is drawn the same way; the state the sound gives changes, and with it the
closure decision, set again on DATA's clips (``--calibrate-on``), and the input normalisation.
The new graph is checked against PyTorch on DATA's validation clips."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from rtmri.bundle import MEL_INPUT, STATE_OUTPUT, write_bundle
from rtmri.bundle.engine import Engine
from rtmri.clips import ClipDataset
from rtmri.export.articulatory import (PARITY_CLIPS, calibrate_closures, calibration_clips, calibration_splits, half_record,
                                      load, quiet_room_windows, quiet_rooms_record)
from rtmri.export.onnx_graph import to_onnx
from rtmri.export.parity import FP32_TOLERANCE, ParityError, clip_windows
from rtmri.export.renderer_swap import CHAIN_FIGURES, bundle_to_swap
from rtmri.training.models.checkpoints import INVERTER_KIND

STATE_PARITY_MM = 100.0  # a state's mm are compared as frames' [0, 1]: 0.1 mm ~ 1e-3


def swap_inverter(inverter_path: Path, out: Path, bundle_path: Path, data: Path, overwrite: bool = False,
                  calibrate_on: tuple[str, ...] | None = None) -> dict:
    old = bundle_to_swap(bundle_path, out, overwrite, "inverter")
    inverter, meta, ckpt = load(inverter_path, INVERTER_KIND)
    columns, lookahead_ms, norm = int(meta["window_columns"]), float(meta["lookahead_ms"]), inverter.session_norm()
    dataset = ClipDataset(data)
    calibrate_on = calibration_splits(dataset, calibrate_on)
    offsets = calibrate_closures(inverter, calibration_clips(dataset, calibrate_on), lookahead_ms, columns, norm,
                                 quiet_room_windows(lookahead_ms, columns, norm))
    graph = to_onnx(inverter, (torch.zeros(2, 1, 80, columns),), [MEL_INPUT], STATE_OUTPUT)
    manifest = old.manifest
    training = {**manifest.training,
                "inverter": half_record(inverter_path, ckpt, meta),
                "inverter_replaced": {"previous": manifest.training.get("inverter"), "previous_onnx_sha256": manifest.onnx_sha256}}
    evaluation = {k: v for k, v in manifest.evaluation.items() if k not in CHAIN_FIGURES}
    evaluation.update(closure_offsets={k: round(v, 3) for k, v in offsets.items()},
                      closure_calibration_splits=list(calibrate_on), closure_calibration_quiet_rooms=quiet_rooms_record())
    manifest = dataclasses.replace(manifest, training=training, evaluation=evaluation, lookahead_ms=lookahead_ms,
                                   window_columns=columns, input_norm=None if norm is None else norm.to_dict())
    renderer_graph = old.renderer_path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        staged = write_bundle(Path(tmp) / "staged", graph, manifest, renderer_bytes=renderer_graph)
        parity = inverter_parity(inverter, Engine(staged), calibration_clips(dataset, calibration_splits(dataset, None))[:PARITY_CLIPS])
        manifest = dataclasses.replace(manifest, evaluation={**evaluation, "inverter_parity_max_abs_error_fp32": parity})
        if out.exists():
            shutil.rmtree(out)
        bundle = write_bundle(out, graph, manifest, renderer_bytes=renderer_graph)
    return {"bundle": str(bundle.path), "inverter": str(inverter_path), "kept_from": str(old.path),
            "closure_offsets": offsets, "inverter_parity_max_abs_error": parity,
            "inverter_mb": round(bundle.onnx_path.stat().st_size / 2**20, 2)}


def inverter_parity(inverter, engine: Engine, clips) -> float:
    """Max abs difference of the states between PyTorch and onnxruntime on the clips' windows
    (in hundreds of mm, as frames are compared)."""
    norm = engine.bundle.session_norm()
    worst = 0.0
    for _, windows in clip_windows(clips, engine.bundle.lookahead_ms, columns=engine.bundle.window_columns, norm=norm):
        with torch.no_grad():
            expected = inverter(torch.from_numpy(windows)[:, None]).numpy()
        got = engine.states(windows)
        worst = max(worst, float(np.abs(expected - got).max()) / STATE_PARITY_MM)
    if worst > FP32_TOLERANCE:
        raise ParityError(f"the inverter's ONNX states differ from PyTorch by up to {worst * STATE_PARITY_MM:.2e} mm")
    return worst
