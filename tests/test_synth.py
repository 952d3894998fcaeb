"""``rtmri synth``: a tiny real VocalTractLab corpus, written once for the module, checked
against the corpus contract; plus bad input, failure handling and determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf

from rtmri.cli import main as rtmri
from rtmri.synth import job as job_module
from rtmri.synth import layout
from rtmri.synth import plan as plan_module
from rtmri.synth import vtl
from rtmri.synth.errors import SynthError, UtteranceFailed
from rtmri.synth.inventory import PAUSE, VTL_PHONES
from rtmri.synth.japanese import JA_U, parse_word
from rtmri.synth.japanese_timing import japanese_segments
from rtmri.synth.segments import Segment, Utterance
from rtmri.synth.speakers import make_speakers
from rtmri.synth.voice import pause_gate

# The corpus (conftest.synth_corpus): one training speaker (27 fps) and one held-out speaker
# (14 fps), about 9 s of speech, with long (geminate) /k/ closures.
from conftest import SYNTH_ARGS as FIXTURE_ARGS, SYNTH_SEED as SEED  # noqa: E402

TONGUE_CLASSES = {"a": {"a", "a:"}, "i": {"i", "i:"}, "u": {JA_U, JA_U + ":"}, "k": {"k"}}
VOWEL_CORE = 0.6  # only frames in the middle 60 % of a vowel count as that vowel


@pytest.fixture(scope="module")
def corpus(synth_corpus) -> Path:
    """conftest's session corpus: written with SEED and FIXTURE_ARGS."""
    return synth_corpus


def metas(corpus: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(corpus.glob("spk*/meta/*.json"))]


def decode(path: Path) -> tuple[av.video.stream.VideoStream, list[np.ndarray]]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="gray") for f in container.decode(stream)]
        return stream, frames


# --- the corpus contract --------------------------------------------------------------------


def test_corpus_json_describes_the_corpus(corpus):
    info = json.loads((corpus / "corpus.json").read_text())
    assert info["format"] == "rtmri-synth-corpus" and info["version"] == 1
    assert info["seed"] == SEED and info["minutes"] == 0.05
    assert info["speakers"] == ["spk01", "spk02"] and info["heldout_speakers"] == ["spk02"]
    assert info["generator"].startswith("vocaltractlab-cython 0.0.17")
    assert info["skipped"] == []
    for speaker in info["speakers"]:
        assert json.loads((corpus / speaker / "speaker.json").read_text())["speaker"] == speaker


def test_the_layout_reader_finds_what_the_writer_wrote(corpus):
    assert layout.is_corpus(corpus)
    folders = layout.speaker_folders(corpus)
    assert [f.id for f in folders] == layout.read_manifest(corpus)["speakers"]
    videos = layout.utterance_videos(corpus)
    assert videos
    for folder in folders:
        assert folder.read_speaker()["speaker"] == folder.id and folder.grid_file.is_file()
        utterances = [v.stem for v in videos if layout.SpeakerFolder.of_video(v) == folder]
        assert utterances
        for utterance in utterances:
            assert folder.read_meta(utterance)["utterance"] == utterance
            assert all(p.is_file() for p in (folder.video(utterance), folder.repeat(utterance), folder.audio(utterance),
                                             folder.geometry(utterance)))


def test_the_layout_loads_neither_vocaltractlab_nor_torch():
    """Prepare, the evaluator and the video tools read a corpus with the core install."""
    code = ("import sys, rtmri.synth.layout; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'vocaltractlab_cython'}))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "[]"


def test_every_video_opens_at_its_declared_fps_and_size(corpus):
    rates = set()
    for meta in metas(corpus):
        speaker = json.loads((corpus / meta["speaker"] / "speaker.json").read_text())
        stream, frames = decode(corpus / meta["speaker"] / "video" / f"{meta['utterance']}.mp4")
        assert stream.average_rate == meta["fps"] == speaker["fps"]
        assert (stream.width, stream.height) == (256, 256)
        assert len(frames) == meta["n_frames"] and frames[0].shape == (256, 256)
        rates.add(meta["fps"])
    assert rates == {14, 27}


def test_video_content_is_grayscale(corpus):
    path = next(corpus.glob("spk01/video/*.mp4"))
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="rgb24").astype(int)
    assert np.abs(frame[..., 0] - frame[..., 1]).max() <= 2 and np.abs(frame[..., 1] - frame[..., 2]).max() <= 2


