"""Writing a synthetic rtMRI corpus (its layout: ``rtmri.synth.layout``), in parallel,
deterministically for a seed.

Conditions: "train" (training speakers), "passage_ja" and "non_ja" (held-out speakers).
plan.json (the request) is written first and corpus.json last: its presence means the
corpus is complete. Asked again for the corpus of an OUT that holds plan.json but no
corpus.json, the synthesis resumes: speakers' tracts and utterances already written are
kept (each utterance is written whole or not at all: ``job``), the rest are made.
"""

from __future__ import annotations

import multiprocessing
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path


from tqdm import tqdm

from rtmri.synth import vtl
from rtmri.synth.errors import SpeakerRejected, SynthError
from rtmri.synth.grid import write_speaker_grid
from rtmri.synth.job import STAGES, JobResult, earlier_result, is_written, synthesize_job, write_json
from rtmri.synth.layout import (CORPUS_FILE, CORPUS_FORMAT, CORPUS_VERSION, PARTIAL_DIR, PLAN_FILE, SPEAKER_DIR,
                                CorpusFileError, SpeakerFolder, manifest_file, partial_dir, plan_file, read_object)
from rtmri.synth.plan import Job, plan_jobs
from rtmri.synth.speakers import Speaker, build_speaker_tract, make_speakers
from rtmri.synth.tracts import rejection, tract_type
from rtmri.synth.utterances import MATERIALS, READ

# Worker processes are replaced after about this many utterances each: VocalTractLab keeps about 9 MB
# each time a speaker file is loaded (measured: 60 loads, 68 -> 604 MB), and the workers switch
# speakers at almost every utterance (longest first); a 3-hour corpus grew to 6 GB a worker.
JOBS_PER_WORKER = 16


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
    # Taken in turn by the training speakers. The library default keeps the corpora made before
    # speaker types (JD3 for everyone); `rtmri synth` defaults to tracts.DEFAULT_TYPES.
    types: tuple[str, ...] = ("reference-male",)
    heldout_types: tuple[str, ...] | None = None  # taken in turn by the held-out ones (None: types)
    material: str = READ  # utterances.MATERIALS
    rates: tuple[float, float] | None = None  # per-utterance speaking rate, relative (None: 0.88-1.14)
    edge_voices: int = 0  # held-out speakers with a voice at the edge of the range
    # Make only these speakers of the corpus (a sample of a large one; not part of the plan, so the
    # same command without it, or with other speakers, goes on from what the sample made).
    only: tuple[str, ...] | None = None

    def plan(self) -> dict:
        """What fixes the corpus's content (plan.json): not the workers, not the progress bar."""
        return {"format": CORPUS_FORMAT, "version": CORPUS_VERSION, "seed": self.seed, "minutes": self.minutes,
                "speakers": self.n_speakers, "heldout_speakers": self.n_held_out, "types": list(self.types),
                "heldout_types": None if self.heldout_types is None else list(self.heldout_types),
                "eval_sentences": self.eval_sentences, "material": self.material,
                "rates": None if self.rates is None else list(self.rates), "edge_voices": self.edge_voices,
                "generator": vtl.generator_name()}


