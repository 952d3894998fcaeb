"""An interrupted `rtmri synth` continues where it stopped and ends with the same files as an
uninterrupted run; a different request is refused by name; speaking rates and materials."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rtmri.cli import main as rtmri
from rtmri.synth import inventory, layout, texts, utterances
from rtmri.synth.plan import plan_jobs
from rtmri.synth.speakers import make_speakers

from conftest import SYNTH_ARGS, SYNTH_SEED  # noqa: E402

KILL_TIMEOUT_S = 300


def _files(corpus: Path) -> dict[str, bytes]:
    return {str(p.relative_to(corpus)): p.read_bytes() for p in sorted(corpus.rglob("*"))
            if p.is_file() and p.name not in (layout.CORPUS_FILE, layout.PLAN_FILE)}


def _manifest_without_timing(corpus: Path) -> dict:
    info = layout.read_manifest(corpus)
    info.pop("timing")
    return info


def _one_worker(args: list[str]) -> list[str]:
    args = list(args)
    args[args.index("--workers") + 1] = "1"
    return args


def test_a_killed_synthesis_resumes_and_writes_the_same_files(synth_corpus, tmp_path, capsys):
    out = tmp_path / "corpus"
    args = ["synth", str(out), "--seed", str(SYNTH_SEED), *_one_worker(SYNTH_ARGS)]
    child = subprocess.Popen([sys.executable, "-c", f"from rtmri.cli import main; raise SystemExit(main({args!r}))"],
                             env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + KILL_TIMEOUT_S
    while not list(out.glob("spk*/meta/*.json")):
        assert child.poll() is None, "the synthesis ended before it could be interrupted"
        assert time.monotonic() < deadline, "no utterance written in time"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()

    written = set(_files(out))
    assert not layout.manifest_file(out).exists() and layout.plan_file(out).exists()
    assert written < set(_files(synth_corpus)), "a kill left a file the finished corpus does not have"

    assert rtmri(args) == 0
    assert "resuming" in capsys.readouterr().err
    assert _files(out) == _files(synth_corpus)
    assert _manifest_without_timing(out) == _manifest_without_timing(synth_corpus)
    assert not layout.partial_dir(out).exists()


def test_workers_replaced_after_every_utterance_write_the_same_files(synth_corpus, tmp_path, monkeypatch):
    """Worker processes are replaced every JOBS_PER_WORKER utterances (VocalTractLab keeps memory
    for every speaker file it loads): what they write does not depend on it."""
    from rtmri.synth import corpus

    pools = []
    original = corpus._pool_results
    monkeypatch.setattr(corpus, "JOBS_PER_WORKER", 1)
    monkeypatch.setattr(corpus, "_pool_results", lambda jobs, workers: pools.append(len(jobs)) or original(jobs, workers))
    out = tmp_path / "corpus"
    assert rtmri(["synth", str(out), "--seed", str(SYNTH_SEED), *SYNTH_ARGS]) == 0
    assert len(pools) > 1 and max(pools) == 2  # two workers, one utterance each, then fresh ones
    assert _files(out) == _files(synth_corpus)


def test_a_different_request_does_not_resume_an_unfinished_corpus(tmp_path, capsys):
    out = tmp_path / "corpus"
    out.mkdir()
    layout.plan_file(out).write_text(json.dumps({"format": layout.CORPUS_FORMAT, "seed": 1}))
    assert rtmri(["synth", str(out), "--seed", "2", *SYNTH_ARGS]) == 2
    error = capsys.readouterr().err
    assert "unfinished" in error and "seed 1 there, 2 asked" in error and "--overwrite" in error


def test_a_sample_of_speakers_is_what_the_whole_corpus_holds_and_grows_into_it(synth_corpus, tmp_path, capsys):
    out = tmp_path / "corpus"
    args = ["synth", str(out), "--seed", str(SYNTH_SEED), *SYNTH_ARGS]
    assert rtmri([*args, "--only", "spk02"]) == 0
    sample = _files(out)
    assert sample and all(name.startswith("spk02/") for name in sample)
    whole = _files(synth_corpus)
    assert sample == {name: data for name, data in whole.items() if name.startswith("spk02/")}
    assert layout.read_manifest(out)["only"] == ["spk02"]

    assert rtmri(args) == 0  # the same command without --only makes the rest
    assert "resuming" in capsys.readouterr().err
    assert _files(out) == whole
    assert _manifest_without_timing(out) == _manifest_without_timing(synth_corpus)


def test_a_second_sample_adds_to_the_first(synth_corpus, tmp_path):
    out = tmp_path / "corpus"
    args = ["synth", str(out), "--seed", str(SYNTH_SEED), *SYNTH_ARGS]
    assert rtmri([*args, "--only", "spk02"]) == 0
    assert rtmri([*args, "--only", "spk01"]) == 0
    info = layout.read_manifest(out)
    assert info["only"] == ["spk01", "spk02"] and info["speakers"] == ["spk01", "spk02"]
    whole = _files(synth_corpus)
    assert _files(out) == {name: data for name, data in whole.items() if name.split("/")[0] in ("spk01", "spk02")}


def test_a_sample_naming_an_unknown_speaker_is_refused(tmp_path, capsys):
    assert rtmri(["synth", str(tmp_path / "c"), "--seed", str(SYNTH_SEED), *SYNTH_ARGS, "--only", "spk02,spk09"]) == 2
    assert "spk09" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_timing_by_stage_is_in_the_manifest(synth_corpus):
    timing = layout.read_manifest(synth_corpus)["timing"]
    assert timing["speech_s"] > 0
    assert set(timing["cpu_s"]) == {"acoustics", "rendering", "encoding"}
    assert all(value > 0 for value in timing["cpu_s"].values())


def test_mixed_material_at_drawn_rates():
    speakers = make_speakers(2, 0, 4, ("male",))
    jobs = plan_jobs(speakers, 6, 4, None, "unused", utterances.MIXED, (0.7, 1.6))
    kinds = {job.utterance.material for job in jobs}
    assert kinds == set(utterances.MIXED_SHARES)
    rates = np.array([job.utterance.rate for job in jobs])
    assert rates.min() >= 0.7 and rates.max() <= 1.6 and rates.max() / rates.min() > 1.8
    for job in jobs:
        assert utterances.TRAIN_UTTERANCE_S[0] <= job.utterance.duration or len(job.utterance.text.split(".")) <= 2
    fast = min(jobs, key=lambda job: job.utterance.rate).utterance, max(jobs, key=lambda job: job.utterance.rate).utterance
    # a faster utterance has shorter phones
    mean_phone = [np.mean([p["end"] - p["start"] for p in u.phone_intervals()]) for u in fast]
    assert mean_phone[0] > mean_phone[1]


def test_the_progress_bar_never_runs_past_its_total(monkeypatch, capsys):
    from types import SimpleNamespace

    from rtmri.synth import corpus

    jobs = plan_jobs(make_speakers(1, 0, 4, ("male",)), 0.2, 4, None, "unused")
    planned = sum(job.utterance.duration for job in jobs)
    monkeypatch.setattr(corpus, "_results", lambda ordered, workers: (
        SimpleNamespace(speaker=job.speaker.id, utterance=job.utterance.id, duration=job.utterance.duration + 0.37)
        for job in ordered))
    corpus.run_jobs(jobs, 1, progress=True, done_seconds=1.0)
    err = capsys.readouterr().err
    assert "clamping" not in err
    assert f"{round(planned + 1.0, 1)}/{round(planned + 1.0, 1)}" in err.replace("\r", "\n").splitlines()[-1]


def test_multilingual_material_says_the_sounds_japanese_lacks_but_not_the_evaluation_words():
    speakers = make_speakers(2, 0, 4, ("male",))
    jobs = plan_jobs(speakers, 8, 4, None, "unused", utterances.MULTILINGUAL)
    by_kind = {kind: [job.utterance for job in jobs if job.utterance.material == kind] for kind in utterances.MULTILINGUAL_SHARES}
    assert all(by_kind.values())
    said = {segment.phone for u in by_kind[utterances.INVENTORY] for segment in u.segments}
    japanese = {segment.phone for u in by_kind[utterances.READ] for segment in u.segments}
    for phone in ("l", "y:", "Y", "2:", "@", "I", "E", "OY"):  # what the German sentences say and Japanese does not
        assert phone in said and phone not in japanese
    assert said <= inventory.VTL_PHONES | {inventory.PAUSE}
    heard = {w for _, words in texts.NON_JA for w in words}
    drawn = [w for u in by_kind[utterances.INVENTORY] for w in u.text.replace(".", "").strip("[]").split("] [")]
    assert len(drawn) > 100 and not heard & set(drawn)
    assert all(utterances.TRAIN_UTTERANCE_S[0] <= u.duration <= utterances.TRAIN_UTTERANCE_S[1] + 2.0 for u in by_kind[utterances.INVENTORY])


def test_read_material_is_what_corpora_were_made_of_before():
    """Without --material and --rates the plan is the one earlier corpora were written from."""
    speakers = make_speakers(2, 0, 4, ("male",))
    default = plan_jobs(speakers, 1, 4, None, "unused")
    assert all(job.utterance.material == utterances.READ for job in default)
    assert all(utterances.UTTERANCE_RATE_SPREAD[0] <= job.utterance.rate <= utterances.UTTERANCE_RATE_SPREAD[1] for job in default)


def test_edge_voices_leave_their_type_range():
    speakers = make_speakers(8, 3, 0, ("male", "female", "child"), edge_voices=2)
    from rtmri.synth.tracts import tract_type

    edges = speakers[-2:]
    for speaker in edges:
        low, high = tract_type(speaker.tract_type).f0_hz
        assert not low <= speaker.f0_hz <= high
    assert {s.voice_quality for s in edges} == {"pressed", "breathy"}
    assert speakers[:-2] == make_speakers(8, 3, 0, ("male", "female", "child"))[:-2]


def test_speaker_ids_sort_in_order_from_100_speakers():
    ids = [s.id for s in make_speakers(101, 1, 0, ("male",))]
    assert ids == sorted(ids) and ids[0] == "spk001" and ids[-1] == "spk101"


@pytest.mark.parametrize("args, message", [
    (["--rates", "1.6,0.7"], "--rates"),
    (["--edge-voices", "3"], "--edge-voices"),
])
def test_bad_options_are_named(tmp_path, capsys, args, message):
    assert rtmri(["synth", str(tmp_path / "c"), "--minutes", "1", "--speakers", "3", "--heldout-speakers", "2", *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
