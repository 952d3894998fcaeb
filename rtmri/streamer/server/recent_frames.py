"""The last seconds of frames a learner's live session was sent, by frame index: what a
compare request ({start, end} in the microphone's sample offsets) takes its attempt's pictures
from, instead of drawing them again. Frame k of a live session shows the instant of sample
k * SAMPLES_PER_FRAME (the shared DESIGN.md §3), so the attempt's frame j (at j / FPS from its
start) is the live frame nearest to start + j * SAMPLES_PER_FRAME. Kept beside RecentAudio, by
the same owners."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from rtmri.alignment import FPS, SAMPLES_PER_FRAME
from rtmri.streamer.server.recent_audio import KEPT_S, RecentAudio

MIME = {"jpeg": "image/jpeg", "png": "image/png"}  # a live frame's codec -> its picture's type


class RecentFrames:
    """The last ``KEPT_S`` seconds of a session's live frames (codec, encoded picture), by
    index, of its newest microphone stream (epoch): a new stream forgets what came before, and a
    stopped stream's last frames, arriving late, are not taken for the new one's."""

    def __init__(self, seconds: float = KEPT_S) -> None:
        self.limit = int(seconds * FPS)
        self.frames: OrderedDict[int, tuple[str, bytes]] = OrderedDict()
        self.epoch = 0

    def push(self, index: int, codec: str, image: bytes, epoch: int = 0) -> None:
        if epoch < self.epoch:
            return
        if epoch > self.epoch or (self.frames and index <= next(reversed(self.frames))):
            self.frames.clear()
            self.epoch = epoch
        self.frames[index] = (codec, image)
        while len(self.frames) > self.limit:
            self.frames.popitem(last=False)

    def cut(self, start: int, end: int) -> list[tuple[int, str, bytes]]:
        """(index, codec, picture) of the kept frames of the attempt [start, end) in sample
        offsets; a frame never sent (dropped, not made yet) is absent."""
        first, last = frame_at(start), (end - 1) // SAMPLES_PER_FRAME
        return [(index, *self.frames[index]) for index in range(first, last + 1) if index in self.frames]


@dataclass(frozen=True)
class Cut:
    """An attempt as the server kept it, cut when it was asked for: its audio (None: no longer
    kept) and its live frames (index, codec, picture)."""

    audio: np.ndarray | None
    frames: list = field(default_factory=list)

    @classmethod
    def of(cls, audio: RecentAudio | None, frames: RecentFrames | None, start: int, end: int) -> "Cut":
        return cls(audio.cut(start, end) if audio else None, frames.cut(start, end) if frames else [])


def frame_at(sample: int) -> int:
    """The live frame nearest to a sample offset: an attempt starting there has its frame j in live frame frame_at(start) + j."""
    return round(sample / SAMPLES_PER_FRAME)
