"""The benchmark of known learner mistakes (rtmri.mistakes): its catalogue, its scoring, and a
small seeded piece of it made with VocalTractLab (a geminate said as a single /t/ by a voice the
model never heard, and the words said correctly by another such voice): the maker resumes,
`rtmri compare-bench` detects and localises the mistake and names nothing in the correct attempt."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtmri import cli
from rtmri.lessons.catalogue import LESSONS
from rtmri.mistakes import catalogue, scoring
from rtmri.mistakes.layout import BenchError, BenchFolder

PIECE = ["--lessons", "03_geminate", "--mistakes", "missing_geminate", "--types", "reference-male", "--rates", "5",
         "--speakers-per-type", "2", "--seed", "7"]


def result(lesson, speaker, score, correct, segments=(), wrong=None, mistake=None, kind="male"):
    return {"attempt": f"{lesson}.{speaker}.{score}", "lesson": lesson, "speaker": speaker, "speaker_type": kind,
            "score": score, "correct": correct, "segments": list(segments), "wrong": wrong, "mistake": mistake}


def test_auc_pairs_a_mistake_only_with_correct_attempts_of_its_lesson_by_other_voices():
    mistaken = [result("a", "spk1", 50, False), result("b", "spk2", 80, False)]
    correct = [result("a", "spk1", 10, True),  # the same voice: not a pair
               result("a", "spk3", 60, True), result("a", "spk4", 50, True),  # one win, one tie
               result("b", "spk5", 70, True)]  # a loss
    area, pairs = scoring.auc(mistaken, correct)
    assert pairs == 3 and area == pytest.approx((1 + 0.5 + 0) / 3)


def test_localised_needs_the_right_articulator_within_100_ms_of_the_mistake():
    wrong = {"articulators": ["tongue_tip"], "reference_start_s": 0.50, "reference_end_s": 0.70}
    near = {"articulator": "tongue_tip", "peak_s": 0.79}
    far = {"articulator": "tongue_tip", "peak_s": 0.81}
    other = {"articulator": "lips", "peak_s": 0.6}
    assert scoring.localised(result("a", "s", 1, False, [near, far], wrong))
    assert not scoring.localised(result("a", "s", 1, False, [far, near], wrong))  # the first one counts
    assert not scoring.localised(result("a", "s", 1, False, [other], wrong))
    assert not scoring.localised(result("a", "s", 1, False, [], wrong))
    assert scoring.wrongly_named(result("a", "s", 1, False, [near, other], wrong))


def test_every_variant_keeps_the_lessons_phones_one_to_one():
    from rtmri.lessons.make import phone_labels
    from rtmri.synth.japanese_timing import japanese_segments
    from rtmri.synth.segments import Utterance

    texts = {t.id: t for t in LESSONS}
    for variant in catalogue.VARIANTS + catalogue.ROUNDED_U_VARIANTS:
        assert variant.mistake in catalogue.TYPES and variant.articulators
        text = texts[variant.lesson]
        phones = lambda romaji: phone_labels(romaji, Utterance("x", "x", romaji, tuple(
            japanese_segments(romaji, 0.2, np.random.default_rng(0)))).phone_intervals())
        expected, said = phones(text.romaji), phones(variant.said or text.romaji)
        assert len(said) == len(expected), variant
        assert variant.phone < len(expected)
        if variant.said and catalogue.TYPES[variant.mistake].kind == catalogue.ARTICULATION:
            assert said[variant.phone]["phone"] != expected[variant.phone]["phone"], variant


def test_a_folder_without_a_finished_benchmark_is_named(tmp_path):
    with pytest.raises(BenchError, match="no bench.json.*rtmri make-mistakes"):
        BenchFolder(tmp_path).read_manifest()
    assert cli.main(["compare-bench", str(tmp_path)]) == 2


@pytest.fixture(scope="module")
def piece(tmp_path_factory):
    """Two attempts of きって by two unseen voices (JD3's tract, as the lessons' speaker has: no tract to build,
    so the test stays quick): said correctly, and as きて."""
    pytest.importorskip("vocaltractlab_cython")
    out = tmp_path_factory.mktemp("mistakes") / "bench"
    assert cli.main(["make-mistakes", str(out), *PIECE]) == 0
    return BenchFolder(out)


def test_the_maker_writes_labelled_attempts_and_resumes(piece, capsys):
    labels = piece.read_labels()
    assert len(labels) == 2 and sorted(l["correct"] for l in labels) == [False, True]
    mistaken = next(l for l in labels if not l["correct"])
    assert mistaken["said"] == "kite" and mistaken["expected"] == "kitte" and mistaken["speaker"]["type"] == "reference-male"
    wrong = mistaken["wrong"]
    assert wrong["articulator"] == "tongue_tip" and wrong["place"] == "alveolar" and wrong["phone"] == "t"
    assert wrong["end_s"] - wrong["start_s"] < 0.6 * (wrong["reference_end_s"] - wrong["reference_start_s"])  # no geminate
    correct = next(l for l in labels if l["correct"])
    assert correct["speaker"]["id"] != mistaken["speaker"]["id"]
    manifest = piece.read_manifest()
    assert manifest["speaker_seed"] != 0 and "f_for_phi" in manifest["left_out"]
    assert all(s["type"] == "reference-male" for s in manifest["speakers"])

    audio = piece.attempt_audio(mistaken["attempt"])
    before = {l["attempt"]: piece.attempt_audio(l["attempt"]).stat().st_mtime_ns for l in labels}
    piece.attempt_label(correct["attempt"]).unlink()  # as if interrupted before its label was written
    capsys.readouterr()
    assert cli.main(["make-mistakes", str(piece.path), *PIECE]) == 0
    assert "2 attempts (1 already written)" in capsys.readouterr().err
    assert audio.stat().st_mtime_ns == before[mistaken["attempt"]]  # not made again
    assert piece.attempt_label(correct["attempt"]).is_file()


def test_compare_bench_detects_and_localises_the_missing_geminate(piece, capsys):
    out = piece.path / "results"
    assert cli.main(["compare-bench", str(piece.path), "-o", str(out)]) == 0
    report = json.loads((out / "compare_bench.json").read_text())
    results = {r["correct"]: r for r in report["results"]}
    assert results[False]["score"] < results[True]["score"]
    assert report["summary"]["all"]["auc"] == 1.0
    first = results[False]["segments"][0]
    assert first["articulator"] == "tongue_tip" and first["phone"] == "t" and first["kind"] == "length", first
    assert report["summary"]["all"]["localisation"] == 1.0
    assert results[True]["segments"] == []  # the correct attempt by another voice: nothing named
    assert "missing_geminate" in (out / "compare_bench.md").read_text()
    assert (out / "compare_bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_bench_names_a_tsu_said_without_its_closure(tmp_path):
    """すくえ for つくえ: the word-initial closure is silent, so only the hiss that swells instead of
    bursting tells it (rtmri.lessons.release); the words said correctly by another voice: nothing."""
    pytest.importorskip("vocaltractlab_cython")
    out = tmp_path / "bench"
    voices = ["--types", "reference-male", "--rates", "5", "--speakers-per-type", "2", "--seed", "1"]  # a clear one: 2 of 4 seeds
    assert cli.main(["make-mistakes", str(out), "--lessons", "05_tsu", "--mistakes", "su_for_tsu", *voices]) == 0
    assert cli.main(["compare-bench", str(out), "-o", str(out / "results"), "--no-plot"]) == 0
    results = {r["correct"]: r for r in json.loads((out / "results" / "compare_bench.json").read_text())["results"]}
    assert results[False]["score"] < results[True]["score"]
    first = results[False]["segments"][0]
    assert (first["articulator"], first["phone"], first["kind"]) == ("tongue_tip", "ts", "articulation"), first
    assert "closing first" in first["en"]
    assert results[True]["segments"] == []


def test_compare_bench_names_a_rounded_u(tmp_path):
    """あいうえお with a German rounded /u/ for /ɯ/: the model cannot draw rounded lips, the F2 of
    /ɯ/ against the attempt's own /e/ tells it (rtmri.lessons.rounding); the correct words by another voice: nothing."""
    pytest.importorskip("vocaltractlab_cython")
    out = tmp_path / "bench"
    voices = ["--types", "reference-male", "--rates", "5", "--speakers-per-type", "2", "--seed", "1"]
    assert cli.main(["make-mistakes", str(out), "--lessons", "01_vowels", "--mistakes", "rounded_u", *voices]) == 0
    assert cli.main(["compare-bench", str(out), "-o", str(out / "results"), "--no-plot"]) == 0
    results = {r["correct"]: r for r in json.loads((out / "results" / "compare_bench.json").read_text())["results"]}
    first = results[False]["segments"][0]
    assert (first["articulator"], first["phone"]) == ("lips", "M") and "rounded /u/" in first["en"], first
    assert results[True]["segments"] == [] and results[False]["score"] < results[True]["score"]


