"""Sliding mel windows: audio chunks in, (frame index, mel window) out as soon as each
frame's audio (its timestamp plus the model's lookahead) has arrived; normalised over the
session as the bundle says (its SessionNorm carries the session's statistics)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtmri.alignment import WINDOW_COLUMNS, first_column, n_frames_for_samples, samples_needed, slice_columns
from rtmri.audio import N_MELS, SessionNorm, StreamingMel


@dataclass(frozen=True)
class FrameWindow:
    index: int
    mel: np.ndarray  # (N_MELS, columns)
    audio_end_sample: int  # the newest sample it depends on (exclusive): when it became possible


class FrameWindows:
    """The streaming half of the alignment contract; equals rtmri.alignment.mel_window on
    the whole signal's mel, frame for frame."""

    def __init__(self, lookahead_ms: float, columns: int = WINDOW_COLUMNS, norm: SessionNorm | None = None) -> None:
        self.lookahead_ms = lookahead_ms
        self.columns = columns
        self.mel = StreamingMel()
        self.norm = norm  # the bundle's session normalisation, carried from column to column
        self.next_frame = 0
        self._columns = np.zeros((N_MELS, 0), np.float32)
        self._first_column = 0  # the signal column index of self._columns[:, 0]

    def push(self, chunk: np.ndarray) -> list[FrameWindow]:
        self._append(self.mel.push(chunk))
        received = self.mel.samples_received
        return self._take_while(lambda k: samples_needed(k, self.lookahead_ms) <= received)

    def flush(self) -> list[FrameWindow]:
        """End of audio: the remaining whole frames (their windows padded with silence)."""
        self._append(self.mel.flush())
        total = n_frames_for_samples(self.mel.samples_received)
        return self._take_while(lambda k: k < total)

    @classmethod
    def for_bundle(cls, bundle) -> "FrameWindows":
        """A new session's windows as ``bundle`` (rtmri.bundle.Bundle) takes them."""
        return cls(bundle.lookahead_ms, bundle.window_columns, bundle.session_norm())

    def _append(self, columns: np.ndarray) -> None:
        if columns.shape[1]:
            if self.norm is not None:
                columns = self.norm.push(columns)
            self._columns = np.concatenate((self._columns, columns), axis=1)

    def _take_while(self, ready) -> list[FrameWindow]:
        out = []
        while ready(self.next_frame):
            k = self.next_frame
            start = first_column(k, self.lookahead_ms, self.columns) - self._first_column
            window = slice_columns(self._columns, start, self.columns)
            out.append(FrameWindow(k, window, samples_needed(k, self.lookahead_ms)))
            self.next_frame += 1
        self._forget_before(first_column(self.next_frame, self.lookahead_ms, self.columns))
        return out

    def _forget_before(self, column: int) -> None:
        drop = column - self._first_column
        if drop > 0:
            self._columns = self._columns[:, drop:]
            self._first_column += drop
