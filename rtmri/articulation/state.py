"""The articulatory state of a frame (the shared DESIGN.md §4b): where the articulators are,
on the speaker's analysis grid.

Per gridline (``grid.canonical_lines``: the same lines, in the same order, for every
speaker) the air gap in mm and the position along the line, in mm from its inner end, where
the gap begins (the surface of the tongue, the lower lip or the posterior wall: so a line
says where the articulator is, not only how far it is from the wall); then whether the
tract is closed at the lips, the tongue tip (alveolar) and the tongue dorsum (velar), as a
probability. The velopharyngeal port is the smallest gap on the port lines.

As a vector (what a network predicts and a bundle's ``state`` output holds):
``[gap_mm (L), position_mm (L), closed (3)]``, L = ``N_LINES``. A file ``state.npz`` holds
the three arrays of a clip's frames; synthetic clips get it from the synthesizer's outlines
(``from_geometry``), real ones from the image measure (``from_measures``).

``StateRaster`` draws a state into the picture's pixels on a speaker's grid (air 1 along a
line's gap, tissue 0 elsewhere on the line, ``OFF_GRID`` away from every line): what the
renderer is given, so that the gap lands where this speaker's anatomy has the line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtmri import RtmriError
from rtmri.articulation import regions as R
from rtmri.articulation.grid import AnalysisGrid, canonical_lines
from rtmri.articulation.measure import Measures, close_narrowest, summarise
from rtmri.files import atomic_writer

STATE_FILE = "state.npz"
N_LINES = len(canonical_lines()[2])
CLOSURE_PLACES = (R.LIPS, R.ALVEOLAR, R.VELAR)  # lips, tongue tip, tongue dorsum
CLOSURE_NAMES = {R.LIPS: "lips", R.ALVEOLAR: "tongue tip", R.VELAR: "tongue dorsum"}
STATE_SIZE = 2 * N_LINES + len(CLOSURE_PLACES)
GAP, POSITION, CLOSED = slice(0, N_LINES), slice(N_LINES, 2 * N_LINES), slice(2 * N_LINES, STATE_SIZE)
CLOSED_AT = 0.5  # a closure probability above this is a closure
CONTACT_PX = 1.0  # outlines this near touch: a closure (as a gap of at most one pixel is, Measures.closed)
# How a state's closures are found: 1, a place's gridline gap of at most a pixel; 2, at the
# tongue tip also the outlines' contact between the gridlines (tip_contact_px); 3, a real
# recording's (the image measure's) tongue tip also between the gridlines (measure.tip_probes).
# A state file of an older rule is written again by prepare.
CLOSURE_RULE = 3
OFF_GRID = 0.5  # the raster's value where no gridline runs
RASTER_BAND_PX = 2.0  # a pixel belongs to its nearest line within this distance (96 px frames)
RASTER_EDGE_PX = 0.5  # softness of a gap's ends in the raster


class StateError(RtmriError, ValueError):
    """A state file or vector that does not hold the state of this grid."""


@dataclass(frozen=True)
class ArticulatoryState:
    gap_mm: np.ndarray  # (frames, L) air gap per gridline; NaN where the line leaves the image
    position_mm: np.ndarray  # (frames, L) where along the line the gap begins
    closed: np.ndarray  # (frames, 3) closure probability at CLOSURE_PLACES

    def __len__(self) -> int:
        return len(self.gap_mm)

    def to_vector(self) -> np.ndarray:
        return np.concatenate([self.gap_mm, self.position_mm, self.closed], axis=1).astype(np.float32)

    @classmethod
    def from_vector(cls, vector: np.ndarray) -> "ArticulatoryState":
        vector = np.asarray(vector, np.float32)
        if vector.ndim != 2 or vector.shape[1] != STATE_SIZE:
            raise StateError(f"a state vector has {STATE_SIZE} values per frame, got shape {vector.shape}")
        return cls(vector[:, GAP], vector[:, POSITION], vector[:, CLOSED])

    def closed_at(self, place: str) -> np.ndarray:
        return self.closed[:, CLOSURE_PLACES.index(place)] > CLOSED_AT

    def port_mm(self, grid: AnalysisGrid) -> np.ndarray:
        """(frames,) velopharyngeal port opening."""
        return np.nanmin(self.gap_mm[:, grid.lines_of(R.VELOPHARYNGEAL)], axis=1)

    def measures(self, grid: AnalysisGrid) -> Measures:
        """The state as the image measure reports a frame (no ROI intensities): so the state
        is scored with the same comparisons as pictures. A predicted closure sets the
        constriction degree of its region to 0."""
        distance = with_closures(self.to_vector(), grid)[:, GAP].astype(np.float64)
        return summarise(distance, grid, {region: np.full(len(self), np.nan) for region in R.REGIONS})

    def save(self, path: Path) -> None:
        with atomic_writer(Path(path)) as handle:
            np.savez_compressed(handle, gap_mm=self.gap_mm.astype(np.float32), position_mm=self.position_mm.astype(np.float32),
                                closed=self.closed.astype(np.float32), closure_rule=np.int32(CLOSURE_RULE))


def load(path: Path) -> ArticulatoryState:
    try:
        with np.load(path) as data:
            state = ArticulatoryState(data["gap_mm"], data["position_mm"], data["closed"])
    except (OSError, ValueError, KeyError) as exc:
        raise StateError(f"{path}: cannot read the articulatory state ({exc})") from exc
    if state.gap_mm.shape[1:] != (N_LINES,) or state.position_mm.shape != state.gap_mm.shape or state.closed.shape != (len(state), 3):
        raise StateError(f"{path}: expected ({N_LINES},) gaps and positions and 3 closures per frame, got "
                         f"{state.gap_mm.shape}, {state.position_mm.shape}, {state.closed.shape}")
    return state


def closure_rule(path: Path) -> int:
    """The CLOSURE_RULE a state file was written with (1 before files recorded it)."""
    try:
        with np.load(path) as data:
            return int(data["closure_rule"]) if "closure_rule" in data.files else 1
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot read the articulatory state ({exc})") from exc


def from_measures(measures: Measures, positions_px: np.ndarray | None = None) -> ArticulatoryState:
    """The state of measured frames (real recordings: the image measure of DESIGN §5b)."""
    gap = np.asarray(measures.distance_mm, np.float32)
    position = np.full_like(gap, np.nan) if positions_px is None else np.asarray(positions_px, np.float32) * measures.mm_per_px
    closed = np.stack([measures.closed(place) for place in CLOSURE_PLACES], axis=1).astype(np.float32)
    return ArticulatoryState(gap, position, closed)


def from_geometry(arrays: dict[str, np.ndarray], grid: AnalysisGrid, shape: tuple[int, int]) -> ArticulatoryState:
    """The state of every frame from the synthesizer's outlines (``rtmri.articulation.outlines``)."""
    from rtmri.articulation.outlines import tip_contact_px, true_spans  # scikit-image: not in the runtime install that draws states

    if len(grid) != N_LINES:
        raise StateError(f"grid {grid.source!r} has {len(grid)} lines, the state is defined on {N_LINES}")
    gaps_px, starts_px = true_spans(arrays, grid, shape)
    gap = (gaps_px * grid.mm_per_px).astype(np.float32)
    measures = summarise(gap.astype(np.float64), grid, {region: np.full(len(gap), np.nan) for region in R.REGIONS})
    closed = np.stack([measures.closed(place) for place in CLOSURE_PLACES], axis=1)
    contact = tip_contact_px(arrays, grid)
    if contact is not None:
        closed[:, CLOSURE_PLACES.index(R.ALVEOLAR)] |= contact <= CONTACT_PX
    return ArticulatoryState(gap, (starts_px * grid.mm_per_px).astype(np.float32), closed.astype(np.float32))


