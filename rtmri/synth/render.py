"""Tract state -> MRI-like 256x256 grayscale frame.

Shapes are rasterised with PIL at twice the resolution and averaged down (smooth, not
jagged, edges), then the acquisition is imitated: a fixed tissue texture and receive-coil
shading, the blur of a low-resolution real-time acquisition, the speaker's contrast, and
Rician noise (the magnitude of a complex signal with Gaussian noise in both channels).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter

from rtmri.synth import anatomy
from rtmri.synth.geometry import HeadPose
from rtmri.synth.outlines import Outlines, tract_outlines
from rtmri.synth.speakers import IMAGE_SIZE

SUPERSAMPLE = 2
TEXTURE_AMPLITUDE = 0.06
TEXTURE_SCALE_PX = 3.0
COIL_RADIUS_PX = 180.0
FULL_SCALE = 1.0  # intensity mapped to 255


class FrameRenderer:
    """Draws one speaker's frames; the fixed parts of the head are rasterised once."""

    def __init__(self, speaker, rest: Outlines, head: anatomy.Head | None = None):
        self.speaker = speaker
        self.rest = rest
        self.head = head or anatomy.Head.reference()
        self.pose = HeadPose.of(speaker)
        self.static_value, self.static_mask = self._rasterise_static()
        self.shading = self._texture() * self._coil_shading()

    def render(self, outlines: Outlines, rng: np.random.Generator) -> np.ndarray:
        return self.acquire(self.draw(outlines), rng)

    def draw(self, outlines: Outlines) -> np.ndarray:
        """The noiseless tissue map, float in [0, 1], IMAGE_SIZE square."""
        skin, shapes = anatomy.tract_shapes(outlines, self.rest, self.head)
        canvas = Image.new("F", (IMAGE_SIZE * SUPERSAMPLE,) * 2, anatomy.AIR)
        ImageDraw.Draw(canvas).polygon(self._pixels(skin), fill=anatomy.SOFT_TISSUE)
        pixels = np.array(canvas)
        pixels[self.static_mask] = self.static_value[self.static_mask]
        canvas = Image.fromarray(pixels, mode="F")
        self._draw_shapes(ImageDraw.Draw(canvas), shapes)
        fine = np.asarray(canvas, dtype=np.float32)
        return fine.reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE).mean(axis=(1, 3))

    def acquire(self, tissue: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """What the scanner makes of the tissue map: uint8 frame."""
        speaker = self.speaker
        signal = gaussian_filter(tissue * self.shading, speaker.blur_sigma_px)
        signal = np.float32(speaker.contrast) * np.clip(signal, 0.0, None) ** np.float32(speaker.gamma)
        noise = rng.standard_normal(size=(2,) + signal.shape, dtype=np.float32) * np.float32(speaker.noise_sigma)
        magnitude = np.hypot(signal + noise[0], noise[1])
        return np.clip(np.round(magnitude * np.float32(255.0 / FULL_SCALE)), 0, 255).astype(np.uint8)

    def _pixels(self, points_mm: np.ndarray) -> list[tuple[float, float]]:
        return [tuple(p) for p in SUPERSAMPLE * self.pose.to_image(points_mm)]

    def _draw_shapes(self, draw: ImageDraw.ImageDraw, shapes: list[anatomy.Shape], fill=None) -> None:
        for shape in shapes:
            value = shape.value if fill is None else fill
            if shape.width:
                width = max(1, int(round(shape.width * self.pose.scale * SUPERSAMPLE)))
                draw.line(self._pixels(shape.points), fill=value, width=width, joint="curve")
            else:
                draw.polygon(self._pixels(shape.points), fill=value)

    def _rasterise_static(self) -> tuple[np.ndarray, np.ndarray]:
        size = (IMAGE_SIZE * SUPERSAMPLE,) * 2
        values, mask = Image.new("F", size, 0.0), Image.new("L", size, 0)
        shapes = self.head.static_shapes()
        self._draw_shapes(ImageDraw.Draw(values), shapes)
        self._draw_shapes(ImageDraw.Draw(mask), shapes, fill=255)
        return np.array(values), np.array(mask) > 0

    def _texture(self) -> np.ndarray:
        """Fixed, smooth intensity variation of the tissue (and of the coil's sensitivity)."""
        rng = np.random.default_rng(self.speaker.texture_seed)
        field = gaussian_filter(rng.normal(size=(IMAGE_SIZE, IMAGE_SIZE)), TEXTURE_SCALE_PX)
        return (1.0 + TEXTURE_AMPLITUDE * field / (field.std() + 1e-12)).astype(np.float32)

    def _coil_shading(self) -> np.ndarray:
        centre = self.pose.to_image(np.array([self.speaker.coil_centre_mm]))[0]
        y, x = np.mgrid[0:IMAGE_SIZE, 0:IMAGE_SIZE]
        distance = np.hypot(x - centre[0], y - centre[1]) / COIL_RADIUS_PX
        return np.clip(1.0 - self.speaker.coil_falloff * distance**2, 0.3, 1.0).astype(np.float32)


def render_frames(renderer: FrameRenderer, tract_states: np.ndarray, scratch: Path,
                  rngs: list[np.random.Generator]) -> tuple[list[np.ndarray], list[Outlines]]:
    """One uint8 (n, IMAGE_SIZE, IMAGE_SIZE) video of the given tract states per noise generator,
    and the outlines each frame was drawn from (the ground truth of the articulation).

    Each tissue map is drawn once and acquired once per generator: the videos show the same
    articulation with independent scanner noise (the second one gives the noise ceiling)."""
    svg = scratch / "state.svg"
    videos: list[list[np.ndarray]] = [[] for _ in rngs]
    drawn: list[Outlines] = []
    for state in tract_states:
        outlines = tract_outlines(state, svg)
        drawn.append(outlines)
        tissue = renderer.draw(outlines)
        for video, rng in zip(videos, rngs):
            video.append(renderer.acquire(tissue, rng))
    return [np.stack(video) for video in videos], drawn
