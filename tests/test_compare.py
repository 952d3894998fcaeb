"""Lessons and the learner comparison (rtmri.lessons): the shipped lesson set, reading a user's
references, the comparison's score and differences, and `rtmri compare` end to end."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from rtmri import cli
from rtmri.audio import SAMPLE_RATE, load_audio
from rtmri.demo import ASSETS
from rtmri.lessons.articulators import articulate
from rtmri.lessons.catalogue import LESSONS
from rtmri.lessons.lesson import LessonError, read_lesson, read_lessons

LESSON_DIR = ASSETS / "lessons"
FLAP = LESSON_DIR / "07_flap_r.male.flac"  # the lessons come in three voices: tests take the male one
needs_espeak = pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("sox")), reason="needs espeak-ng and sox")


def espeak(path: Path, kana: str, rate: int = SAMPLE_RATE, speed: int = 150, pitch: int = 50) -> Path:
    """Japanese speech from espeak-ng, at the sample rate asked for."""
    raw = path.with_name(path.stem + "_raw.wav")
    subprocess.run(["espeak-ng", "-v", "ja", "-s", str(speed), "-p", str(pitch), "-w", str(raw), kana], check=True)
    subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", str(path)], check=True)
    return path


@pytest.fixture(scope="module")
def engine():
    from rtmri.bundle.engine import Engine
    from rtmri.demo import shipped

    return Engine(shipped().bundle, threads=1)


@pytest.fixture(scope="module")
def grid(engine):
    from rtmri.lessons.grid import bundle_grid

    return bundle_grid(engine.bundle)


def test_shipped_lessons_carry_their_words_and_phones():
    lessons = [lesson for lesson in read_lessons(LESSON_DIR) if lesson.voice == "male"]
    assert [lesson.lesson for lesson in lessons] == [text.id for text in LESSONS]
    for lesson, text in zip(lessons, LESSONS):
        assert (lesson.text, lesson.kana, lesson.romaji, lesson.gloss) == (text.text, text.kana, text.romaji, text.gloss)
        assert lesson.video is not None and not lesson.note
        duration = len(load_audio(lesson.audio)) / SAMPLE_RATE
        assert 0 < lesson.phones[0]["start"] and lesson.phones[-1]["end"] <= duration
    flap = read_lesson(FLAP)
    assert [p["phone"] for p in flap.phones] == ["s", "o", "r", "a"]  # the synthesizer's short d, labelled r


def test_a_recording_without_text_is_named_by_its_file(tmp_path):
    shutil.copy(FLAP, tmp_path / "my_try.flac")
    (lesson,) = read_lessons(tmp_path)
    assert lesson.name == "my_try" and not lesson.phones
    assert "my_try.json" in lesson.note
    (tmp_path / "my_try.json").write_text('{"name": 3}')
    with pytest.raises(LessonError, match="my_try.json: name must be a string"):
        read_lessons(tmp_path)


def test_silent_and_too_short_attempts_are_refused(engine, grid):
    from rtmri.lessons.activity import AttemptError
    from rtmri.lessons.compare import compare

    reference = load_audio(FLAP)
    with pytest.raises(AttemptError, match="silent"):
        compare(np.zeros(SAMPLE_RATE, np.float32), reference, engine, grid)
    blip = np.zeros(SAMPLE_RATE, np.float32)
    blip[8000:8800] = 0.3 * np.sin(np.arange(800) * 0.3)
    with pytest.raises(AttemptError, match="too short"):
        compare(blip, reference, engine, grid)
    noise = np.random.default_rng(0).normal(0, 0.05, 2 * SAMPLE_RATE).astype(np.float32)
    with pytest.raises(AttemptError, match="no speech, only a steady sound"):
        compare(noise, reference, engine, grid)


@needs_espeak
def test_same_words_score_better_than_different_words_and_list_no_difference(tmp_path, engine, grid):
    from rtmri.lessons.compare import compare

    reference = load_audio(espeak(tmp_path / "sora.wav", "そら"))
    again = load_audio(espeak(tmp_path / "sora_again.wav", "そら", speed=115, pitch=75))  # slower, higher
    other = load_audio(espeak(tmp_path / "kitte.wav", "きって"))
    itself = compare(reference, reference, engine, grid)
    same = compare(again, reference, engine, grid)
    different = compare(other, reference, engine, grid)
    assert itself.score == 100 and itself.segments == []
    assert same.segments == []
    assert same.score > different.score + 20
    assert different.segments  # different words differ somewhere


# Correct attempts by voices of another kind than the training corpora's (espeak-ng's formant
# voice, at other speeds and pitches), each against its usual voice saying the same word.
OTHER_VOICES = ((115, 75), (180, 30), (130, 60))  # (speed, pitch); the usual voice: 150, 50
CORRECT_WORDS = ("そら", "きって", "さかな", "いぬ", "はなび", "つくえ")


@needs_espeak
def test_correct_attempts_by_other_voices_are_seldom_told_a_mistake(tmp_path, engine, grid):
    """At most one in ten of them gets a difference named (the false-alarm target of the
    benchmark of mistakes); a default whose closure head shut the tongue tip at one voice's /s/
    and not at another's was told "the tongue tip did not close" in 2 of these 18 (README, stop 39)."""
    from rtmri.lessons.compare import compare

    told = []
    for number, word in enumerate(CORRECT_WORDS):
        reference = load_audio(espeak(tmp_path / f"{number}.wav", word))
        for speed, pitch in OTHER_VOICES:
            attempt = load_audio(espeak(tmp_path / f"{number}_{speed}_{pitch}.wav", word, speed=speed, pitch=pitch))
            result = compare(attempt, reference, engine, grid, draw=False)
            if result.segments:
                told.append((word, speed, pitch, [segment.articulator for segment in result.segments]))
    assert len(told) <= len(CORRECT_WORDS) * len(OTHER_VOICES) // 10, told


