"""One utterance of one speaker: synthesise, render, write its video, audio and meta json.

Runs in a worker process; a VocalTractLab failure comes back as the result's error, so
the corpus goes on without that utterance (and writes none of its files).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rtmri.synth import media, tracts, vtl
from rtmri.synth.grid import utterance_geometry, write_geometry
from rtmri.synth.errors import UtteranceFailed
from rtmri.synth.layout import SpeakerFolder
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


def synthesize_job(job: Job) -> JobResult:
    speaker, utterance = job.speaker, job.utterance
    try:
        with tempfile.TemporaryDirectory(prefix="rtmri-synth-") as scratch:
            renderer = renderer_for(speaker)
            articulation = vtl.synthesize(utterance, speaker, Path(scratch))  # makes the speaker's tract active
            n_frames = max(1, int(round(articulation.duration * speaker.fps)))
            states = articulation.tract[state_indices(n_frames, speaker.fps, len(articulation.tract))]
            rngs = [np.random.default_rng(job.noise_seed), np.random.default_rng(job.repeat_noise_seed)]
            (frames, repeat), drawn = render_frames(renderer, states, Path(scratch), rngs)
    except UtteranceFailed as exc:
        return JobResult(speaker.id, utterance.id, utterance.duration, str(exc))
    duration = n_frames / speaker.fps
    folder = SpeakerFolder.of(job.out, speaker.id)
    video, repeat_video, audio, meta = (folder.video(utterance.id), folder.repeat(utterance.id), folder.audio(utterance.id),
                                        folder.meta(utterance.id))
    for path in (video, repeat_video, audio, meta):
        path.parent.mkdir(parents=True, exist_ok=True)
    media.write_video(video, frames, speaker.fps)
    media.write_video(repeat_video, repeat, speaker.fps)
    pcm = media.corpus_audio(articulation.audio, vtl.VTL_SAMPLE_RATE, int(round(duration * media.AUDIO_SAMPLE_RATE)))
    media.write_wav(audio, pcm)
    write_geometry(folder.geometry(utterance.id), utterance_geometry(drawn, speaker))
    write_json(meta, utterance_meta(speaker, utterance, n_frames, duration))
    return JobResult(speaker.id, utterance.id, utterance.duration)


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
        "n_frames": n_frames,
        "duration": duration,
    }


@lru_cache(maxsize=8)
def renderer_for(speaker: Speaker) -> FrameRenderer:
    return FrameRenderer(speaker, rest_outlines(speaker.tract_file), tracts.head_of(speaker.tract_file))


def write_json(path: Path, content: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
