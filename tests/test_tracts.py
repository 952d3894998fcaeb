"""A vocal tract per synthetic speaker (issue 16): geometry, formants, pictures and ground
truth that follow each tract, and named rejections of tracts VocalTractLab cannot make.

The two speaker files (an adult male and a child-like tract) are built once per session
(about 6 s each); per test only a few short vowels are synthesized."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("vocaltractlab_cython")
pytest.importorskip("parselmouth")

from rtmri.synth import formants, tracts
from rtmri.synth.corpus import build_tracts
from rtmri.synth.errors import SpeakerRejected, UtteranceFailed
from rtmri.synth.layout import TRACT_FILE, TRACT_INFO
from rtmri.synth.speakers import build_speaker_tract, make_speakers

SEED = 3
CLEAR_F2_MARGIN_HZ = 300.0  # F2 of /i/: child-like above adult male by at least this


@pytest.fixture(scope="session")
def two_speakers(tmp_path_factory):
    """An adult male and a child-like speaker of one corpus seed, with their speaker files."""
    folder = tmp_path_factory.mktemp("tracts")
    male, child = make_speakers(2, 0, SEED, types=("male", "child"))
    return build_speaker_tract(male, folder / male.id), build_speaker_tract(child, folder / child.id)


def _rest_upper(tract_file):
    from rtmri.synth.outlines import rest_outlines

    return rest_outlines(tract_file)["upper"]


def test_types_differ_in_tract_length_and_palate(two_speakers):
    male, child = two_speakers
    assert male.tract_type == "male" and child.tract_type == "child"
    length = {s.tract_type: json.loads((Path(s.tract_file).parent / TRACT_INFO).read_text())["neutral_length_cm"]
              for s in two_speakers}
    assert length["child"] < length["male"] - 2.0  # cm, glottis to lips
    # Hard palate: from the velum junction to the alveolar ridge along VocalTractLab's upper outline.
    span = {s.tract_type: np.ptp(_rest_upper(s.tract_file)[4:11, 0]) for s in two_speakers}
    assert span["child"] < span["male"] - 5.0  # mm
    assert not np.allclose(male.landmarks, child.landmarks, atol=2.0)


def test_child_formants_above_adult_male(two_speakers):
    measured = {s.tract_type: formants.speaker_formants(s.tract_file, "ia") for s in two_speakers}
    assert measured["child"]["i"][1] > measured["male"]["i"][1] + CLEAR_F2_MARGIN_HZ
    assert measured["child"]["a"][0] > measured["male"]["a"][0]  # F1 of /a/ rises too
    jd3 = formants.speaker_formants(None, "i")
    assert abs(jd3["i"][1] - measured["male"]["i"][1]) < 400  # the male stays a male


def test_speaker_file_is_cached(two_speakers, tmp_path):
    male = two_speakers[0]
    folder = Path(male.tract_file).parent
    before = (folder / TRACT_FILE).stat().st_mtime_ns
    rebuilt = build_speaker_tract(replace(male, tract_file=None, landmarks_mm=None), folder)
    assert (folder / TRACT_FILE).stat().st_mtime_ns == before
    assert rebuilt.landmarks_mm == male.landmarks_mm


def _say_vowels(speaker, tmp_path):
    """Synthesize and render /a i/ for the speaker through the corpus job; its geometry file."""
    from rtmri.synth.inventory import PAUSE
    from rtmri.synth.job import synthesize_job
    from rtmri.synth.plan import Job
    from rtmri.synth.segments import Segment, Utterance

    utterance = Utterance("utt0001", "train", "a i", (Segment(PAUSE, 0.25), Segment("a", 0.2), Segment("i", 0.2), Segment(PAUSE, 0.2)))
    result = synthesize_job(Job(speaker, utterance, str(tmp_path), SEED))
    assert result.error is None
    from rtmri.articulation import outlines as geometry_file

    return geometry_file.load(tmp_path / speaker.id / "geometry" / "utt0001.npz")


def _distance_to_line(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    a, b = line[:-1], line[1:]
    ab = b - a
    out = []
    for p in points:
        t = np.clip(((p - a) * ab).sum(axis=1) / np.maximum((ab**2).sum(axis=1), 1e-12), 0, 1)
        out.append(np.min(np.linalg.norm(a + t[:, None] * ab - p, axis=1)))
    return np.array(out)


def test_ground_truth_follows_the_speakers_tract(two_speakers, tmp_path):
    from rtmri.synth import anatomy
    from rtmri.synth.geometry import HeadPose
    from rtmri.synth.grid import PIXEL_CENTRE_SHIFT, speaker_landmarks

    child = two_speakers[1]
    arrays = _say_vowels(child, tmp_path)
    pose = HeadPose.of(child)
    upper = arrays["outline_upper"][0]
    # The outlines are the child's own tract, not JD3's, in the video's pixels.
    expected = pose.to_image(_rest_upper(child.tract_file)) - PIXEL_CENTRE_SHIFT
    jd3 = pose.to_image(_rest_upper(None)) - PIXEL_CENTRE_SHIFT
    hard_palate = slice(8, 12)  # rigid: the same in every frame
    assert np.abs(upper[hard_palate] - expected[hard_palate]).max() < 0.05
    assert np.abs(upper[hard_palate] - jd3[hard_palate]).max() > 5.0
    # The palate bone drawn (and written as a wall) lies on the child's own palate as JD3's
    # lies on JD3's (a millimetre or two of soft tissue between), not where JD3's would be.
    gap = lambda bone, outline: np.sort(_distance_to_line(bone, outline))[:4].max()
    jd3_bone = pose.to_image(np.array(anatomy.HARD_PALATE, float)) - PIXEL_CENTRE_SHIFT
    reference_gap = gap(jd3_bone, jd3[hard_palate])
    assert gap(arrays["static_bone_0"][0], upper[hard_palate]) < reference_gap + 0.5
    assert gap(jd3_bone, upper[hard_palate]) > reference_gap + 2.0
    # The analysis grid's landmarks sit on the child's tract: the palate top on its upper outline.
    marks = speaker_landmarks(child)
    assert _distance_to_line(np.array([marks["palate"], marks["alveolar_ridge"]]), upper).max() < 0.5


def test_bad_anatomy_is_rejected_by_name(tmp_path):
    pharynx_too_short = tracts.anatomy_for(0.0, pharynx_scale=3.0 / 6.35)  # VocalTractLab's minimum is 3.5 cm
    with pytest.raises(SpeakerRejected) as caught:
        tracts.build_tract(pharynx_too_short, tracts.glottis_statics(0.0, 120.0), tmp_path / "bad")
    assert caught.value.reason == "anatomy-out-of-vtl-range" and "pharynx_length" in str(caught.value)
    not_finite = tracts.anatomy_for(2.0)
    not_finite[3] = np.nan
    with pytest.raises(SpeakerRejected) as caught:
        tracts.build_tract(not_finite, tracts.glottis_statics(2.0, 200.0), tmp_path / "nan")
    assert caught.value.reason == "anatomy-not-finite"


def test_corpus_skips_a_speaker_with_a_bad_tract(two_speakers, tmp_path):
    """The corpus leaves out a speaker whose palate VocalTractLab cannot make, with the reason."""
    good, _ = two_speakers
    bad = replace(make_speakers(2, 0, SEED, types=("female", "female"))[1], palate_scale=1.5)  # palate 2.5 cm > 2.0
    speakers, skipped = build_tracts([replace(good, tract_file=None), bad], tmp_path, workers=1)
    assert [s.id for s in speakers] == [good.id]
    assert skipped == [{"speaker": bad.id, "type": "female", "reason": "anatomy-out-of-vtl-range",
                        "detail": skipped[0]["detail"]}]
    assert "palate_height" in skipped[0]["detail"]
    assert not (tmp_path / bad.id).exists()


def test_source_outside_vtl_range_is_refused_by_name():
    from rtmri.synth import vtl

    glottis = np.tile(np.array([700.0, 8000, 0.01, 0.02, 0.05, 1.22, 1, 0.05, 0, 25, -10]), (5, 1))
    with pytest.raises(UtteranceFailed, match="glottis-param-out-of-vtl-range: F0"):
        vtl.check_glottis(glottis, "utt")


def test_types_keep_the_picture_and_spread_the_voice():
    reference = make_speakers(6, 0, 0)
    typed = make_speakers(6, 0, 0, types=("male", "female", "child"))
    picture = ("head_scale", "head_offset_mm", "tilt_deg", "noise_sigma", "texture_seed", "fps")
    assert all(getattr(a, k) == getattr(b, k) for a, b in zip(reference, typed) for k in picture)
    assert all(s.tract_type == "reference-male" and s.tract_file is None and s.voice_quality == "modal" for s in reference)
    f0 = {s.tract_type: s.f0_hz for s in typed}
    assert f0["child"] > tracts.TYPES["female"].f0_hz[0] - 1 and f0["male"] < tracts.TYPES["female"].f0_hz[0]


def test_voice_quality_flutter_and_shimmer_reach_the_source(tmp_path):
    import vocaltractlab_cython as vtl_api

    from rtmri.synth import vtl
    from rtmri.synth.segments import Segment

    speaker = replace(make_speakers(1, 0, SEED, types=("female",))[0], voice_quality="breathy", shimmer=0.04, flutter_pct=80.0)
    glottis = np.tile(vtl_api.get_shape("modal", "glottis"), (60, 1))
    voiced = vtl.with_voice(glottis, (Segment("a", 0.3),), speaker, vtl.shimmer_rng(speaker, "utt0001"))
    assert np.all(voiced[:, vtl.FLUTTER_PARAM] == 80.0)
    pressure = voiced[:, vtl.PRESSURE_PARAM] / speaker.lung_pressure_scale
    assert 0.02 < pressure.std() / pressure.mean() < 0.06
    again = vtl.with_voice(glottis, (Segment("a", 0.3),), speaker, vtl.shimmer_rng(speaker, "utt0001"))
    np.testing.assert_array_equal(voiced, again)
    gestures = tmp_path / "u.ges"
    gestures.write_text('<gesture value="modal" slope="0" duration_s="0.1"/>\n<gesture value="voiceless-plosive" slope="0"/>\n')
    vtl.with_voice_quality(gestures, speaker.voice_quality)
    assert gestures.read_text().count('value="breathy"') == 1 and "voiceless-plosive" in gestures.read_text()


def test_a_numerically_negative_lung_pressure_is_zero_not_a_skipped_utterance():
    import vocaltractlab_cython as vtl_api

    from rtmri.synth import vtl
    from rtmri.synth.segments import Segment

    speaker = make_speakers(1, 0, SEED, types=("female",))[0]
    glottis = np.tile(vtl_api.get_shape("modal", "glottis"), (60, 1))
    glottis[30:, vtl.PRESSURE_PARAM] = -7.8e-13  # what VocalTractLab's gestural model left in the 45-minute corpus
    voiced = vtl.with_voice(glottis, (Segment("a", 0.3),), speaker, vtl.shimmer_rng(speaker, "utt0018"))
    assert voiced[:, vtl.PRESSURE_PARAM].min() == 0.0
    vtl.check_glottis(voiced, "utt0018")
