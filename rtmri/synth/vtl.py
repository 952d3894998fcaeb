"""Driving VocalTractLab: timed phones -> gestural score -> tract states -> 44.1 kHz audio.

VocalTractLab computes tract states every 110 samples (about 400 per second); every
second one is kept (about 200 per second, 5 ms apart) and synthesised with a 220-sample
step: the audio then differs from the 110-sample synthesis less than a 1 % change of
f0 does (log-mel distance), at about two thirds of the cost. The images are drawn from
exactly the states the audio is made from.

Each speaker speaks with its own tract (its speaker file is made VocalTractLab's active
speaker first) and its own voice: the glottis shape of its voice quality in place of
VocalTractLab's "modal", its f0 contour, its flutter (VocalTractLab's jitter) and a random
lung-pressure modulation per state (shimmer). Source parameters outside VocalTractLab's
ranges are refused by name: VocalTractLab would quietly change them (f0 700 Hz comes out
at about 300 Hz).
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import vocaltractlab_cython as vtl

from rtmri.articulation.regions import LONG
from rtmri.synth import inventory, tracts, voice
from rtmri.synth.errors import UtteranceFailed

_CONSTANTS = vtl.get_constants()
VTL_SAMPLE_RATE = _CONSTANTS["sr_audio"]
VTL_STEP_SAMPLES = _CONSTANTS["n_samples_per_state"]
N_TRACT_PARAMS = _CONSTANTS["n_tract_params"]
N_GLOTTIS_PARAMS = _CONSTANTS["n_glottis_params"]
STATE_STRIDE = 2
SYNTH_STEP_SAMPLES = VTL_STEP_SAMPLES * STATE_STRIDE
STATE_RATE = VTL_SAMPLE_RATE / SYNTH_STEP_SAMPLES

_GLOTTIS_NAMES = [info["name"] for info in vtl.get_param_info("glottis")]
F0_PARAM = _GLOTTIS_NAMES.index("F0")
PRESSURE_PARAM = _GLOTTIS_NAMES.index("PR")
FLUTTER_PARAM = _GLOTTIS_NAMES.index("FL")
GLOTTIS_LIMITS = [(info["min"], info["max"]) for info in vtl.get_param_info("glottis")]
MODAL_GESTURE = '<gesture value="modal"'  # the glottal-shape gesture of voiced phones
VOWEL_TIER = '<gesture_sequence type="vowel-gestures"'

MIN_PEAK = 1e-3  # VocalTractLab output is about 0.1 at its loudest; less is a failed synthesis
MAX_PEAK = 10.0


@dataclass(frozen=True)
class Articulation:
    """Tract states at times k / STATE_RATE and the audio they make (time 0 = state 0)."""

    tract: np.ndarray  # (n_states, N_TRACT_PARAMS)
    audio: np.ndarray  # float64 at VTL_SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.audio) / VTL_SAMPLE_RATE


def generator_name() -> str:
    return f"vocaltractlab-cython {metadata.version('vocaltractlab-cython')} ({vtl.get_version()})"


def synthesize(utterance, speaker, workdir: Path) -> Articulation:
    """The utterance spoken by the speaker; UtteranceFailed if VocalTractLab fails on it."""
    utterance.check_phones()
    tracts.use_tract(speaker.tract_file)
    segment_file = workdir / "utterance.seg"
    gesture_file = workdir / "utterance.ges"
    tract_file = workdir / "utterance.tract"
    write_segment_file(utterance.segments, segment_file)
    try:
        vtl.phoneme_file_to_gesture_file(str(segment_file), str(gesture_file))
        with_own_vowels(gesture_file, utterance.segments)
        with_voice_quality(gesture_file, speaker.voice_quality)
        vtl.gesture_file_to_motor_file(str(gesture_file), str(tract_file))
        tract, glottis = read_tract_sequence(tract_file)
        tract, glottis = tract[::STATE_STRIDE].copy(), glottis[::STATE_STRIDE].copy()
        glottis = with_voice(glottis, utterance.segments, speaker, shimmer_rng(speaker, utterance.id))
        check_glottis(glottis, utterance.id)
        audio = vtl.synth_block(tract, glottis, SYNTH_STEP_SAMPLES)
    except (vtl.VtlApiError, OSError, ValueError) as exc:
        raise UtteranceFailed(f"VocalTractLab failed on {utterance.id}: {' '.join(str(exc).split())}") from exc
    # Sample block k of synth_block moves the tube from state k-1 to state k, so the
    # audio runs one state behind the states; dropping the first block aligns them.
    audio = audio[SYNTH_STEP_SAMPLES:]
    check_audio(audio, utterance.id)
    return Articulation(tract=tract[: len(audio) // SYNTH_STEP_SAMPLES + 1], audio=audio)


def write_segment_file(segments, path: Path) -> None:
    """VocalTractLab's segment file; a vowel of the project's own is written as its stand-in."""
    lines = [f"name = {written_phone(segment.phone)}; duration_s = {segment.duration:.6f};" for segment in segments]
    path.write_text("\n".join(lines) + "\n", encoding="ascii")


def written_phone(phone: str) -> str:
    stand_in = inventory.STAND_INS.get(phone)
    return phone if stand_in is None else stand_in.written


def with_own_vowels(gesture_file: Path, segments) -> None:
    """The vowel gestures VocalTractLab made for stand-ins (inventory.STAND_INS) take their own
    shapes. VocalTractLab makes one vowel gesture per vowel segment, in order: the k-th gesture
    of a stand-in's gesture name belongs to the k-th segment that makes that gesture."""
    original = text = gesture_file.read_text()
    for gesture in dict.fromkeys(s.gesture for s in inventory.STAND_INS.values()):
        shapes = [inventory.STAND_INS[s.phone].shape if s.phone in inventory.STAND_INS else gesture
                  for s in segments if _makes_gesture(s.phone, gesture)]
        if all(shape == gesture for shape in shapes):
            continue
        head, tier, tail = _vowel_tier(text, gesture_file)
        pattern = re.compile(rf'<gesture value="{re.escape(gesture)}"')
        found = pattern.findall(tier)
        if len(found) != len(shapes):
            raise ValueError(f"{gesture_file.name}: {len(found)} /{gesture}/ vowel gestures for {len(shapes)} segments")
        names = iter(shapes)
        text = head + pattern.sub(lambda _m: f'<gesture value="{next(names)}"', tier) + tail
    if text != original:
        gesture_file.write_text(text)


