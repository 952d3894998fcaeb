"""Generated next to original: the original rtMRI video brought to the generated frames'
timeline (25 fps by timestamp, the bundle's crop) and drawn beside them."""

from __future__ import annotations

import numpy as np

from rtmri import RtmriError
from rtmri.alignment import FPS
from rtmri.video import DecodeStats, convert, frames
from rtmri.video.compose import composed_shape, side_by_side


def original_frames_25fps(path, crop) -> np.ndarray:
    """uint8 (n, H, W): the video at 25 fps by timestamp, cropped."""
    stats = DecodeStats()
    decoded = list(frames(path, stats=stats))
    if not decoded:
        raise RtmriError(f"{path}: no video frames")
    times, images = zip(*decoded)
    n_out = max(1, int(round(stats.duration * FPS)))
    converted = convert(np.array(times), np.stack(images), n_out, source_fps=stats.fps)
    if crop is not None:
        x, y, w, h = crop
        converted = converted[:, y : y + h, x : x + w]
    return converted


class SideBySide:
    def __init__(self, original_path, bundle, size: int, crop=None) -> None:
        manifest_crop = bundle.manifest.frames.get("crop")
        crop = crop or (manifest_crop if isinstance(manifest_crop, list) and len(manifest_crop) == 4 else None)
        self.original = original_frames_25fps(original_path, crop)
        self.size = size
        self.output_shape = composed_shape(2, size)

    def __call__(self, frame) -> np.ndarray:
        index = min(frame.index, len(self.original) - 1)
        return side_by_side([frame.image, self.original[index]], self.size)