def test_a_lesson_compared_with_itself_scores_100(engine, grid):
    from rtmri.lessons.compare import compare

    lesson = read_lesson(LESSON_DIR / "01_vowels.male.flac")
    wav = load_audio(lesson.audio)
    result = compare(wav, wav, engine, grid, lesson.phones)
    assert result.score == 100 and result.segments == []
    assert set(result.reference) == {"lips", "tongue_tip", "tongue_body", "tongue_back", "velum", "tongue_root"}


def test_one_scale_per_voice_a_smaller_tract_is_scaled_away_a_wrong_vowel_is_not():
    """A child's tract is smaller throughout: its gaps are scaled away. A wrong vowel over half a
    short word narrows the tongue tip there only: that must not rescale the tip's other phones."""
    from rtmri.lessons.articulators import BY_KEY
    from rtmri.lessons.compare import speaker_scale

    rng = np.random.default_rng(0)
    reference = {key: rng.uniform(2, 20, 20) for key in BY_KEY}
    speech = np.ones(20, bool)
    child = {key: 0.7 * curve for key, curve in reference.items()}
    assert speaker_scale(reference, child, speech, 0.5) == pytest.approx(0.7)
    wrong_vowel = dict(reference, tongue_tip=np.r_[reference["tongue_tip"][:10], 0.15 * reference["tongue_tip"][10:]])
    assert speaker_scale(reference, wrong_vowel, speech, 0.5) == pytest.approx(1.0)


def test_a_wrong_vowel_is_named_at_its_time(tmp_path, engine, grid):
    """Another synthetic native speaker says 'sori' for the lesson's 'sora': /i/ for /a/."""
    pytest.importorskip("vocaltractlab_cython")
    from rtmri.lessons.catalogue import LessonText
    from rtmri.lessons.compare import compare
    from rtmri.lessons.make import make_lesson
    from rtmri.synth.speakers import make_speakers

    learner = make_speakers(10, 2, 0)[9]
    attempt = make_lesson(LessonText("sori", "sori", "", "", "", "sori", ""), learner, "male", tmp_path / "scratch", tmp_path, 96)
    lesson = read_lesson(FLAP)
    result = compare(load_audio(attempt.audio), load_audio(lesson.audio), engine, grid, lesson.phones)
    vowel = lesson.phones[-1]
    assert vowel["phone"] == "a"
    assert result.segments
    for segment in result.segments:  # every large difference is at the wrong vowel
        assert segment.phone == "a" and vowel["start"] - 0.04 <= segment.peak_s <= vowel["end"] + 0.04, segment
    assert "/a/" in result.segments[0].en
    first = result.segments[0]  # /i/ raises the tongue towards the palate and the ridge: named, or heard and explained
    assert first.kind in ("articulation", "sound") and first.articulator.startswith("tongue") and "higher" in first.en, first


