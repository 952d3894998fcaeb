"""Speakers: their vocal tract, how each one looks in the scanner and how each one speaks.

Each speaker has a type (``tracts.TYPES``: adult male, adult female, child-like, or JD3
itself) and within it its own tract size, palate height and pharynx length; its own voice
(f0 range by type, voice quality, flutter = jitter, lung-pressure shimmer, speaking rate,
loudness); and its own picture (head size, position, tilt, tissue contrast, blur, noise,
coil shading, acquisition fps). All drawn from the corpus seed; a reference-male speaker
draws exactly what speakers drew before there were types. The speaker file and the
landmarks of its rest tract are attached once built (``with_tract``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np

from rtmri.articulation.grid import CANONICAL_LANDMARKS_MM
from rtmri.synth import tracts
from rtmri.synth.geometry import HeadPose
from rtmri.synth.layout import SPEAKER_PREFIX

ACQUISITION_FPS = (27, 14)  # alternate over speakers, so both occur
IMAGE_SIZE = 256  # px, 1 px = 1 mm

HEAD_SCALE = (0.92, 1.08)
HEAD_OFFSET_MM = 7.0
TILT_DEG = 6.0
CONTRAST = (0.85, 1.15)
GAMMA = (0.85, 1.15)
NOISE_SIGMA = (0.02, 0.055)  # Rician noise, fraction of full scale
BLUR_SIGMA_PX = (0.55, 0.95)
COIL_FALLOFF = (0.25, 0.45)  # signal lost at the edge of the field of view
LUNG_PRESSURE_SCALE = (0.85, 1.15)

# The square crop (the shared DESIGN.md §1): centred at the hard palate's height over the oral cavity so
# that its lower half holds the tongue. In VocalTractLab millimetres (x forward, y down).
CROP_CENTRE_MM = (18.0, -8.0)
CROP_SIZE_MM = 116.0


@dataclass(frozen=True)
class Speaker:
    id: str
    index: int
    held_out: bool
    fps: int
    head_scale: float
    head_offset_mm: tuple[float, float]
    tilt_deg: float
    contrast: float
    gamma: float
    noise_sigma: float
    blur_sigma_px: float
    coil_falloff: float
    coil_centre_mm: tuple[float, float]
    f0_hz: float
    morae_per_s: float
    lung_pressure_scale: float
    texture_seed: int
    tract_type: str = "reference-male"
    tract_size: float = 0.0  # on tracts.SIZE_ANCHORS
    palate_scale: float = 1.0
    pharynx_scale: float = 1.0
    voice_quality: str = "modal"
    flutter_pct: float = 25.0
    shimmer: float = 0.0
    tract_file: str | None = None  # its VocalTractLab speaker file; None: JD3's
    landmarks_mm: tuple | None = None  # the grid's landmarks on its rest tract; None: JD3's
    crop_centre_mm: tuple[float, float] = CROP_CENTRE_MM

    @property
    def reference_tract(self) -> bool:
        return tracts.TYPES[self.tract_type].reference

    @property
    def landmarks(self) -> np.ndarray:
        return CANONICAL_LANDMARKS_MM if self.landmarks_mm is None else np.array(self.landmarks_mm, float)

    @property
    def crop(self) -> list[int]:
        """[x, y, w, h] in image pixels: a square inside the frame."""
        centre = HeadPose.of(self).to_image(np.array([self.crop_centre_mm]))[0]
        size = int(round(CROP_SIZE_MM * self.head_scale / 2)) * 2
        x = int(np.clip(round(centre[0] - size / 2), 0, IMAGE_SIZE - size))
        y = int(np.clip(round(centre[1] - size / 2), 0, IMAGE_SIZE - size))
        return [x, y, size, size]

    def to_json(self) -> dict:
        """OUT/<speaker>/speaker.json (``layout.SPEAKER_FILE``); ``from_json`` reads it back."""
        info = {"speaker": self.id, **asdict(self)}
        del info["id"]
        info["crop"] = self.crop
        info["tract_file"] = Path(self.tract_file).name if self.tract_file else None
        info["orientation"] = "midsagittal, face to the right, top up"
        info["pixel_mm"] = 1.0
        return info

    @classmethod
    def from_json(cls, info: dict, folder: Path) -> "Speaker":
        """The Speaker of a corpus folder's speaker.json (its tract file in that folder)."""
        names = {f.name for f in fields(cls)} - {"id"}
        values = {k: _tuples(v) for k, v in info.items() if k in names}
        if values.get("tract_file"):
            values["tract_file"] = str(Path(folder) / values["tract_file"])
        return cls(id=info["speaker"], **values)


def _tuples(value):
    """JSON lists back to the tuples a Speaker holds."""
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


# A voice at the edge of its type's range (--edge-voices): f0 below the lowest and pressed,
# or above the highest and breathy, in turn.
EDGE_VOICES = ((0.75, "pressed"), (1.2, "breathy"))


