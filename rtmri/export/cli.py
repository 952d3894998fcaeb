"""rtmri export CHECKPOINT OUT --data DATA: a generator or baseline checkpoint -> a model bundle."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rtmri import RtmriError
from rtmri.export.exporter import ExportOptions, export_bundle, fine_tuned_record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="generator checkpoint (ours or a public wav2lip one) or baseline checkpoint (rtmri train baseline)")
    parser.add_argument("out", type=Path, help="bundle folder to write (model.onnx + model.onnx.json)")
    parser.add_argument("--data", type=Path, required=True, help="prepared dataset: reference frame, parity and quality clips")
    parser.add_argument("--variant", choices=("fp32", "fp16", "int8"), default="fp32",
                        help="fp16 for GPUs; int8 static quantization, refused if it loses too much SSIM")
    parser.add_argument("--face-encoder", choices=("input", "baked"), default=None,
                        help="generator only: 'baked' folds the fixed reference's face features into the graph; "
                             "'input' (the default) keeps the face as an input (any reference). "
                             "A baseline bundle has no face input")
    parser.add_argument("--speaker", help="take the reference frame from this speaker (default: the most frequent)")
    parser.add_argument("--reference-image", type=Path, help="a PNG to use as the reference frame instead")
    parser.add_argument("--fine-tuned-from", type=Path, metavar="BUNDLE",
                        help="the bundle of the model this checkpoint was fine-tuned from: its training record is kept "
                             "in the manifest (training.fine_tuned_from), so the data a model has seen is not lost")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bundle folder")
    parser.add_argument("--renderer", type=Path, metavar="CHECKPOINT",
                        help="with an inverter checkpoint (rtmri train inverter): the renderer checkpoint (rtmri train renderer); "
                             "writes an articulatory bundle of both")
    parser.add_argument("--calibrate-on", nargs="+", metavar="SPLIT", default=None,
                        help="with --renderer, or an inverter --into a bundle: the splits of --data whose clips set the closure decision (default: val). "
                             "unseen_ja unseen_nonja: voices the inverter never trained on, as a user's")
    parser.add_argument("--into", type=Path, metavar="BUNDLE",
                        help="CHECKPOINT is a renderer (rtmri train renderer): write BUNDLE again with this renderer, its "
                             "inverter, reference, grid and closure offsets kept byte for byte (--data: clips for the parity check); "
                             "an inverter (rtmri train inverter): with this inverter, its renderer, reference and grid kept byte "
                             "for byte, the closure decision set again on --data")


def main(args) -> int:
    calibrate_on = tuple(args.calibrate_on) if args.calibrate_on else None
    if args.into:
        from rtmri.training.models.checkpoints import INVERTER_KIND, checkpoint_kind, read_checkpoint  # torch, as below

        inverter = checkpoint_kind(read_checkpoint(args.checkpoint)) == INVERTER_KIND
        clashing = [name for name, given in (("--renderer", args.renderer), ("--variant", args.variant != "fp32"),
                                             ("--face-encoder", args.face_encoder), ("--speaker", args.speaker),
                                             ("--reference-image", args.reference_image),
                                             ("--fine-tuned-from", args.fine_tuned_from),
                                             ("--calibrate-on", calibrate_on and not inverter)) if given]
        if clashing:
            raise RtmriError(f"--into keeps the bundle's other half, reference and record and writes fp32: "
                             f"it does not take {', '.join(clashing)}")
        if inverter:
            from rtmri.export.inverter_swap import swap_inverter

            summary = swap_inverter(args.checkpoint, args.out, args.into, args.data, overwrite=args.overwrite,
                                    calibrate_on=calibrate_on)
        else:
            from rtmri.export.renderer_swap import swap_renderer

            summary = swap_renderer(args.checkpoint, args.out, args.into, args.data, overwrite=args.overwrite)
        print(json.dumps(summary, indent=2))
        return 0
    if args.renderer:
        from rtmri.export.articulatory import export_articulatory  # torch: `rtmri export --help` runs without it

        summary = export_articulatory(args.checkpoint, args.renderer, args.out, args.data, speaker=args.speaker,
                                      overwrite=args.overwrite, training_extra=fine_tuned_record(args.fine_tuned_from),
                                      calibrate_on=calibrate_on)
        print(json.dumps(summary, indent=2))
        return 0
    if calibrate_on:
        raise RtmriError("--calibrate-on sets an articulatory bundle's closure decision: it needs --renderer")
    summary = export_bundle(ExportOptions(
        checkpoint=args.checkpoint, out=args.out, data=args.data, variant=args.variant, face_encoder=args.face_encoder,
        speaker=args.speaker, reference_image=args.reference_image, overwrite=args.overwrite,
        fine_tuned_from=args.fine_tuned_from,
    ))
    print(json.dumps(summary, indent=2))
    return 0
