"""``rtmri contact-sheet``: tiles, their order, and the phone labels from the meta json."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from rtmri.cli import main as rtmri
from rtmri.video import contact_sheet as sheet
from rtmri.synth.media import write_video

FPS = 10
N_FRAMES = 10
SIZE = 64


@pytest.fixture
def recording(tmp_path):
    """A corpus-like video whose frame k is uniformly 20 k + 10, spoken /a/ for its first 0.25 s."""
    frames = np.stack([np.full((SIZE, SIZE), 20 * k + 10, np.uint8) for k in range(N_FRAMES)])
    video = tmp_path / "spk01" / "video" / "utt0001.mp4"
    video.parent.mkdir(parents=True)
    write_video(video, frames, FPS)
    meta = tmp_path / "spk01" / "meta" / "utt0001.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"phones": [{"phone": "a", "start": 0.0, "end": 0.25}], "crop": [8, 8, 48, 48]}))
    return video


def _slots(png, columns: int, rows: int):
    image = np.asarray(Image.open(png).convert("RGB")).astype(int)
    cell_w, cell_h = SIZE + sheet.GAP, SIZE + sheet.LABEL_HEIGHT + sheet.GAP
    assert image.shape == (rows * cell_h + sheet.GAP, columns * cell_w + sheet.GAP, 3)
    for row in range(rows):
        for column in range(columns):
            x, y = sheet.GAP + column * cell_w, sheet.GAP + row * cell_h
            yield image[y : y + SIZE, x : x + SIZE], image[y + SIZE : y + SIZE + sheet.LABEL_HEIGHT, x : x + SIZE]


def _is_phone_colour(label: np.ndarray) -> bool:
    return bool(np.any(np.all(np.abs(label - np.array(sheet.PHONE_COLOUR)) < 40, axis=-1)))


def test_sheet_has_one_tile_per_chosen_frame_in_order(recording, tmp_path, capsys):
    png = tmp_path / "sheet.png"
    assert rtmri(["contact-sheet", str(recording), "-o", str(png), "--every", "2", "--columns", "4"]) == 0
    assert "5 of 10 frames" in capsys.readouterr().out
    slots = list(_slots(png, columns=4, rows=2))
    tiles = [(tile, label) for tile, label in slots if np.abs(tile - np.array(sheet.BACKGROUND)).max() > 0]
    assert len(tiles) == 5
    means = [tile.mean() for tile, _ in tiles]
    assert means == pytest.approx([20 * k + 10 for k in (0, 2, 4, 6, 8)], abs=3)
    # frames 0 and 2 (0.0 s, 0.2 s) are inside /a/; frames 4.. are after it
    assert [_is_phone_colour(label) for _, label in tiles] == [True, True, False, False, False]


def test_max_tiles_spreads_the_tiles_over_the_video(recording, tmp_path):
    png = tmp_path / "sheet.png"
    assert rtmri(["contact-sheet", str(recording), "-o", str(png), "--max-tiles", "3", "--columns", "3"]) == 0
    assert [tile.mean() for tile, _ in _slots(png, columns=3, rows=1)] == pytest.approx([10, 90, 170], abs=3)


def test_sheet_without_meta_has_no_phones(recording, tmp_path):
    lone = tmp_path / "lone.mp4"
    lone.write_bytes(recording.read_bytes())
    png = tmp_path / "sheet.png"
    assert rtmri(["contact-sheet", str(lone), "-o", str(png), "--columns", "10"]) == 0
    assert not any(_is_phone_colour(label) for _, label in _slots(png, columns=10, rows=1))


@pytest.mark.parametrize("make_args", [
    lambda video, tmp: [str(tmp / "missing.mp4")],
    lambda video, tmp: [str(video), "--columns", "0"],
    lambda video, tmp: [str(video), "--meta", str(tmp / "bad.json")],
])
def test_bad_input_is_an_error_not_a_traceback(recording, tmp_path, capsys, make_args):
    (tmp_path / "bad.json").write_text("{not json")
    assert rtmri(["contact-sheet", *make_args(recording, tmp_path), "-o", str(tmp_path / "x.png")]) == 2
    assert "error" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
