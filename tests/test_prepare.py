"""`rtmri prepare`: layouts, 25 fps conversion and sync, clips, splits, report, bad input,
resuming. Fixture recordings are written here with PyAV and soundfile (64x64 frames, a few
seconds each) so the tests do not depend on `rtmri synth`."""

from __future__ import annotations

import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile

from rtmri.alignment import FPS, SAMPLES_PER_FRAME
from rtmri.audio import SAMPLE_RATE
from rtmri.cli import main as rtmri_main
from rtmri.clips import ALL_SPLITS, TRAINING_SPLITS, ClipDataset
from rtmri.prepare import PrepareError, clipping, splits
from rtmri.prepare.layouts import discover
from rtmri.prepare.pipeline import Options, run
from rtmri.video.frame_rate import convert

SRC_RATE = 48000
SIDE = 64


# ------------------------------------------------------------------ fixture writers


def write_video(path: Path, images, fps, codec: str = "libx264", audio: np.ndarray | None = None) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(str(fps)).limit_denominator(1000)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.width, stream.height = SIDE, SIDE
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "10"}
        a_stream = container.add_stream("aac", rate=SRC_RATE, layout="mono") if audio is not None else None
        for image in images:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="gray")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if a_stream is not None:
            for i in range(0, len(audio), 1024):
                frame = av.AudioFrame.from_ndarray(audio[None, i : i + 1024].astype(np.float32), format="flt", layout="mono")
                frame.sample_rate, frame.pts = SRC_RATE, i
                for packet in a_stream.encode(frame):
                    container.mux(packet)
            for packet in a_stream.encode():
                container.mux(packet)


def write_wav(path: Path, wav: np.ndarray, rate: int = SRC_RATE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), wav.astype(np.float32), rate, subtype="PCM_16")


