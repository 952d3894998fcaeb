"""Speakers: how each one looks in the scanner and how each one speaks.

Every speaker shares VocalTractLab's one vocal tract model; they differ in the picture
(head size, position, tilt, tissue contrast, blur, noise, coil shading, acquisition fps)
and in the voice (f0, speaking rate, loudness). All drawn from the corpus seed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from rtmri.training.synth.geometry import HeadPose

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
F0_HZ = (90.0, 200.0)
MORAE_PER_S = (6.6, 8.6)
LUNG_PRESSURE_SCALE = (0.85, 1.15)

# The square crop (DESIGN §1): centred at the hard palate's height over the oral cavity so
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

    @property
    def crop(self) -> list[int]:
        """[x, y, w, h] in image pixels: a square inside the frame."""
        centre = HeadPose.of(self).to_image(np.array([CROP_CENTRE_MM]))[0]
        size = int(round(CROP_SIZE_MM * self.head_scale / 2)) * 2
        x = int(np.clip(round(centre[0] - size / 2), 0, IMAGE_SIZE - size))
        y = int(np.clip(round(centre[1] - size / 2), 0, IMAGE_SIZE - size))
        return [x, y, size, size]

    def to_json(self) -> dict:
        info = {"speaker": self.id, **asdict(self)}
        del info["id"]
        info["crop"] = self.crop
        info["orientation"] = "midsagittal, face to the right, top up"
        info["pixel_mm"] = 1.0
        return info


def make_speakers(n_speakers: int, n_held_out: int, seed: int) -> list[Speaker]:
    """spk01..spkNN; the last n_held_out are held out of training."""
    return [_draw_speaker(index, index >= n_speakers - n_held_out, seed) for index in range(n_speakers)]


def _draw_speaker(index: int, held_out: bool, seed: int) -> Speaker:
    rng = np.random.default_rng([seed, index, 0x5BEA4E8])
    uniform = lambda bounds: float(rng.uniform(*bounds))  # noqa: E731
    return Speaker(
        id=f"spk{index + 1:02d}",
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
        f0_hz=uniform(F0_HZ),
        morae_per_s=uniform(MORAE_PER_S),
        lung_pressure_scale=uniform(LUNG_PRESSURE_SCALE),
        texture_seed=int(rng.integers(2**31)),
    )
