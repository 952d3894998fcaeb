import numpy as np
import pytest

from rtmri import alignment
from rtmri.alignment import (
    SAMPLES_PER_FRAME,
    WINDOW_COLUMNS,
    AlignmentError,
    mel_window,
    samples_needed,
    true_lookahead_ms,
    window_start,
)
from rtmri.audio import HOP_LENGTH, SAMPLE_RATE, StreamingMel, melspectrogram

COLUMN_MS = 1000 * HOP_LENGTH / SAMPLE_RATE  # 12.5


@pytest.mark.parametrize("lookahead_ms", [0, 40, 80, 120])
def test_lookahead_is_what_the_docstring_says(lookahead_ms):
    for k in range(0, 200):
        actual = true_lookahead_ms(k, lookahead_ms)
        assert lookahead_ms - COLUMN_MS < actual <= lookahead_ms


@pytest.mark.parametrize("lookahead_ms", [0, 40, 80, 120])
def test_window_depends_on_no_sample_past_the_lookahead(lookahead_ms):
    """Changing audio after frame_time + lookahead must not change the frame's window;
    changing the newest sample it claims to use must."""
    rng = np.random.default_rng(1)
    wav = rng.standard_normal(SAMPLE_RATE * 2).astype(np.float32) * 0.1
    k = 20
    newest = samples_needed(k, lookahead_ms) - 1
    assert newest <= k * SAMPLES_PER_FRAME + lookahead_ms * SAMPLE_RATE // 1000
    base = mel_window(melspectrogram(wav), k, lookahead_ms)

    later = wav.copy()
    later[newest + 1 :] = rng.standard_normal(later.size - newest - 1) * 0.1
    np.testing.assert_array_equal(mel_window(melspectrogram(later), k, lookahead_ms), base)

    touched = wav.copy()
    touched[newest] += 0.5
    assert np.abs(mel_window(melspectrogram(touched), k, lookahead_ms) - base).max() > 0


def test_default_starts_the_window_two_frames_before_the_frame():
    for k in range(2, 300):
        assert window_start(k) == int(80.0 * ((k - 2) / 25.0))


def test_window_shape_and_padding_at_the_start():
    mel = melspectrogram(np.ones(SAMPLE_RATE, np.float32) * 0.1)
    first = mel_window(mel, 0)
    assert first.shape == (80, WINDOW_COLUMNS)
    missing = -window_start(0)
    assert missing > 0 and np.all(first[:, :missing] == -4.0)


def test_streaming_frame_ready_when_its_samples_have_arrived():
    """A streamer that waits for samples_needed(k) has all the columns of frame k's window."""
    wav = np.random.default_rng(2).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    offline = melspectrogram(wav)
    k, lookahead = 10, 40
    extractor = StreamingMel()
    streamed = extractor.push(wav[: samples_needed(k, lookahead)])
    np.testing.assert_allclose(mel_window(streamed, k, lookahead), mel_window(offline, k, lookahead), atol=1e-4)


@pytest.mark.parametrize("bad", [-10, 0.01])
def test_bad_lookahead_is_refused(bad):
    with pytest.raises(AlignmentError, match="lookahead"):
        window_start(3, bad)


def test_frame_windows_stack():
    mel = melspectrogram(np.zeros(SAMPLE_RATE // 2, np.float32))
    windows = alignment.frame_windows(mel, 12, 80)
    assert windows.shape == (12, 80, WINDOW_COLUMNS)