def speech_like(seconds: float, seed: int) -> tuple[np.ndarray, list[dict]]:
    """Noise bursts ("speech", 0.6-1.1 s) separated by quiet pauses (0.3-0.5 s), with the
    matching phone labels."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SRC_RATE))
    wav = rng.normal(0, 0.0005, n).astype(np.float32)
    phones, t = [{"phone": "sil", "start": 0.0, "end": 0.3}], 0.3
    while t < seconds - 0.3:
        end = min(t + rng.uniform(0.6, 1.1), seconds - 0.2)
        a, b = int(t * SRC_RATE), int(end * SRC_RATE)
        wav[a:b] += rng.normal(0, 0.2, b - a).astype(np.float32)
        phones.append({"phone": "a", "start": round(t, 4), "end": round(end, 4)})
        pause = min(end + rng.uniform(0.3, 0.5), seconds)
        phones.append({"phone": "sil", "start": round(end, 4), "end": round(pause, 4)})
        t = pause
    return np.clip(wav, -1, 1), phones


def moving_frames(n: int, crop=None, seed: int = 0) -> list[np.ndarray]:
    """Black outside the crop, 120 inside, a bright bar moving in its lower half."""
    x, y, w, h = crop or (0, 0, SIDE, SIDE)
    frames = []
    for i in range(n):
        img = np.zeros((SIDE, SIDE), np.uint8)
        img[y : y + h, x : x + w] = 120
        col = x + (i * 3 + seed) % max(1, w - 6)
        img[y + h // 2 : y + h - 2, col : col + 6] = 250
        frames.append(img)
    return frames


def recording(folder_video: Path, wav_path: Path | None, fps, seconds: float, seed: int, codec="libx264", crop=None, audio_seconds=None) -> list[dict]:
    n = int(round(seconds * float(fps)))
    write_video(folder_video, moving_frames(n, crop, seed), fps, codec)
    wav, phones = speech_like(n / float(fps) if audio_seconds is None else audio_seconds, seed)
    if wav_path is not None:
        write_wav(wav_path, wav)
    return phones


SYNTH_CROP = (8, 4, 48, 48)


def make_synth_corpus(root: Path) -> Path:
    """spkA 14 fps (phones), spkB 27 fps, spkC held out (14 fps, passage_ja + non_ja)."""
    speakers = {"spkA": 14, "spkB": 27, "spkC": 14}
    (root).mkdir(parents=True, exist_ok=True)
    (root / "corpus.json").write_text(json.dumps({"format": "rtmri-synth-corpus", "version": 1, "speakers": [{"speaker": "spkA"}, {"speaker": "spkB"}], "heldout_speakers": ["spkC"]}))
    seed = 0
    for speaker, fps in speakers.items():
        folder = root / speaker
        folder.mkdir()
        (folder / "speaker.json").write_text(json.dumps({"speaker": speaker, "crop": list(SYNTH_CROP), "fps": fps}))
        utterances = [("u01", "train", 6.0), ("u02", "train", 4.5)] if speaker != "spkC" else [("p01", "passage_ja", 4.0), ("c01", "non_ja", 4.0)]
        for utt, condition, seconds in utterances:
            seed += 1
            phones = recording(folder / "video" / f"{utt}.mp4", folder / "audio" / f"{utt}.wav", fps, seconds, seed, crop=SYNTH_CROP)
            n = int(round(seconds * fps))
            meta = {"speaker": speaker, "utterance": utt, "text": "a a a", "crop": list(SYNTH_CROP), "fps": fps,
                    "audio_sample_rate": SRC_RATE, "condition": condition, "n_frames": n, "duration": n / fps}
            if speaker == "spkA":
                meta["phones"] = phones
            (folder / "meta").mkdir(exist_ok=True)
            (folder / "meta" / f"{utt}.json").write_text(json.dumps(meta))
            if speaker == "spkC":  # a second acquisition; here the same file, so the same frames
                (folder / "repeat").mkdir(exist_ok=True)
                shutil.copy(folder / "video" / f"{utt}.mp4", folder / "repeat" / f"{utt}.mp4")
    return root


def prepare(src: Path, out: Path, **options) -> dict:
    options.setdefault("workers", 1)
    options.setdefault("progress", False)
    options.setdefault("clip_seconds", 2.0)
    return run(Options(src=src, out=out, **options))


def clip_audio_samples(clip_folder: Path) -> tuple[np.ndarray, int, str]:
    info = soundfile.info(str(clip_folder / "audio.wav"))
    data, rate = soundfile.read(str(clip_folder / "audio.wav"), dtype="float32")
    return data, rate, f"{info.channels}ch {info.subtype}"


# ------------------------------------------------------------------ synthetic corpus


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    src = make_synth_corpus(root / "corpus")
    out = root / "data"
    manifest = prepare(src, out, seed=3)
    return src, out, manifest


def test_synth_clips_are_25fps_with_matching_audio(synth):
    src, out, manifest = synth
    data = ClipDataset(out)
    assert data.image_size == 96 and data.header["fps"] == 25
    assert manifest["run"]["skipped"] == 0, manifest["skipped"]
    per_recording: dict[str, int] = {}
    clips = [clip for name in ALL_SPLITS for clip in data.split(name)]
    assert len(clips) == manifest["total"]["clips"] >= 12
    for clip in clips:
        info = clip.info
        frames = clip.frames()
        assert info["fps"] == FPS
        assert frames.dtype == np.uint8 and frames.shape == (info["n_frames"], 96, 96)
        audio, rate, kind = clip_audio_samples(clip.folder)
        assert rate == SAMPLE_RATE and kind == "1ch PCM_16"
        assert len(audio) == info["n_frames"] * SAMPLES_PER_FRAME  # exactly n_frames / 25 s
        assert 0.5 * 50 <= info["n_frames"] <= 1.4 * 50  # about --clip-seconds 2
        per_recording[info["recording"]] = per_recording.get(info["recording"], 0) + info["n_frames"]
        # the crop from the metadata: only the 120-grey crop region (and the bar) remains
        assert np.percentile(frames, 5) > 80
    assert len(per_recording) == 6
    for rel, n_frames in per_recording.items():
        meta = json.loads((src / rel.replace("/video/", "/meta/").replace(".mp4", ".json")).read_text())
        with soundfile.SoundFile(str(src / rel.replace("/video/", "/audio/").replace(".mp4", ".wav"))) as f:
            audio_seconds = f.frames / f.samplerate
        assert abs(n_frames - audio_seconds * FPS) <= 1, rel
        assert abs(n_frames - meta["duration"] * FPS) <= 1, rel


def test_synth_heldout_speaker_only_in_unseen_splits(synth):
    _, out, manifest = synth
    data = ClipDataset(out)
    assert data.header["heldout_speakers"] == ["spkC"]
    for name in TRAINING_SPLITS:
        assert data.split(name) and all(c.speaker != "spkC" for c in data.split(name))
    unseen_ja, unseen_nonja = data.split("unseen_ja"), data.split("unseen_nonja")
    assert unseen_ja and all(c.speaker == "spkC" and c.info["condition"] == "passage_ja" for c in unseen_ja)
    assert unseen_nonja and all(c.speaker == "spkC" and c.info["condition"] == "non_ja" for c in unseen_nonja)
    training = sum(len(data.split(n)) for n in TRAINING_SPLITS)
    assert [len(data.split(n)) for n in TRAINING_SPLITS] == splits.split_counts(training, (0.8, 0.1, 0.1))


def test_synth_repeat_acquisition_becomes_the_clips_second_frames(synth):
    _, out, _ = synth
    data = ClipDataset(out)
    clips = [c for n in ALL_SPLITS for c in data.split(n)]
    with_repeat = [c for c in clips if c.repeat_frames() is not None]
    assert with_repeat and {c.speaker for c in with_repeat} == {"spkC"}
    for clip in with_repeat:  # converted, cropped and cut exactly like the first acquisition
        np.testing.assert_array_equal(clip.repeat_frames(), clip.frames())


def test_synth_phones_relative_to_clip_and_cuts_at_pauses(synth):
    _, out, _ = synth
    data = ClipDataset(out)
    spk_a = [c for n in ALL_SPLITS for c in data.split(n) if c.speaker == "spkA"]
    assert spk_a
    for clip in spk_a:
        phones = clip.info["phones"]
        duration = clip.n_frames / FPS
        assert phones and all(0 <= p["start"] < p["end"] <= duration + 1e-6 for p in phones)
        if clip.info["start_s"] > 0:  # a cut inside the recording lies in a pause
            assert clipping.is_silence_label(phones[0]["phone"]), (clip.clip_id, phones[0])
    assert all("phones" not in c.info for n in ALL_SPLITS for c in data.split(n) if c.speaker == "spkB")


def test_report_shows_table1_counts(synth):
    _, out, manifest = synth
    text = (out / "report.md").read_text()
    data = ClipDataset(out)
    counts = [len(data.split(n)) for n in ALL_SPLITS]
    assert "Table 1" in text
    assert "| | train | val | test | unseen_ja | unseen_nonja | total |" in text
    assert "| clips | " + " | ".join(map(str, counts)) + f" | {sum(counts)} |" in text
    assert "| hours |" in text and "spkC | yes" in text
    assert data.header["splits"] == dict(zip(ALL_SPLITS, counts))
    assert manifest["splits"]["train"]["clips"] == counts[0]
    header = data.header
    assert header["crop"]["per_speaker"]["spkA"] == list(SYNTH_CROP)
    assert header["seed"] == 3 and header["clip_seconds"] == 2.0 and header["speakers"] == ["spkA", "spkB", "spkC"]


def test_resume_does_no_rework_and_split_follows_seed(synth, tmp_path):
    src, out, first = synth
    lists = {n: (out / "filelists" / f"{n}.txt").read_text() for n in ALL_SPLITS}
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "clips").rglob("frames.npy")}
    again = prepare(src, out, seed=4)  # same clips, another split
    assert again["run"]["prepared"] == 0 and again["run"]["reused"] == first["run"]["prepared"] == 6
    assert {p: p.stat().st_mtime_ns for p in (out / "clips").rglob("frames.npy")} == mtimes
    assert (out / "filelists" / "train.txt").read_text() != lists["train"]
    assert (out / "filelists" / "unseen_ja.txt").read_text() == lists["unseen_ja"]
    # a marker lost (e.g. the run was killed during that recording): only it is redone
    (out / "state" / "spkB" / "u02.json").unlink()
    third = prepare(src, out, seed=3)
    assert third["run"]["prepared"] == 1 and third["run"]["reused"] == 5
    assert {n: (out / "filelists" / f"{n}.txt").read_text() for n in ALL_SPLITS} == lists


# ------------------------------------------------------------------ sync through conversion

SYNC_RATES = (14, 23.18, 27, 83.28)


@pytest.fixture(scope="module")
def sync_dataset(tmp_path_factory):
    """One recording per rate: dark frames, one bright frame at ~2.9 s, a click in the
    audio at that frame's timestamp."""
    root = tmp_path_factory.mktemp("sync")
    src = root / "flat"
    for fps in SYNC_RATES:
        rate = Fraction(str(fps))
        n = int(round(4.0 * fps))
        flash = int(round(2.9 * fps))
        images = [np.full((SIDE, SIDE), 250 if i == flash else 20, np.uint8) for i in range(n)]
        name = f"rate{str(fps).replace('.', 'p')}_take1"
        write_video(src / f"{name}.{'avi' if fps == 23.18 else 'mp4'}", images, fps, "mpeg4" if fps == 23.18 else "libx264")
        wav = np.zeros(int(round(n / rate * SRC_RATE)), np.float32)
        wav[int(round(flash / rate * SRC_RATE))] = 0.9
        write_wav(src / f"{name}.wav", wav)
    out = root / "data"
    prepare(src, out, speaker_pattern=r"^(rate[0-9p]+)_", clip_seconds=5.0)
    return out