def test_audio_is_48k_16bit_speech_as_long_as_the_video(corpus):
    for meta in metas(corpus):
        info = sf.info(str(corpus / meta["speaker"] / "audio" / f"{meta['utterance']}.wav"))
        assert (info.samplerate, info.channels, info.subtype) == (48000, 1, "PCM_16")
        assert abs(info.duration - meta["n_frames"] / meta["fps"]) < 1 / meta["fps"]
        audio, rate = sf.read(str(corpus / meta["speaker"] / "audio" / f"{meta['utterance']}.wav"))
        speech = np.concatenate([audio[int(p["start"] * rate) : int(p["end"] * rate)] for p in meta["phones"]])
        before = audio[: int(meta["phones"][0]["start"] * rate * 0.4)]  # lungs not yet pushing
        assert np.sqrt(np.mean(speech**2)) > 0.03
        assert np.sqrt(np.mean(speech**2)) > 30 * np.sqrt(np.mean(before**2) + 1e-12)


def test_metadata_is_consistent(corpus):
    conditions = {}
    for meta in metas(corpus):
        speaker = json.loads((corpus / meta["speaker"] / "speaker.json").read_text())
        assert meta["audio_sample_rate"] == 48000 and meta["text"]
        assert meta["crop"] == speaker["crop"]
        x, y, w, h = meta["crop"]
        assert w == h and 0 <= x and 0 <= y and x + w <= 256 and y + h <= 256
        assert meta["duration"] == pytest.approx(meta["n_frames"] / meta["fps"])
        starts = [p["start"] for p in meta["phones"]]
        assert starts == sorted(starts)
        for phone in meta["phones"]:
            assert phone["phone"] in VTL_PHONES
            assert 0 <= phone["start"] < phone["end"] <= meta["duration"] + 1e-6
        conditions.setdefault(meta["speaker"], set()).add(meta["condition"])
    assert conditions == {"spk01": {"train"}, "spk02": {"passage_ja", "non_ja"}}


