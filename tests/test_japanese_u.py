"""Japanese /ɯ/ (JA_U): Japanese text speaks it, every speaker's tract has its shape (less
rounded and fronter than German rounded u), and VocalTractLab's gestures take that shape."""

from pathlib import Path

import numpy as np
import pytest

from rtmri.articulation import regions as R
from rtmri.synth.japanese import CV, JA_U, LONG_VOWEL, ROUNDED_U, parse_text
from rtmri.synth.japanese_timing import japanese_segments

TEXT = "tsukue no ue ni kuuki to fuku, yuki wa furu"


def _vowels(text: str) -> list[str]:
    return [mora.vowel for sentence in parse_text(text) for phrase in sentence for _, word in phrase for mora in word
            if mora.kind in (CV, LONG_VOWEL)]


def test_japanese_text_speaks_ja_u_not_rounded_u():
    vowels = _vowels(TEXT)
    assert vowels.count(JA_U) == 10 and ROUNDED_U not in vowels
    phones = [s.phone for s in japanese_segments(TEXT, 0.14, np.random.default_rng(0))]
    assert JA_U in phones and JA_U + R.LONG in phones  # "kuuki": the long one
    assert ROUNDED_U not in phones and ROUNDED_U + R.LONG not in phones
    assert R.place_of(JA_U) == R.VELAR and JA_U in R.JAPANESE_PHONES and ROUNDED_U not in R.JAPANESE_PHONES


def test_long_ja_u_is_one_long_vowel():
    kinds = [mora.kind for sentence in parse_text("kuuki") for phrase in sentence for _, word in phrase for mora in word]
    assert kinds == [CV, LONG_VOWEL, CV]


vtl = pytest.importorskip("vocaltractlab_cython")


@pytest.fixture(scope="module")
def jd3():
    from rtmri.synth import tracts

    tracts.use_tract(None)  # JD3 with the vowels it lacks
    return {name: vtl.get_shape(name, "tract") for name in (JA_U, ROUNDED_U)}


def _lips_and_tongue(state: np.ndarray, svg: Path) -> dict[str, float]:
    from rtmri.synth.outlines import vtl_outlines
    from rtmri.synth.tracts import UPPER_LIP_POINTS

    outlines = vtl_outlines(state, svg)
    tongue = outlines["tongue"]
    return {
        "lip_front_mm": float(outlines["upper"][UPPER_LIP_POINTS, 0].max()),  # protrusion
        "lip_area_cm2": float(vtl.tract_state_to_tube_state(state)["tube_area"][-1]),  # opening
        "tongue_top_x_mm": float(tongue[np.argmin(tongue[:, 1]), 0]),  # where the tongue body is highest
    }


def test_ja_u_is_less_rounded_and_fronter_than_rounded_u(jd3, tmp_path):
    ja_u, rounded = (_lips_and_tongue(jd3[name], tmp_path / "s.svg") for name in (JA_U, ROUNDED_U))
    assert ja_u["lip_front_mm"] <= rounded["lip_front_mm"] - 5.0  # lips not protruded
    assert ja_u["lip_area_cm2"] >= 2.0 * rounded["lip_area_cm2"]  # nor rounded to a small opening
    assert ja_u["tongue_top_x_mm"] >= rounded["tongue_top_x_mm"] + 3.0  # tongue body further forward


def test_a_built_tract_gets_ja_u_from_its_own_rounded_u(tmp_path):
    from rtmri.synth import speaker_file

    path = tmp_path / "tract.speaker"
    path.write_text(Path(speaker_file.REFERENCE_FILE).read_text())
    made = speaker_file.add_own_vowels(path, 0.8)
    shapes = speaker_file.shapes_of(path.read_text())
    assert np.allclose(shapes[JA_U], made[JA_U], atol=1e-4)
    rounded = shapes[ROUNDED_U]
    shift = shapes[JA_U] - rounded
    assert shift[speaker_file.T["TCX"]] == pytest.approx(0.8 * speaker_file.JA_U_SHIFT_CM["TCX"], abs=1e-3)
    assert shapes[JA_U][speaker_file.T["LP"]] < rounded[speaker_file.T["LP"]]


def test_gestures_of_ja_u_take_its_shape_and_rounded_u_keeps_its_own(jd3, tmp_path):
    from rtmri.synth import vtl as synth_vtl
    from rtmri.synth.segments import Segment

    segments = [Segment(p, 0.12) for p in ("", "k", JA_U, "t", ROUNDED_U, "s", JA_U + R.LONG, "")]
    synth_vtl.write_segment_file(segments, tmp_path / "x.seg")
    assert JA_U not in (tmp_path / "x.seg").read_text()  # VocalTractLab's rules get its stand-in
    vtl.phoneme_file_to_gesture_file(str(tmp_path / "x.seg"), str(tmp_path / "x.ges"))
    synth_vtl.with_own_vowels(tmp_path / "x.ges", segments)
    tier = (tmp_path / "x.ges").read_text().split(synth_vtl.VOWEL_TIER)[1].split("</gesture_sequence>")[0]
    assert [line.split('value="')[1].split('"')[0] for line in tier.splitlines() if "<gesture " in line][:3] == [JA_U, ROUNDED_U, JA_U]


def test_gestures_that_do_not_match_the_segments_are_refused(tmp_path):
    from rtmri.synth import vtl as synth_vtl
    from rtmri.synth.segments import Segment

    gestures = tmp_path / "x.ges"
    gestures.write_text(f'<gestural_score>\n  {synth_vtl.VOWEL_TIER} unit="">\n    <gesture value="u" duration_s="0.1" />\n'
                        "  </gesture_sequence>\n</gestural_score>\n")
    with pytest.raises(ValueError, match="1 /u/ vowel gestures for 2 segments"):
        synth_vtl.with_own_vowels(gestures, [Segment(JA_U, 0.1), Segment(ROUNDED_U, 0.1)])
