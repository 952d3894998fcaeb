"""The benchmark on disk: the name of every file, and the reader (no synthesizer).

Layout (format "rtmri-mistakes", version 1)::

    OUT/bench.json                 format, version, seed, speaker seed, speakers (id, type, f0), rates, mistake
                                   types with their sources, what was left out and why, attempts (ids), timing
                                   (written last: its presence means the benchmark is complete)
    OUT/references/<lesson>.flac   the native reference of each lesson (16 kHz) ...
    OUT/references/<lesson>.json   ... with its words and phones (a lesson: rtmri.lessons.lesson reads it)
    OUT/attempts/<id>.flac         what the learner says (16 kHz mono)
    OUT/attempts/<id>.json         its label (written last: its presence means the attempt is complete)
    OUT/speakers/<speaker>/        the VocalTractLab speaker file of each voice (reused on resume); the
                                   references' voice in OUT/speakers/tract-<speaker>/

A label: attempt, lesson, correct (bool), mistake (a catalogue type or null), said and
expected (romaji), speaker {id, type, f0_hz}, morae_per_s, phones (the attempt's, s), and
for a mistake ``wrong``: articulator, articulators (all that are wrong there), place (region),
phone_index, phone (the reference's), said_phone, kind (articulation or duration), start_s /
end_s (the mistaken phone in the attempt) and reference_start_s / reference_end_s (in the
reference).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from rtmri import RtmriError

BENCH_FILE = "bench.json"
BENCH_FORMAT, BENCH_VERSION = "rtmri-mistakes", 1
LABEL_FORMAT = "rtmri-mistake-label"
REFERENCES, ATTEMPTS, SPEAKERS = "references", "attempts", "speakers"
AUDIO_SUFFIX, LABEL_SUFFIX = ".flac", ".json"


class BenchError(RtmriError, ValueError):
    """A benchmark folder or label that cannot be used."""


@dataclass(frozen=True)
class BenchFolder:
    path: Path

    @property
    def manifest(self) -> Path:
        return self.path / BENCH_FILE

    def reference_audio(self, lesson: str) -> Path:
        return self.path / REFERENCES / f"{lesson}{AUDIO_SUFFIX}"

    def reference_text(self, lesson: str) -> Path:
        return self.path / REFERENCES / f"{lesson}{LABEL_SUFFIX}"

    def attempt_audio(self, attempt: str) -> Path:
        return self.path / ATTEMPTS / f"{attempt}{AUDIO_SUFFIX}"

    def attempt_label(self, attempt: str) -> Path:
        return self.path / ATTEMPTS / f"{attempt}{LABEL_SUFFIX}"

    def speaker_folder(self, speaker: str) -> Path:
        return self.path / SPEAKERS / speaker

    def done(self, attempt: str) -> bool:
        return self.attempt_label(attempt).is_file() and self.attempt_audio(attempt).is_file()

    def read_manifest(self) -> dict:
        if not self.manifest.is_file():
            raise BenchError(f"{self.path}: no {BENCH_FILE}: not a finished benchmark of mistakes "
                             f"(make one with: rtmri make-mistakes {self.path} --seed 0; it resumes)")
        content = read_json(self.manifest)
        if content.get("format") != BENCH_FORMAT or content.get("version") != BENCH_VERSION:
            raise BenchError(f"{self.manifest}: format {content.get('format')!r} version {content.get('version')!r}, "
                             f"expected {BENCH_FORMAT!r} version {BENCH_VERSION}")
        return content

    def read_labels(self) -> list[dict]:
        """The labels of the manifest's attempts, in its order."""
        labels = []
        for attempt in self.read_manifest()["attempts"]:
            path = self.attempt_label(attempt)
            if not path.is_file() or not self.attempt_audio(attempt).is_file():
                raise BenchError(f"{path}: attempt {attempt} of {self.manifest} is missing (run rtmri make-mistakes again: it resumes)")
            label = read_json(path)
            if label.get("format") != LABEL_FORMAT or label.get("attempt") != attempt:
                raise BenchError(f"{path}: not the label of attempt {attempt}")
            labels.append(label)
        return labels


def read_json(path: Path) -> dict:
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path}: cannot read ({exc})") from exc
    if not isinstance(content, dict):
        raise BenchError(f"{path}: expected a JSON object")
    return content
