"""A vocal tract per synthetic speaker: speaker types, the anatomy of each speaker, and its
VocalTractLab speaker file (built once, kept in the corpus folder, checked).

Tract sizes lie on one continuum through anatomies VocalTractLab itself provides: JD3
(size 0, the adult male every file derives from), halfway to the adult female (1), and
VocalTractLab's growth-curve anatomies (``set_anatomy_from_age``, clipped to its limits)
of a 25-year-old woman (2), a 12-year-old girl (3) and an 8-year-old girl (4). A type is
a range of sizes, f0 and speaking rate; within it each speaker also gets its own palate
height and pharynx length (the oral/pharyngeal proportion). The ``reference-male`` type is
JD3's own file: the speakers of corpora made before tract types existed.

A tract VocalTractLab cannot build or voice is rejected with a named reason
(``SpeakerRejected.reason``); the corpus then skips that speaker.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import vocaltractlab_cython as vtl
from scipy.signal import find_peaks

from rtmri.files import atomic_write
from rtmri.synth import shape_repair, speaker_file
from rtmri.synth.anatomy import Head
from rtmri.synth.errors import SpeakerRejected, SynthError
from rtmri.synth.japanese import JA_U, ROUNDED_U
from rtmri.synth.layout import SpeakerFolder
from rtmri.synth.outlines import rest_outlines
from rtmri.synth.speaker_file import H0, H2

_JD3 = np.array([1.3, 1.5, 0.5, 0.5, 1.6, 3.6, 4.7, 2.372, 6.35, 3.2, 3.3, 1.2, -98.0])
_FEMALE_25 = np.array([1.2259, 1.621, 0.5, 0.5, 1.6521, 3.2614, 4.2218, 2.8077, 5.1108, 2.736, 2.8077, 1.5747, -96.239])
_GIRL_12 = np.array([0.8871, 1.3465, 0.5, 0.5, 1.4297, 3.1795, 4.0269, 2.6855, 4.6376, 2.16, 2.6855, 1.0677, -90.597])
_GIRL_8 = np.array([0.741, 1.1745, 0.5, 0.5, 1.3028, 3.0875, 3.6265, 2.6479, 3.8109, 2.0, 2.6479, 0.9117, -90.0])
SIZE_ANCHORS = np.stack([_JD3, (_JD3 + _FEMALE_25) / 2, _FEMALE_25, _GIRL_12, _GIRL_8])
# Vocal-fold length relative to the adult male's (VocalTractLab's growth curves), per anchor:
# it sets the geometric glottis' rest length and thickness.
VOCAL_FOLD_RATIO = np.array([1.0, 0.922, 0.844, 0.572, 0.488])
REFERENCE_REST_LENGTH_CM, REFERENCE_REST_THICKNESS_CM = 1.6, 0.45  # JD3's geometric glottis

FRONT_VOWEL = "i"
# Japanese /ɯ/'s F2 between the tract's own rounded /u/ and /i/ (0: u, 1: i), as JD3's JA_U
# (tuned to the Kyoto survey's male speakers: 1324 Hz between 797 and 2153 Hz, transfer function).
JA_U_F2_POSITION = 0.39
MIN_JA_U_SHIFT, MAX_JA_U_SHIFT = 0.3, 2.0  # times JD3's tongue shift (speaker_file.JA_U_SHIFT_CM) scaled with the tract
JA_U_BISECTIONS = 8
SPECTRUM_SAMPLES = 4096  # 5.4 Hz apart at 44.1 kHz
LOWEST_FORMANT_HZ = 150.0
BUILD_VERSION = 3  # raise when the building changes: older cached files are rebuilt
VOICE_QUALITIES = ("modal", "breathy", "pressed")  # glottis shapes of JD3
NEUTRAL_SHAPE = "@"
# Points of VocalTractLab's upper outline (27 points: velum, hard palate, incisor, upper lip).
ALVEOLAR_RIDGE_POINT = 10
PALATE_POINTS = slice(6, 11)
UPPER_LIP_POINTS = slice(18, 27)


@dataclass(frozen=True)
class TractType:
    name: str
    size: tuple[float, float]  # range on the SIZE_ANCHORS continuum
    f0_hz: tuple[float, float]
    morae_per_s: tuple[float, float]
    voice_quality_p: tuple[float, float, float]  # modal, breathy, pressed
    # VocalTractLab's FL (its default 25 %). Measured (Praat jitter local, JD3 /a/ at 120 Hz):
    # 0 % -> 0.001 %, 2-25 % -> 0.64 %, 60 % -> 0.74 %, 100 % -> 1.06 %.
    flutter_pct: tuple[float, float]
    # Lung pressure times (1 + shimmer x N(0, 1)) per 5 ms state: 0.05 raised Praat's shimmer
    # (local) of JD3 /a/ from 3.7 % to 6.3 %.
    shimmer: tuple[float, float]
    palate_scale: tuple[float, float] = (0.92, 1.08)
    pharynx_scale: tuple[float, float] = (0.95, 1.05)

    @property
    def reference(self) -> bool:
        return self.size == (0.0, 0.0)


TYPES = {
    t.name: t for t in (
        # Exactly the speakers of earlier corpora: JD3, the old f0 and rate ranges, modal voice.
        TractType("reference-male", (0.0, 0.0), (90.0, 200.0), (6.6, 8.6), (1.0, 0.0, 0.0), (25.0, 25.0), (0.0, 0.0),
                  (1.0, 1.0), (1.0, 1.0)),
        TractType("male", (0.15, 1.0), (85.0, 165.0), (6.6, 8.6), (0.6, 0.15, 0.25), (10.0, 100.0), (0.0, 0.05)),
        TractType("female", (1.6, 2.4), (165.0, 265.0), (6.6, 8.6), (0.55, 0.35, 0.1), (10.0, 100.0), (0.0, 0.05)),
        TractType("child", (3.0, 4.0), (220.0, 320.0), (5.6, 7.6), (0.6, 0.3, 0.1), (10.0, 100.0), (0.0, 0.05)),
    )
}
DEFAULT_TYPES = ("male", "female", "child")


def tract_type(name: str) -> TractType:
    if name not in TYPES:
        raise SynthError(f"unknown speaker type {name!r} (known: {', '.join(TYPES)})")
    return TYPES[name]


def anatomy_for(size: float, palate_scale: float = 1.0, pharynx_scale: float = 1.0) -> np.ndarray:
    """The 13 VocalTractLab anatomy values at a point of the size continuum."""
    position = np.arange(len(SIZE_ANCHORS))
    anatomy = np.array([np.interp(size, position, SIZE_ANCHORS[:, k]) for k in range(SIZE_ANCHORS.shape[1])])
    anatomy[H2] *= palate_scale
    anatomy[H0] *= pharynx_scale
    return anatomy


def glottis_statics(size: float, f0_hz: float) -> dict[str, float]:
    """Geometric glottis at rest: shorter, thinner folds for smaller speakers; rest f0 = the speaker's."""
    ratio = float(np.interp(size, np.arange(len(VOCAL_FOLD_RATIO)), VOCAL_FOLD_RATIO))
    return {"RL": REFERENCE_REST_LENGTH_CM * ratio, "RT": REFERENCE_REST_THICKNESS_CM * ratio**0.5, "RF0": f0_hz}