@pytest.mark.parametrize("fps", SYNC_RATES)
def test_flash_and_click_stay_within_one_frame(sync_dataset, fps):
    data = ClipDataset(sync_dataset)
    speaker = f"rate{str(fps).replace('.', 'p')}"
    clips = [c for n in ALL_SPLITS for c in data.split(n) if c.speaker == speaker]
    assert len(clips) == 1  # 4 s: one clip
    clip = clips[0]
    assert abs(clip.info["source_fps"] - fps) < 0.01
    frames = clip.frames().astype(float).mean(axis=(1, 2))
    flash_frame = int(np.argmax(frames))
    assert frames[flash_frame] > 45 and np.median(frames) < 25  # 83.28 fps: a 12 ms flash averaged into 40 ms
    audio, _, _ = clip_audio_samples(clip.folder)
    click_frame = np.argmax(np.abs(audio)) / SAMPLES_PER_FRAME  # the click's position in frames
    assert abs(flash_frame - click_frame) <= 1.0, (fps, flash_frame, click_frame)
    assert abs(flash_frame - 2.9 * FPS) <= 1.5  # and both where they were in the source


def test_linear_conversion_by_timestamp():
    images = np.array([[[0]], [[100]], [[200]]], np.uint8)
    out = convert([0.0, 0.1, 0.2], images, 6)  # 10 fps source
    assert out[:, 0, 0].tolist() == [0, 40, 80, 120, 160, 200]
    nearest = convert([0.0, 0.1, 0.2], images, 7, "nearest")
    assert nearest[:, 0, 0].tolist() == [0, 0, 100, 100, 200, 200, 200]
    # faster than 25 fps: a triangle of +-40 ms around each output instant, so a one-frame
    # flash at 100 fps is not lost between two output instants
    flash = np.zeros((40, 1, 1), np.uint8)
    flash[6] = 255  # t = 0.06 s, halfway between output frames 1 and 2
    out = convert(np.arange(40) / 100, flash, 10, source_fps=100)[:, 0, 0]
    assert out[1] == out[2] > 0 and out[0] == out[3] == out[4] == 0
    assert convert(np.arange(40) / 100, flash, 10, "nearest", source_fps=100)[:, 0, 0].max() == 0


