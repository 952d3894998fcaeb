import re

import numpy as np
import pytest

from rtmri import audio
from rtmri.audio import (
    HOP_LENGTH,
    N_MELS,
    SAMPLE_RATE,
    AudioError,
    StreamingMel,
    melspectrogram,
    n_columns_for,
)


def speech_like(seconds=2.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t)
    voiced = sum(np.sin(2 * np.pi * f * t) / (i + 1) for i, f in enumerate((120, 240, 700, 1200, 2500)))
    return ((0.3 * envelope * voiced) + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def stream(wav, chunk):
    extractor = StreamingMel()
    pieces = [extractor.push(wav[i : i + chunk]) for i in range(0, len(wav), chunk)]
    return np.concatenate(pieces, axis=1), extractor


@pytest.mark.parametrize("chunk", [1, 37, 160, 1024, 16000])
def test_streaming_equals_offline(chunk):
    wav = speech_like(1.3)
    offline = melspectrogram(wav)
    streamed, extractor = stream(wav, chunk)
    # All columns whose samples have arrived were emitted, and no more.
    assert streamed.shape[1] == (len(wav) - audio.HALF_WINDOW) // HOP_LENGTH + 1
    first_window = 16
    diff = np.abs(streamed[:, first_window:] - offline[:, first_window : streamed.shape[1]])
    assert diff.max() < 1e-4
    tail = extractor.flush()
    whole = np.concatenate([streamed, tail], axis=1)
    assert whole.shape == offline.shape


def test_offline_matches_librosa_stft_reference():
    import librosa
    from scipy.signal import lfilter

    wav = speech_like(0.7, seed=3)
    emphasised = lfilter([1, -audio.PREEMPHASIS], [1], wav)
    spec = np.abs(librosa.stft(emphasised, n_fft=800, hop_length=200, win_length=800, center=True, pad_mode="constant"))
    mel = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600) @ spec
    db = 20 * np.log10(np.maximum(1e-5, mel)) - 20
    expected = np.clip(8 * ((db + 100) / 100) - 4, -4, 4)
    np.testing.assert_allclose(melspectrogram(wav), expected, atol=2e-3)


def test_shape_and_column_count():
    wav = speech_like(1.0)
    mel = melspectrogram(wav)
    assert mel.shape == (N_MELS, n_columns_for(len(wav))) == (80, 81)
    assert mel.dtype == np.float32


def test_silence_maps_to_minus_four():
    mel = melspectrogram(np.zeros(SAMPLE_RATE, np.float32))
    assert np.all(mel == -4.0)


def test_values_are_clipped_to_plus_minus_four():
    mel = melspectrogram(speech_like(0.5) * 1000)
    assert mel.min() >= -4.0 and mel.max() == 4.0


@pytest.mark.parametrize("freq", [300.0, 1000.0, 4000.0])
def test_pure_tone_lands_in_expected_band(freq):
    import librosa

    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    mel = melspectrogram((0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32))
    loudest_band = int(np.argmax(mel[:, 10:-10].mean(axis=1)))
    centres = librosa.mel_frequencies(n_mels=N_MELS + 2, fmin=55, fmax=7600)[1:-1]
    expected_band = int(np.argmin(np.abs(centres - freq)))
    assert abs(loudest_band - expected_band) <= 1


def test_load_audio_resamples_and_names_bad_files(tmp_path):
    import soundfile

    wav48 = np.sin(2 * np.pi * 440 * np.arange(48000) / 48000).astype(np.float32) * 0.5
    path = tmp_path / "tone.wav"
    soundfile.write(path, np.stack([wav48, wav48], axis=1), 48000, subtype="PCM_16")
    loaded = audio.load_audio(path)
    assert loaded.ndim == 1 and abs(len(loaded) - SAMPLE_RATE) <= 1

    with pytest.raises(AudioError, match="missing.wav"):
        audio.load_audio(tmp_path / "missing.wav")
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF....not audio")
    with pytest.raises(AudioError, match="broken.wav"):
        audio.load_audio(broken)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioError, match="empty"):
        audio.load_audio(empty)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_samples_are_refused_naming_the_file_and_where(tmp_path, bad):
    import soundfile

    wav = speech_like(1.0)
    wav[12000:12010] = bad  # at 0.75 s
    path = tmp_path / "damaged.wav"
    soundfile.write(path, np.stack([wav, wav], axis=1), SAMPLE_RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"damaged.wav: 10 audio samples are NaN or infinite \(the first at 0.750 s\)"):
        audio.load_audio(path)