@pytest.mark.parametrize("contract, line", [("mistakes-scored-without-synth", "from rtmri.synth import vtl"),
                                            ("nothing-imports-the-mistake-maker", "from rtmri.mistakes import make")])
def test_the_benchmark_runner_stays_apart_from_the_synthesizer(tmp_path, contract, line):
    """`rtmri compare-bench` (rtmri.mistakes.bench) imports neither the synthesizer nor the maker."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    lint = shutil.which("lint-imports", path=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    if lint is None:
        pytest.skip("needs import-linter (the test extra)")
    root = Path(__file__).parents[1]
    shutil.copytree(root / "rtmri", tmp_path / "rtmri", ignore=shutil.ignore_patterns("__pycache__", "assets", "static"))
    shutil.copy(root / "pyproject.toml", tmp_path)
    (tmp_path / "rtmri" / "mistakes" / "bench.py").write_text(line + "\n")
    result = subprocess.run([lint, "--no-cache", "--no-logo", "--contract", contract], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1 and "rtmri.mistakes.bench -> " in result.stdout, result.stdout + result.stderr


def test_per_phone_thresholds_follow_each_phones_spread_over_correct_attempts():
    """A phone whose sound varies much between correct attempts gets a higher threshold than one
    that varies little; 95 % of the correct attempts are left with no length or sound named; the
    articulators and mistaken attempts take no part."""
    from rtmri.mistakes import thresholds

    rng = np.random.default_rng(0)

    def attempt(correct, noisy_s, quiet_t, lips=0.0):
        by_phone = [{"phone": "s", "articulators": {"lips": lips}, "length": 0.1, "sound": noisy_s},
                    {"phone": "t", "articulators": {"lips": lips}, "length": 0.1, "sound": quiet_t}]
        return {"correct": correct, "by_phone": by_phone}

    results = [attempt(True, abs(rng.normal(0, 1.0)), abs(rng.normal(0, 0.1)), lips=5.0) for _ in range(100)]
    results.append(attempt(False, 50.0, 50.0))
    named = thresholds.phone_named(results)
    assert set(named) == {"s", "t"} and set(named["s"]) == {"length", "sound"}
    assert named["s"]["sound"] > 2 * named["t"]["sound"]  # each drawn towards the channel's, at least half of it
    told = [any(p[c] >= named[p["phone"]][c] for p in r["by_phone"] for c in ("length", "sound")) for r in results[:100]]
    assert round(100 * (1 - thresholds.QUANTILE)) - 1 <= sum(told) <= round(100 * (1 - thresholds.QUANTILE))


def test_the_merged_vowel_contrast_is_set_below_every_correct_attempt():
    """CONTRAST_NAMED lies below the lowest contrast any correct attempt kept (so none of them is
    told of a merged pair), rounded down; mistaken attempts and consonants take no part."""
    from rtmri.mistakes import thresholds

    def attempt(correct, *contrasts):
        by_phone = [{"phone": "i", "articulators": {}, "length": 0.0, "sound": 0.0, "contrast": c} for c in contrasts]
        by_phone.append({"phone": "t", "articulators": {}, "length": 0.0, "sound": 0.0, "contrast": None})
        return {"correct": correct, "by_phone": by_phone}

    results = [attempt(True, -0.2, -0.5), attempt(True, -0.734), attempt(False, -2.0)]
    assert thresholds.contrast_named(results) == pytest.approx(-0.74)
    assert thresholds.contrast_named([attempt(True, -0.7)]) == pytest.approx(-0.71)  # never at a correct one's value
    assert thresholds.contrast_named([attempt(True)]) is None


def test_articulator_thresholds_leave_the_quantile_of_correct_attempts_with_none_named():
    """Each articulator's threshold follows its spread over the correct attempts (in the units of
    the NAMED in force), one factor leaves QUANTILE of them with no articulator named, none
    falls below the floor, and an articulator that never moves gets the floor."""
    from rtmri.lessons.compare import NAMED
    from rtmri.mistakes import thresholds

    rng = np.random.default_rng(1)
    still = dict.fromkeys(thresholds.ARTICULATOR_CHANNELS, 0.0)
    noisy = lambda: {**still, "lips": abs(rng.normal(0, 2.0)), "tongue_tip": abs(rng.normal(0, 0.5))}
    results = [{"correct": True, "by_phone": [{"phone": "a", "articulators": noisy(), "length": 0.0, "sound": 0.0}
                                              for _ in range(3)]} for _ in range(400)]
    results.append({"correct": False, "by_phone": [{"phone": "a", "articulators": {**still, "lips": 99.0}, "length": 0, "sound": 0}]})
    named = thresholds.articulator_named(results)
    assert named["lips"] / NAMED["lips"] > 3 * named["tongue_tip"] / NAMED["tongue_tip"]
    assert named["velum"] == thresholds.MIN_ARTICULATOR_NAMED and min(named.values()) >= thresholds.MIN_ARTICULATOR_NAMED
    told = [any(p["articulators"].get(c, 0.0) * NAMED[c] >= named[c] for p in r["by_phone"] for c in ("lips", "tongue_tip"))
            for r in results[:400]]
    share = 400 * (1 - thresholds.QUANTILE)  # at most that many (rounding up and the floor only name less)
    assert share / 2 <= sum(told) <= share + 1e-9, sum(told)
