"""The one MP4 writer (whole videos and frame by frame, with sound) and the one composer."""

import av
import numpy as np
import pytest

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.video import DISPLAY_SIZE, VideoWriter, composed_shape, side_by_side, write_video
from rtmri.video.compose import GAP, HEADER_HEIGHT


def read_back(path):
    """(frames, video rate, audio channels, audio seconds)"""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate = video.average_rate
        frames = np.stack([f.to_ndarray(format="gray") for f in container.decode(video)])
    with av.open(str(path)) as container:
        audio = container.streams.audio[0]
        chunks = [f.to_ndarray() for f in container.decode(audio)]
    return frames, rate, chunks[0].shape[0], sum(c.shape[1] for c in chunks) / audio.rate


def test_a_whole_video_with_sound_reads_back_with_its_frames_size_and_sound(tmp_path):
    levels = np.linspace(20, 230, 30).astype(np.uint8)
    frames = np.stack([np.full((48, 64), level, np.uint8) for level in levels])
    sound = np.sin(np.arange(SAMPLE_RATE * len(frames) // FPS) * 0.05).astype(np.float32) * 0.5
    path = tmp_path / "deep" / "whole.mp4"
    write_video(path, frames, FPS, audio=sound)
    decoded, rate, channels, seconds = read_back(path)
    assert decoded.shape == (30, 48, 64) and rate == FPS
    assert np.abs(decoded.mean(axis=(1, 2)) - levels).max() < 3
    assert channels == 1 and abs(seconds - len(frames) / FPS) < 0.1


def test_frames_and_stereo_sound_written_as_they_come_with_an_odd_size(tmp_path):
    path = tmp_path / "stream.mp4"
    with VideoWriter(path, 33, 21, FPS, audio_channels=2) as writer:
        for k in range(25):
            writer.audio(np.zeros((2, SAMPLE_RATE // FPS), np.float32) + [[0.1], [-0.1]])
            writer.frame(np.full((21, 33), 10 * k, np.uint8))
        with pytest.raises(ValueError, match="a frame of"):
            writer.frame(np.zeros((20, 33), np.uint8))
    decoded, rate, channels, seconds = read_back(path)
    assert decoded.shape == (25, 22, 34)  # padded to even by the edge pixels
    assert abs(decoded[12, -1, -1] - 120) < 3
    assert channels == 2 and abs(seconds - 1.0) < 0.1


def test_side_by_side_places_the_pictures_apart_with_labels_and_header():
    left, right = np.full((16, 16), 50, np.uint8), np.full((32, 32), 200, np.uint8)
    plain = side_by_side([left, right])
    assert plain.shape == composed_shape(2) == (DISPLAY_SIZE, 2 * DISPLAY_SIZE + GAP)
    assert (plain[:, :DISPLAY_SIZE] == 50).all() and (plain[:, DISPLAY_SIZE : DISPLAY_SIZE + GAP] == 0).all()
    assert (plain[:, DISPLAY_SIZE + GAP :] == 200).all()
    labelled = side_by_side([left, right], 64, labels=("a", "b"), header="header")
    assert labelled.shape == composed_shape(2, 64, header=True) == (HEADER_HEIGHT + 64, 2 * 64 + GAP)
    assert labelled[:HEADER_HEIGHT].max() > 200  # the header's white text on black
    assert labelled[HEADER_HEIGHT:, :64].max() > 200 and labelled[-8:, :64].max() == 50  # the label at the top
