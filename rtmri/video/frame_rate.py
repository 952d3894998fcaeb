"""Frame-rate conversion to 25 fps by timestamp.

Output frame k stands for the instant k / 25 s (the shared DESIGN.md §3), source frame i for its
presentation time t_i (relative to the first frame; the audio starts there too). Output
frames are computed from the source frames around their instant, by timestamp, with a
linear (triangle) interpolation kernel:

- source at or below 25 fps (14, 23.18 fps: more output frames than source frames): the
  linear blend of the two source frames around k/25. With t_i <= k/25 < t_{i+1} and
  w = (k/25 - t_i) / (t_{i+1} - t_i), frame_k = (1 - w) frame_i + w frame_{i+1}.
- source above 25 fps (27, 83.28 fps): the same triangle kernel, widened to the output
  period: the weighted mean of the source frames within +-40 ms of k/25, weight
  1 - |t_i - k/25| x 25. (A two-neighbour blend there would be a point sample that
  ignores the frames in between: at 83.28 fps two of every three source frames, so a
  short movement, or a test flash, could vanish from the output entirely.)

Results are rounded to uint8. Before the first source frame the first is held, after the
last the last. A source frame exactly at an output instant passes unchanged at 25 fps or
below (w = 0).

Why linear rather than nearest: the study's sources run at 14 or 27 fps (USC's at 23.18
and 83.28), so most output instants fall between two source frames. Nearest-neighbour
shifts each output frame's content by up to half a source period (+-36 ms at 14 fps,
nearly one output frame) in a pattern that shows some source frames once and others twice
(14 -> 25 fps): a sync jitter the SyncNet expert would learn as audio-visual offset, and a
judder the generator would learn as motion. The linear kernel keeps each output frame's
content centred on its instant (zero error for a linear motion) and changes smoothly; its
cost is a cross-fade, a faint double contour where the tongue moves fast between two
source frames. ``--interpolation nearest`` is available for comparison (it takes the
source frame closest in time, also above 25 fps).
"""

from __future__ import annotations

import numpy as np

from rtmri.alignment import FPS

INTERPOLATIONS = ("linear", "nearest")


class FrameRateConverter:
    """Push source frames (timestamp, image) in presentation order; ``finish`` returns the
    ``n_out`` frames at ``fps`` as uint8 (n_out, H, W). source_fps (the nominal rate, None
    if unknown) selects the widened kernel above ``fps``. Memory: the output and the few
    source frames inside the kernel."""

    def __init__(self, n_out: int, method: str = "linear", fps: float = FPS, source_fps: float | None = None) -> None:
        if method not in INTERPOLATIONS:
            raise ValueError(f"interpolation {method!r}; choose one of {', '.join(INTERPOLATIONS)}")
        self.n_out = int(n_out)
        self.method = method
        self.fps = float(fps)
        shrinking = source_fps is not None and source_fps > self.fps * (1 + 1e-6)
        # half-width of the triangle kernel when the source is faster than the output
        self.half_width = 1.0 / self.fps if (method == "linear" and shrinking) else None
        self._out: np.ndarray | None = None
        self._next = 0  # next output frame to fill
        self._frames: list[tuple[float, np.ndarray]] = []

    def push(self, t: float, image: np.ndarray) -> None:
        if self._out is None:
            self._out = np.empty((self.n_out,) + image.shape, np.uint8)
        self._frames.append((float(t), image))
        self._emit(final=False)

    def finish(self) -> np.ndarray:
        if self._out is None:
            raise ValueError("no source frames were pushed")
        self._emit(final=True)
        return self._out

    def _emit(self, final: bool) -> None:
        newest = self._frames[-1][0]
        while self._next < self.n_out:
            tk = self._next / self.fps
            if not final:
                # every source frame the output frame depends on must have arrived
                needed_until = tk + self.half_width if self.half_width else tk
                if newest <= needed_until:
                    break
            self._out[self._next] = self._frame_at(tk)
            self._next += 1
            self._forget(self._next / self.fps)

    def _forget(self, tk: float) -> None:
        """Drop source frames no later output frame (at tk or after) can use."""
        reach = self.half_width or 0.0
        frames = self._frames
        drop = 0
        while drop + 1 < len(frames) and frames[drop + 1][0] <= tk and frames[drop][0] <= tk - reach:
            drop += 1
        if drop:
            del frames[:drop]

    def _frame_at(self, tk: float) -> np.ndarray:
        frames = self._frames
        weights = self._weights([t for t, _ in frames], tk)
        if len(weights) == 1:
            return frames[weights[0][0]][1]
        acc = np.zeros(frames[0][1].shape, np.float32)
        for index, w in weights:
            acc += np.float32(w) * frames[index][1].astype(np.float32)
        return _to_uint8(acc)

    def _weights(self, times: list[float], tk: float) -> list[tuple[int, float]]:
        """The kernel: (index into times, weight) of the source frames that make output instant tk."""
        i = int(np.searchsorted(times, tk, side="right")) - 1  # last frame at or before tk
        if self.half_width:
            weights = [max(0.0, 1.0 - abs(t - tk) / self.half_width) for t in times]
            total = sum(weights)
            if total > 0:
                return [(j, w / total) for j, w in enumerate(weights) if w > 0]
        if i < 0:
            return [(0, 1.0)]
        if i == len(times) - 1:
            return [(i, 1.0)]
        t0, t1 = times[i], times[i + 1]
        w = (tk - t0) / (t1 - t0)
        if self.method == "nearest":
            return [(i, 1.0)] if w < 0.5 else [(i + 1, 1.0)]
        if w <= 0.0:
            return [(i, 1.0)]
        return [(i, 1.0 - w), (i + 1, w)]


def weight_matrix(timestamps, n_out: int, method: str = "linear", fps: float = FPS, source_fps: float | None = None) -> np.ndarray:
    """(n_out, n_source) weights of the conversion: output k = sum_i W[k, i] source_i. The same
    kernel the images go through, for anything else sampled with the frames (e.g. outlines)."""
    converter = FrameRateConverter(n_out, method, fps, source_fps)
    times = [float(t) for t in timestamps]
    matrix = np.zeros((int(n_out), len(times)))
    for k in range(int(n_out)):
        for index, w in converter._weights(times, k / converter.fps):
            matrix[k, index] = w
    return matrix


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def convert(timestamps, images, n_out: int, method: str = "linear", fps: float = FPS, source_fps: float | None = None) -> np.ndarray:
    """Array version: images (n, H, W) at timestamps (n,) -> (n_out, H, W) at fps."""
    converter = FrameRateConverter(n_out, method, fps, source_fps)
    for t, image in zip(timestamps, images):
        converter.push(float(t), np.asarray(image))
    return converter.finish()