def make_speakers(n_speakers: int, n_held_out: int, seed: int, types=("reference-male",),
                  heldout_types=None, edge_voices: int = 0) -> list[Speaker]:
    """spk01..spkNN (spk001.. from 100 speakers on); the last n_held_out are held out of
    training, the last edge_voices of them with a voice at the edge of the range (EDGE_VOICES).
    Training speakers take the types in turn, held-out speakers take heldout_types (default:
    the same) in turn."""
    heldout_types = tuple(heldout_types or types)
    n_train = n_speakers - n_held_out
    width = max(2, len(str(n_speakers)))
    speakers = [_draw_speaker(index, index >= n_train, seed,
                              types[index % len(types)] if index < n_train else heldout_types[(index - n_train) % len(heldout_types)],
                              width)
                for index in range(n_speakers)]
    for order, index in enumerate(range(n_speakers - min(edge_voices, n_held_out), n_speakers)):
        speakers[index] = with_edge_voice(speakers[index], *EDGE_VOICES[order % len(EDGE_VOICES)])
    return speakers


def with_edge_voice(speaker: Speaker, f0_factor: float, quality: str) -> Speaker:
    """The speaker with f0 beyond its type's range by f0_factor (of the nearer bound) and that voice quality."""
    low, high = tracts.tract_type(speaker.tract_type).f0_hz
    return replace(speaker, f0_hz=round((low if f0_factor < 1 else high) * f0_factor, 2), voice_quality=quality)


def _draw_speaker(index: int, held_out: bool, seed: int, type_name: str, width: int = 2) -> Speaker:
    kind = tracts.tract_type(type_name)
    rng = np.random.default_rng([seed, index, 0x5BEA4E8])
    uniform = lambda bounds: float(rng.uniform(*bounds))  # noqa: E731
    # The draws before texture_seed keep their order: a reference-male speaker is the one
    # the same seed and index drew before speaker types existed.
    return Speaker(
        id=f"{SPEAKER_PREFIX}{index + 1:0{width}d}",
        index=index,
        held_out=held_out,
        fps=ACQUISITION_FPS[index % len(ACQUISITION_FPS)],
        head_scale=uniform(HEAD_SCALE),
        head_offset_mm=(uniform((-HEAD_OFFSET_MM, HEAD_OFFSET_MM)), uniform((-HEAD_OFFSET_MM, HEAD_OFFSET_MM))),
        tilt_deg=uniform((-TILT_DEG, TILT_DEG)),
        contrast=uniform(CONTRAST),
        gamma=uniform(GAMMA),
        noise_sigma=uniform(NOISE_SIGMA),
        blur_sigma_px=uniform(BLUR_SIGMA_PX),
        coil_falloff=uniform(COIL_FALLOFF),
        coil_centre_mm=(uniform((-10.0, 40.0)), uniform((0.0, 40.0))),
        f0_hz=uniform(kind.f0_hz),
        morae_per_s=uniform(kind.morae_per_s),
        lung_pressure_scale=uniform(LUNG_PRESSURE_SCALE),
        texture_seed=int(rng.integers(2**31)),
        tract_type=kind.name,
        tract_size=uniform(kind.size),
        palate_scale=uniform(kind.palate_scale),
        pharynx_scale=uniform(kind.pharynx_scale),
        voice_quality=str(rng.choice(tracts.VOICE_QUALITIES, p=kind.voice_quality_p)),
        flutter_pct=uniform(kind.flutter_pct),
        shimmer=uniform(kind.shimmer),
    )


def with_tract(speaker: Speaker, tract_file: str, landmarks_mm: np.ndarray, crop_centre_mm) -> Speaker:
    """The speaker with its built speaker file and the geometry measured on it."""
    return replace(speaker, tract_file=str(tract_file), landmarks_mm=tuple(tuple(round(float(v), 4) for v in p) for p in landmarks_mm),
                   crop_centre_mm=tuple(round(float(v), 4) for v in crop_centre_mm))


def build_speaker_tract(speaker: Speaker, folder: Path) -> Speaker:
    """The speaker with its own speaker file (built in folder, or reused) and the geometry of
    its rest tract; a reference-male speaker keeps JD3. SpeakerRejected names a tract
    VocalTractLab cannot make."""
    if speaker.reference_tract:
        return speaker
    anatomy = tracts.anatomy_for(speaker.tract_size, speaker.palate_scale, speaker.pharynx_scale)
    tract = tracts.build_tract(anatomy, tracts.glottis_statics(speaker.tract_size, speaker.f0_hz), folder)
    crop_centre = tracts.head_of(tract.path).points([CROP_CENTRE_MM])[0]
    return with_tract(speaker, tract.path, tracts.landmarks_mm(tract.path), crop_centre)
