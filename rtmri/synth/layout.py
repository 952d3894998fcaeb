"""The synthetic corpus on disk (the shared DESIGN.md §6b): the name of every file, and the reader.

Layout (format "rtmri-synth-corpus", version 1)::

    OUT/corpus.json                  format, version, seed, minutes, speakers, heldout_speakers, speaker_types,
                                     generator, skipped (utterances), skipped_speakers (with the named reason),
                                     timing (CPU seconds by stage)
    OUT/plan.json                    the request the corpus is being written for (written first: an
                                     interrupted synthesis resumes when asked for the same corpus again)
    OUT/.partial/                    an utterance being written (moved into place file by file, meta last)
    OUT/<speaker>/speaker.json       type, tract, picture and voice of the speaker, acquisition fps, crop [x, y, w, h]
    OUT/<speaker>/tract.speaker      its VocalTractLab speaker file (not for reference-male speakers: JD3)
    OUT/<speaker>/tract.json         the anatomy it was built from, repairs, tract lengths
    OUT/<speaker>/video/<utt>.mp4    256x256 grayscale H.264 at the speaker's fps (14 or 27)
    OUT/<speaker>/repeat/<utt>.mp4   the same articulation acquired again with independent noise
                                     (two acquisitions of one articulation: the noise ceiling)
    OUT/<speaker>/audio/<utt>.wav    48 kHz mono 16-bit, as long as the video
    OUT/<speaker>/meta/<utt>.json    speaker, utterance, text, phones, crop, fps, condition, material, rate,
                                     n_frames, duration (written last: its presence means the utterance is complete)
    OUT/<speaker>/failed/<utt>.json  an utterance VocalTractLab failed on, with the reason (not retried on resume)
    OUT/<speaker>/geometry/<utt>.npz every frame's outlines and filled shapes in the video's pixels
                                     (the true articulation; rtmri.articulation.outlines)
    OUT/<speaker>/grid.json          the speaker's analysis grid in the video's pixels (rtmri.articulation.grid)

corpus.json is written last: its presence means the corpus is complete. The writers
(``corpus``, ``job``, ``grid``, ``tracts``) and the readers (prepare, the evaluator, the
lesson and video tools) take every name from here. No VocalTractLab, no torch: a corpus
is read with the core install.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from rtmri.synth.errors import SynthError

CORPUS_FORMAT = "rtmri-synth-corpus"
CORPUS_VERSION = 1
CORPUS_FILE = "corpus.json"
PLAN_FILE = "plan.json"
PARTIAL_DIR = ".partial"
SPEAKER_PREFIX = "spk"
SPEAKER_DIR = re.compile(rf"^{SPEAKER_PREFIX}\d+$")
SPEAKER_FILE = "speaker.json"  # Speaker.to_json, read back by Speaker.from_json
TRACT_FILE = "tract.speaker"
TRACT_INFO = "tract.json"  # what the tract was built from (the cache key) and what it measures
GRID_FILE = "grid.json"  # in the pixels of the speaker's videos
VIDEO_DIR = "video"
REPEAT_DIR = "repeat"  # the same articulation acquired again, with independent noise
AUDIO_DIR = "audio"
META_DIR = "meta"
GEOMETRY_DIR = "geometry"
FAILED_DIR = "failed"
VIDEO_SUFFIX = ".mp4"
AUDIO_SUFFIX = ".wav"
META_SUFFIX = ".json"
GEOMETRY_SUFFIX = ".npz"


class CorpusFileError(SynthError):
    """A corpus file that is there but cannot be read as a JSON object."""


@dataclass(frozen=True)
class SpeakerFolder:
    """OUT/<speaker>/: where each of one speaker's files lies."""

    path: Path

    @classmethod
    def of(cls, corpus: str | Path, speaker: str) -> SpeakerFolder:
        return cls(Path(corpus) / speaker)

    @classmethod
    def of_video(cls, video: str | Path) -> SpeakerFolder:
        """The folder a corpus video (``<speaker>/video/<utt>.mp4``) or repeat lies in."""
        return cls(Path(video).parent.parent)

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def speaker_file(self) -> Path:
        return self.path / SPEAKER_FILE

    @property
    def tract_file(self) -> Path:
        return self.path / TRACT_FILE

    @property
    def tract_info(self) -> Path:
        return self.path / TRACT_INFO

    @property
    def grid_file(self) -> Path:
        return self.path / GRID_FILE

    @property
    def video_dir(self) -> Path:
        return self.path / VIDEO_DIR

    @property
    def repeat_dir(self) -> Path:
        return self.path / REPEAT_DIR

    @property
    def audio_dir(self) -> Path:
        return self.path / AUDIO_DIR

    def video(self, utterance: str) -> Path:
        return self.video_dir / f"{utterance}{VIDEO_SUFFIX}"

    def repeat(self, utterance: str) -> Path:
        return self.repeat_dir / f"{utterance}{VIDEO_SUFFIX}"

    def audio(self, utterance: str) -> Path:
        return self.audio_dir / f"{utterance}{AUDIO_SUFFIX}"

    def meta(self, utterance: str) -> Path:
        return self.path / META_DIR / f"{utterance}{META_SUFFIX}"

    def geometry(self, utterance: str) -> Path:
        return self.path / GEOMETRY_DIR / f"{utterance}{GEOMETRY_SUFFIX}"

    def failed(self, utterance: str) -> Path:
        return self.path / FAILED_DIR / f"{utterance}{META_SUFFIX}"

    def read_speaker(self) -> dict:
        """speaker.json as written (``Speaker.from_json`` makes the Speaker of it); errors as ``read_object``."""
        return read_object(self.speaker_file)

    def read_meta(self, utterance: str) -> dict:
        """The utterance's meta json; errors as ``read_object``."""
        return read_object(self.meta(utterance))


def manifest_file(corpus: str | Path) -> Path:
    return Path(corpus) / CORPUS_FILE


def plan_file(corpus: str | Path) -> Path:
    return Path(corpus) / PLAN_FILE


def partial_dir(corpus: str | Path) -> Path:
    return Path(corpus) / PARTIAL_DIR


def read_manifest(corpus: str | Path) -> dict:
    """corpus.json; errors as ``read_object``."""
    return read_object(manifest_file(corpus))


def is_corpus(folder: str | Path) -> bool:
    """Whether folder holds a corpus.json of this format."""
    try:
        return read_manifest(folder).get("format") == CORPUS_FORMAT
    except (OSError, CorpusFileError):
        return False


def speaker_folders(corpus: str | Path) -> list[SpeakerFolder]:
    """The corpus's speakers that have a speaker.json, in order."""
    return [SpeakerFolder(p.parent) for p in sorted(Path(corpus).glob(f"{SPEAKER_PREFIX}*/{SPEAKER_FILE}"))]


def utterance_videos(corpus: str | Path) -> list[Path]:
    """Every speaker's utterance videos (not the repeats), in order."""
    return sorted(Path(corpus).glob(f"{SPEAKER_PREFIX}*/{VIDEO_DIR}/*{VIDEO_SUFFIX}"))


def read_object(path: Path) -> dict:
    """The JSON object in a corpus file. FileNotFoundError when there is none;
    CorpusFileError (naming the file) when it cannot be read or holds no object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise CorpusFileError(f"{path.name}: cannot read its JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CorpusFileError(f"{path.name}: not a JSON object")
    return data
