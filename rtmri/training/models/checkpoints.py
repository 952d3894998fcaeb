"""Checkpoints: the public wav2lip files and ours.

Public wav2lip checkpoints are ``torch.save`` dicts with ``state_dict`` (names possibly
prefixed ``module.``), ``optimizer``, ``global_step`` and ``global_epoch``. Ours add
``format``/``version``, ``kind`` and ``model`` (width, in_channels, image_size,
lookahead_ms; for the FC-LSTM baseline, kind "baseline", its constructor's arguments and
lookahead_ms) plus what a resume needs (optimiser, scaler and RNG states, run state);
they keep ``state_dict``, ``global_step`` and ``global_epoch`` so wav2lip's tools can read
their weights too.
"""

from __future__ import annotations

import math
import pickle
import random
from pathlib import Path

import numpy as np
import torch

from rtmri import RtmriError
from rtmri.alignment import WAV2LIP_LOOKAHEAD_MS
from rtmri.audio import feature_params
from rtmri.clips import IMAGE_SIZE
from rtmri.files import atomic_writer
from rtmri.training.models.articulatory import Inverter, Renderer
from rtmri.training.models.baseline import FcLstmBaseline
from rtmri.training.models.discriminator import QualityDiscriminator
from rtmri.training.models.generator import Generator
from rtmri.training.models.syncnet import SyncNet

FORMAT = "rtmri-train-checkpoint"
VERSION = 1
KINDS = {"generator": Generator, "syncnet": SyncNet, "quality_discriminator": QualityDiscriminator}
BASELINE_KIND = "baseline"  # FcLstmBaseline: built from its checkpoint's meta, not from a width
INVERTER_KIND, RENDERER_KIND = "inverter", "renderer"  # the articulatory model's halves, built from their meta
_FROM_META = {BASELINE_KIND: FcLstmBaseline, INVERTER_KIND: Inverter, RENDERER_KIND: Renderer}
# What a public wav2lip checkpoint is, in our terms.
PUBLIC_META = {"width": 1.0, "in_channels": 3, "image_size": IMAGE_SIZE, "lookahead_ms": WAV2LIP_LOOKAHEAD_MS}
# Layers whose colour channels are folded when a 3-channel checkpoint loads into a
# 1-channel (grayscale) model: first conv (inputs summed per colour triple) and the
# generator's last conv (outputs averaged).
_FIRST_CONV = {
    "generator": "face_encoder_blocks.0.0.conv_block.0.weight",
    "quality_discriminator": "face_encoder_blocks.0.0.conv_block.0.weight",
    "syncnet": "face_encoder.0.conv_block.0.weight",
}
_OUTPUT_CONV = {"generator": ("output_block.1.weight", "output_block.1.bias")}
_MAX_LISTED = 12


class CheckpointError(RtmriError):
    """A checkpoint that cannot be read, or does not fit the model or the run."""


def build_model(kind: str, width: float = 1.0, in_channels: int = 3) -> torch.nn.Module:
    return KINDS[kind](width=width, in_channels=in_channels)


def build_from_meta(kind: str, meta: dict) -> torch.nn.Module:
    """The untrained network a checkpoint's meta describes."""
    if kind in _FROM_META:
        return _FROM_META[kind].from_meta(meta)
    return build_model(kind, meta["width"], meta["in_channels"])


def model_meta(model: torch.nn.Module, image_size: int, lookahead_ms: float) -> dict:
    return {
        "width": float(model.width),
        "in_channels": int(model.in_channels),
        "image_size": int(image_size),
        "lookahead_ms": float(lookahead_ms),
    }


