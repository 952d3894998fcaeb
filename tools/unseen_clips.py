"""Write tests/data/unseen_clips (what tests/test_shipped_articulation.py scores the shipped default
on) from a prepared corpus: the audio, words and phones, true articulatory state of six clips of
the unseen speakers, and each speaker's analysis grid and reference frame.

    python tools/unseen_clips.py DATA [--out tests/data/unseen_clips]

Run it on the corpus the shipped default was trained with, so that the truth comes from the same
synthesizer as the model's training data.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from PIL import Image

from rtmri.articulation.state import STATE_FILE
from rtmri.bundle.reference import speaker_reference
from rtmri.clips import ClipDataset

CLIPS = {"spk13": ("passage_ja_04_c01", "passage_ja_05_c01"), "spk14": ("passage_ja_04_c01", "passage_ja_05_c01"),
         "spk15": ("passage_ja_02_c01", "passage_ja_04_c01")}
CLIP_FIELDS = ("speaker", "n_frames", "phones", "condition")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "tests/data/unseen_clips")
    args = parser.parse_args()
    dataset = ClipDataset(args.data)
    shutil.rmtree(args.out, ignore_errors=True)
    args.out.mkdir(parents=True)
    for speaker, names in CLIPS.items():
        (args.out / f"{speaker}.grid.json").write_text(json.dumps(dataset.grid(speaker).to_json()))
        reference, _ = speaker_reference(dataset, speaker, split="unseen_ja")
        Image.fromarray(reference).save(args.out / f"{speaker}.reference.png")
        for name in names:
            source = args.data / "clips" / speaker / name
            target = args.out / f"{speaker}_{name}"
            target.mkdir()
            shutil.copy(source / "audio.wav", target / "audio.wav")
            shutil.copy(source / STATE_FILE, target / STATE_FILE)
            info = json.loads((source / "clip.json").read_text())
            (target / "clip.json").write_text(json.dumps({k: info[k] for k in CLIP_FIELDS}, indent=1))
            print(f"{target.name}: {info['n_frames']} frames")


if __name__ == "__main__":
    main()
