"""One utterance of one speaker: synthesise, render, write its video, audio and meta json.

Runs in a worker process; a VocalTractLab failure comes back as the result's error, so
the corpus goes on without that utterance (and writes none of its files, only the
failure's record). The files are written into OUT/.partial first and moved into place one
by one, the meta json last: a kill at any moment leaves the utterance whole or absent (its
meta missing), and an interrupted corpus resumes from the utterances that have a meta.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from rtmri.files import atomic_write
from rtmri.synth import media, tracts, vtl
from rtmri.synth.grid import utterance_geometry, write_geometry
from rtmri.synth.errors import UtteranceFailed
from rtmri.synth.layout import SpeakerFolder, partial_dir
from rtmri.synth.outlines import rest_outlines
from rtmri.synth.plan import Job
from rtmri.synth.render import FrameRenderer, render_frames
from rtmri.synth.segments import Utterance
from rtmri.synth.speakers import Speaker


@dataclass(frozen=True)
class JobResult:
    speaker: str
    utterance: str
    duration: float  # planned seconds of speech
    error: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)  # CPU seconds by stage (STAGES)


STAGES = ("acoustics", "rendering", "encoding")


def synthesize_job(job: Job) -> JobResult:
    speaker, utterance = job.speaker, job.utterance
    clock = _StageClock()
    try:
        with tempfile.TemporaryDirectory(prefix="rtmri-synth-") as scratch:
            renderer = renderer_for(speaker)
            articulation = vtl.synthesize(utterance, speaker, Path(scratch))  # makes the speaker's tract active
            clock.lap("acoustics")
            n_frames = max(1, int(round(articulation.duration * speaker.fps)))
            states = articulation.tract[state_indices(n_frames, speaker.fps, len(articulation.tract))]
            rngs = [np.random.default_rng(job.noise_seed), np.random.default_rng(job.repeat_noise_seed)]
            (frames, repeat), drawn = render_frames(renderer, states, Path(scratch), rngs)
            geometry = utterance_geometry(drawn, speaker)
            clock.lap("rendering")
    except UtteranceFailed as exc:
        folder = SpeakerFolder.of(job.out, speaker.id)
        write_json(folder.failed(utterance.id), {"utterance": utterance.id, "reason": str(exc)})
        return JobResult(speaker.id, utterance.id, utterance.duration, str(exc), clock.seconds)
    duration = n_frames / speaker.fps
    final = SpeakerFolder.of(job.out, speaker.id)
    staging = partial_dir(job.out) / f"{speaker.id}-{utterance.id}"
    shutil.rmtree(staging, ignore_errors=True)
    staged = SpeakerFolder(staging)
    media.write_video(_made(staged.video(utterance.id)), frames, speaker.fps)
    media.write_video(_made(staged.repeat(utterance.id)), repeat, speaker.fps)
    pcm = media.corpus_audio(articulation.audio, vtl.VTL_SAMPLE_RATE, int(round(duration * media.AUDIO_SAMPLE_RATE)))
    media.write_wav(_made(staged.audio(utterance.id)), pcm)
    write_geometry(staged.geometry(utterance.id), geometry)
    write_json(staged.meta(utterance.id), utterance_meta(speaker, utterance, n_frames, duration))
    clock.lap("encoding")
    for name in ("video", "repeat", "audio", "geometry", "meta"):  # meta last: the utterance is complete
        source, target = getattr(staged, name)(utterance.id), getattr(final, name)(utterance.id)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
    shutil.rmtree(staging, ignore_errors=True)
    return JobResult(speaker.id, utterance.id, utterance.duration, seconds=clock.seconds)


def is_written(job: Job) -> bool:
    """Whether an earlier run wrote the job's utterance (its meta) or recorded its failure."""
    folder = SpeakerFolder.of(job.out, job.speaker.id)
    return folder.meta(job.utterance.id).exists() or folder.failed(job.utterance.id).exists()


def earlier_result(job: Job) -> JobResult:
    """The result of a job an earlier run finished (is_written)."""
    failed = SpeakerFolder.of(job.out, job.speaker.id).failed(job.utterance.id)
    error = json.loads(failed.read_text(encoding="utf-8"))["reason"] if failed.exists() else None
    return JobResult(job.speaker.id, job.utterance.id, job.utterance.duration, error)


def _made(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


class _StageClock:
    """CPU seconds of this process spent in each stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.process_time()

    def lap(self, stage: str) -> None:
        now = time.process_time()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


def state_indices(n_frames: int, fps: int, n_states: int) -> np.ndarray:
    """Frame k shows the tract at its timestamp k / fps (the nearest state)."""
    times = np.arange(n_frames) / fps
    return np.clip(np.round(times * vtl.STATE_RATE).astype(int), 0, n_states - 1)


def utterance_meta(speaker: Speaker, utterance: Utterance, n_frames: int, duration: float) -> dict:
    phones = [dict(p, end=min(p["end"], round(duration, 5))) for p in utterance.phone_intervals() if p["start"] < duration]
    return {
        "speaker": speaker.id,
        "utterance": utterance.id,
        "text": utterance.text,
        "phones": phones,
        "crop": speaker.crop,
        "fps": speaker.fps,
        "audio_sample_rate": media.AUDIO_SAMPLE_RATE,
        "condition": utterance.condition,
        "material": utterance.material,
        "rate": round(utterance.rate, 4),
        "n_frames": n_frames,
        "duration": duration,
    }


@lru_cache(maxsize=8)
def renderer_for(speaker: Speaker) -> FrameRenderer:
    return FrameRenderer(speaker, rest_outlines(speaker.tract_file), tracts.head_of(speaker.tract_file))


def write_json(path: Path, content: dict) -> None:
    atomic_write(path, json.dumps(content, indent=1, ensure_ascii=False) + "\n")