def test_render_and_live_refuse_nan_audio_and_render_audio_shorter_than_a_frame_writing_nothing(make_tiny_bundle, tmp_path, capsys):
    import soundfile

    from rtmri.cli import main

    bundle = make_tiny_bundle()
    nan_wav, short_wav = tmp_path / "nan.wav", tmp_path / "short.wav"
    soundfile.write(nan_wav, np.full(SAMPLE_RATE, np.nan, np.float32), SAMPLE_RATE, subtype="FLOAT")
    soundfile.write(short_wav, speech_like(0.01), SAMPLE_RATE)  # 10 ms: not one 40 ms frame
    for wav, message in ((nan_wav, r"nan.wav: 16000 audio samples are NaN"), (short_wav, r"short.wav: 10 ms of audio.*one frame")):
        out = tmp_path / f"{wav.stem}.mp4"
        assert main(["render", str(bundle.path), str(wav), "-o", str(out)]) == 2
        assert re.search(message, capsys.readouterr().err)
        assert not out.exists()
    recorded = tmp_path / "recorded.mp4"
    assert main(["live", "--bundle", str(bundle.path), "--file", str(nan_wav), "--no-window", "--record", str(recorded)]) == 2
    assert "nan.wav: 16000 audio samples are NaN" in capsys.readouterr().err and not recorded.exists()


@pytest.mark.parametrize("container", ["wav", "mka"])  # soundfile, and PyAV for what libsndfile cannot read
def test_load_audio_stops_reading_past_max_seconds(tmp_path, container):
    import av

    wav = speech_like(3.0)
    path = tmp_path / f"speech.{container}"
    if container == "wav":
        import soundfile

        soundfile.write(path, wav, SAMPLE_RATE)
    else:
        with av.open(str(path), "w") as out:
            stream = out.add_stream("pcm_f32le", rate=SAMPLE_RATE, layout="mono")
            frame = av.AudioFrame.from_ndarray(wav[None], format="flt", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in list(stream.encode(frame)) + list(stream.encode()):
                out.mux(packet)
    assert audio.audio_duration(path) == pytest.approx(3.0, abs=0.05)
    with pytest.raises(audio.AudioTooLongError, match=rf"speech.{container}: the audio lasts more than 1.000 s"):
        audio.load_audio(path, max_seconds=1.0)
    assert len(audio.load_audio(path, max_seconds=3.1)) == pytest.approx(len(wav), abs=2)


# ---- session normalisation -------------------------------------------------------------------


def session_norm():
    return audio.SessionNorm(np.full(N_MELS, -1.5), np.full(N_MELS, 1.0))


def test_session_norm_in_chunks_equals_the_whole_session():
    mel = melspectrogram(speech_like(3.0))
    whole = session_norm().normalise(mel)
    norm = session_norm()
    rng = np.random.default_rng(1)
    pieces, at = [], 0
    while at < mel.shape[1]:
        step = int(rng.integers(0, 9))
        pieces.append(norm.push(mel[:, at : at + step]))
        at += step
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), whole, atol=1e-5)
    assert not np.allclose(whole, mel, atol=0.1)  # it did change the features


def test_session_norm_takes_out_a_microphones_colour_but_keeps_the_articulation():
    wav = np.tile(speech_like(2.0), 4)  # 8 s: the session has heard its voice
    mel = melspectrogram(wav)
    tilt = np.linspace(-1.2, 0.8, N_MELS)[:, None].astype(np.float32)  # a channel: +-10..15 dB per band
    coloured = np.clip(mel + tilt, -4, 4)
    late = slice(mel.shape[1] // 2, None)
    speech = mel[:, late].mean(axis=0) > -2.5
    raw_gap = np.abs(coloured - mel)[:, late][:, speech].mean()
    normalised_gap = np.abs(session_norm().normalise(coloured) - session_norm().normalise(mel))[:, late][:, speech].mean()
    assert normalised_gap < raw_gap / 3  # what remains: the prior's share, clipping at the floor
    # what changes within the session (the envelope, the articulation) is still there
    assert session_norm().normalise(mel)[:, late].std(axis=1).mean() > 0.5 * mel[:, late].std(axis=1).mean()


def test_session_norm_is_not_pulled_by_pauses():
    mel = melspectrogram(speech_like(4.0))
    pause = np.full((N_MELS, 400), audio.SILENCE_VALUE, np.float32)  # 5 s of silence before the speech
    after_pause = session_norm().normalise(np.concatenate([pause, mel], axis=1))[:, 400:]
    np.testing.assert_allclose(after_pause, session_norm().normalise(mel), atol=1e-4)
    assert audio.loud_columns(np.concatenate([pause, mel], axis=1)).shape[1] <= mel.shape[1]


def test_session_norm_round_trips_through_its_manifest_form():
    norm = audio.SessionNorm(np.linspace(-2, 0, N_MELS), np.linspace(0.5, 1.5, N_MELS))
    again = audio.SessionNorm.from_dict(norm.to_dict())
    mel = melspectrogram(speech_like(1.0))
    np.testing.assert_allclose(again.normalise(mel), norm.normalise(mel), atol=1e-4)
