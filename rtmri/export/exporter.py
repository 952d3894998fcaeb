"""checkpoint -> model bundle: ONNX graph, manifest, reference frame, parity and quality
checks on real clips, optional fp16 / int8 variants.

Two kinds of checkpoint export: the wav2lip generator (mel windows and the reference's
face input; the face encoder baked into the graph or kept as an input) and the FC-LSTM
baseline (mel windows only: its bundle's face_encoder is "baked", there is no face input).
The manifest's "architecture" says which (rtmri.bundle.architectures)."""

from __future__ import annotations

import dataclasses
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from rtmri import RtmriError
from rtmri.articulation.grid import MANIFEST_KEY
from rtmri.bundle import architectures, encode_png, new_manifest, read_manifest, write_bundle
from rtmri.bundle.engine import Engine, face_input
from rtmri.bundle.reference import image_reference, speaker_reference
from rtmri.clips import ClipDataset
from rtmri.export.parity import check_parity, clip_windows, quality
from rtmri.export.variants import FP16_TOLERANCE, INT8_SSIM_TOLERANCE, to_fp16, to_int8

VARIANTS = ("fp32", "fp16", "int8")
PARITY_CLIPS = 4
QUALITY_CLIPS = 8
# Meta fields the manifest holds at its top level; the rest describe the network in "training".
_MANIFEST_META = ("image_size", "in_channels", "lookahead_ms")


@dataclass
class ExportOptions:
    checkpoint: Path
    out: Path
    data: Path
    variant: str = "fp32"
    face_encoder: str | None = None  # "input" or "baked"; None: the network's default ("input"; the baseline has no face)
    speaker: str | None = None
    reference_image: Path | None = None
    overwrite: bool = False
    fine_tuned_from: Path | None = None  # the bundle of the model the checkpoint was fine-tuned from


def fine_tuned_record(bundle_path: Path | None) -> dict:
    """{"fine_tuned_from": the earlier bundle's training record} (which holds its own earlier ones)."""
    if bundle_path is None:
        return {}
    return {"fine_tuned_from": read_manifest(bundle_path).manifest.training}


@dataclass
class _Network:
    """A checkpoint's network in eval mode, ready to export."""

    module: object  # torch.nn.Module: forward(mel, face), or forward(mel) when not takes_face
    meta: dict
    architecture: str
    takes_face: bool


def _load_network(path: Path, ckpt: dict) -> _Network:
    from rtmri.training.models.checkpoints import BASELINE_KIND, build_from_meta, checkpoint_kind, checkpoint_meta, load_weights  # torch

    architecture_of_kind = {"generator": architectures.WAV2LIP, BASELINE_KIND: architectures.CSAPO2020_FC_LSTM}
    kind = checkpoint_kind(ckpt) or "generator"  # an unrecognised state dict is refused by its keys below
    if kind not in architecture_of_kind:
        raise RtmriError(f"{path}: a {kind} checkpoint; export takes a generator or a baseline checkpoint")
    meta = checkpoint_meta(ckpt)
    module = build_from_meta(kind, meta)
    load_weights(module, kind, path, ckpt)
    return _Network(module.eval(), meta, architecture_of_kind[kind], takes_face=kind != BASELINE_KIND)


def _face_encoder(network: _Network, requested: str | None, path: Path) -> str:
    if network.takes_face:
        return requested or "input"
    if requested == "input":
        raise RtmriError(f"{path}: the {network.architecture} network has no face input; its bundle takes mel windows "
                         "only (leave out --face-encoder)")
    return "baked"  # the bundle contract's name for a graph without a face input