def _lesson_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "sora_lesson"
    folder.mkdir()
    shutil.copy(FLAP, folder / "audio.flac")
    shutil.copy(FLAP.with_suffix(".mp4"), folder / "video.mp4")
    shutil.copy(FLAP.with_suffix(".json"), folder / "lesson.json")
    return folder


@needs_espeak
def test_rtmri_compare_end_to_end_at_44k(tmp_path, engine, grid, capsys):
    import av

    from rtmri.lessons.compare import compare

    attempt = espeak(tmp_path / "attempt44.wav", "そら", rate=44100)
    folder = _lesson_folder(tmp_path)
    out = tmp_path / "out"
    assert cli.main(["compare", str(attempt), str(folder), "-o", str(out)]) == 0
    report = json.loads((out / "compare.json").read_text())
    printed = capsys.readouterr().out
    assert f"score {report['score']}/100" in printed
    assert report["lesson"]["romaji"] == "sora"
    shown = report["attempt_times_s"]
    assert 0 <= min(shown) and max(shown) <= len(load_audio(attempt)) / SAMPLE_RATE
    assert [p["ipa"] for p in report["phones"]] == ["s", "o", "ɾ", "a"]  # the flap in IPA, beside its SAMPA r
    assert [p["phone"] for p in report["phones"]] == ["s", "o", "r", "a"]
    # the sample rate does not matter: the same words made at 16 kHz score the same
    direct = compare(load_audio(espeak(tmp_path / "attempt16.wav", "そら")), load_audio(FLAP), engine, grid, read_lesson(FLAP).phones)
    assert abs(report["score"] - direct.score) <= 3
    reference = load_audio(FLAP)
    n_frames = len(report["times_s"])
    assert n_frames == len(reference) * 25 // SAMPLE_RATE
    with av.open(str(out / "compare.mp4")) as container:
        video = sum(1 for _ in container.decode(video=0))
    with av.open(str(out / "compare.mp4")) as container:
        stereo = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    assert video == n_frames
    assert stereo.shape[0] == 2
    lag = int(np.argmax(np.correlate(stereo[0, : len(reference)], reference[:4000], mode="valid")))
    left = stereo[0, lag : lag + len(reference)][: len(reference)]
    assert np.corrcoef(left, reference[: len(left)])[0, 1] > 0.9  # the reference is on the left channel (AAC's delay aside)
    from PIL import Image

    assert Image.open(out / "curves.png").format == "PNG"


def test_rtmri_compare_refuses_a_silent_attempt(tmp_path, capsys):
    import soundfile

    silent = tmp_path / "silent.wav"
    soundfile.write(str(silent), np.zeros(44100, np.float32), 44100)
    out = tmp_path / "out"
    assert cli.main(["compare", str(silent), str(FLAP), "-o", str(out)]) == 2
    assert "silent" in capsys.readouterr().err
    assert not (out / "compare.json").exists()


def test_served_references_carry_their_lessons_words(tmp_path, engine):
    from rtmri.lessons.live import lesson_references

    folder = tmp_path / "refs"
    folder.mkdir()
    _lesson_folder(folder)  # a lesson folder: audio.flac, video.mp4, lesson.json
    shutil.copy(FLAP, folder / "mine.flac")  # a user's recording without its text
    (folder / "broken").mkdir()
    shutil.copy(FLAP, folder / "broken" / "audio.flac")
    (folder / "broken" / "lesson.json").write_text("{not json")
    listed = {r.describe()["name"]: r.describe() for r in lesson_references(folder, engine)}
    assert set(listed) == {"The flap r", "mine"}  # the broken lesson is skipped, the others served
    assert listed["The flap r"]["lesson"]["romaji"] == "sora" and listed["The flap r"]["original"]
    assert "mine.json" in listed["mine"]["lesson"]["note"] and not listed["mine"]["original"]


def test_recent_audio_cuts_by_offset_and_forgets_a_restarted_microphone():
    from rtmri.streamer.server.recent_audio import RecentAudio

    recent = RecentAudio(seconds=1.0)
    for k in range(30):  # 30 chunks of 0.1 s, each filled with its index
        recent.push(k * 1600, np.full(1600, k, np.float32))
    assert recent.cut(10 * 1600, 12 * 1600) is None  # older than the last second
    cut = recent.cut(25 * 1600 + 800, 27 * 1600)
    assert cut[0] == 25 and cut[-1] == 26 and len(cut) == 2400
    assert recent.cut(29 * 1600, 31 * 1600) is None  # not arrived yet
    assert recent.cut(27 * 1600, 26 * 1600) is None and recent.cut(27 * 1600, 27 * 1600) is None  # not a span
    recent.push(0, np.ones(1600, np.float32))  # the microphone started again
    assert recent.cut(0, 1600).tolist() == [1.0] * 1600 and recent.cut(25 * 1600, 26 * 1600) is None


