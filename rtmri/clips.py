"""The clip dataset that ``rtmri prepare`` writes and training and evaluation read.

Layout (format "rtmri-clips", version 1)::

    DATA/dataset.json                     format, version, fps, sample_rate, image_size, splits, ...
    DATA/filelists/<split>.txt            one clip id per line, e.g. "spk01/utt0003_c01"
    DATA/clips/<clip id>/frames.npy       uint8 (n_frames, H, W) grayscale at 25 fps
    DATA/clips/<clip id>/frames_repeat.npy  optional: the same articulation acquired again
                                          (synthetic corpora; gives the noise ceiling)
    DATA/clips/<clip id>/audio.wav        16 kHz mono PCM-16, n_frames / 25 s long
    DATA/clips/<clip id>/clip.json        speaker, recording, condition, start_s, n_frames, phones,
                                          pixel_mm (mm per clip pixel, where the source's spacing is known)
    DATA/clips/<clip id>/geometry.npz     optional: the true outlines of every frame in the clip's pixels
                                          (synthetic corpora; rtmri.articulation.outlines)
    DATA/grids/<speaker>.json             optional: the speaker's analysis grid in the clips' pixels
                                          (rtmri.articulation.grid; the shared DESIGN.md §5b)

Splits: "train", "val", "test" (clips of training speakers) and, for held-out speakers,
"unseen_ja" and "unseen_nonja" (DESIGN.md §1 conditions 2 and 3). Numpy only: the evaluator
and the streamer read it without torch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import soundfile

from rtmri import RtmriError
from rtmri.alignment import FPS
from rtmri.articulation.grid import AnalysisGrid
from rtmri.audio import SAMPLE_RATE, load_audio, melspectrogram
from rtmri.files import atomic_write, atomic_writer

FORMAT = "rtmri-clips"
VERSION = 1
# px: the default frame size, the one the wav2lip networks take (their strides reduce it to 1 x 1 exactly)
IMAGE_SIZE = 96
IMAGE_SIZES = (IMAGE_SIZE, 128, 192, 256)  # the frame sizes rtmri prepare writes
TRAINING_SPLITS = ("train", "val", "test")
UNSEEN_SPLITS = ("unseen_ja", "unseen_nonja")
ALL_SPLITS = TRAINING_SPLITS + UNSEEN_SPLITS
# Evaluation conditions of the study (DESIGN.md §1), by split.
CONDITIONS = {"test": 1, "unseen_ja": 2, "unseen_nonja": 3}
HEADER_FILE = "dataset.json"
FILELISTS_DIR = "filelists"
CLIPS_DIR = "clips"
FRAMES_FILE = "frames.npy"
REPEAT_FILE = "frames_repeat.npy"
AUDIO_FILE = "audio.wav"
INFO_FILE = "clip.json"
REQUIRED_FILES = (FRAMES_FILE, AUDIO_FILE, INFO_FILE)  # the geometry and the repeat are optional
GRIDS_DIR = "grids"


class DatasetError(RtmriError, ValueError):
    """A clip dataset that is missing, empty, damaged or of another format version."""


@dataclass(frozen=True)
class Clip:
    root: Path
    clip_id: str

    @property
    def folder(self) -> Path:
        return clip_folder(self.root, self.clip_id)

    @property
    def audio_path(self) -> Path:
        """The clip's 16 kHz audio file."""
        return self.folder / AUDIO_FILE

    @cached_property
    def info(self) -> dict:
        return _read_json(self.folder / INFO_FILE)

    @property
    def speaker(self) -> str:
        return self.info["speaker"]

    @property
    def n_frames(self) -> int:
        return int(self.info["n_frames"])

    def frames(self, mmap: bool = True) -> np.ndarray:
        """uint8 (n_frames, H, W)."""
        return _load_frames(self.folder / FRAMES_FILE, mmap)

    def repeat_frames(self) -> np.ndarray | None:
        """The second acquisition of the same articulation, uint8 (n_frames, H, W), or None."""
        path = self.folder / REPEAT_FILE
        return _load_frames(path, mmap=True) if path.is_file() else None

    def geometry(self) -> dict[str, np.ndarray] | None:
        """The true outlines of every frame in the clip's pixels (``rtmri.articulation.outlines``), or None."""
        from rtmri.articulation import outlines  # scikit-image (the eval extra): not needed to stream

        path = self.folder / outlines.GEOMETRY_FILE
        return outlines.load(path) if path.is_file() else None

    @property
    def pixel_mm(self) -> float | None:
        """Millimetres per pixel of the clip's frames, where known."""
        value = self.info.get("pixel_mm")
        return float(value) if isinstance(value, (int, float)) else None

    def audio(self) -> np.ndarray:
        return load_audio(self.audio_path, SAMPLE_RATE)

    def mel(self) -> np.ndarray:
        return melspectrogram(self.audio())


