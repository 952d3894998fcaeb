"""The collecting sink: a Streamer sink that keeps the frames it is given (references,
evaluation, benchmarks, tests)."""

from __future__ import annotations

import numpy as np


class CollectSink:
    def __init__(self) -> None:
        self.frames: list = []  # rtmri.streamer.frames.Frame, in the order they were made

    def frame(self, frame) -> None:
        self.frames.append(frame)

    @property
    def images(self) -> list[np.ndarray]:
        return [f.image for f in self.frames]

    @property
    def indices(self) -> list[int]:
        return [f.index for f in self.frames]

    def by_index(self) -> dict[int, np.ndarray]:
        return {f.index: f.image for f in self.frames}

    def close(self) -> None:
        pass