# ------------------------------------------------------------------ USC layouts


@pytest.fixture(scope="module")
def usc_trees(tmp_path_factory):
    root = tmp_path_factory.mktemp("usc")
    timit = root / "usctimit"
    for i, speaker in enumerate(("f1", "m1")):
        recording(timit / speaker / "avi" / f"usctimit_mri_{speaker}_001.avi", timit / speaker / "wav" / f"usctimit_mri_{speaker}_001.wav",
                  Fraction(2318, 100), 3.0, 10 + i, codec="mpeg4")
    usc75 = root / "usc75"
    for i, speaker in enumerate(("sub001", "sub002")):
        stem = f"{speaker}_2drt_01_vcv1_r1"
        recording(usc75 / speaker / "2drt" / "video" / f"{stem}_video.mp4", usc75 / speaker / "2drt" / "audio" / f"{stem}_audio.wav",
                  Fraction(8328, 100), 3.0, 20 + i)
    # audio only inside the video file
    n = int(round(3.0 * 83.28))
    wav, _ = speech_like(n / 83.28, 30)
    write_video(usc75 / "sub001" / "2drt" / "video" / "sub001_2drt_02_vcv2_r1_video.mp4", moving_frames(n), Fraction(8328, 100), audio=wav)
    return timit, usc75