def read_checkpoint(path: str | Path) -> dict:
    """torch.load a checkpoint on the CPU (tensors and plain Python only)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({str(exc).splitlines()[0]})") from exc
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(ckpt).__name__}, expected a dict)")
    if "state_dict" not in ckpt and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        ckpt = {"state_dict": ckpt}  # a bare state dict
    if not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path}: no 'state_dict' in the checkpoint (keys: {', '.join(map(str, ckpt))})")
    return ckpt


def is_ours(ckpt: dict) -> bool:
    return ckpt.get("format") == FORMAT


def strip_module_prefix(state_dict: dict) -> dict:
    return {(k[len("module.") :] if k.startswith("module.") else k): v for k, v in state_dict.items()}


def guess_kind(state_dict: dict) -> str | None:
    """Which wav2lip network a state dict belongs to, from its names."""
    names = strip_module_prefix(state_dict)
    if any(k.startswith("face_decoder_blocks.") for k in names):
        return "generator"
    if any(k.startswith("binary_pred.") for k in names):
        return "quality_discriminator"
    if any(k.startswith("face_encoder.") for k in names):
        return "syncnet"
    return None


def checkpoint_kind(ckpt: dict) -> str | None:
    return ckpt.get("kind") if is_ours(ckpt) else guess_kind(ckpt["state_dict"])


def checkpoint_meta(ckpt: dict) -> dict:
    """width, in_channels, image_size, lookahead_ms of a checkpoint (public: wav2lip's)."""
    return dict(ckpt["model"]) if is_ours(ckpt) else dict(PUBLIC_META)


def compare_state_dict(model: torch.nn.Module, state_dict: dict) -> tuple[list[str], list[str], list[str]]:
    """(missing, unexpected, mis-shaped 'name: checkpoint shape vs model shape')."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    misshaped = [
        f"{k}: checkpoint {list(state_dict[k].shape)} vs model {list(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    return missing, unexpected, misshaped


def _listing(title: str, items: list[str]) -> str:
    shown = items[:_MAX_LISTED]
    more = f"\n    ... and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
    return f"\n  {title} ({len(items)}):" + "".join(f"\n    {item}" for item in shown) + more


def load_state_dict_checked(model: torch.nn.Module, state_dict: dict, source: str = "checkpoint") -> None:
    """Load exactly (after stripping ``module.``); on any difference raise CheckpointError
    listing the missing, unexpected and mis-shaped keys."""
    state_dict = strip_module_prefix(state_dict)
    missing, unexpected, misshaped = compare_state_dict(model, state_dict)
    if missing or unexpected or misshaped:
        width = f"width {model.width}, " if hasattr(model, "width") else ""  # the baseline has none
        message = f"{source} does not fit {type(model).__name__} ({width}{model.in_channels} channels):"
        if missing:
            message += _listing("missing keys", missing)
        if unexpected:
            message += _listing("unexpected keys", unexpected)
        if misshaped:
            message += _listing("mis-shaped keys", misshaped)
        raise CheckpointError(message)
    model.load_state_dict(state_dict, strict=True)


def fold_colour_channels(kind: str, state_dict: dict) -> dict:
    """A 3-channel state dict made fit for the 1-channel model of the same width: grey in
    (repeated to 3) gives the same first-layer response; grey out is the mean colour."""
    state_dict = dict(strip_module_prefix(state_dict))
    key = _FIRST_CONV[kind]
    if key in state_dict:
        w = state_dict[key]
        groups = w.shape[1] // 3
        state_dict[key] = w.reshape(w.shape[0], groups, 3, *w.shape[2:]).sum(dim=2)
    for key in _OUTPUT_CONV.get(kind, ()):
        if key in state_dict and state_dict[key].shape[0] == 3:
            state_dict[key] = state_dict[key].mean(dim=0, keepdim=True)
    return state_dict


def check_compatible(saved: dict, expected: dict, source: str, check_lookahead: bool = True) -> None:
    """Refuse a checkpoint of another width, channel count, image size, lookahead or other
    architecture field that both describe (e.g. the baseline's hidden size), naming both
    values."""
    units = {"image_size": " px", "lookahead_ms": " ms"}
    problems = []
    for field in [f for f in expected if f in saved]:
        if field == "lookahead_ms" and not check_lookahead:
            continue
        a, b = saved[field], expected[field]
        if a is None or b is None:
            continue
        if isinstance(a, str) or isinstance(b, str):
            if a != b:
                problems.append(f"{field} {a} in the checkpoint, {b} in this run")
            continue
        if not math.isclose(float(a), float(b), rel_tol=0, abs_tol=1e-9):
            unit = units.get(field, "")
            problems.append(f"{field} {a:g}{unit} in the checkpoint, {b:g}{unit} in this run")
    if problems:
        raise CheckpointError(f"{source} does not fit this run: " + "; ".join(problems))


def load_weights(model: torch.nn.Module, kind: str, path: str | Path, ckpt: dict | None = None, key: str = "state_dict") -> dict:
    """Load weights of ``kind`` from a public wav2lip checkpoint or one of ours into model
    (3 -> 1 channel folding for a public/colour checkpoint into a grayscale model).
    Returns the checkpoint's meta."""
    ckpt = read_checkpoint(path) if ckpt is None else ckpt
    found = checkpoint_kind(ckpt) if key == "state_dict" else kind
    if found is not None and found != kind:
        raise CheckpointError(f"{path}: a {found} checkpoint, expected a {kind} checkpoint")
    meta = checkpoint_meta(ckpt)
    state_dict = ckpt.get(key)
    if not isinstance(state_dict, dict):
        raise CheckpointError(f"{path}: no {key!r} in the checkpoint")
    if meta.get("in_channels") == 3 and model.in_channels == 1:
        state_dict = fold_colour_channels(kind, state_dict)
    load_state_dict_checked(model, state_dict, source=str(path))
    return meta


def load_model(path: str | Path, kind: str, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """Build the network a checkpoint describes (public: full width, colour) and load it.
    Returns (model in eval mode, its meta: width, in_channels, image_size, lookahead_ms, or
    the baseline's architecture fields and lookahead_ms)."""
    ckpt = read_checkpoint(path)
    meta = checkpoint_meta(ckpt)
    model = build_from_meta(kind, meta)
    load_weights(model, kind, path, ckpt)
    return model.to(device).eval(), meta


def atomic_save(obj: dict, path: str | Path) -> None:
    """torch.save through rtmri.files.atomic_writer: a kill at any moment leaves either the
    old or the new file, never a torn one."""
    with atomic_writer(path) as handle:
        torch.save(obj, handle)


def new_checkpoint(kind: str, model: torch.nn.Module, meta: dict, step: int, epoch: int, **extra) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "model": dict(meta),
        "features": feature_params(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "global_step": int(step),
        "global_epoch": int(epoch),
        **extra,
    }


def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) RNG states, in weights_only-loadable types."""
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_as_tuple(state["python"]))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(value):
    return tuple(_as_tuple(v) for v in value) if isinstance(value, (list, tuple)) else value