@dataclass(frozen=True)
class Tract:
    """A built speaker file and what was measured on it."""

    path: str
    anatomy: tuple[float, ...]
    neutral_length_cm: float  # glottis to lips, schwa
    vowel_lengths_cm: dict

    def to_json(self) -> dict:
        return {"file": Path(self.path).name, "anatomy": dict(zip((p.key for p in speaker_file.ANATOMY), self.anatomy)),
                "neutral_length_cm": self.neutral_length_cm, "vowel_lengths_cm": self.vowel_lengths_cm}


def reference_tract() -> Tract:
    return _measured(Path(speaker_file.reference_file()), _JD3)


def build_tract(anatomy, statics: dict[str, float], folder: Path) -> Tract:
    """The speaker file for this anatomy in folder (reused when built before from the same
    anatomy); SpeakerRejected with a named reason if VocalTractLab cannot make it."""
    folder.mkdir(parents=True, exist_ok=True)
    files = SpeakerFolder(folder)
    path, info_path = files.tract_file, files.tract_info
    key = {"version": BUILD_VERSION, "anatomy": [round(float(x), 6) for x in anatomy],
           "glottis_statics": {k: round(float(v), 6) for k, v in statics.items()}}
    if path.exists() and info_path.exists():
        cached = json.loads(info_path.read_text())
        if cached.get("key") == key:
            speaker_file.load(path, force=True)
            return _measured(path, np.array(key["anatomy"]))
    info_path.unlink(missing_ok=True)
    applied, reference = speaker_file.write_speaker_file(anatomy, path, statics)
    repairs = shape_repair.repair_constrictions(path, applied, reference)
    shape_repair.fit_vowels(path, applied, reference)
    shape_repair.check_vowels_open(path)
    add_own_vowels(path, applied, reference)
    rest_outlines.cache_clear()  # a file rebuilt at the same path
    head_of.cache_clear()
    tract = _measured(path, applied)
    atomic_write(info_path, json.dumps({"key": key, "repairs": repairs, **tract.to_json()}, indent=1) + "\n")
    return tract