def test_recent_frames_cut_an_attempt_by_its_samples_and_forget_a_restarted_session():
    from rtmri.streamer.server.recent_frames import RecentFrames, frame_at

    recent = RecentFrames(seconds=1.0)  # 25 frames
    for index in range(40):
        if index != 33:  # one frame the session never got
            recent.push(index, "jpeg", bytes([index]))
    assert [f[0] for f in recent.cut(0, 640 * 16)] == [14, 15]  # frames 0-13 are older than the last 25 kept
    # an attempt from sample 32 * 640 + 300 (nearest frame 32) to the end of frame 35's instant
    start = 32 * 640 + 300
    assert frame_at(start) == 32
    assert recent.cut(start, 36 * 640) == [(32, "jpeg", bytes([32])), (34, "jpeg", bytes([34])), (35, "jpeg", bytes([35]))]
    recent.push(2, "png", b"again")  # the microphone started again: its frames count from 0
    assert recent.cut(0, 640 * 40) == [(2, "png", b"again")]
    # with epochs: a new stream clears at once, and a stopped stream's late frames are not taken for it
    recent = RecentFrames()
    recent.push(7, "jpeg", b"old", epoch=1)
    recent.push(8, "jpeg", b"new", epoch=2)
    recent.push(9, "jpeg", b"late", epoch=1)
    assert recent.cut(0, 640 * 20) == [(8, "jpeg", b"new")]


