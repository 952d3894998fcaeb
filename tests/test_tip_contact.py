"""A tongue-tip closure is where the synthesizer's tongue touches the alveolar ridge or the
back of the upper incisors, also between the analysis grid's lines (where VocalTractLab
closes /t d n/ for most tracts, the gridlines alone read the tip open)."""

import numpy as np
import pytest

pytest.importorskip("vocaltractlab_cython")
pytest.importorskip("skimage")

import vocaltractlab_cython as vtl  # noqa: E402

from rtmri.articulation import regions as R  # noqa: E402
from rtmri.articulation import state as S  # noqa: E402
from rtmri.synth import grid as synth_grid  # noqa: E402
from rtmri.synth import speaker_file, tracts  # noqa: E402
from rtmri.synth import vtl as synth_vtl  # noqa: E402
from rtmri.synth.layout import TRACT_FILE  # noqa: E402
from rtmri.synth.outlines import tract_outlines  # noqa: E402
from rtmri.synth.speakers import CROP_CENTRE_MM, IMAGE_SIZE, make_speakers, with_tract  # noqa: E402

EVERY_NTH_STATE = 10
INCISOR_END = 18  # the upper outline's points up to the incisor's edge (then the upper lip)


@pytest.fixture(scope="module")
def child_says_anata(tmp_path_factory):
    """A child's own tract saying "a n a t a" (VocalTractLab's gestures, no audio): the drawn
    shapes of every tenth tract state and the speaker's grid."""
    scratch = tmp_path_factory.mktemp("tip")
    speaker = make_speakers(1, 0, 3, ("child",))[0]
    path = scratch / TRACT_FILE
    shape = tracts.anatomy_for(speaker.tract_size, speaker.palate_scale, speaker.pharynx_scale)
    speaker_file.write_speaker_file(shape, path, tracts.glottis_statics(speaker.tract_size, speaker.f0_hz))
    speaker = with_tract(speaker, str(path), tracts.landmarks_mm(str(path)), tracts.head_of(str(path)).points([CROP_CENTRE_MM])[0])
    tracts.use_tract(str(path))
    try:
        (scratch / "x.seg").write_text("".join(f"name = {p}; duration_s = 0.15;\n" for p in ["", "a", "n", "a", "t", "a", ""]))
        vtl.phoneme_file_to_gesture_file(str(scratch / "x.seg"), str(scratch / "x.ges"))
        vtl.gesture_file_to_motor_file(str(scratch / "x.ges"), str(scratch / "x.tract"))
        states, _ = synth_vtl.read_tract_sequence(scratch / "x.tract")
        drawn = [tract_outlines(state, scratch / "state.svg") for state in states[::EVERY_NTH_STATE]]
    finally:
        tracts.use_tract(None)
    return synth_grid.utterance_geometry(drawn, speaker), synth_grid.speaker_grid(speaker)


def _touching(shapes: dict, step: float = 0.05) -> np.ndarray:
    """(frames,) whether the tongue comes within a pixel of the palate, incisor or velum:
    points every ``step`` px along both outlines, every pair compared."""
    def points(polyline):
        return np.concatenate([a + (b - a) * t[:, None] for a, b in zip(polyline[:-1], polyline[1:])
                               for t in [np.arange(0, 1, step / max(np.linalg.norm(b - a), step))]])
    out = []
    for tongue, upper in zip(shapes["outline_tongue"], shapes["outline_upper"]):
        a, b = points(tongue), points(upper[:INCISOR_END])
        out.append(np.sqrt(((a[:, None] - b[None]) ** 2).sum(axis=2)).min() <= S.CONTACT_PX)
    return np.array(out)


def test_a_tongue_tip_touching_between_the_gridlines_is_a_closure_and_an_open_vowel_is_not(child_says_anata):
    shapes, grid = child_says_anata
    state = S.from_geometry(shapes, grid, (IMAGE_SIZE, IMAGE_SIZE))
    tip = state.closed[:, S.CLOSURE_PLACES.index(R.ALVEOLAR)] > S.CLOSED_AT
    on_the_lines = np.nanmin(state.gap_mm[:, grid.lines_of(R.ALVEOLAR)], axis=1) <= grid.mm_per_px
    touching = _touching(shapes)
    assert touching.sum() >= 6, "the /n/ and /t/ closures touch in several states"
    assert np.array_equal(tip, touching | on_the_lines)
    assert (touching & ~on_the_lines).any(), "a contact the alveolar gridlines read as open (2-4 mm on this tract)"
    assert not tip[:3].any() and not tip[-3:].any()  # /a/ at each end: open
    for place in (R.LIPS, R.VELAR):  # the other places keep the gridlines' rule
        closed = state.closed[:, S.CLOSURE_PLACES.index(place)] > S.CLOSED_AT
        assert np.array_equal(closed, np.nanmin(state.gap_mm[:, grid.lines_of(place)], axis=1) <= grid.mm_per_px)