def test_usc_layouts_are_recognised(usc_trees):
    timit, usc75 = usc_trees
    found = discover(timit)
    assert found.layout == "usctimit" and found.speakers == ["f1", "m1"]
    assert all(r.audio is not None and r.audio.suffix == ".wav" for r in found.recordings)
    found = discover(usc75)
    assert found.layout == "usc75" and found.speakers == ["sub001", "sub002"]
    audio = {r.name: r.audio for r in found.recordings}
    assert audio["sub001_2drt_01_vcv1_r1_video"].name == "sub001_2drt_01_vcv1_r1_audio.wav"
    assert audio["sub001_2drt_02_vcv2_r1_video"] is None  # from the video's own stream


def test_usc75_prepare_in_parallel_with_crop_and_heldout(usc_trees, tmp_path):
    _, usc75 = usc_trees
    manifest = prepare(usc75, tmp_path / "data", crop=(8, 8, 48, 48), heldout=("sub002",), workers=2, size=128)
    assert manifest["run"]["prepared"] == 3 and manifest["run"]["skipped"] == 0, manifest["skipped"]
    data = ClipDataset(tmp_path / "data")
    assert data.image_size == 128
    assert {c.speaker for c in data.split("unseen_ja")} == {"sub002"}
    assert all(c.speaker == "sub001" for n in TRAINING_SPLITS for c in data.split(n))
    embedded = [c for n in ALL_SPLITS for c in data.split(n) if "vcv2" in c.clip_id]
    assert sum(c.n_frames for c in embedded) == pytest.approx(3.0 * FPS, abs=1.5)
    assert all(c.frames().shape[1:] == (128, 128) for c in embedded)


def test_crop_outside_frame_refused_before_any_work(usc_trees, tmp_path, capsys):
    timit, _ = usc_trees
    out = tmp_path / "never"
    code = rtmri_main(["prepare", str(timit), str(out), "--crop", "40,40,48,48", "--no-progress"])
    assert code == 2
    message = capsys.readouterr().err
    assert "64x64" in message and "outside" in message
    assert not out.exists()


def test_preview_draws_the_crop(usc_trees, tmp_path):
    from PIL import Image

    timit, _ = usc_trees
    assert rtmri_main(["prepare", "--preview", str(timit), str(tmp_path / "pv"), "--crop", "8,8,48,48"]) == 0
    pngs = sorted((tmp_path / "pv").glob("*.png"))
    assert [p.name for p in pngs] == ["preview_f1.png", "preview_m1.png"]
    pixels = np.asarray(Image.open(pngs[0]).convert("RGB")).reshape(-1, 3).astype(int)
    assert np.any((pixels[:, 0] > 200) & (pixels[:, 1] < 80))  # the red rectangle


# ------------------------------------------------------------------ bad input