def test_the_page_gets_its_comparison_or_a_reason(tmp_path, engine, monkeypatch):
    """A learner's attempt cut from its microphone's audio is compared with the reference; an
    unknown reference or audio no longer kept is answered with a reason. The reference is
    drawn once however many attempts are compared with it."""
    import asyncio

    from rtmri.lessons import live
    from rtmri.lessons.live import LessonComparer, lesson_references

    drawn = []
    monkeypatch.setattr(live, "articulate", lambda *a, **k: drawn.append((len(a[1]), k.get("draw", True))) or articulate(*a, **k))

    shutil.copy(FLAP, tmp_path / "sora.flac")
    shutil.copy(FLAP.with_suffix(".json"), tmp_path / "sora.json")
    (reference,) = lesson_references(tmp_path, engine)
    comparer = LessonComparer(engine, [reference])
    wav = load_audio(FLAP)

    class Client:
        def __init__(self):
            self.said = []

        def say(self, text):
            self.said.append(json.loads(text))

    async def ask(client, request):
        comparer.request(client, {"type": "compare", **request})
        for _ in range(200):
            if client.said:
                return client.said.pop()
            await asyncio.sleep(0.05)

    async def session():
        learner = Client()
        for start in range(0, len(wav), 1600):  # the microphone, 0.1 s at a time, after 1 s of silence
            comparer.audio(learner, 16000 + start, wav[start : start + 1600])
        for index in range(25, 25 + len(wav) // 640, 2):  # its live frames (from 16000 samples: frame 25), every other one
            comparer.frame(learner, index, "png", f"live {index - 25}".encode(), 1)
        itself = await ask(learner, {"reference": reference.id, "start": 16000, "end": 16000 + len(wav), "id": 7})
        again = await ask(learner, {"reference": reference.id, "start": 16000, "end": 16000 + len(wav), "id": 8})
        unknown = await ask(learner, {"reference": "99", "start": 16000, "end": 17000})
        lost = await ask(learner, {"reference": reference.id, "start": 0, "end": 16000})
        return itself, again, unknown, lost

    itself, again, unknown, lost = asyncio.run(session())
    assert itself["type"] == "comparison" and itself["id"] == 7 and "error" not in itself
    assert again["id"] == 8 and again["comparison"]["score"] == itself["comparison"]["score"]
    # the reference drawn once; each attempt articulated by its states only (the shipped bundle gives them)
    assert engine.bundle.gives_state and sorted(drawn) == [(len(wav), False), (len(wav), False), (len(wav), True)]
    assert itself["comparison"]["score"] == 100 and itself["lesson"]["romaji"] == "sora"
    # the attempt shown in the frames its live session was sent, the ones it was not sent drawn now
    shown = np.rint(np.array(itself["comparison"]["attempt_times_s"]) * 25).astype(int)
    pictures = itself["frames"]["attempt"]
    assert len(pictures) == len(itself["comparison"]["times_s"]) == len(shown)
    for k, picture in zip(shown, pictures):
        live_picture = "data:image/png;base64," + base64.b64encode(f"live {k}".encode()).decode()
        assert picture == live_picture if k % 2 == 0 else picture.startswith("data:image/jpeg;base64,/9j/")
    assert {k % 2 for k in shown} == {0, 1}
    assert "no reference" in unknown["error"] and "no longer on the server" in lost["error"]


def test_a_warmed_comparer_has_drawn_every_reference_before_the_first_attempt(tmp_path, engine, monkeypatch):
    """warm_up draws every reference once (a silent one, which cannot be compared, does not
    stop the others); the first attempt then draws no reference."""
    import soundfile

    from rtmri.lessons import live
    from rtmri.lessons.live import LessonComparer, lesson_references

    drawn = []
    monkeypatch.setattr(live, "articulate", lambda *a, **k: drawn.append((len(a[1]), k.get("draw", True))) or articulate(*a, **k))
    soundfile.write(tmp_path / "a_silent.flac", np.zeros(16000, np.float32), 16000)
    for name in ("a_silent", "sora", "sora2"):
        if name != "a_silent":
            shutil.copy(FLAP, tmp_path / f"{name}.flac")
        shutil.copy(FLAP.with_suffix(".json"), tmp_path / f"{name}.json")
    references = lesson_references(tmp_path, engine)
    comparer = LessonComparer(engine, references)
    comparer.warm_up()
    pictures = lambda: [d for d in drawn if d[1]]  # an attempt of an articulatory bundle is articulated undrawn
    assert set(comparer.articulated) == {r.id for r in references} and len(pictures()) == len(references)
    wav = load_audio(FLAP)
    spoken = [r for r in references if len(comparer.references[r.id][0]) == len(wav)][-1]
    payload = comparer._payload(wav, spoken.id, wav, comparer.references[spoken.id][1])
    assert payload["comparison"]["score"] == 100 and len(pictures()) == len(references)  # no reference drawn again


def test_a_bundle_without_a_grid_is_named(make_tiny_bundle):
    from rtmri.articulation.grid import GridError
    from rtmri.lessons.grid import bundle_grid

    bundle = make_tiny_bundle()
    with pytest.raises(GridError, match="no analysis_grid.*rtmri export .* --data DATASET"):
        bundle_grid(bundle)


def test_a_held_sound_is_timed_where_it_turns_not_spread_over_its_column():
    """The attempt holds a vowel (attempt columns 4-10) that DTW pairs with the reference's
    column 3, whose 50 ms window straddles the consonant-vowel boundary: the boundary goes where
    the held columns turn from the consonant's sound to the vowel's, not into the middle of them."""
    from rtmri.audio import MEL_COLUMNS_PER_SECOND as RATE
    from rtmri.lessons.align import path_alignment

    consonant, vowel = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    ref = np.stack([consonant, consonant, consonant, (consonant + vowel) / 2, vowel, vowel], axis=1)
    att = np.stack([consonant] * 4 + [vowel] * 9, axis=1)
    path = np.array([(0, 0), (1, 1), (2, 2)] + [(3, j) for j in range(3, 11)] + [(4, 11), (5, 12)])
    alignment = path_alignment(path, 0, 0, 0.0, ref, att)
    boundary = 3.3 / RATE  # inside reference column 3 ([2.5, 3.5) columns)
    assert alignment.boundary_time(boundary) == pytest.approx(3.5 / RATE)  # attempt column 3 is the consonant's
    assert alignment.attempt_time(boundary) > 7 / RATE  # the column's own share of the time: deep in the vowel
    assert alignment.attempt_time(2.5 / RATE) == pytest.approx(2.5 / RATE)  # edges go to edges
    assert alignment.attempt_time(3.5 / RATE) == pytest.approx(10.5 / RATE)
    assert np.all(np.diff(alignment.attempt_time(np.linspace(-0.01, 0.08, 50))) >= 0)


def test_a_length_is_named_against_its_phones_own_threshold(monkeypatch):
    """The same length difference is named at a phone that varies little between voices and not
    at one the thresholds do not list (the channel's own threshold)."""
    from rtmri.lessons import compare as C
    from rtmri.lessons.articulators import ARTICULATORS, Articulation

    monkeypatch.setitem(C.PHONE_NAMED, "t", {"length": 0.5, "sound": 0.5})
    times = np.arange(10) / 25
    curves = {a.key: np.full(10, 5.0) for a in ARTICULATORS}
    ref = Articulation(np.zeros((10, 0, 0), np.uint8), curves, 0.5)
    lengths = [{"phone": phone, "start": start, "end": start + 0.12, "reference_s": 0.12, "attempt_s": 0.2, "paced_s": 0.12,
                "log_ratio": 0.45, "severity": 0.7} for phone, start in (("t", 0.0), ("unlisted", 0.2))]
    (named,) = C.length_segments(lengths, ref, curves, times, 1.0)
    assert named.phone == "t" and named.kind == C.LENGTH and named.severity == pytest.approx(1.4)
    assert "/t/ was held too long" in named.en


VOWEL_FORMANTS = {"a": (700, 1200, 2600), "i": (300, 2300, 3000), "e": (480, 1850, 2600)}
LEAD_S = 0.25  # silence before and after


def vowels(f0: float, said: str, seconds: float = 0.6, formant_scale: float = 1.0) -> np.ndarray:
    """A source-filter voice saying vowels one after another (pulses at f0 through a two-pole
    resonator per formant, 80 Hz wide), each for `seconds`, with silence around."""
    from scipy.signal import lfilter

    parts = []
    for vowel in said:
        pulses = np.zeros(int(seconds * SAMPLE_RATE))
        pulses[:: int(SAMPLE_RATE / f0)] = 1.0
        out = pulses
        for f in VOWEL_FORMANTS[vowel]:
            r = np.exp(-np.pi * 80 / SAMPLE_RATE)
            f = f * formant_scale
            out = lfilter([1 - r], [1, -2 * r * np.cos(2 * np.pi * f / SAMPLE_RATE), r * r], out)
        parts.append(out / np.max(np.abs(out)) * np.hanning(len(out)) ** 0.2)
    silence = np.zeros(int(LEAD_S * SAMPLE_RATE))
    out = np.concatenate([silence, *parts, silence])
    return (0.5 * out / np.max(np.abs(out))).astype(np.float32)


def test_the_sound_hears_the_vowel_not_the_voices_pitch():
    """Two voices say the same vowel at pitches an octave apart, a third says another vowel at the
    first one's pitch: along the alignment, the other vowel sounds far more unlike than the pitch."""
    from rtmri.lessons.activity import activity
    from rtmri.lessons.sound import compare_sound

    a_low, a_high, i_low = vowels(110, "a"), vowels(220, "a"), vowels(110, "i")
    unlike = lambda attempt: np.nanmedian(compare_sound(a_low, activity(a_low), attempt, activity(attempt), 25).distance)
    assert unlike(i_low) > 2 * unlike(a_high)


def test_two_vowels_said_alike_are_named_at_the_one_that_moved():
    """The reference says /a i e/; a smaller, higher voice says /a e e/ (its /i/ as /e/): the pair
    /i/-/e/ is named merged, at the /i/, said like /e/. The same voice saying /a i e/ keeps every
    contrast: nothing is named. Nor when the reference's own recording is the attempt."""
    from rtmri.lessons import contrast
    from rtmri.lessons.activity import activity
    from rtmri.lessons.compare import attempt_spans
    from rtmri.lessons.sound import compare_sound

    seconds = 0.3
    reference = vowels(110, "aie", seconds)
    phones = tuple({"phone": v, "start": LEAD_S + k * seconds, "end": LEAD_S + (k + 1) * seconds} for k, v in enumerate("aie"))

    def kept(attempt):
        sound = compare_sound(reference, activity(reference), attempt, activity(attempt), 40)
        return contrast.kept(sound, phones, *attempt_spans(phones, sound.alignment))

    merged_attempt, kept_attempt = vowels(210, "aee", seconds, formant_scale=1.12), vowels(210, "aie", seconds, formant_scale=1.12)
    lowest, merged = kept(merged_attempt)
    assert [(m.phone_index, m.said_like) for m in merged] == [(1, "e")], merged
    assert lowest["i"] == lowest["e"] < contrast.CONTRAST_NAMED < lowest["a"]
    for attempt in (kept_attempt, reference):
        lowest, merged = kept(attempt)
        assert merged == [] and min(lowest.values()) > contrast.CONTRAST_NAMED / 2, lowest

    # in the whole comparison (the articulators alike): named at /i/ in words, in its phone's
    # figures, and in the score
    from rtmri.lessons.articulators import ARTICULATORS, Articulation
    from rtmri.lessons.compare import compare_articulations, speech_span

    n = int(len(reference) / SAMPLE_RATE * 25)
    flat = Articulation(np.zeros((n, 0, 0), np.uint8), {a.key: np.full(n, 5.0) for a in ARTICULATORS}, 0.5)

    def compared(attempt):
        sound = compare_sound(reference, activity(reference), attempt, activity(attempt), n)
        return compare_articulations(flat, flat, sound, phones, speech_span(phones, activity(reference)))

    said, right = compared(merged_attempt), compared(kept_attempt)
    (named,) = [s for s in said.segments if "sounded like" in s.en]
    assert named.phone == "i" and "/i/ sounded like /e/" in named.en and named.severity > 1
    assert said.by_phone[1]["contrast"] < contrast.CONTRAST_NAMED < right.by_phone[1]["contrast"]
    assert not any("sounded like" in s.en for s in right.segments) and said.score < right.score


def test_the_attempts_shown_instant_stays_inside_the_attempt():
    """The reference's speech starts 0.2 s later in its recording than the attempt's: before the
    alignment's path the attempt runs on at the reference's pace, which put the reference's first
    frames at negative attempt instants (espeak-ng's そら against the flap lesson: -0.18 s). The
    instant shown is that of the attempt's frame shown, inside the attempt; the frames compared are
    as before."""
    from rtmri.lessons.align import Alignment
    from rtmri.lessons.articulators import ARTICULATORS, Articulation
    from rtmri.lessons.compare import compare_articulations
    from rtmri.lessons.sound import Sound

    n_ref, n_att = 15, 8
    alignment = Alignment(np.array([0.2, 0.4]), np.array([0.0, 0.2]), 0.0)
    assert alignment.attempt_time(0.0) < 0  # the cause: the path's start extended at the same pace
    picture = lambda n: np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 2, 2), np.uint8)  # frame k is all k
    ref = Articulation(picture(n_ref), {a.key: np.full(n_ref, 5.0) for a in ARTICULATORS}, 0.5)
    att = Articulation(picture(n_att), {a.key: np.full(n_att, 5.0) for a in ARTICULATORS}, 0.5)
    comparison = compare_articulations(ref, att, Sound(alignment, 1.0, np.zeros(n_ref)), (), (0.2, 0.4))
    shown = comparison.attempt_times_s
    assert shown.min() == 0.0 and shown.max() == pytest.approx((n_att - 1) / 25)
    assert np.all(np.diff(shown) >= 0)
    # the instant named is the attempt frame drawn there
    assert np.array_equal(comparison.attempt_frames[:, 0, 0], np.rint(shown * 25).astype(np.uint8))
    assert min(comparison.to_json()["attempt_times_s"]) >= 0


