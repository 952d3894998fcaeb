"""Choosing the reference frame a bundle draws its anatomy from."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from rtmri import RtmriError
from rtmri.clips import ClipDataset
from rtmri.video.compose import upscale

FRAMES_PER_CLIP = 16


def typical_frame(frames: np.ndarray) -> np.ndarray:
    """The frame closest to the per-pixel median of ``frames``: a rest-like posture that is a
    real frame, not a blurred average."""
    median = np.median(frames.astype(np.float32), axis=0)
    distances = np.abs(frames.astype(np.float32) - median).mean(axis=(1, 2))
    return frames[int(np.argmin(distances))]


def evenly_spaced_frames(clip, count: int) -> np.ndarray:
    """Up to ``count`` frames spread evenly over a clip."""
    frames = clip.frames()
    return np.asarray(frames[np.linspace(0, len(frames) - 1, min(count, len(frames))).astype(int)])


def speaker_reference(dataset: ClipDataset, speaker: str | None = None, split: str = "train") -> tuple[np.ndarray, str]:
    """A typical frame of ``speaker`` (default: the speaker with the most clips in split)."""
    clips = dataset.require_split(split)
    if speaker is None:
        speaker = Counter(c.speaker for c in clips).most_common(1)[0][0]
    own = [c for c in clips if c.speaker == speaker]
    if not own:
        raise RtmriError(f"speaker {speaker!r} has no clips in the {split} split of {dataset.root}")
    samples = [evenly_spaced_frames(clip, FRAMES_PER_CLIP) for clip in own[:32]]
    return typical_frame(np.concatenate(samples)), speaker


def image_reference(path: str | Path, size: int) -> np.ndarray:
    try:
        image = Image.open(path).convert("L")
    except OSError as exc:
        raise RtmriError(f"{path}: cannot read the reference image ({exc})") from exc
    return upscale(np.asarray(image), size)