def write_corpus(request: CorpusRequest) -> dict:
    """Write the corpus (or finish an interrupted one); returns the content of corpus.json."""
    check_request(request)
    drawn = make_speakers(request.n_speakers, request.n_held_out, request.seed, request.types, request.heldout_types,
                          request.edge_voices)
    plan_jobs(drawn, request.minutes, request.seed, request.eval_sentences, str(request.out),  # bad phones: before any work
              request.material, request.rates)
    sample_of(drawn, request.only)  # an unknown speaker: before anything is written
    resuming = prepare_output(request.out, request.overwrite, request.plan())
    only = None if request.only is None else tuple(request.only) + sampled_before(request.out)
    chosen = sample_of(drawn, only)
    speakers, skipped_speakers = build_tracts(chosen, request.out, request.workers, request.progress)
    for entry in skipped_speakers:
        print(f"rtmri synth: skipped speaker {entry['speaker']} ({entry['type']}): {entry['detail']}", file=sys.stderr)
    # A sample plans with every drawn speaker, so each of its speakers says what it says in the whole
    # corpus (unless a speaker outside it would be rejected: its share of --minutes is not known).
    built = {s.id: s for s in speakers}
    skipped_ids = {entry["speaker"] for entry in skipped_speakers}
    planned = [built.get(s.id, s) for s in drawn if s.id not in skipped_ids]
    if not any(not s.held_out for s in planned):
        raise SynthError("no training speaker left: VocalTractLab could not make any of their tracts")
    jobs = [job for job in plan_jobs(planned, request.minutes, request.seed, request.eval_sentences, str(request.out),
                                     request.material, request.rates) if job.speaker.id in built]
    for speaker in speakers:
        folder = SpeakerFolder.of(request.out, speaker.id)
        write_json(folder.speaker_file, speaker.to_json())
        write_speaker_grid(folder, speaker)
    written = [is_written(job) for job in jobs]
    done = [job for job, was in zip(jobs, written) if was]
    if resuming:
        print(f"rtmri synth: resuming {request.out}: {len(done)} of {len(jobs)} utterances were written before",
              file=sys.stderr)
    made = run_jobs([job for job, was in zip(jobs, written) if not was], request.workers, request.progress,
                    done_seconds=sum(job.utterance.duration for job in done))
    for result in made:
        if result.error:
            print(f"rtmri synth: skipped {result.speaker}/{result.utterance}: {result.error}", file=sys.stderr)
    results = sorted(made + [earlier_result(job) for job in done], key=lambda r: (r.speaker, r.utterance))
    skipped = [{"utterance": f"{r.speaker}/{r.utterance}", "reason": r.error} for r in results if r.error]
    corpus = {
        "format": CORPUS_FORMAT,
        "version": CORPUS_VERSION,
        "seed": request.seed,
        "minutes": request.minutes,
        "speakers": [s.id for s in speakers],
        "heldout_speakers": [s.id for s in speakers if s.held_out],
        "speaker_types": {s.id: s.tract_type for s in speakers},
        "generator": vtl.generator_name(),
        "skipped": skipped,
        "skipped_speakers": skipped_speakers,
        "timing": stage_seconds(results),
    }
    if only is not None:
        corpus["only"] = sorted(built)
    write_json(manifest_file(request.out), corpus)
    shutil.rmtree(partial_dir(request.out), ignore_errors=True)
    return corpus


def sampled_before(out: Path) -> tuple[str, ...]:
    """The speakers an earlier sample (--only) of this corpus made: a new sample adds to them."""
    try:
        return tuple(read_object(manifest_file(out)).get("only", ()))
    except (FileNotFoundError, CorpusFileError):
        return ()


def sample_of(drawn: list[Speaker], only: tuple[str, ...] | None) -> list[Speaker]:
    """The drawn speakers named by --only (all of them without it); an unknown name is an error."""
    if only is None:
        return drawn
    unknown = sorted(set(only) - {s.id for s in drawn})
    if unknown:
        raise SynthError(f"--only names speakers this corpus does not have: {', '.join(unknown)} "
                         f"(it has {drawn[0].id} to {drawn[-1].id})")
    return [s for s in drawn if s.id in only]


def stage_seconds(results: list[JobResult]) -> dict:
    """CPU seconds by stage over the utterances made in this run, and per second of speech."""
    timed = [r for r in results if r.seconds]
    speech = sum(r.duration for r in timed)
    totals = {stage: round(sum(r.seconds.get(stage, 0.0) for r in timed), 1) for stage in STAGES}
    per_second = {stage: round(totals[stage] / speech, 3) if speech else None for stage in STAGES}
    return {"speech_s": round(speech, 1), "cpu_s": totals, "cpu_s_per_speech_s": per_second}


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
    if request.material not in MATERIALS:
        raise SynthError(f"--material must be one of {', '.join(MATERIALS)}, not {request.material!r}")
    if request.rates is not None and not 0 < request.rates[0] <= request.rates[1]:
        raise SynthError(f"--rates needs 0 < LOW <= HIGH, not {request.rates[0]:g},{request.rates[1]:g}")
    if not 0 <= request.edge_voices <= request.n_held_out:
        raise SynthError(f"--edge-voices must be between 0 and the {request.n_held_out} held-out speakers, not {request.edge_voices}")
    if not request.types or (request.heldout_types is not None and not request.heldout_types):
        raise SynthError("--types and --heldout-types need at least one speaker type")
    for name in (*request.types, *(request.heldout_types or ())):
        tract_type(name)


def prepare_output(out: Path, overwrite: bool, plan: dict) -> bool:
    """Refuse to mix with an earlier corpus unless overwrite, which removes it first; an
    unfinished corpus of the same plan is kept, to be resumed (returns True then)."""
    if out.exists() and not out.is_dir():
        raise SynthError(f"{out} exists and is not a folder")
    earlier = sorted(p for p in out.iterdir() if p.name in (CORPUS_FILE, PLAN_FILE, PARTIAL_DIR)
                     or (p.is_dir() and SPEAKER_DIR.match(p.name))) if out.exists() else []
    if earlier and not overwrite:
        if unfinished_plan(out) == plan:
            shutil.rmtree(partial_dir(out), ignore_errors=True)  # an utterance cut off mid-way
            return True  # a sample's corpus.json stays until the next one replaces it: it names what is made
        names = ", ".join(p.name for p in earlier[:4]) + (", ..." if len(earlier) > 4 else "")
        raise SynthError(f"{out} already holds a corpus ({names}){_difference(out, plan)}; use --overwrite to replace it")
    for path in earlier:
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    out.mkdir(parents=True, exist_ok=True)
    write_json(plan_file(out), plan)
    return False