def test_named_differences_name_phones_in_ipa_and_keep_the_sampa(monkeypatch):
    """/ɯ/, not the synthesizer's M, in the words a learner reads (length, sound, articulator);
    the JSON keeps "phone": "M" for what reads it and adds "ipa"."""
    from rtmri.lessons import compare as C
    from rtmri.lessons.articulators import ARTICULATORS, Articulation

    times = np.arange(10) / 25
    curves = {a.key: np.full(10, 5.0) for a in ARTICULATORS}
    ref = Articulation(np.zeros((10, 0, 0), np.uint8), curves, 0.5)
    lengths = [{"phone": "M", "start": 0.0, "end": 0.12, "reference_s": 0.12, "attempt_s": 0.3, "paced_s": 0.12,
                "log_ratio": 0.9, "severity": 2.0}]
    (length,) = C.length_segments(lengths, ref, curves, times, 1.0)
    assert length.en.startswith("/ɯ/ was held too long") and "for /ɯ/ at" in length.en
    assert length.ja.startswith("/ɯ/ が長すぎました") and "/M/" not in length.en + length.ja
    phones = ({"phone": "ts", "start": 0.0, "end": 0.16}, {"phone": "N", "start": 0.16, "end": 0.36})
    (sound,) = C.sound_segments(phones[1:], np.full(10, 5.0), ref, curves, times, [], 1.0)
    assert sound.en.startswith("/ɴ/ sounded unlike") and sound.ja.startswith("/ɴ/ の音")
    (tip,) = C.phone_segments("tongue_tip", times, np.where(times < 0.16, 3.0, 0.0), np.full(10, 2.0), np.full(10, 6.0),
                              phones, 0.5, 1.0)
    assert "for /t͡s/ at" in tip.en and "/t͡s/、" in tip.ja
    assert (length.to_json()["phone"], length.to_json()["ipa"]) == ("M", "ɯ")
    assert (sound.to_json()["phone"], sound.to_json()["ipa"]) == ("N", "ɴ")


