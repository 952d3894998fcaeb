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


PORT_SEED = 3
NASAL_PORT_MM = 5.0  # the drawn port of VocalTractLab's nasals (VO 0.5 cm2)
BEHIND_WALL_MM = 4.0  # the port lines begin at least this far behind the posterior wall (JD3: 8.7)
VELUM_SEEN_MM = 3.5  # ... and cross this much of the velum's body (3 pixels of the 1.2 mm clips), not its tip


def test_port_lines_are_placed_against_jd3s_wall_top():
    from rtmri.articulation import grid as analysis_grid

    jd3 = rest_outlines(None)
    assert np.allclose(synth_grid.port_anchor(jd3), analysis_grid.CANONICAL_PORT_ANCHOR_MM, atol=0.01)
    assert np.allclose(synth_grid.port_shift_mm(analysis_grid.CANONICAL_LANDMARKS_MM, jd3), 0.0, atol=0.01)
    # landmarks that carry JD3's wall top 8 mm forward and 2 mm up (a woman's tract): moved back onto it
    moved = analysis_grid.CANONICAL_LANDMARKS_MM + np.array([8.0, -2.0])
    assert np.allclose(synth_grid.port_shift_mm(moved, jd3), [-8.0, 2.0], atol=0.01)


@pytest.fixture(scope="module", params=("female", "child", "male"))
def own_tract(request, tmp_path_factory):
    """A speaker of the type with its own VocalTractLab speaker file (its anatomy only). The man's
    landmarks carry JD3's wall top 2.2 mm from his own (a woman's 7-8 mm, a child's 11-15 mm)."""
    from rtmri.synth import speaker_file
    from rtmri.synth.layout import TRACT_FILE
    from rtmri.synth.speakers import CROP_CENTRE_MM, with_tract

    speaker = make_speakers(1, 0, PORT_SEED, (request.param,))[0]
    path = tmp_path_factory.mktemp(request.param) / TRACT_FILE
    shape = tracts.anatomy_for(speaker.tract_size, speaker.palate_scale, speaker.pharynx_scale)
    speaker_file.write_speaker_file(shape, path, tracts.glottis_statics(speaker.tract_size, speaker.f0_hz))
    return with_tract(speaker, str(path), tracts.landmarks_mm(str(path)), tracts.head_of(str(path)).points([CROP_CENTRE_MM])[0])


def test_port_lines_of_every_own_tract_begin_behind_its_own_wall_top_as_jd3s_do(own_tract):
    from rtmri.articulation import grid as analysis_grid
    from rtmri.synth.geometry import HeadPose

    grid, canonical = synth_grid.speaker_grid(own_tract), analysis_grid.canonical_grid()
    port = grid.lines_of(R.VELOPHARYNGEAL)
    wall_top = HeadPose.of(own_tract).to_image(synth_grid.port_anchor(rest_outlines(own_tract.tract_file))[None])[0]
    wall_top = wall_top - synth_grid.PIXEL_CENTRE_SHIFT
    behind = ((wall_top - grid.inner[port]) * grid.direction[port]).sum(axis=1) / (grid.length / canonical.length)[port]
    jd3 = ((np.array(analysis_grid.CANONICAL_PORT_ANCHOR_MM) - canonical.inner[port]) * canonical.direction[port]).sum(axis=1)
    # in JD3's mm along each line: where the landmarks alone put a man's lines this is off by 2 mm
    assert np.allclose(behind, jd3, atol=0.05), f"port lines begin {behind.round(2)} mm behind the wall top, JD3's {jd3.round(2)}"


def test_port_lines_of_every_own_tract_cross_the_port_behind_the_velum(own_tract):
    from rtmri.articulation.outlines import crossings, true_spans
    from rtmri.synth.outlines import with_port

    speaker = own_tract
    grid = synth_grid.speaker_grid(speaker)
    port = grid.lines_of(R.VELOPHARYNGEAL)
    rest = rest_outlines(speaker.tract_file)
    renderer = FrameRenderer(speaker, rest, tracts.head_of(speaker.tract_file))
    drawn = [with_port(rest, 0.0), with_port(rest, NASAL_PORT_MM)]  # the port closed, a nasal's
    shapes = synth_grid.utterance_geometry(drawn, speaker)
    gaps, starts = (v[:, port] * grid.mm_per_px for v in true_spans(shapes, grid, (IMAGE_SIZE, IMAGE_SIZE)))
    open_mm = NASAL_PORT_MM * speaker.head_scale  # the drawn port in the image's mm
    # open: every line begins in the tissue behind the posterior wall and its gap begins at the
    # wall; the narrowest is the drawn port between the wall and the velum's back
    assert starts[1].min() >= BEHIND_WALL_MM * speaker.head_scale, f"port lines begin only {starts[1]} mm behind the wall"
    assert abs(gaps[1].min() - open_mm) <= 1.0, f"port {open_mm:.1f} mm drawn, {gaps[1]} on the lines"
    # closed: the velum's back against the wall closes the port; no line reads the oral airway
    # in front of the velum (the wall slants away below the port: the lowest lines open a little)
    assert gaps[0].min() <= CLOSED_MM and gaps[0].max() < open_mm, f"port closed, lines read {gaps[0]} mm"
    for frame in range(len(drawn)):
        cuts = crossings(shapes["shape_velum"][frame], grid.inner[port], grid.direction[port])
        through = np.array([np.sum(c[1::2] - c[0::2]) for c in cuts]) * grid.mm_per_px
        assert through.min() >= VELUM_SEEN_MM * speaker.head_scale, f"port lines cross {through.round(1)} mm of the velum"
    # and the picture shows it on these lines
    image = measure(np.stack([renderer.render(o, np.random.default_rng(0)) for o in drawn]), grid).distance_mm[:, port]
    assert np.sqrt(np.mean((image - gaps) ** 2)) <= 1.5, f"image measure {image.round(1)}, drawn {gaps.round(1)}"


def test_prepare_takes_the_moved_port_lines_and_refuses_a_grid_file_written_before_them(own_tract, tmp_path):
    import json

    from rtmri.articulation import grid as analysis_grid
    from rtmri.prepare.articulation import source_grid
    from rtmri.synth.layout import GRID_FILE

    content = synth_grid.grid_content(own_tract)
    (tmp_path / GRID_FILE).write_text(json.dumps(content))
    prepared, own = source_grid(tmp_path, own_tract.id, None, "test"), synth_grid.speaker_grid(own_tract)
    assert np.allclose(prepared.inner, own.inner, atol=1e-3) and np.allclose(prepared.reach, own.reach, atol=1e-3)
    landmarks = analysis_grid.grid_from_landmarks(content["landmarks"], 1.0)
    port = own.lines_of(R.VELOPHARYNGEAL)
    assert np.linalg.norm(own.inner[port] - landmarks.inner[port], axis=1).min() > 1.0  # moved: not the landmarks'
    for earlier in ("placed on the speaker's own rest pharynx wall", None):  # an earlier placement, none
        content[analysis_grid.OWN_PORT_KEY] = earlier
        (tmp_path / GRID_FILE).write_text(json.dumps({k: v for k, v in content.items() if v is not None}))
        with pytest.raises(analysis_grid.GridError, match="--grids-only"):
            source_grid(tmp_path, own_tract.id, None, "test")
