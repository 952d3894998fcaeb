"""A synthetic speaker of its own tract measures its gaps against its own palate and incisors
(the analysis grid's fixed walls and reach from its own rest tract), JD3 keeps the canonical
ones, and a corpus's grids can be rewritten without synthesizing it again."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from rtmri.articulation import grid as analysis_grid
from rtmri.articulation import regions as R
from rtmri.synth import grid as synth_grid
from rtmri.synth.layout import GRID_FILE, SPEAKER_FILE, TRACT_FILE

SEED = 3  # a child whose every shape is drawn cleanly (no tongue grazing a gridline's start)
SHAPES = ("a", "i", "u", "e", "o", "@", "tt-alveolar-fricative(a)", "tt-alveolar-closure(i)", "ll-labial-closure(a)",
          "tb-palatal-fricative(i)")
FRONT = (R.PALATAL, R.ALVEOLAR, R.LIPS)


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    """A child speaker with its own VocalTractLab speaker file (its anatomy only: the shapes are
    not repaired, which is all the grid needs and takes a fraction of a second)."""
    from rtmri.synth import speaker_file, tracts
    from rtmri.synth.speakers import CROP_CENTRE_MM, make_speakers, with_tract

    speaker = make_speakers(1, 0, SEED, ("child",))[0]
    path = tmp_path_factory.mktemp("child") / "spk01" / TRACT_FILE
    path.parent.mkdir()
    anatomy = tracts.anatomy_for(speaker.tract_size, speaker.palate_scale, speaker.pharynx_scale)
    speaker_file.write_speaker_file(anatomy, path, tracts.glottis_statics(speaker.tract_size, speaker.f0_hz))
    return with_tract(speaker, str(path), tracts.landmarks_mm(str(path)), tracts.head_of(str(path)).points([CROP_CENTRE_MM])[0])


def _bony_outlines_px(speaker) -> list[np.ndarray]:
    """The speaker's own rigid palate and incisor (rest outline) and its bone shapes, in its video's pixels."""
    from rtmri.synth.geometry import HeadPose
    from rtmri.synth.outlines import rest_outlines
    from rtmri.synth.tracts import head_of

    pose = HeadPose.of(speaker)
    upper = rest_outlines(speaker.tract_file)["upper"][synth_grid.PALATE_UPPER.start:synth_grid.RIGID_UPPER.stop]
    bones = [v[0] for k, v in synth_grid.static_shapes_mm(head_of(speaker.tract_file)).items() if k.startswith("static_bone")]
    return [pose.to_image(p) - synth_grid.PIXEL_CENTRE_SHIFT for p in (upper, *bones)]


def _distance_to(outlines: list[np.ndarray], point: np.ndarray) -> float:
    from rtmri.articulation.outlines import distances_to_polyline

    return min(float(distances_to_polyline(point[None], np.concatenate([o, o[:1]]))[0]) for o in outlines)


def _wall_points(grid) -> tuple[np.ndarray, np.ndarray]:
    lines = np.flatnonzero(np.isfinite(grid.wall))
    return lines, grid.inner[lines] + grid.wall[lines, None] * grid.direction[lines]


def test_a_warped_speakers_walls_lie_on_its_own_palate_and_incisors_not_jd3s(child):
    grid = synth_grid.speaker_grid(child)
    for region in (R.PALATAL, R.ALVEOLAR):
        assert np.isfinite(grid.wall[grid.lines_of(region)]).all(), f"{region} lines without a fixed wall"
    bony = _bony_outlines_px(child)
    lines, points = _wall_points(grid)
    own = np.array([_distance_to(bony, p) for p in points])
    # on the bone (a line meeting the soft palate's front: its rest position and the tolerance past it)
    assert own.max() <= synth_grid.PALATE_TOLERANCE_MM * child.head_scale + 0.35, dict(zip(lines.tolist(), own.round(2)))
    # not JD3's walls carried onto this speaker by its landmarks: those miss its palate by up to
    # a couple of pixels and leave out the incisor a child's lip lines cross
    jd3 = analysis_grid.grid_from_landmarks(synth_grid.speaker_landmarks(child), synth_grid.PIXEL_MM, fixed_walls=True)
    _, jd3_points = _wall_points(jd3)
    assert max(_distance_to(bony, p) for p in jd3_points) > own.max() + 1.0
    lips = grid.lines_of(R.LIPS)
    assert np.isfinite(grid.wall[lips]).any() and not np.isfinite(jd3.wall[lips]).any()
    # the wall ends the reach's window, not beyond it
    assert (grid.wall[lines] <= grid.reach[lines]).all()


def test_the_image_measure_of_a_warped_speaker_follows_its_true_gaps_at_the_front(child):
    import vocaltractlab_cython as vtl

    from rtmri.articulation.measure import measure
    from rtmri.articulation.outlines import true_gaps
    from rtmri.synth import speaker_file, tracts
    from rtmri.synth.outlines import rest_outlines, tract_outlines
    from rtmri.synth.render import FrameRenderer

    speaker_file.load(child.tract_file, force=True)
    with tempfile.TemporaryDirectory() as scratch:
        drawn = [tract_outlines(vtl.get_shape(name, "tract"), Path(scratch) / "state.svg") for name in SHAPES]
    renderer = FrameRenderer(child, rest_outlines(child.tract_file), tracts.head_of(child.tract_file))
    rng = np.random.default_rng(SEED)
    frames = np.stack([renderer.render(outlines, rng) for outlines in drawn])
    geometry = synth_grid.utterance_geometry(drawn, child)
    grid = synth_grid.speaker_grid(child)
    front = np.concatenate([grid.lines_of(region) for region in FRONT])

    def front_rmse_px(g) -> float:
        error = (measure(frames, g).distance_mm / g.mm_per_px - true_gaps(geometry, g, frames.shape[1:]))[:, front]
        return float(np.sqrt(np.nanmean(error**2)))

    assert front_rmse_px(grid) < 2.0
    # without the walls the image reads through the dark bone into the air beyond
    assert front_rmse_px(dataclasses.replace(grid, wall=np.full(len(grid), np.nan))) > 2.0


def _old_jd3_grid_file(speaker) -> str:
    """grid.json as the synthesizer wrote it for JD3 before speakers had their own windows."""
    marks = synth_grid.speaker_landmarks(speaker)
    grid = analysis_grid.grid_from_landmarks(marks, synth_grid.PIXEL_MM, f"synthesizer geometry of {speaker.id}", fixed_walls=True)
    return json.dumps({"pixel_mm": synth_grid.PIXEL_MM, "landmarks": marks, "grid": grid.to_json()}, indent=1) + "\n"


def _corpus_of(tmp_path: Path, speakers) -> Path:
    """A corpus folder with what --grids-only reads: speaker.json and the tract file."""
    for speaker in speakers:
        folder = tmp_path / "corpus" / speaker.id
        folder.mkdir(parents=True)
        (folder / SPEAKER_FILE).write_text(json.dumps(speaker.to_json(), indent=1))
        if speaker.tract_file:
            shutil.copy(speaker.tract_file, folder / Path(speaker.tract_file).name)
    return tmp_path / "corpus"


def test_jd3_grid_file_is_unchanged_and_grids_only_rewrites_a_corpus(child, tmp_path):
    from rtmri.cli import main as rtmri
    from rtmri.prepare.articulation import source_grid
    from rtmri.synth.speakers import make_speakers

    jd3 = make_speakers(2, 1, 9)  # reference-male: the speakers of the corpora made before types
    corpus = _corpus_of(tmp_path, [*jd3, dataclasses.replace(child, id="spk03")])
    old_warped = {"pixel_mm": 1.0, "landmarks": synth_grid.speaker_landmarks(child),
                  "grid": analysis_grid.grid_from_landmarks(synth_grid.speaker_landmarks(child), 1.0).to_json()}
    (corpus / "spk03" / GRID_FILE).write_text(json.dumps(old_warped))  # written before its own windows
    assert rtmri(["synth", str(corpus), "--grids-only"]) == 0

    for speaker in jd3:
        assert (corpus / speaker.id / GRID_FILE).read_text() == _old_jd3_grid_file(speaker)
        grid = source_grid(corpus / speaker.id, speaker.id, None, "test")
        assert np.allclose(grid.wall, analysis_grid.canonical_grid().wall * speaker.head_scale, equal_nan=True)
    rewritten = json.loads((corpus / "spk03" / GRID_FILE).read_text())
    assert analysis_grid.OWN_WINDOWS_KEY in rewritten
    own = synth_grid.speaker_grid(child)
    prepared = source_grid(corpus / "spk03", "spk03", None, "test")  # what prepare carries into DATA/grids
    assert np.allclose(prepared.inner, own.inner, atol=1e-3)
    assert np.allclose(prepared.reach, own.reach, atol=1e-3)
    assert np.allclose(prepared.wall, own.wall, atol=1e-3, equal_nan=True)


def test_own_windows_of_other_lines_are_refused(child, tmp_path):
    from rtmri.prepare.articulation import source_grid

    content = synth_grid.grid_content(child)
    content["grid"]["lines"] = content["grid"]["lines"][1:]  # a grid of another definition
    folder = tmp_path / "spk01"
    folder.mkdir()
    (folder / GRID_FILE).write_text(json.dumps(content))
    with pytest.raises(analysis_grid.GridError, match="--grids-only"):
        source_grid(folder, "spk01", None, "test")


def test_grids_only_refuses_a_folder_without_speakers(tmp_path, capsys):
    from rtmri.cli import main as rtmri

    assert rtmri(["synth", str(tmp_path), "--grids-only"]) == 2
    assert "not an rtmri synth corpus" in capsys.readouterr().err