# Per region of ``regions.REGIONS``, its lines' indices into the state's gaps (the canonical grid's order).
REGION_LINES = tuple(np.flatnonzero(np.array(canonical_lines()[2]) == region) for region in R.REGIONS)


def with_closures(states: np.ndarray, grid: AnalysisGrid) -> np.ndarray:
    """(B, STATE_SIZE) state vectors with each predicted closure (probability above CLOSED_AT)
    made a contact: no gap on the narrowest line of its place. How a state is scored
    (ArticulatoryState.measures) and drawn (rtmri.bundle.engine): a network's gap regression
    averages a stop's brief closure away, its closure head is trained not to."""
    out = np.array(states, np.float32, copy=True)
    for k, place in enumerate(CLOSURE_PLACES):
        shut = np.flatnonzero(out[:, CLOSED][:, k] > CLOSED_AT)
        if len(shut):
            close_narrowest(out, shut, grid.lines_of(place))
    return out


def constrictions(states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, STATE_SIZE) state vectors -> (constriction degree in mm per region of
    ``regions.REGIONS``, float32 (B, len(REGIONS)); closures at ``CLOSURE_PLACES``, bool (B, 3)).

    A region's degree is its smallest gap (lines without a finite gap left out; NaN when none
    has one), at least 0: a network's regression may undershoot. A closed place (probability
    above ``CLOSED_AT``) gives 0 at its region. Numpy only: what the streamer sends the page."""
    vectors = np.asarray(states, np.float32)
    if vectors.ndim != 2 or vectors.shape[1] != STATE_SIZE:
        raise StateError(f"a state vector has {STATE_SIZE} values per frame, got shape {vectors.shape}")
    gaps = vectors[:, GAP]
    filled = np.where(np.isfinite(gaps), np.maximum(gaps, 0.0), np.inf)
    degree = np.stack([filled[:, lines].min(axis=1) for lines in REGION_LINES], axis=1)
    degree[np.isinf(degree)] = np.nan
    closed = vectors[:, CLOSED] > CLOSED_AT  # NaN: not closed
    for k, place in enumerate(CLOSURE_PLACES):
        degree[closed[:, k], R.REGIONS.index(place)] = 0.0
    return degree, closed


class StateRaster:
    """Draws states into a speaker's pixels: per pixel near a gridline, that line and the
    distance along it; tables made once per grid and image size."""

    def __init__(self, grid: AnalysisGrid, size: int) -> None:
        if len(grid) != N_LINES:
            raise StateError(f"grid {grid.source!r} has {len(grid)} lines, the state is defined on {N_LINES}")
        ys, xs = np.mgrid[0:size, 0:size]
        pixels = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
        rel = pixels[:, None, :] - grid.inner[None, :, :]  # (P, L, 2)
        along = np.einsum("plc,lc->pl", rel, grid.direction)
        across = np.abs(rel[..., 0] * grid.direction[None, :, 1] - rel[..., 1] * grid.direction[None, :, 0])
        on_line = (along >= 0) & (along <= grid.length[None, :])
        across = np.where(on_line, across, np.inf)
        nearest = np.argmin(across, axis=1)
        self.size = size
        self.mm_per_px = grid.mm_per_px
        self.pixels = np.flatnonzero(across[np.arange(len(pixels)), nearest] <= RASTER_BAND_PX)
        self.line = nearest[self.pixels]
        self.along_mm = (along[self.pixels, self.line] * grid.mm_per_px).astype(np.float32)

    def band(self, lines: np.ndarray) -> np.ndarray:
        """bool (S, S): the pixels drawn for these gridlines (within RASTER_BAND_PX of them)."""
        mask = np.zeros(self.size * self.size, bool)
        mask[self.pixels[np.isin(self.line, lines)]] = True
        return mask.reshape(self.size, self.size)

    def draw(self, states: np.ndarray) -> np.ndarray:
        """(frames, STATE_SIZE) state vectors -> float32 (frames, S, S) in [0, 1]."""
        states = np.asarray(states, np.float32)
        gap = np.nan_to_num(states[:, GAP], nan=0.0)[:, self.line]
        start = np.nan_to_num(states[:, POSITION], nan=0.0)[:, self.line]
        edge = RASTER_EDGE_PX * self.mm_per_px
        s = self.along_mm[None, :]
        with np.errstate(over="ignore"):
            air = 1.0 / (1.0 + np.exp(-(s - start) / edge)) / (1.0 + np.exp(-(start + gap - s) / edge))
        out = np.full((len(states), self.size * self.size), OFF_GRID, np.float32)
        out[:, self.pixels] = air
        return out.reshape(len(states), self.size, self.size)