def export_bundle(options: ExportOptions) -> dict:
    """Write the bundle; returns a summary (parity error, quality, sizes)."""
    import torch  # torch (the train install): `rtmri export --help` and this module's import run without it

    from rtmri.export.onnx_graph import export_onnx  # torch
    from rtmri.training.models.checkpoints import read_checkpoint  # torch

    if options.variant not in VARIANTS:
        raise RtmriError(f"unknown variant {options.variant!r}; choose from {', '.join(VARIANTS)}")
    if options.out.exists() and any(options.out.iterdir()) and not options.overwrite:
        raise RtmriError(f"{options.out} already holds files; pass --overwrite to replace them")
    ckpt = read_checkpoint(options.checkpoint)
    network = _load_network(options.checkpoint, ckpt)
    meta = network.meta
    face_encoder = _face_encoder(network, options.face_encoder, options.checkpoint)
    dataset = ClipDataset(options.data)
    if dataset.image_size != meta["image_size"]:
        raise RtmriError(f"{options.data} has {dataset.image_size} px frames, the checkpoint was trained on {meta['image_size']} px")

    speaker = None
    if options.reference_image:
        reference, reference_source = image_reference(options.reference_image, meta["image_size"]), str(options.reference_image)
    else:
        reference, speaker = speaker_reference(dataset, options.speaker)
        reference_source = f"typical frame of speaker {speaker} in {dataset.root.name}"
    channels = meta["in_channels"]
    face_np = face_input(reference, channels) if network.takes_face else None
    face = torch.from_numpy(face_np) if face_np is not None else None
    baked = face_encoder == "baked"
    fp32_bytes = export_onnx(network.module, face, baked=baked)

    val = dataset.split("val") or dataset.require_split("train")
    parity_windows = clip_windows(val[:PARITY_CLIPS], meta["lookahead_ms"])
    manifest = new_manifest(
        lookahead_ms=meta["lookahead_ms"],
        image_size=meta["image_size"],
        channels=channels,
        face_encoder=face_encoder,
        frames={"crop": dataset.header.get("crop"), "orientation": dataset.header.get("orientation", "as in the dataset"),
                "source_size": dataset.header.get("source_size")},
        reference={"frames": [encode_png(reference)], "source": reference_source, "speaker": speaker},
        training={"checkpoint": options.checkpoint.name, "global_step": int(ckpt.get("global_step", 0)),
                  **{k: v for k, v in meta.items() if k not in _MANIFEST_META},
                  "dataset": dataset.header.get("source", str(dataset.root)),
                  "speakers": dataset.header.get("speakers"), "heldout_speakers": dataset.header.get("heldout_speakers"),
                  "hours": dataset.header.get("hours"),
                  **fine_tuned_record(options.fine_tuned_from)},
        evaluation={},
        variant=options.variant,
        architecture=network.architecture,
    )
    grid = dataset.grid(speaker) if speaker else None
    if grid is not None:  # optional: the reference speaker's analysis grid (the shared DESIGN.md §5b), in the bundle's pixels
        manifest = dataclasses.replace(manifest, extra={**manifest.extra, MANIFEST_KEY: grid.to_json()})
    with tempfile.TemporaryDirectory() as tmp:
        staged = write_bundle(Path(tmp) / "fp32", fp32_bytes, manifest)
        fp32_engine = Engine(staged)
        parity = check_parity(network.module, face, fp32_engine.session, parity_windows, face_is_input=not baked)
        quality_windows = clip_windows(val[:QUALITY_CLIPS], meta["lookahead_ms"])
        fp32_quality = quality(fp32_engine, quality_windows)
        summary = {"parity_max_abs_error": parity, "fp32": fp32_quality}
        final_bytes, evaluation = fp32_bytes, {**fp32_quality, "split": "val", "variant": "fp32"}
        if options.variant != "fp32":
            final_bytes, evaluation = _make_variant(options.variant, fp32_bytes, manifest, dataset, meta, face_np if not baked else None,
                                                    fp32_quality, quality_windows, Path(tmp))
            summary[options.variant] = evaluation
        manifest = dataclasses.replace(manifest, evaluation={**evaluation, "parity_max_abs_error_fp32": parity})
        if options.out.exists():
            shutil.rmtree(options.out)
        bundle = write_bundle(options.out, final_bytes, manifest)
    summary["tensorrt"] = tensorrt_status()
    summary["bundle"] = str(bundle.path)
    summary["onnx_mb"] = round(bundle.onnx_path.stat().st_size / 2**20, 2)
    return summary


def _make_variant(variant, fp32_bytes, manifest, dataset, meta, face_np, fp32_quality, quality_windows, tmp: Path):
    if variant == "fp16":
        graph = to_fp16(fp32_bytes)
    else:
        print("rtmri export: calibrating int8 on training clips", file=sys.stderr)
        calibration = np.concatenate([w for _, w in clip_windows(dataset.require_split("train")[:16], meta["lookahead_ms"])])
        graph = to_int8(fp32_bytes, calibration, face_np)
    engine = Engine(write_bundle(tmp / variant, graph, manifest))
    figures = quality(engine, quality_windows)
    if variant == "fp16":
        fp32 = Engine(write_bundle(tmp / "ref", fp32_bytes, manifest))
        windows = quality_windows[0][1]
        diff = float(np.abs(fp32.run(windows).astype(int) - engine.run(windows).astype(int)).max()) / 255.0
        if diff > FP16_TOLERANCE:
            raise RtmriError(f"fp16 frames differ from fp32 by up to {diff:.3f} (tolerance {FP16_TOLERANCE})")
    loss = fp32_quality["ssim"] - figures["ssim"]
    if variant == "int8" and loss > INT8_SSIM_TOLERANCE:
        raise RtmriError(f"int8 loses {loss:.4f} validation SSIM against fp32 ({fp32_quality['ssim']:.4f}); "
                         f"the tolerance is {INT8_SSIM_TOLERANCE}: keep the fp32 bundle")
    return graph, {**figures, "split": "val", "variant": variant, "ssim_loss_vs_fp32": round(loss, 4)}


def tensorrt_status() -> str:
    """Whether the streamer can run this bundle with TensorRT here (it builds and caches the
    engine on first use), and if not, why."""
    providers = ort.get_available_providers()
    if "TensorrtExecutionProvider" in providers:
        return "available: the streamer uses onnxruntime's TensorRT provider, engines cached in ~/.cache/rtmri/trt"
    return (f"not available here (onnxruntime providers: {', '.join(providers)}); install the `gpu` extra on a machine "
            "with CUDA and TensorRT to use it")