class ClipDataset:
    """Read access to a prepared dataset; validates its header on open."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: no such dataset folder")
        header = self.root / HEADER_FILE
        if not header.is_file():
            raise DatasetError(f"{self.root}: not a prepared dataset (no dataset.json); run `rtmri prepare` first")
        self.header = _read_json(header)
        if self.header.get("format") != FORMAT or self.header.get("version") != VERSION:
            raise DatasetError(
                f"{header}: format {self.header.get('format')!r} version {self.header.get('version')!r}, "
                f"expected {FORMAT!r} version {VERSION}; re-run `rtmri prepare` with this version"
            )
        if self.header.get("fps") != FPS:
            raise DatasetError(f"{header}: fps {self.header.get('fps')}, expected {FPS}")

    @property
    def image_size(self) -> int:
        return int(self.header["image_size"])

    def grid_path(self, speaker: str) -> Path:
        return self.root / GRIDS_DIR / f"{speaker}.json"

    def grid(self, speaker: str):
        """The speaker's analysis grid in the clips' pixels (``rtmri.articulation.grid.AnalysisGrid``), or None."""
        path = self.grid_path(speaker)
        if not path.is_file():
            return None

        return AnalysisGrid.from_json(_read_json(path), str(path))

    def split(self, name: str) -> list[Clip]:
        if name not in ALL_SPLITS:
            raise DatasetError(f"unknown split {name!r}; splits are {', '.join(ALL_SPLITS)}")
        path = filelist_path(self.root, name)
        if not path.is_file():
            return []
        ids = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [Clip(self.root, clip_id) for clip_id in ids]

    def require_split(self, name: str) -> list[Clip]:
        clips = self.split(name)
        if not clips:
            raise DatasetError(f"{self.root}: split {name!r} is empty")
        return clips


def clip_folder(root: Path, clip_id: str) -> Path:
    return Path(root) / CLIPS_DIR / clip_id


def filelist_path(root: Path, split: str) -> Path:
    return Path(root) / FILELISTS_DIR / f"{split}.txt"


def is_complete(folder: Path) -> bool:
    """Whether a clip folder holds every file a clip must have."""
    return all((folder / name).is_file() for name in REQUIRED_FILES)


def write_clip(folder: Path, frames: np.ndarray, audio: np.ndarray, info: dict, repeat: np.ndarray | None = None) -> None:
    """A clip's uint8 frames (and the repeat acquisition's), its 16 kHz audio as PCM-16 and
    clip.json, each file written atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in ((FRAMES_FILE, frames), (REPEAT_FILE, repeat)):
        if content is None:
            continue
        with atomic_writer(folder / name) as handle:
            np.save(handle, np.ascontiguousarray(content, np.uint8))
    with atomic_writer(folder / AUDIO_FILE) as handle:
        soundfile.write(handle, np.clip(audio, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    atomic_write(folder / INFO_FILE, json.dumps(info, indent=1))


def write_geometry(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    """The clip's true outlines (``rtmri.articulation.outlines``, already in its pixels and frames)."""
    from rtmri.articulation import outlines  # scikit-image (the eval extra): not needed to stream

    outlines.save(folder / outlines.GEOMETRY_FILE, arrays)


def write_header(root: Path, header: dict) -> None:
    atomic_write(root / HEADER_FILE, json.dumps({"format": FORMAT, "version": VERSION, "fps": FPS, "sample_rate": SAMPLE_RATE, **header}, indent=2))


def write_filelist(root: Path, split: str, clip_ids: list[str]) -> None:
    atomic_write(filelist_path(root, split), "".join(f"{c}\n" for c in clip_ids))


def write_grid(root: Path, speaker: str, grid) -> None:
    atomic_write(root / GRIDS_DIR / f"{speaker}.json", json.dumps(grid.to_json(), indent=1))


def _load_frames(path: Path, mmap: bool) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read frames ({exc})") from exc


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DatasetError(f"{path}: missing") from exc
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc})") from exc
