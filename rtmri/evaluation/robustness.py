"""The robustness conditions of `rtmri eval` (issue 16): what a real room and a new voice cost.

* ``room``: the test clips' audio through a hall, noise and microphone training never used
  (``rtmri.perturbations.heldout_perturbation``, seeded by the clip), the generated video
  scored against the clip's original video with the same measures as every condition.
* ``voice:<type>``: the unseen speakers' Japanese-passage clips grouped by speaker type
  (adult male, adult female, child-like; read from the synthetic corpus the dataset was
  prepared from), marked when no training speaker was of that type.
"""

from __future__ import annotations

import tempfile
import zlib
from pathlib import Path

import numpy as np
import soundfile as sf

from rtmri.evaluation.generate import Generated, generate_audio
from rtmri.perturbations import heldout_perturbation
from rtmri.prepare.report import read_options
from rtmri.synth.layout import CorpusFileError, manifest_file, speaker_folders

ROOM = "room"
ROOM_NAME = "R1: test clips through held-out rooms, noises and microphones"
VOICE_PREFIX = "voice:"
VOICE_SOURCE_SPLIT = "unseen_ja"


def room_audio(clip) -> tuple[np.ndarray, int]:
    """The clip's audio as a held-out room, noise and microphone make it (same length)."""
    audio, sr = sf.read(clip.audio_path, dtype="float32", always_2d=False)
    perturbed = heldout_perturbation(audio, sr, zlib.crc32(clip.clip_id.encode()))
    return np.clip(perturbed, -1.0, 1.0), sr


def room_unavailable() -> str | None:
    """Why the room condition cannot run here (the augmentation libraries are the train extra), or None."""
    try:  # audiomentations, pyroomacoustics: the train extra, probed here, imported by rtmri.perturbations when used
        import audiomentations  # noqa: F401
        import pyroomacoustics  # noqa: F401
    except ImportError as exc:
        return f"room condition skipped: {exc.name} is not installed (pip install 'rtmri-live[train]')"
    return None


def generate_in_room(engine, clip) -> Generated:
    """The frames (and states) the bundle makes from the clip's audio in a held-out room."""
    audio, sr = room_audio(clip)
    with tempfile.TemporaryDirectory(prefix="rtmri-eval-room-") as scratch:
        path = Path(scratch) / f"{ROOM}.wav"
        sf.write(path, audio, sr, subtype="FLOAT")
        return generate_audio(engine, path, clip.n_frames, f"{clip.clip_id} (room)")


def corpus_of(dataset) -> Path | None:
    """The synthetic corpus the dataset was prepared from, if it is still there: the path
    prepare resolved, else its ``src`` as given, from here or from beside the dataset
    (``rtmri prepare c45 c45d`` run in the folder that holds both)."""
    root = Path(dataset.root)
    try:
        options = read_options(root)
        src = options["src"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    candidates = [options.get("src_resolved"), src, root.parent / src]
    for candidate in candidates:
        if candidate and manifest_file(candidate).is_file():
            return Path(candidate)
    return None


def speaker_types(corpus: Path | None) -> dict[str, str]:
    """speaker -> type from the corpus's speaker.json files ({} without a corpus)."""
    if corpus is None:
        return {}
    types = {}
    for folder in speaker_folders(corpus):
        try:
            types[folder.id] = folder.read_speaker().get("tract_type", "reference-male")
        except (OSError, CorpusFileError):
            continue
    return types


def voice_conditions(dataset, types: dict[str, str]) -> dict[str, str]:
    """split key -> condition name for each speaker type among the unseen speakers."""
    trained = {types.get(c.speaker) for c in dataset.split("train")}
    unseen = sorted({types[c.speaker] for c in dataset.split(VOICE_SOURCE_SPLIT) if c.speaker in types})
    return {f"{VOICE_PREFIX}{t}": f"R2-{t}: unseen {t} speakers" + ("" if t in trained else " (type never heard in training)")
            for t in unseen}


def voice_split(types: dict[str, str], speaker: str) -> str | None:
    return f"{VOICE_PREFIX}{types[speaker]}" if speaker in types else None
