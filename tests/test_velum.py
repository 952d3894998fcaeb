"""The velum is drawn as a body, its port open for nasals and closed for oral sounds as
VocalTractLab's state says (its port area VO)."""

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("vocaltractlab_cython")
pytest.importorskip("skimage")

import vocaltractlab_cython as vtl  # noqa: E402

from rtmri.articulation import regions as R  # noqa: E402
from rtmri.articulation.measure import measure  # noqa: E402
from rtmri.articulation.outlines import true_gaps  # noqa: E402
from rtmri.synth import anatomy, tracts  # noqa: E402
from rtmri.synth import grid as synth_grid  # noqa: E402
from rtmri.synth import vtl as synth_vtl  # noqa: E402
from rtmri.synth.outlines import VELUM_END, rest_outlines, tract_outlines  # noqa: E402
from rtmri.synth.render import FrameRenderer  # noqa: E402
from rtmri.synth.speaker_file import T  # noqa: E402
from rtmri.synth.speakers import IMAGE_SIZE, make_speakers  # noqa: E402

OPEN_MM, CLOSED_MM = 3.0, 1.0


@pytest.fixture(scope="module")
def nasal_utterance(tmp_path_factory):
    """JD3's tract states for "a m a n i" (VocalTractLab's gestures, no audio), the speaker, scratch."""
    scratch = tmp_path_factory.mktemp("velum")
    tracts.use_tract(None)
    (scratch / "x.seg").write_text("".join(f"name = {p}; duration_s = 0.15;\n" for p in ["", "a", "m", "a", "n", "i", ""]))
    vtl.phoneme_file_to_gesture_file(str(scratch / "x.seg"), str(scratch / "x.ges"))
    vtl.gesture_file_to_motor_file(str(scratch / "x.ges"), str(scratch / "x.tract"))
    states, _ = synth_vtl.read_tract_sequence(scratch / "x.tract")
    return states, make_speakers(1, 0, 0)[0], scratch


def _port_gaps(states, speaker, scratch: Path):
    """(true, image) port gaps in mm per state: from the drawn shapes and from the rendered frame."""
    grid = synth_grid.speaker_grid(speaker)
    port = grid.lines_of(R.VELOPHARYNGEAL)
    renderer = FrameRenderer(speaker, rest_outlines(None), tracts.head_of(None))
    truth, image = [], []
    for state in states:
        outlines = tract_outlines(state, scratch / "state.svg")
        shapes = synth_grid.utterance_geometry([outlines], speaker)
        truth.append(true_gaps(shapes, grid, (IMAGE_SIZE, IMAGE_SIZE))[0, port] * grid.mm_per_px)
        frame = renderer.render(outlines, np.random.default_rng(0))
        image.append(measure(frame, grid).distance_mm[0, port])
    return np.array(truth), np.array(image)


def test_port_opens_for_a_nasal_and_closes_for_an_oral_vowel(nasal_utterance):
    states, speaker, scratch = nasal_utterance
    opening = states[:, T["VO"]]
    oral_vowel = states[int(np.argmax(opening <= 0.0)) + 10]  # the first /a/, port shut
    nasal = states[int(np.argmax(opening))]  # the middle of /m/
    assert oral_vowel[T["VO"]] <= 0.0 < 0.4 < nasal[T["VO"]]
    truth, image = _port_gaps([oral_vowel, nasal], speaker, scratch)
    assert np.all(truth[0] <= CLOSED_MM), f"oral /a/: port drawn {truth[0]} mm open"
    assert np.all(truth[1] >= OPEN_MM), f"/m/: port drawn only {truth[1]} mm open"
    # and the picture shows it: the image measure reads the port open for /m/ only
    assert image[1].mean() >= OPEN_MM > image[0].mean() + 1.5


def _segments_cross(polygon: np.ndarray) -> list[tuple[int, int]]:
    """Pairs of non-adjacent edges of the closed polygon that intersect."""
    a = np.asarray(polygon, float)
    b = np.roll(a, -1, axis=0)
    n = len(a)
    cross = lambda o, p, q: (p[..., 0] - o[..., 0]) * (q[..., 1] - o[..., 1]) - (p[..., 1] - o[..., 1]) * (q[..., 0] - o[..., 0])  # noqa: E731
    found = []
    for i in range(n):
        j = np.arange(i + 2, n)
        if i == 0:
            j = j[j != n - 1]
        d1, d2 = cross(a[j], b[j], a[i]), cross(a[j], b[j], b[i])
        d3, d4 = cross(a[i], b[i], a[j]), cross(a[i], b[i], b[j])
        hit = (d1 * d2 < 0) & (d3 * d4 < 0)
        found += [(i, int(k)) for k in j[hit]]
    return found


def test_velum_is_a_body_that_does_not_cross_itself(nasal_utterance):
    states, _, scratch = nasal_utterance
    head = anatomy.Head.reference()
    tracts.use_tract(None)
    vowels = [vtl.get_shape(v, "tract") for v in ("a", "i", "u", "e", "o", "@")]
    for state in list(states[::15]) + vowels:
        outlines = tract_outlines(state, scratch / "state.svg")
        body = anatomy.velum(outlines, head)
        assert not _segments_cross(body), f"velum polygon crosses itself at VO={state[T['VO']]:.2f}"
        # a body of soft tissue: its nasal surface lies about VELUM_THICKNESS_MM above the oral one
        oral = outlines["upper"][:VELUM_END]
        middle = (oral[len(oral) // 2] + oral[len(oral) // 2 - 1]) / 2
        thickness = np.min(np.linalg.norm(body - middle, axis=1)[len(outlines["uvula"]) + len(oral) + 1:])
        assert 7.0 <= thickness <= 11.0, f"velum {thickness:.1f} mm thick"