def test_a_sound_named_alone_names_the_articulator_that_differs_most_with_its_direction():
    """/a/ sounds unlike the reference's and no articulator reaches its threshold: the one whose
    difference comes nearest (the tongue body, higher: the attempt's gap narrower) is named with
    the sound; with every difference small, the articulator at the phone's place is."""
    from rtmri.lessons import compare as C
    from rtmri.lessons.articulators import ARTICULATORS, Articulation

    times = np.arange(10) / 25
    reference = {a.key: np.full(10, 8.0) for a in ARTICULATORS}
    attempt = dict(reference, tongue_body=np.full(10, 4.0))
    ref = Articulation(np.zeros((10, 0, 0), np.uint8), reference, 0.5)
    phones = ({"phone": "a", "start": 0.0, "end": 0.4},)
    severity = {a.key: np.full(10, 0.1) for a in ARTICULATORS}
    severity["tongue_body"] = np.full(10, -0.7)
    severity["velum"] = np.full(10, np.nan)
    (hinted,) = C.sound_segments(phones, np.full(10, 5.0), ref, attempt, times, [], 1.0, severity, 0.5)
    assert hinted.kind == C.SOUND and hinted.articulator == "tongue_body"
    assert hinted.en.startswith("/a/ sounded unlike the reference's: the tongue body was higher than the reference")
    assert "舌の中ほどがお手本より高い" in hinted.ja
    severity["tongue_body"] = np.full(10, -0.3)
    (placed,) = C.sound_segments(phones, np.full(10, 5.0), ref, attempt, times, [], 1.0, severity, 0.5)
    assert placed.articulator == C.articulator_of("a", ref, np.arange(10)) and "(made with the" in placed.en


