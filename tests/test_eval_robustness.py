"""`rtmri eval`'s robustness conditions (issue 16): the test clips through a held-out room,
noise and microphone, and the unseen speakers by speaker type, scored like every condition."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from rtmri.cli import main

pytest.importorskip("audiomentations")
pytest.importorskip("pyroomacoustics")

DEFAULT_BUNDLE = "rtmri/demo/assets/model"


def test_room_and_voice_conditions_are_scored_and_printed(synth_clip_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["eval", DEFAULT_BUNDLE, str(synth_clip_dataset), "-o", str(out), "--examples", "0", "--max-clips", "2"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    rows = {(r["split"], r["system"]): r for r in results["table"]}
    room, test = rows[("room", "model")], rows[("test", "model")]
    assert room["videos"] == test["videos"] == 2
    assert room["condition"].startswith("R1")
    # The held-out room really changes what the model makes from the same clips.
    assert (room["ssim_mean"], room["nmse_mean"]) != (test["ssim_mean"], test["nmse_mean"])
    # The session corpus's held-out speaker is a reference-male: its clips, under its type.
    voice, unseen = rows[("voice:reference-male", "model")], rows[("unseen_ja", "model")]
    assert voice["videos"] == unseen["videos"] and voice["ssim_mean"] == unseen["ssim_mean"]
    articulation = {(r["split"], r["system"]) for r in results["articulation"]["table"]}
    assert {("room", "model"), ("voice:reference-male", "model")} <= articulation
    assert "R1: test clips through held-out rooms" in (out / "table.md").read_text()
    assert "R1: test clips through held-out" in printed and "R2-reference-male" in printed


def test_room_audio_is_perturbed_reproducibly(synth_clip_dataset):
    import soundfile as sf

    from rtmri.clips import ClipDataset
    from rtmri.evaluation.robustness import room_audio

    clip = ClipDataset(synth_clip_dataset).split("test")[0]
    first, sr = room_audio(clip)
    again, _ = room_audio(clip)
    clean, clean_sr = sf.read(clip.folder / "audio.wav", dtype="float32")
    assert sr == clean_sr and first.shape == clean.shape
    np.testing.assert_array_equal(first, again)
    assert np.corrcoef(first, clean)[0, 1] < 0.9


def test_the_corpus_is_found_from_another_folder_when_prepare_was_given_a_relative_path(tmp_path, monkeypatch):
    """`rtmri prepare c45 c45d` records src "c45"; `rtmri eval` run elsewhere still finds the
    corpus beside the dataset (else the voice conditions are skipped)."""
    from rtmri.evaluation.robustness import corpus_of, speaker_types

    corpus, data = tmp_path / "c45", tmp_path / "c45d"
    (corpus / "spk01").mkdir(parents=True)
    (corpus / "corpus.json").write_text("{}")
    (corpus / "spk01" / "speaker.json").write_text(json.dumps({"tract_type": "child"}))
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps({"options": {"src": "c45"}}))
    dataset = type("Dataset", (), {"root": data})()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert corpus_of(dataset) == data.parent / "c45"
    assert speaker_types(corpus_of(dataset)) == {"spk01": "child"}
    (data / "manifest.json").write_text(json.dumps({"options": {"src": "gone"}}))
    assert corpus_of(dataset) is None


def test_robustness_imports_neither_torch_nor_the_training_package():
    code = ("import sys, rtmri.evaluation.robustness; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('rtmri.training')))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"