@pytest.fixture(scope="module")
def bad_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad") / "src"
    spk = root / "s1"
    rate = Fraction(27)

    def rec(name, **kw):
        return recording(spk / "avi" / f"{name}.avi", spk / "wav" / f"{name}.wav", rate, 3.0, sum(map(ord, name)) % 100, codec="mpeg4", **kw)

    rec("good")
    rec("slightly_long", audio_seconds=3.2)  # 0.2 s more audio: reported, kept
    rec("mismatch", audio_seconds=4.0)  # 1 s more audio: skipped
    rec("truncated")
    data = (spk / "avi" / "truncated.avi").read_bytes()
    (spk / "avi" / "truncated.avi").write_bytes(data[: len(data) // 2])
    rec("corrupt")
    (spk / "avi" / "corrupt.avi").write_bytes(np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes())
    rec("noaudio")
    (spk / "wav" / "noaudio.wav").unlink()
    rec("emptyaudio")
    write_wav(spk / "wav" / "emptyaudio.wav", np.zeros(0, np.float32))
    return root


def test_bad_recordings_are_skipped_and_reported(bad_tree, tmp_path):
    manifest = prepare(bad_tree, tmp_path / "data")
    reasons = {s["recording"].split("/")[-1]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"mismatch.avi", "truncated.avi", "corrupt.avi", "noaudio.avi", "emptyaudio.avi"}
    assert "differ by 1.0" in reasons["mismatch.avi"] and "0.5 s" in reasons["mismatch.avi"]
    assert "truncated" in reasons["truncated.avi"] or "corrupt" in reasons["truncated.avi"]
    assert "cannot open video" in reasons["corrupt.avi"]
    assert "no audio" in reasons["noaudio.avi"]
    assert "empty" in reasons["emptyaudio.avi"]
    report = (tmp_path / "data" / "report.md").read_text()
    assert "## Skipped recordings (5)" in report and all(f"`s1/avi/{name}`" in report for name in reasons)
    assert "slightly_long.avi" in report and "longer by 0.2" in report  # the warning
    data = ClipDataset(tmp_path / "data")
    ids = {c.clip_id for n in ALL_SPLITS for c in data.split(n)}
    assert {i.split("/")[1].rsplit("_c", 1)[0] for i in ids} == {"good", "slightly_long"}
    long_clip = [c for n in ALL_SPLITS for c in data.split(n) if "slightly_long" in c.clip_id]
    assert sum(c.n_frames for c in long_clip) == 80  # audio kept whole: 3.2 s x 25


def test_trim_cuts_to_the_shorter(bad_tree, tmp_path):
    prepare(bad_tree, tmp_path / "data", trim=True)
    data = ClipDataset(tmp_path / "data")
    long_clip = [c for n in ALL_SPLITS for c in data.split(n) if "slightly_long" in c.clip_id]
    assert sum(c.n_frames for c in long_clip) == 75  # the video's 3.0 s


def test_strict_stops_at_the_first_problem(bad_tree, tmp_path, capsys):
    out = tmp_path / "data"
    code = rtmri_main(["prepare", str(bad_tree), str(out), "--strict", "--workers", "1", "--no-progress"])
    assert code == 2
    message = capsys.readouterr().err
    assert "--strict" in message and "s1/avi/" in message
    assert not (out / "dataset.json").exists()


def test_nothing_usable_fails_with_the_report(bad_tree, tmp_path):
    only_bad = tmp_path / "src"
    (only_bad / "s1" / "avi").mkdir(parents=True)
    (only_bad / "s1" / "avi" / "corrupt.avi").write_bytes((bad_tree / "s1" / "avi" / "corrupt.avi").read_bytes())
    with pytest.raises(PrepareError, match="nothing usable"):
        prepare(only_bad, tmp_path / "data")
    assert "corrupt.avi" in (tmp_path / "data" / "report.md").read_text()


# ------------------------------------------------------------------ units


def test_plan_clips_cuts_at_pauses_near_the_target():
    silent = np.zeros(1000, bool)
    silent[130:136] = silent[240:246] = silent[600:604] = True
    plan = clipping.plan_clips(1000, 125, clipping.pause_centres(silent))
    assert plan[0] == (0, 133) and plan[1][1] == 243
    assert plan[-1][1] == 1000 and all(b == c for (_, b), (c, _) in zip(plan, plan[1:]))
    assert all(75 <= end - start <= 175 for start, end in plan)


def test_split_assignment_is_reproducible_and_keeps_heldout_out():
    clips = [{"id": f"s{s}/u_c{i:02d}", "speaker": f"s{s}", "condition": None} for s in range(3) for i in range(20)]
    a = splits.assign(clips, {"s2"}, (0.8, 0.1, 0.1), seed=1)
    assert a == splits.assign(list(reversed(clips)), {"s2"}, (0.8, 0.1, 0.1), seed=1)
    assert a != splits.assign(clips, {"s2"}, (0.8, 0.1, 0.1), seed=2)
    assert [len(a[n]) for n in ALL_SPLITS] == [32, 4, 4, 20, 0]
    assert not any(i.startswith("s2/") for n in TRAINING_SPLITS for i in a[n])


def test_cli_help_and_bad_options(capsys, tmp_path):
    with pytest.raises(SystemExit) as exc:
        rtmri_main(["prepare", "--help"])
    assert exc.value.code == 0 and "--speaker-pattern" in capsys.readouterr().out
    assert rtmri_main(["prepare", str(tmp_path), str(tmp_path / "o"), "--split", "0.5,0.1"]) == 2
    assert "--split" in capsys.readouterr().err
    assert rtmri_main(["prepare", str(tmp_path), str(tmp_path / "o")]) == 2
    assert "layout not recognised" in capsys.readouterr().err


# ------------------------------------------------------------------ names in any script


def test_names_in_any_script_give_distinct_stable_clip_ids(tmp_path):
    import unicodedata

    folder = tmp_path / "src" / "s1" / "avi"
    folder.mkdir(parents=True)
    stems = ("あいうえお", "かきくけこ", "さしすせそ", "ü 1", "ä 1", "!!!", "???", "A", "a", unicodedata.normalize("NFD", "ö 2"))
    for stem in stems:
        (folder / f"{stem}.avi").write_bytes(b"")
    names = {r.rel.split("/")[-1][:-4]: r.name for r in discover(tmp_path / "src").recordings}
    assert len({n.casefold() for n in names.values()}) == len(stems)  # also apart on case-insensitive file systems
    assert names["あいうえお"] == "あいうえお" and names["ü 1"] == "ü_1" and names["ä 1"] == "ä_1"
    assert names[unicodedata.normalize("NFD", "ö 2")] == unicodedata.normalize("NFC", "ö_2")
    assert names == {r.rel.split("/")[-1][:-4]: r.name for r in discover(tmp_path / "src").recordings}


def test_japanese_recordings_are_all_prepared_and_each_clip_listed_once(tmp_path):
    src = tmp_path / "src"
    for i, stem in enumerate(("あいうえお", "かきくけこ", "さしすせそ")):
        recording(src / "話者" / "avi" / f"{stem}.avi", src / "話者" / "wav" / f"{stem}.wav", Fraction(27), 2.0, 40 + i, codec="mpeg4")
    manifest = prepare(src, tmp_path / "data", clip_seconds=1.0)
    assert manifest["run"]["prepared"] == 3, manifest["skipped"]
    data = ClipDataset(tmp_path / "data")
    listed = [c.clip_id for n in ALL_SPLITS for c in data.split(n)]
    assert len(listed) == len(set(listed))
    assert {i.split("/")[1].rsplit("_c", 1)[0] for i in listed} == {"あいうえお", "かきくけこ", "さしすせそ"}
    assert {c.speaker for n in ALL_SPLITS for c in data.split(n)} == {"話者"}


def test_a_clip_id_in_two_splits_is_refused_when_the_lists_are_written(tmp_path):
    assigned = {name: [] for name in ALL_SPLITS}
    assigned["train"], assigned["val"] = ["s1/u_c00", "s1/u_c01"], ["s1/u_c01"]
    with pytest.raises(PrepareError, match=r"s1/u_c01 in train and val"):
        splits.write_filelists(tmp_path, assigned)
    assert not (tmp_path / "filelists").exists()


def test_a_length_mismatch_is_refused_from_the_headers_before_the_audio_is_read(tmp_path):
    import tracemalloc

    src = tmp_path / "src"
    recording(src / "s1" / "avi" / "good.avi", src / "s1" / "wav" / "good.wav", Fraction(27), 2.0, 50, codec="mpeg4")
    write_video(src / "s1" / "avi" / "short.mkv", moving_frames(54), Fraction(27), "mpeg4")  # 2 s; Matroska gives no frame count
    long_s = 200.0
    write_wav(src / "s1" / "wav" / "short.wav", np.zeros(int(long_s * SRC_RATE), np.float32))
    tracemalloc.start()
    try:
        manifest = prepare(src, tmp_path / "data")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    reasons = {s["recording"].split("/")[-1]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"short.mkv"} and "differ by 198.000 s" in reasons["short.mkv"]
    decoded_bytes = long_s * SRC_RATE * 4  # the long audio as float32
    assert peak < decoded_bytes / 4, f"peak {peak / 2**20:.1f} MiB"


def test_audio_with_nan_samples_is_skipped_with_the_reason_not_written_as_clicks(tmp_path):
    src = tmp_path / "src"
    for name in ("good", "damaged"):
        recording(src / "s1" / "avi" / f"{name}.avi", src / "s1" / "wav" / f"{name}.wav", Fraction(27), 2.0, 60, codec="mpeg4")
    wav, _ = speech_like(2.0, 60)
    wav[SRC_RATE : SRC_RATE + 100] = np.nan
    soundfile.write(str(src / "s1" / "wav" / "damaged.wav"), wav, SRC_RATE, subtype="FLOAT")
    manifest = prepare(src, tmp_path / "data")
    reasons = {s["recording"].split("/")[-1]: s["reason"] for s in manifest["skipped"]}
    assert set(reasons) == {"damaged.avi"} and "damaged.wav: 100 audio samples are NaN or infinite" in reasons["damaged.avi"]
    assert "## Skipped recordings (1)" in (tmp_path / "data" / "report.md").read_text()


# ---------------------------------------------------- articulation: outlines and grids (the shared DESIGN.md §5b)


def test_synth_outlines_follow_the_frames_through_crop_resize_and_25fps(tmp_path):
    """spkA's outline point moves 1 px per source frame at 14 fps: in each clip it lies where the
    crop, resize and 25 fps kernel put it; spkA gets a grid from its landmarks, spkB (no
    outlines, no grid file) neither."""
    from rtmri.articulation import grid as analysis_grid
    from rtmri.articulation.outlines import save

    src = make_synth_corpus(tmp_path / "corpus")
    speaker = json.loads((src / "spkA" / "speaker.json").read_text())
    (src / "spkA" / "speaker.json").write_text(json.dumps({**speaker, "pixel_mm": 1.0}))
    n = int(round(6.0 * 14))
    x = 20.0 + np.arange(n, dtype=np.float32)
    moving = np.stack([x, np.full(n, 30.0, np.float32)], axis=1)[:, None, :]
    save(src / "spkA" / "geometry" / "u01.npz", {"outline_tongue": moving, "static_bone_0": np.zeros((1, 3, 2), np.float32)})
    marks = {name: list(p) for name, p in zip(analysis_grid.LANDMARKS, analysis_grid.CANONICAL_LANDMARKS_MM / 4 + 30)}
    (src / "spkA" / "grid.json").write_text(json.dumps({"pixel_mm": 1.0, "landmarks": marks}))
    out = tmp_path / "data"
    prepare(src, out, size=96)
    dataset = ClipDataset(out)
    clips = [c for split in ALL_SPLITS for c in dataset.split(split)]
    cx, cy, cw, _ = SYNTH_CROP
    scale = 96 / cw
    checked = 0
    for clip in clips:
        geometry = clip.geometry()
        if clip.info["recording"] != "spkA/video/u01.mp4":
            assert geometry is None
            continue
        times = clip.info["start_s"] + np.arange(clip.n_frames) / FPS
        source_x = 20.0 + np.minimum(times * 14, n - 1)
        assert np.allclose(geometry["outline_tongue"][:, 0, 0], (source_x - cx + 0.5) * scale - 0.5, atol=1e-3)
        assert np.allclose(geometry["outline_tongue"][:, 0, 1], (30.0 - cy + 0.5) * scale - 0.5, atol=1e-3)
        assert clip.pixel_mm == pytest.approx(cw / 96)
        checked += 1
    assert checked >= 2
    grid = dataset.grid("spkA")
    expected = analysis_grid.grid_from_landmarks(marks, 1.0, fixed_walls=True).to_clip(SYNTH_CROP, 96)
    assert np.allclose(grid.inner, expected.inner, atol=1e-3) and grid.mm_per_px == pytest.approx(cw / 96)
    assert dataset.grid("spkB") is None
    assert dataset.header["analysis_grids"]["pixel_mm"] == {"spkA": pytest.approx(cw / 96)}


def test_landmark_file_gives_a_real_speaker_a_grid_and_a_bad_one_is_refused(usc_trees, tmp_path):
    from rtmri.articulation import grid as analysis_grid
    from rtmri.prepare.preview import REGION_COLOURS, run_preview

    src, _ = usc_trees
    marks = {name: list(p) for name, p in zip(analysis_grid.LANDMARKS, analysis_grid.CANONICAL_LANDMARKS_MM / 4 + 30)}
    landmarks = tmp_path / "landmarks.json"
    landmarks.write_text(json.dumps({"pixel_mm": 2.0, "speakers": {"f1": marks}}))
    out = tmp_path / "data"
    prepare(src, out, landmarks=landmarks)
    grid = ClipDataset(out).grid("f1")
    assert grid is not None and np.isnan(grid.wall).all() and grid.mm_per_px == pytest.approx(2.0 * SIDE / 96)
    assert ClipDataset(out).grid("m1") is None
    [preview_f1, preview_m1] = sorted(run_preview(src, tmp_path / "preview", landmarks=landmarks))
    from PIL import Image

    colours = {tuple(c) for c in np.asarray(Image.open(preview_f1).convert("RGB")).reshape(-1, 3)}
    assert set(REGION_COLOURS.values()) & colours  # the grid is drawn on f1's mean image
    colours = {tuple(c) for c in np.asarray(Image.open(preview_m1).convert("RGB")).reshape(-1, 3)}
    assert not set(REGION_COLOURS.values()) & colours
    del marks["palate"]
    landmarks.write_text(json.dumps({"speakers": {"f1": marks}}))
    with pytest.raises(analysis_grid.GridError, match="palate"):
        prepare(src, tmp_path / "other", landmarks=landmarks)
