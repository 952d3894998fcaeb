"""The port lines of a speaker with its own tract (rtmri.synth.grid) stay clear of its uvula's
tip wherever its velum goes: a line grazing the tip reads its partial volume as air."""

import re
import tempfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("vocaltractlab_cython")
pytest.importorskip("skimage")

import vocaltractlab_cython as vtl  # noqa: E402

from rtmri.articulation import grid as analysis_grid  # noqa: E402
from rtmri.articulation import regions as R  # noqa: E402
from rtmri.synth import grid as synth_grid  # noqa: E402
from rtmri.synth import tracts  # noqa: E402
from rtmri.synth.geometry import HeadPose  # noqa: E402
from rtmri.synth.outlines import rest_outlines, tract_outlines  # noqa: E402
from rtmri.synth.speaker_file import load  # noqa: E402
from rtmri.synth.speakers import make_speakers  # noqa: E402

SEED = 3
TOLERANCE_MM = 0.05


@pytest.fixture(scope="module", params=("male", "female", "child"))
def own_tract(request, tmp_path_factory):
    """A speaker of the type with its own VocalTractLab speaker file (its anatomy and shapes)."""
    from rtmri.synth import speaker_file
    from rtmri.synth.layout import TRACT_FILE
    from rtmri.synth.speakers import CROP_CENTRE_MM, with_tract

    speaker = make_speakers(1, 0, SEED, (request.param,))[0]
    path = tmp_path_factory.mktemp(request.param) / TRACT_FILE
    shape = tracts.anatomy_for(speaker.tract_size, speaker.palate_scale, speaker.pharynx_scale)
    speaker_file.write_speaker_file(shape, path, tracts.glottis_statics(speaker.tract_size, speaker.f0_hz))
    return with_tract(speaker, str(path), tracts.landmarks_mm(str(path)), tracts.head_of(str(path)).points([CROP_CENTRE_MM])[0])


def _uvulas_of_every_shape(tract_file: str) -> dict[str, np.ndarray]:
    """The uvula (mm) VocalTractLab draws for every tract shape of the speaker file, its port as the shape opens it."""
    load(tract_file)
    text = Path(tract_file).read_text().split("</vocal_tract_model>")[0]
    out = {}
    with tempfile.TemporaryDirectory() as scratch:
        for name in sorted(set(re.findall(r'<shape name="([^"]*)"', text))):
            out[name] = tract_outlines(np.array(vtl.get_shape(name, "tract"), float), Path(scratch) / "s.svg")["uvula"]
    return out


def test_the_lowest_port_line_stands_clear_above_the_uvulas_tip_in_every_shape_of_the_tract(own_tract):
    grid = synth_grid.speaker_grid(own_tract)
    lowest = grid.lines_of(R.VELOPHARYNGEAL)[-1]
    direction = grid.direction[lowest]
    down = np.array([-direction[1], direction[0]])
    pose = HeadPose.of(own_tract)
    uvulas = _uvulas_of_every_shape(own_tract.tract_file)
    below = {name: float(((pose.to_image(u) - synth_grid.PIXEL_CENTRE_SHIFT - grid.inner[lowest]) @ down).max()) / pose.scale
             for name, u in uvulas.items()}
    highest = min(below, key=below.get)
    # /i/ lifts the tip (velum shape VS 0) about 1 mm above the rest state's: placed by the rest
    # tip alone, the lowest line passed 1 mm above it
    assert below["i"] < below["@"] - 0.5, f"/i/'s tip {below['i']:.2f} mm below the line, schwa's {below['@']:.2f}"
    assert below[highest] >= analysis_grid.PORT_TIP_MM - TOLERANCE_MM, \
        f"the lowest port line passes {below[highest]:.2f} mm above the uvula's tip of {highest!r}"


def test_raised_uvula_is_the_highest_any_shape_draws(own_tract):
    rest = rest_outlines(own_tract.tract_file)
    anchor = synth_grid.port_anchor(rest)
    raised = synth_grid.raised_uvula(own_tract.tract_file)
    tips = [u[:, 1].max() for u in _uvulas_of_every_shape(own_tract.tract_file).values()]
    assert raised[:, 1].max() == pytest.approx(min(tips), abs=0.05)
    assert raised[:, 1].max() < rest["uvula"][:, 1].max() - 0.5
    assert raised[:, 1].max() > anchor[1]  # below the wall top still: the lines keep room between

