"""prepare's report: the image measure on the clips' frames against the synthesizer's geometry,
the velopharyngeal lines apart from the distance function's."""

import json
import shutil

import numpy as np
import pytest

pytest.importorskip("vocaltractlab_cython")
pytest.importorskip("skimage")

from rtmri.clips import ALL_SPLITS, FRAMES_FILE, ClipDataset  # noqa: E402
from rtmri.prepare import report  # noqa: E402


@pytest.fixture
def data(synth_clip_dataset, tmp_path):
    out = tmp_path / "data"
    shutil.copytree(synth_clip_dataset, out)
    return out


def test_report_gives_the_measure_against_the_geometry_with_the_velum_lines_apart(data):
    check = report.write_geometry_check(data, progress=False)
    speakers = {clip.speaker for split in ALL_SPLITS for clip in ClipDataset(data).split(split)}
    assert set(check["rmse_mm"]) == speakers | {"all"}
    overall = check["rmse_mm"]["all"]
    assert 0.0 < overall[report.TRACT] <= 2.0 and 0.0 <= overall[report.VELUM] <= 3.0
    assert 0.0 < overall[report.TRACT_AT_SOURCE] <= 2.0
    assert json.loads((data / report.MANIFEST_FILE).read_text())[report.GEOMETRY_CHECK] == check
    text = (data / report.REPORT_FILE).read_text()
    assert "| speaker | tract lines | velopharyngeal lines |" in text and f"| all | {overall[report.TRACT]:.2f} |" in text


def test_frames_that_do_not_show_the_geometry_are_caught(data):
    clean = report.geometry_check(data, progress=False)["rmse_mm"]["all"]
    for path in data.glob(f"clips/*/*/{FRAMES_FILE}"):
        frames = np.load(path)
        np.save(path, np.ascontiguousarray(frames[:, :, ::-1]))  # the head mirrored: nothing where the outlines are
    mirrored = report.geometry_check(data, progress=False)["rmse_mm"]["all"]
    assert mirrored[report.TRACT] > clean[report.TRACT] + 2.0


def test_frames_at_a_source_frames_instant_are_those_the_conversion_does_not_cross_fade():
    # 14 fps: source frames at 0, 71.4, 142.9 ... ms; 25 fps frames at 0, 40, 80 ... ms
    at = report.at_source_frames({"source_fps": 14.0, "start_s": 0.0}, 26)
    assert np.flatnonzero(at).tolist() == [0, 7, 9, 16, 18, 25]  # frame 7: 3.92 source periods, frame 1: 0.56
    # a clip later in the recording: its own start counts
    assert report.at_source_frames({"source_fps": 14.0, "start_s": 1.0 / 14.0}, 1)[0]
    assert report.at_source_frames({}, 3).all()  # the source rate unknown: every frame
