"""Pictures as they are shown on screen and in the videos the project writes: brought to a
display size, and composed side by side with their labels."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

DISPLAY_SIZE = 256  # px, the side of a picture as shown
GAP = 4  # px of black between pictures side by side
HEADER_HEIGHT = 22  # px, the band above the pictures that holds a header line
TEXT_MARGIN = 4  # px from the top-left corner of its picture (or of the header band) to a text
TEXT_LEVEL = 255  # white


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """Grayscale uint8 image -> size x size (bilinear); the image itself when already that size."""
    if image.shape[0] == size and image.shape[1] == size:
        return image
    return np.asarray(Image.fromarray(image).resize((size, size), Image.BILINEAR))


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """uint8 (n, H, W) -> (n, size, size) by upscale; a copy as it is when already that size."""
    frames = np.asarray(frames)
    if frames.shape[1:] == (size, size):
        return np.array(frames)
    return np.stack([upscale(frame, size) for frame in frames])


def composed_shape(count: int, size: int = DISPLAY_SIZE, header: bool = False, gap: int = GAP) -> tuple[int, int]:
    """(height, width) of what side_by_side makes of count pictures."""
    return size + (HEADER_HEIGHT if header else 0), count * size + (count - 1) * gap


def side_by_side(images: Sequence[np.ndarray], size: int = DISPLAY_SIZE, labels: Sequence[str] = (),
                 header: str | None = None, gap: int = GAP) -> np.ndarray:
    """Grayscale uint8 pictures left to right, each brought to size x size, gap px apart; the
    i-th label written in the top-left corner of the i-th picture, the header in a band above."""
    height, width = composed_shape(len(images), size, header is not None, gap)
    top = height - size
    canvas = np.zeros((height, width), np.uint8)
    for column, image in enumerate(images):
        left = column * (size + gap)
        canvas[top:, left : left + size] = upscale(image, size)
    if header is None and not labels:
        return canvas
    picture = Image.fromarray(canvas)
    draw = ImageDraw.Draw(picture)
    if header is not None:
        draw.text((TEXT_MARGIN, TEXT_MARGIN), header, fill=TEXT_LEVEL)
    for column, label in enumerate(labels):
        draw.text((column * (size + gap) + TEXT_MARGIN, top + TEXT_MARGIN), label, fill=TEXT_LEVEL)
    return np.asarray(picture)
