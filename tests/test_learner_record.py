"""The benchmark learner's frame rates: a stream younger than the window is measured from its
first frame, not counted slow for the time before it began."""

import pytest

from rtmri.streamer.benchmarks.learner_client import LearnerRecord


def record_of(first: float, last: float, fps: float = 25.0) -> LearnerRecord:
    record = LearnerRecord()
    n = int(round((last - first) * fps)) + 1
    record.frames = [(first + k / fps, "w0", k, 0.0) for k in range(n)]
    return record


def test_a_stream_younger_than_the_window_is_measured_from_its_first_frame():
    record = record_of(first=10.5, last=11.99)  # began 0.5 s into a 2-s window, at 25 fps since
    assert record.fps(10.0, 12.0) == pytest.approx(19.0)  # the plain window counts the 0.5 s before it as slowness
    assert record.fps_streaming(10.0, 12.0) == pytest.approx(25.0, abs=0.5)


def test_a_stream_older_than_the_window_and_one_that_stalled():
    running = record_of(first=5.0, last=11.99)
    assert running.fps_streaming(10.0, 12.0) == running.fps(10.0, 12.0) == pytest.approx(25.0)
    stalled = record_of(first=5.0, last=9.0)  # nothing after 9 s
    assert stalled.fps_streaming(10.0, 12.0) == 0.0
    assert LearnerRecord().fps_streaming(10.0, 12.0) == 0.0  # no stream at all
    half = record_of(first=10.0, last=11.99, fps=12.5)
    assert half.fps_streaming(10.0, 12.0) == pytest.approx(12.5)