def _makes_gesture(phone: str, gesture: str) -> bool:
    written = written_phone(phone)
    return written == gesture or written == gesture + LONG


def _vowel_tier(text: str, gesture_file: Path) -> tuple[str, str, str]:
    start = text.find(VOWEL_TIER)
    end = text.find("</gesture_sequence>", start)
    if start < 0 or end < 0:
        raise ValueError(f"{gesture_file.name}: no vowel gestures")
    return text[:start], text[start:end], text[end:]


def read_tract_sequence(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(tract (n, 19), glottis (n, 11)) from a VocalTractLab tract sequence file."""
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    n_states = int(lines[1])  # lines[0] names the glottis model
    rows = lines[2 : 2 + 2 * n_states]
    glottis = np.array([row.split() for row in rows[0::2]], dtype=np.float64)
    tract = np.array([row.split() for row in rows[1::2]], dtype=np.float64)
    if tract.shape != (n_states, N_TRACT_PARAMS) or glottis.shape != (n_states, N_GLOTTIS_PARAMS):
        raise ValueError(f"tract sequence {path.name} has shapes {tract.shape} and {glottis.shape}")
    return tract, glottis


def with_voice_quality(gesture_file: Path, quality: str) -> None:
    """Voiced phones take the speaker's glottis shape (JD3's "breathy", "pressed") for "modal"."""
    if quality != "modal":
        gesture_file.write_text(gesture_file.read_text().replace(MODAL_GESTURE, f'<gesture value="{quality}"'))


def shimmer_rng(speaker, utterance_id: str) -> np.random.Generator:
    return np.random.default_rng([speaker.texture_seed, zlib.crc32(utterance_id.encode())])


def with_voice(glottis: np.ndarray, segments, speaker, rng: np.random.Generator | None = None) -> np.ndarray:
    """The speaker's f0 contour, loudness, flutter and shimmer; silence in pauses between phrases."""
    times = np.arange(len(glottis)) / STATE_RATE
    voiced = glottis.copy()
    voiced[:, F0_PARAM] = speaker.f0_hz * 2.0 ** (voice.pitch_contour_st(segments, times, STATE_RATE) / 12.0)
    voiced[:, PRESSURE_PARAM] *= speaker.lung_pressure_scale * voice.pause_gate(segments, times)
    voiced[:, FLUTTER_PARAM] = speaker.flutter_pct
    if speaker.shimmer > 0 and rng is not None:
        voiced[:, PRESSURE_PARAM] *= np.clip(1.0 + speaker.shimmer * rng.standard_normal(len(voiced)), 0.0, None)
    # VocalTractLab's gestural model leaves pressures like -8e-13 where it ramps to silence:
    # numerically zero, but outside its own range check.
    np.clip(voiced[:, PRESSURE_PARAM], 0.0, None, out=voiced[:, PRESSURE_PARAM])
    return voiced


def check_glottis(glottis: np.ndarray, utterance_id: str) -> None:
    """UtteranceFailed naming a source parameter outside VocalTractLab's range."""
    for name, (low, high), column in zip(_GLOTTIS_NAMES, GLOTTIS_LIMITS, glottis.T):
        if not np.all(np.isfinite(column)) or column.min() < low or column.max() > high:
            raise UtteranceFailed(f"glottis-param-out-of-vtl-range: {name} of {utterance_id} spans "
                                  f"[{np.nanmin(column):.4g}, {np.nanmax(column):.4g}], VocalTractLab's range is [{low:g}, {high:g}]")


def check_audio(audio: np.ndarray, utterance_id: str) -> None:
    if not np.all(np.isfinite(audio)):
        raise UtteranceFailed(f"VocalTractLab produced non-finite samples for {utterance_id}")
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if not MIN_PEAK <= peak <= MAX_PEAK:
        raise UtteranceFailed(f"VocalTractLab produced a signal with peak {peak:.3g} for {utterance_id}")
