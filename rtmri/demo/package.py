"""rtmri package-demo DATA --bundle B: the demo's files from a prepared dataset.

The example is a test clip (condition 1: an utterance the model did not see) of the
training speaker whose anatomy the bundle draws; the references are clips of the unseen speakers reading the Japanese passage
(condition 2). Each is written as it is in the dataset: audio as 16 kHz FLAC, frames as
25 fps H.264 at the dataset's size (already cropped), so `rtmri render --side-by-side`
and the learner page show them without a crop.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import soundfile

from rtmri import RtmriError
from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.bundle import read_manifest
from rtmri.clips import ClipDataset
from rtmri.demo import AUDIO_SUFFIX, ASSETS, VIDEO_SUFFIX, DemoAssets
from rtmri.video import write_video

VIDEO_CRF = 16
EXAMPLE_SPLIT, REFERENCE_SPLIT = "test", "unseen_ja"
WEIGHT_KEYS = ("format", "version", "kind", "model", "features", "state_dict", "global_step", "global_epoch")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", type=Path, help="prepared dataset (rtmri prepare)")
    parser.add_argument("--bundle", type=Path, required=True, help="the bundle to ship (rtmri export)")
    parser.add_argument("--out", type=Path, default=ASSETS, help=f"assets folder (default {ASSETS})")
    parser.add_argument("--example", help=f"clip id of the example (default: the longest {EXAMPLE_SPLIT} clip)")
    parser.add_argument("--checkpoint", type=Path, action="append", default=[],
                        help="also ship this checkpoint, weights only, as checkpoint/<its kind>.pt (to fine-tune from; needs torch); "
                             "repeat for an articulatory bundle's inverter and renderer")
    parser.add_argument("--references", type=int, default=4, help=f"{REFERENCE_SPLIT} clips to ship as references (default 4)")


def main(args) -> int:
    dataset = ClipDataset(args.data)
    manifest = read_manifest(args.bundle).manifest  # refuses a broken bundle before anything is replaced
    assets = DemoAssets(args.out)
    example = pick_example(dataset, args.example, manifest.reference.get("speaker"))
    references = spread_over_speakers(dataset.require_split(REFERENCE_SPLIT), args.references)
    for folder in (assets.bundle, assets.example_audio.parent, assets.references):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    bundle_dir = args.bundle if args.bundle.is_dir() else args.bundle.parent
    for path in sorted(bundle_dir.glob("*.onnx*")):  # the graph(s) and the manifest
        shutil.copy2(path, assets.bundle / path.name)
    write_clip(example, assets.example_audio.with_suffix(""))
    assets.example_info.write_text(json.dumps({
        "clip": example.clip_id, "speaker": example.speaker, "split": EXAMPLE_SPLIT,
        "dataset": str(args.data), "phones": example.info.get("phones", []),
    }, indent=1, ensure_ascii=False) + "\n")
    for clip in references:
        write_clip(clip, assets.references / reference_name(clip))
    for checkpoint in args.checkpoint:
        write_weights(checkpoint, assets)
    size = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"rtmri package-demo: {args.out}: bundle, example {example.clip_id}, {len(references)} references, {size / 1e6:.1f} MB")
    return 0


def write_weights(checkpoint: Path, assets: DemoAssets) -> None:
    """The checkpoint without its optimizer and run state (what `--init` needs), as checkpoint/<kind>.pt."""
    import torch  # torch: only the training install ships checkpoints

    from rtmri.training.models.checkpoints import checkpoint_kind, read_checkpoint  # the training package: torch too

    ckpt = read_checkpoint(checkpoint)
    out = assets.checkpoint_of(checkpoint_kind(ckpt) or "generator")
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v for k, v in ckpt.items() if k in WEIGHT_KEYS}, out)


def pick_example(dataset, clip_id: str | None, speaker: str | None = None):
    """The clip asked for, else the longest test clip of the bundle's reference speaker (the
    anatomy the model draws), else the longest test clip."""
    clips = dataset.require_split(EXAMPLE_SPLIT)
    if clip_id is None:
        own = [c for c in clips if c.speaker == speaker]
        return max(own or clips, key=lambda c: c.n_frames)
    for clip in clips:
        if clip.clip_id == clip_id:
            return clip
    raise RtmriError(f"--example {clip_id}: not a {EXAMPLE_SPLIT} clip of {dataset.root}")


def spread_over_speakers(clips: list, n: int) -> list:
    """n clips taken from each speaker in turn (each speaker's in order): the references show
    every voice and anatomy of the held-out speakers, not n clips of the first one."""
    by_speaker: dict[str, list] = {}
    for clip in clips:
        by_speaker.setdefault(clip.speaker, []).append(clip)
    queues = list(by_speaker.values())
    chosen: list = []
    while len(chosen) < n and any(queues):
        for queue in queues:
            if queue and len(chosen) < n:
                chosen.append(queue.pop(0))
    return chosen


def reference_name(clip) -> str:
    return clip.clip_id.replace("/", "_")


def write_clip(clip, stem: Path) -> None:
    soundfile.write(str(stem.with_suffix(AUDIO_SUFFIX)), np.clip(clip.audio(), -1, 1), SAMPLE_RATE, subtype="PCM_16")
    write_video(stem.with_suffix(VIDEO_SUFFIX), np.asarray(clip.frames()), FPS, crf=VIDEO_CRF)
