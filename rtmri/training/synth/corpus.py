"""Writing a synthetic rtMRI corpus, in parallel, deterministically for a seed.

Layout (format "rtmri-synth-corpus", version 1)::

    OUT/corpus.json                  format, version, seed, minutes, speakers, heldout_speakers, generator, skipped
    OUT/<speaker>/speaker.json       picture and voice of the speaker, acquisition fps, crop [x, y, w, h]
    OUT/<speaker>/video/<utt>.mp4    256x256 grayscale H.264 at the speaker's fps (14 or 27)
    OUT/<speaker>/repeat/<utt>.mp4   the same articulation acquired again with independent noise
                                     (two acquisitions of one articulation: the noise ceiling)
    OUT/<speaker>/audio/<utt>.wav    48 kHz mono 16-bit, as long as the video
    OUT/<speaker>/meta/<utt>.json    speaker, utterance, text, phones, crop, fps, condition, n_frames, duration
    OUT/<speaker>/geometry/<utt>.npz every frame's outlines and filled shapes in the video's pixels
                                     (the true articulation; rtmri.articulation.outlines)
    OUT/<speaker>/grid.json          the speaker's analysis grid in the video's pixels (rtmri.articulation.grid)

Conditions: "train" (training speakers), "passage_ja" and "non_ja" (held-out speakers).
corpus.json is written last: its presence means the corpus is complete.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from rtmri.training.synth import vtl
from rtmri.training.synth.errors import SynthError
from rtmri.training.synth.grid import write_speaker_grid
from rtmri.training.synth.job import JobResult, synthesize_job, write_json
from rtmri.training.synth.plan import Job, plan_jobs
from rtmri.training.synth.speakers import make_speakers

CORPUS_FORMAT = "rtmri-synth-corpus"
CORPUS_VERSION = 1
CORPUS_FILE = "corpus.json"
SPEAKER_FILE = "speaker.json"
SPEAKER_DIR = re.compile(r"^spk\d+$")


@dataclass(frozen=True)
class CorpusRequest:
    out: Path
    minutes: float
    n_speakers: int
    n_held_out: int = 1
    seed: int = 0
    overwrite: bool = False
    workers: int = 2
    eval_sentences: int | None = None  # None: held-out speakers read everything
    progress: bool = True


def write_corpus(request: CorpusRequest) -> dict:
    """Write the corpus; returns the content of corpus.json."""
    check_request(request)
    speakers = make_speakers(request.n_speakers, request.n_held_out, request.seed)
    jobs = plan_jobs(speakers, request.minutes, request.seed, request.eval_sentences, str(request.out))
    prepare_output(request.out, request.overwrite)
    for speaker in speakers:
        write_json(request.out / speaker.id / SPEAKER_FILE, speaker.to_json())
        write_speaker_grid(request.out / speaker.id, speaker)
    results = run_jobs(jobs, request.workers, request.progress)
    skipped = [{"utterance": f"{r.speaker}/{r.utterance}", "reason": r.error} for r in results if r.error]
    for entry in skipped:
        print(f"rtmri synth: skipped {entry['utterance']}: {entry['reason']}", file=sys.stderr)
    corpus = {
        "format": CORPUS_FORMAT,
        "version": CORPUS_VERSION,
        "seed": request.seed,
        "minutes": request.minutes,
        "speakers": [s.id for s in speakers],
        "heldout_speakers": [s.id for s in speakers if s.held_out],
        "generator": vtl.generator_name(),
        "skipped": skipped,
    }
    write_json(request.out / CORPUS_FILE, corpus)
    return corpus


def check_request(request: CorpusRequest) -> None:
    if request.n_speakers < 1:
        raise SynthError(f"--speakers must be at least 1, not {request.n_speakers}")
    if request.n_held_out < 0:
        raise SynthError(f"--heldout-speakers must be 0 or more, not {request.n_held_out}")
    if request.n_held_out >= request.n_speakers:
        raise SynthError(
            f"{request.n_held_out} held-out speakers asked for, but only {request.n_speakers} speakers: "
            "at least one speaker must remain for training (use more --speakers or fewer --heldout-speakers)"
        )
    if not request.minutes > 0:
        raise SynthError(f"--minutes must be more than 0, not {request.minutes}")
    if request.seed < 0:
        raise SynthError(f"--seed must be 0 or more, not {request.seed}")
    if request.workers < 1:
        raise SynthError(f"--workers must be at least 1, not {request.workers}")
    if request.eval_sentences is not None and request.eval_sentences < 1:
        raise SynthError(f"--eval-sentences must be at least 1, not {request.eval_sentences}")


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuse to mix with an earlier corpus unless overwrite, which removes it first."""
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out} exists and is not a folder")
    earlier = sorted(p for p in out.iterdir() if p.name == CORPUS_FILE or (p.is_dir() and SPEAKER_DIR.match(p.name))) if out.exists() else []
    if earlier and not overwrite:
        names = ", ".join(p.name for p in earlier[:4]) + (", ..." if len(earlier) > 4 else "")
        raise SynthError(f"{out} already holds a corpus ({names}); use --overwrite to replace it")
    for path in earlier:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)


def run_jobs(jobs: list[Job], workers: int, progress: bool) -> list[JobResult]:
    """Run the jobs, longest first, in worker processes (in this one for workers=1)."""
    ordered = sorted(jobs, key=lambda job: -job.utterance.duration)
    total = sum(job.utterance.duration for job in jobs)
    results: list[JobResult] = []
    with tqdm(total=round(total, 1), unit="s", desc="synth (s of speech)", disable=not progress, file=sys.stderr) as bar:
        for result in _results(ordered, workers):
            results.append(result)
            bar.update(round(result.duration, 1))
    return sorted(results, key=lambda r: (r.speaker, r.utterance))


def _results(jobs: list[Job], workers: int):
    if workers == 1:
        yield from (synthesize_job(job) for job in jobs)
        return
    context = multiprocessing.get_context("spawn")  # a fresh VocalTractLab in every worker
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        for future in as_completed([pool.submit(synthesize_job, job) for job in jobs]):
            yield future.result()
    finally:  # on an error or Ctrl-C, start none of the jobs still waiting
        pool.shutdown(wait=True, cancel_futures=True)