def unfinished_plan(out: Path) -> dict | None:
    """The plan of an interrupted synthesis in out (None: none, or the corpus is complete). A
    sample (--only) is an unfinished corpus."""
    try:
        if manifest_file(out).exists() and "only" not in read_object(manifest_file(out)):
            return None
    except CorpusFileError:
        return None
    try:
        return read_object(plan_file(out))
    except (FileNotFoundError, CorpusFileError):
        return None


def _difference(out: Path, plan: dict) -> str:
    earlier = unfinished_plan(out)
    if earlier is None:
        return ""
    changed = [f"{key} {earlier.get(key)!r} there, {plan[key]!r} asked" for key in plan if earlier.get(key) != plan[key]]
    return f", unfinished, for another plan ({'; '.join(changed)}): run the same command to resume it"


def build_tracts(speakers: list[Speaker], out: Path, workers: int, progress: bool = False) -> tuple[list[Speaker], list[dict]]:
    """Each speaker with its own speaker file (in parallel; one already built is reused); those
    VocalTractLab cannot make are left out and listed with the named reason (their folders removed)."""
    folders = [SpeakerFolder.of(out, s.id).path for s in speakers]
    bar = tqdm(total=len(speakers), unit="speaker", desc="vocal tracts", disable=not progress, file=sys.stderr)
    outcomes: list[Speaker | dict] = []
    with bar:
        if workers == 1 or sum(not s.reference_tract for s in speakers) < 2:
            made = map(_tract_or_rejection, speakers, folders)
            for outcome in made:
                outcomes.append(outcome)
                bar.update(1)
        else:
            with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                for outcome in pool.map(_tract_or_rejection, speakers, folders):
                    outcomes.append(outcome)
                    bar.update(1)
    built, skipped = [], []
    for speaker, folder, outcome in zip(speakers, folders, outcomes):
        if isinstance(outcome, Speaker):
            built.append(outcome)
            continue
        shutil.rmtree(folder, ignore_errors=True)
        skipped.append({"speaker": speaker.id, "type": speaker.tract_type, **outcome})
    return built, skipped


def _tract_or_rejection(speaker: Speaker, folder: Path) -> Speaker | dict:
    try:
        return build_speaker_tract(speaker, folder)
    except SpeakerRejected as exc:
        return rejection(exc)


def run_jobs(jobs: list[Job], workers: int, progress: bool, done_seconds: float = 0.0) -> list[JobResult]:
    """Run the jobs, longest first, in worker processes (in this one for workers=1). The bar
    counts seconds of speech, those written before (done_seconds) included."""
    ordered = sorted(jobs, key=lambda job: -job.utterance.duration)
    total = sum(job.utterance.duration for job in jobs) + done_seconds
    results: list[JobResult] = []
    with tqdm(total=round(total, 1), initial=round(done_seconds, 1), unit="s", desc="synth (s of speech)",
              disable=not progress, file=sys.stderr) as bar:
        done = done_seconds
        for result in _results(ordered, workers):
            results.append(result)
            # each utterance's seconds rounded to a tenth once added up ran past the total (a warning)
            done = min(done + result.duration, total)
            bar.n = round(done, 1)
            bar.refresh()
    return sorted(results, key=lambda r: (r.speaker, r.utterance))


def _results(jobs: list[Job], workers: int):
    if workers == 1:
        yield from (synthesize_job(job) for job in jobs)
        return
    # Fresh worker processes for every workers x JOBS_PER_WORKER jobs (not the executor's
    # max_tasks_per_child: with a backlog it deadlocks in Python 3.11-3.13, CPython gh-115634).
    chunk = workers * JOBS_PER_WORKER
    for first in range(0, len(jobs), chunk):
        yield from _pool_results(jobs[first : first + chunk], workers)


def _pool_results(jobs: list[Job], workers: int):
    context = multiprocessing.get_context("spawn")  # a fresh VocalTractLab in every worker
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    try:
        for future in as_completed([pool.submit(synthesize_job, job) for job in jobs]):
            yield future.result()
    finally:  # on an error or Ctrl-C, start none of the jobs still waiting
        pool.shutdown(wait=True, cancel_futures=True)
