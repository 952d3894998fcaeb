"""Attempt -> reference time alignment: DTW on the model's own audio features.

Both recordings are cut to their speech (rtmri.lessons.activity, with ``MARGIN_S`` either
side), each mel band has its mean over the speech removed (a different voice or microphone
shifts whole bands; the sounds are in the changes), and librosa's DTW finds the cheapest
monotonic path. The path gives, for every instant of the reference, the instant of the
attempt said at the same point of the words; outside the speech the two run on at the same
pace.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import librosa
import numpy as np

from rtmri.audio import MEL_COLUMNS_PER_SECOND, melspectrogram
from rtmri.lessons.activity import Activity

MARGIN_S = 0.1


@dataclass(frozen=True)
class Alignment:
    reference_s: np.ndarray  # increasing instants of the reference ...
    attempt_s: np.ndarray  # ... and the attempt's instants said at the same point (non-decreasing)
    cost: float  # mean feature distance along the path
    # (reference start s, end s, attempt instant) of each reference column the attempt lingers on
    # (several of its columns paired with it): where its held columns turn from the sound before
    # that column to the sound after it
    held: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    def boundary_time(self, reference_s) -> np.ndarray:
        """Attempt instants of boundaries between phones: as attempt_time, but a boundary inside a
        column the attempt lingers on goes where the held sound turns (a 50 ms analysis window
        straddles the boundary, so the column's own share of the time says nothing of it)."""
        t = np.asarray(reference_s, float)
        out = self.attempt_time(t)
        for start, end, turn in self.held:
            out = np.where((t >= start) & (t < end), turn, out)
        return out

    def attempt_time(self, reference_s) -> np.ndarray:
        """Attempt instants for reference instants; beyond the path both advance together."""
        t = np.asarray(reference_s, float)
        inside = np.interp(t, self.reference_s, self.attempt_s)
        before = self.attempt_s[0] + (t - self.reference_s[0])
        after = self.attempt_s[-1] + (t - self.reference_s[-1])
        return np.where(t < self.reference_s[0], before, np.where(t > self.reference_s[-1], after, inside))


def speech_columns(wav: np.ndarray, span: Activity) -> tuple[np.ndarray, int]:
    """Mean-removed mel columns of the speech (with its margin) and the first column's index."""
    mel = melspectrogram(wav)
    first = max(0, int((span.start_s - MARGIN_S) * MEL_COLUMNS_PER_SECOND))
    last = min(mel.shape[1], int(np.ceil((span.end_s + MARGIN_S) * MEL_COLUMNS_PER_SECOND)))
    columns = mel[:, first:last]
    return columns - columns.mean(axis=1, keepdims=True), first


def align(reference: np.ndarray, reference_span: Activity, attempt: np.ndarray, attempt_span: Activity) -> Alignment:
    ref, ref_first = speech_columns(reference, reference_span)
    att, att_first = speech_columns(attempt, attempt_span)
    cost, path = librosa.sequence.dtw(X=ref, Y=att, metric="euclidean")
    return path_alignment(path[::-1], ref_first, att_first, float(cost[-1, -1] / len(path)))  # librosa gives it end first


def path_alignment(path: np.ndarray, ref_first: int, att_first: int, cost: float, ref: np.ndarray | None = None,
                   att: np.ndarray | None = None) -> Alignment:
    """The alignment a DTW path (reference column, attempt column; in order) gives, edge to edge:
    the edge before reference column k goes to the edge between the last attempt column paired
    with k - 1 and the first paired with k. Where the attempt lingers (several of its columns
    paired with one reference column), the extra time stays inside that column: a vowel held
    two morae is as long as the attempt holds it, not spread half onto the phone before it."""
    n_ref = int(path[-1, 0]) + 1
    columns = np.arange(n_ref)
    first = path[np.searchsorted(path[:, 0], columns, side="left"), 1].astype(float)
    last = path[np.searchsorted(path[:, 0], columns, side="right") - 1, 1].astype(float)
    # edge k: between last[k-1] + 1 and first[k] (the same instant on a diagonal step; mid-column
    # where one attempt column is paired with both)
    edges = np.concatenate([[first[0]], (last[:-1] + 1 + first[1:]) / 2, [last[-1] + 1]])
    edges = np.maximum.accumulate(edges)
    reference_s = column_start_s(np.arange(n_ref + 1), ref_first)
    attempt_s = column_start_s(edges, att_first)
    held = held_turns(first, last, ref, att) if ref is not None and att is not None else np.zeros((0, 2))
    spans = np.column_stack([column_start_s(held[:, 0], ref_first), column_start_s(held[:, 0] + 1, ref_first),
                             column_start_s(held[:, 1], att_first)])
    return Alignment(reference_s, attempt_s, cost, spans)


def column_start_s(columns, first: int) -> np.ndarray:
    """The instant (s) where a (fractional) column of speech starting at column ``first`` begins:
    column k spans [k - 1/2, k + 1/2) on either clock (its centre at k: the columns' instants)."""
    return (np.asarray(columns, float) - 0.5 + first) / MEL_COLUMNS_PER_SECOND


def held_turns(first: np.ndarray, last: np.ndarray, ref: np.ndarray, att: np.ndarray) -> np.ndarray:
    """(reference column, attempt column starting the turn) for each reference column paired
    with several attempt columns (first..last of them; ref, att: the spectra the path was found
    on): the split that best divides them into those like the reference column before
    and those like the one after (least summed distance)."""
    out = []
    for k in np.flatnonzero(last > first):
        before, after = ref[:, max(k - 1, 0)], ref[:, min(k + 1, ref.shape[1] - 1)]
        columns = att[:, int(first[k]) : int(last[k]) + 1]
        to_before = np.linalg.norm(columns - before[:, None], axis=0)
        to_after = np.linalg.norm(columns - after[:, None], axis=0)
        # split s: columns [0, s) go with the column before, [s, n) with the one after
        costs = np.concatenate([[0.0], np.cumsum(to_before)]) + np.concatenate([np.cumsum(to_after[::-1])[::-1], [0.0]])
        out.append((k, first[k] + int(np.argmin(costs))))
    return np.array(out, float).reshape(-1, 2)