def add_own_vowels(path: Path, anatomy: np.ndarray, reference: np.ndarray) -> None:
    """Japanese /ɯ/ from the file's fitted /u/: lips not protruded, the tongue body moved forward
    until its F2 lies where JD3's does between the tract's own /u/ and /i/ (at least
    MIN_JA_U_SHIFT of JD3's shift scaled with the tract); SpeakerRejected('vowel-closed') if it
    closes the tract.

    JD3's shift scaled with the tract's length fronts a small tract's /ɯ/ relatively more (a
    child's F2 came out 55 % above the man's where its /a/ is 30 % above; Kasuya et al. 1968
    found Japanese /u/ changing less with age than the open vowels)."""
    speaker_file.load(path, force=True)
    scale = speaker_file.length_scale(anatomy, reference)
    low, high = speaker_file.limits_of(Path(path).read_text())
    rounded, front = vtl.get_shape(ROUNDED_U, "tract"), vtl.get_shape(FRONT_VOWEL, "tract")
    f2_u, f2_i = second_formant_hz(rounded), second_formant_hz(front)
    target = f2_u + JA_U_F2_POSITION * (f2_i - f2_u)
    f2_at = lambda shift: second_formant_hz(speaker_file.unrounded_u(rounded, shift, low, high))  # noqa: E731
    least, most = MIN_JA_U_SHIFT * scale, MAX_JA_U_SHIFT * scale
    for _ in range(JA_U_BISECTIONS):  # F2 rises as the tongue moves forward
        middle = 0.5 * (least + most)
        least, most = (middle, most) if f2_at(middle) < target else (least, middle)
    made = speaker_file.add_own_vowels(path, 0.5 * (least + most))
    speaker_file.load(path, force=True)
    for name, state in made.items():
        area, section = shape_repair.min_area(state)
        if area < shape_repair.CLOSED_CM2:
            raise SpeakerRejected("vowel-closed", f"/{name}/: min area {area:.4f} cm^2 at tube section {section}")


def second_formant_hz(state: np.ndarray) -> float:
    """F2 of a tract state of the active speaker: the second peak (above 150 Hz) of VocalTractLab's
    transfer function (within 20 Hz of Praat's on the sustained vowel, JD3)."""
    spectrum = vtl.tract_state_to_transfer_function(state, SPECTRUM_SAMPLES, save_phase_spectrum=False)
    magnitude = np.asarray(spectrum["magnitude_spectrum"])
    hz = np.arange(len(magnitude)) * vtl_sample_rate() / spectrum["n_spectrum_samples"]
    peaks, _ = find_peaks(magnitude)
    peaks = peaks[hz[peaks] > LOWEST_FORMANT_HZ]
    if len(peaks) < 2:
        raise SpeakerRejected("no-formants", f"{len(peaks)} resonances in the transfer function")
    return float(hz[peaks[1]])


def vtl_sample_rate() -> float:
    return float(vtl.get_constants()["sr_audio"])


def _measured(path: Path, anatomy: np.ndarray) -> Tract:
    speaker_file.load(path)
    lengths = {v: round(tube_length_cm(vtl.get_shape(v, "tract")), 2) for v in shape_repair.MUST_STAY_OPEN + (JA_U,)}
    return Tract(str(path), tuple(round(float(x), 4) for x in anatomy),
                 round(tube_length_cm(vtl.get_shape(NEUTRAL_SHAPE, "tract")), 2), lengths)


def tube_length_cm(state: np.ndarray) -> float:
    return float(vtl.tract_state_to_tube_state(state)["tube_length"].sum())


def use_tract(path: str | None) -> None:
    """Make the speaker's tract VocalTractLab's active speaker (None: JD3, with the vowels it lacks)."""
    speaker_file.load(path or speaker_file.reference_file())


def rejection(exc: SpeakerRejected) -> dict:
    return {"reason": exc.reason, "detail": str(exc)}


@lru_cache(maxsize=16)
def head_of(tract_file: str | None):
    """The drawn head around the speaker's own rest tract (anatomy.Head)."""
    if tract_file is None:
        return Head.reference()
    return Head.for_tract(rest_outlines(None), rest_outlines(tract_file))


def landmarks_mm(tract_file: str | None) -> np.ndarray:
    """The analysis grid's landmarks (rtmri.articulation.grid.LANDMARKS) on the speaker's rest
    tract: the middle of the glottis, the alveolar ridge, the top of the hard palate, the
    lowest point of the upper lip (for JD3: grid.CANONICAL_LANDMARKS_MM)."""
    rest = rest_outlines(tract_file)
    upper = rest["upper"]
    glottis = (rest["pharynx_wall"][0] + rest["larynx"][0]) / 2
    palate = upper[PALATE_POINTS][np.argmin(upper[PALATE_POINTS, 1])]
    lip = upper[UPPER_LIP_POINTS][np.argmax(upper[UPPER_LIP_POINTS, 1])]
    return np.stack([glottis, upper[ALVEOLAR_RIDGE_POINT], palate, lip])