def test_a_one_frame_tap_must_be_matched_within_a_frame():
    """The reference's tongue tip taps for one frame (the flap). An attempt tapping a frame late is
    timing: nothing left. An attempt that never taps (an /l/ with the tip lower) is compared with
    the tap itself, not with the reference's open frames either side of it."""
    from rtmri.lessons.compare import nearest_pair

    reference = np.array([8.0, 8.0, 8.0, 1.0, 8.0, 8.0, 8.0])
    position = np.arange(len(reference), dtype=float)
    late = np.array([8.0, 8.0, 8.0, 8.0, 1.0, 8.0, 8.0])
    ref, att = nearest_pair(reference, late, position)
    assert np.allclose(ref, reference) and np.allclose(att, reference)
    ref, att = nearest_pair(reference, np.full(7, 5.0), position)
    assert att[3] - ref[3] == pytest.approx(4.0)


def test_no_articulator_is_named_at_a_glottal_consonant():
    """/h/ has no place on the grid (the tract holds its neighbours' shapes): a large difference
    of the tongue root over it is not named there; the same over a /t/ is."""
    from rtmri.lessons.compare import phone_segments

    times = np.arange(20) / 25
    phones = ({"phone": "h", "start": 0.0, "end": 0.2}, {"phone": "a", "start": 0.2, "end": 0.4},
              {"phone": "t", "start": 0.4, "end": 0.6})
    severity = np.zeros(20)
    severity[0:5] = severity[10:15] = 3.0  # over the /h/ and over the /t/
    gaps = np.full(20, 5.0)
    named = phone_segments("tongue_root", times, severity, gaps, gaps, phones, 0.5, 1.0)
    assert [s.phone for s in named] == ["t"]