def test_frames_look_like_midsagittal_mri(corpus):
    meta = metas(corpus)[0]
    _, frames = decode(corpus / meta["speaker"] / "video" / f"{meta['utterance']}.mp4")
    x, y, w, h = meta["crop"]
    frame = frames[len(frames) // 2].astype(float)
    tongue_region = frame[y + h // 2 : y + h, x : x + w]
    assert 0.05 < np.mean(tongue_region < 50) < 0.6  # airway
    assert np.mean(tongue_region > 90) > 0.3  # tongue and tissue
    assert frame[:20, -20:].mean() < 40  # air in front of the face
    assert np.abs(np.diff(np.stack(frames).astype(float), axis=0)).mean() > 2  # it moves


def test_repeat_is_the_same_articulation_with_independent_noise(corpus):
    for meta in metas(corpus):
        _, first = decode(corpus / meta["speaker"] / "video" / f"{meta['utterance']}.mp4")
        _, second = decode(corpus / meta["speaker"] / "repeat" / f"{meta['utterance']}.mp4")
        first, second = np.stack(first).astype(float), np.stack(second).astype(float)
        assert first.shape == second.shape
        assert np.abs(first - second).mean() > 2  # the noise differs
        x, y, w, h = meta["crop"]
        motion = [v[:, y + h // 2 : y + h, x : x + w].mean(axis=(1, 2)) for v in (first, second)]
        assert np.corrcoef(*motion)[0, 1] > 0.9  # the tongue does the same


def _tongue_frames(corpus: Path) -> dict[str, list[np.ndarray]]:
    """Lower half of the crop, resampled to 32x32, of frames inside each phone class."""
    from PIL import Image

    found: dict[str, list[np.ndarray]] = {name: [] for name in TONGUE_CLASSES}
    for meta in metas(corpus):
        _, frames = decode(corpus / meta["speaker"] / "video" / f"{meta['utterance']}.mp4")
        x, y, w, h = meta["crop"]
        for k, frame in enumerate(frames):
            t = k / meta["fps"]
            for phone in meta["phones"]:
                margin = 0.0 if phone["phone"] == "k" else (1 - VOWEL_CORE) / 2 * (phone["end"] - phone["start"])
                if phone["start"] + margin <= t < phone["end"] - margin:
                    name = next((n for n, members in TONGUE_CLASSES.items() if phone["phone"] in members), None)
                    if name:
                        half = Image.fromarray(frame[y + h // 2 : y + h, x : x + w]).resize((32, 16), Image.BILINEAR)
                        found[name].append(np.asarray(half, float) / 255.0)
    return found


def test_tongue_differs_between_a_i_u_k(corpus):
    found = _tongue_frames(corpus)
    assert all(len(frames) >= 4 for frames in found.values()), {n: len(f) for n, f in found.items()}

    def distance(first: list[np.ndarray], second: list[np.ndarray]) -> float:
        return float(np.abs(np.mean(first, axis=0) - np.mean(second, axis=0)).mean())

    within = {name: distance(frames[0::2], frames[1::2]) for name, frames in found.items()}
    names = list(found)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            between = distance(found[first], found[second])
            assert between > 1.2 * max(within[first], within[second]), (first, second, between, within)
    # Where the tongue is: high for /i/ and /k/ (near the palate), low for /a/.
    top_band = {name: float(np.mean(frames, axis=0)[:4].mean()) for name, frames in found.items()}
    assert top_band["i"] > top_band["a"] + 0.03 and top_band["k"] > top_band["a"] + 0.03, top_band


# --- bad input --------------------------------------------------------------------------------


def test_unknown_phone_is_named():
    utterance = Utterance("utt0001", "train", "wa", (Segment(PAUSE, 0.2), Segment("w", 0.05), Segment("a", 0.1)))
    with pytest.raises(SynthError, match=r"unknown phone 'w' in utterance 'utt0001'"):
        utterance.check_phones()
    with pytest.raises(SynthError, match="'xa'"):
        parse_word("xaka")


def test_unknown_phone_stops_the_cli_before_any_work(tmp_path, monkeypatch, capsys):
    bad = Utterance("utt0001", "train", "??", (Segment(PAUSE, 0.2), Segment("Q", 0.1), Segment(PAUSE, 0.2)))
    monkeypatch.setattr(plan_module, "training_utterances", lambda *args: [bad])
    assert rtmri(["synth", str(tmp_path / "c"), "--minutes", "0.1", "--speakers", "1", "--heldout-speakers", "0", "--quiet"]) == 2
    assert "unknown phone 'Q'" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


def test_existing_corpus_is_refused_without_overwrite(corpus, capsys):
    before = (corpus / "corpus.json").stat().st_mtime_ns
    assert rtmri(["synth", str(corpus), "--seed", str(SEED), *FIXTURE_ARGS]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (corpus / "corpus.json").stat().st_mtime_ns == before


@pytest.mark.parametrize("speakers, held_out", [(2, 3), (2, 2)])
def test_too_many_held_out_speakers(tmp_path, capsys, speakers, held_out):
    args = ["synth", str(tmp_path / "c"), "--minutes", "1", "--speakers", str(speakers), "--heldout-speakers", str(held_out)]
    assert rtmri(args) == 2
    assert f"{held_out} held-out speakers" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()


# --- failures, determinism ------------------------------------------------------------------


def _tiny(utt_id: str, text: str) -> Utterance:
    return Utterance(utt_id, "train", text, tuple(japanese_segments(text, 0.12, np.random.default_rng(0))))


def test_failed_utterance_is_skipped_and_output_is_deterministic(tmp_path, monkeypatch, capsys):
    """One utterance fails in VocalTractLab: reported, skipped, the other written; a second
    run (same seed, no failure, --overwrite) writes the same bytes for that other one."""
    plan = [_tiny("utt0001", "kaki."), _tiny("utt0002", "ie.")]
    monkeypatch.setattr(plan_module, "training_utterances", lambda *args: plan)
    real = vtl.synthesize

    def failing(utterance, *args):
        if utterance.id == "utt0001":
            raise UtteranceFailed("VocalTractLab failed on utt0001: injected")
        return real(utterance, *args)

    monkeypatch.setattr(vtl, "synthesize", failing)
    out = tmp_path / "c"
    args = ["synth", str(out), "--minutes", "0.01", "--speakers", "1", "--heldout-speakers", "0", "--seed", "5", "--workers", "1", "--quiet"]
    assert rtmri(args) == 0
    assert "skipped spk01/utt0001" in capsys.readouterr().err
    info = json.loads((out / "corpus.json").read_text())
    assert info["skipped"] == [{"utterance": "spk01/utt0001", "reason": "VocalTractLab failed on utt0001: injected"}]
    assert [p.relative_to(out).as_posix() for p in out.glob("spk01/*/utt0001.*")] == ["spk01/failed/utt0001.json"]
    written = {p.relative_to(out): p.read_bytes() for p in out.glob("spk01/*/utt0002.*")}
    assert len(written) == 5  # video, repeat, audio, meta, geometry

    monkeypatch.setattr(vtl, "synthesize", real)
    assert rtmri(args + ["--overwrite"]) == 0
    assert json.loads((out / "corpus.json").read_text())["skipped"] == []
    for path, content in written.items():
        assert (out / path).read_bytes() == content, path


def test_plan_is_fixed_by_the_seed(tmp_path):
    def plan(seed: int) -> list:
        speakers = make_speakers(3, 1, seed)
        return [(job.name, job.utterance) for job in plan_module.plan_jobs(speakers, 0.5, seed, None, str(tmp_path))]

    assert plan(11) == plan(11)
    assert plan(11) != plan(12)


# --- pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "word, phones",
    [
        ("sanpo", ["s", "a", "m", "p", "o"]),  # moraic nasal takes the next place of articulation
        ("kanda", ["k", "a", "n", "d", "a"]),
        ("ringo", ["d", "i", "N", "g", "o"]),  # flap r as a short d; velar nasal before g
        ("kitte", ["k", "i", "t", "e"]),  # geminate: one long closure
        ("ookii", ["o:", "k", "i:"]),  # long vowels
        ("shatsu", ["S", "a", "ts", JA_U]),  # Japanese /ɯ/, not German rounded u
        ("kyou", ["k", "j", "o", JA_U]),
    ],
)
def test_japanese_to_vocaltractlab_phones(word, phones):
    segments = japanese_segments(word + ".", 0.12, np.random.default_rng(0))
    assert [s.phone for s in segments if s.phone != PAUSE] == phones
    if word == "kitte":
        closure = next(s for s in segments if s.phone == "t")
        onset = next(s for s in segments if s.phone == "k")
        assert closure.duration > 2 * onset.duration


def test_voice_is_silent_in_pauses_between_phrases():
    segments = japanese_segments("kaki, kaki.", 0.12, np.random.default_rng(0))
    starts = np.cumsum([0.0] + [s.duration for s in segments])
    inner = next(i for i, s in enumerate(segments[1:-1], start=1) if s.phone == PAUSE)
    middle = (starts[inner] + starts[inner + 1]) / 2
    times = np.array([starts[1] + 0.01, middle, starts[-1] - 0.01])
    assert list(pause_gate(segments, times)) == [1.0, 0.0, 1.0]


def test_frame_k_shows_the_state_at_its_timestamp():
    indices = job_module.state_indices(n_frames=28, fps=14, n_states=400)
    assert indices[0] == 0
    assert indices[14] == round(vtl.STATE_RATE)  # 1 s
    assert job_module.state_indices(5, 14, 3)[-1] == 2  # clipped to the last state


# --- the true articulation (the shared DESIGN.md §5b) -----------------------------------------

# The image measure must agree with the synthesizer's outlines to about a pixel: RMSE at
# most this many clip pixels over all gridlines and frames (the large errors are movements
# blended between two source frames and structures thinner than the blur), median a third.
GEOMETRY_RMSE_PX = 1.5
GEOMETRY_MEDIAN_PX = 0.5


def test_every_frame_has_its_outlines_in_the_videos_pixels(corpus):
    from rtmri.articulation.outlines import load, n_frames

    for meta in metas(corpus):
        arrays = load(corpus / meta["speaker"] / "geometry" / f"{meta['utterance']}.npz")
        assert n_frames(arrays) == meta["n_frames"]
        assert {"outline_tongue", "outline_upper", "outline_lower", "outline_uvula", "outline_pharynx_wall",
                "outline_epiglottis", "shape_airway", "shape_tongue", "shape_velum", "static_bone_0"} <= set(arrays)
        tongue = arrays["outline_tongue"]
        x, y, w, h = meta["crop"]
        centre = tongue.reshape(-1, 2).mean(axis=0)
        assert x < centre[0] < x + w and y < centre[1] < y + h  # the tongue lies in the crop
        assert np.ptp(tongue[:, :, 1], axis=0).max() > 3.0  # and moves


def test_canonical_measuring_windows_are_the_rest_tracts():
    from rtmri.articulation import grid
    from rtmri.synth.grid import canonical_windows

    reach, wall = canonical_windows()
    assert np.allclose(reach, grid.CANONICAL_REACH_MM, atol=0.05)
    assert np.array_equal(np.isnan(wall), np.isnan(grid.CANONICAL_WALL_MM))
    assert np.allclose(wall[~np.isnan(wall)], np.array(grid.CANONICAL_WALL_MM)[~np.isnan(wall)], atol=0.05)


def test_image_measure_agrees_with_the_geometry_on_corpus_clips(synth_clip_dataset):
    from rtmri.articulation.measure import measure
    from rtmri.articulation.outlines import true_gaps
    from rtmri.clips import ClipDataset

    dataset = ClipDataset(synth_clip_dataset)
    errors = []
    for clip in dataset.split("test") + dataset.split("unseen_ja") + dataset.split("unseen_nonja"):
        grid = dataset.grid(clip.speaker)
        frames = clip.frames()
        assert grid.mm_per_px == pytest.approx(clip.pixel_mm)
        truth = true_gaps(clip.geometry(), grid, frames.shape[1:])
        error = (measure(frames, grid).distance_mm / grid.mm_per_px - truth)[:, grid.tract_lines]
        errors.append(error[np.isfinite(error)])
    errors = np.concatenate(errors)
    assert errors.size > 3000
    assert np.sqrt(np.mean(errors**2)) <= GEOMETRY_RMSE_PX
    assert np.median(np.abs(errors)) <= GEOMETRY_MEDIAN_PX
