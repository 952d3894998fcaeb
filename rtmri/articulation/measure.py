"""Reading the articulation from images (the shared DESIGN.md §5b).

Along each gridline the intensity profile is sampled (bilinear, every ``STEP_PX``) and
compared with the mid level between tissue (the line's ``TISSUE_PERCENTILE`` intensity
within its reach) and air (the frame's ``AIR_PERCENTILE`` intensity). The air gap is the
first run below the mid level, its ends at the sub-sample crossings (for a symmetric blur
the crossing of the mid level is the edge); a gap narrower than the blur never reaches the
air level and is read as its air fraction integrated across the dip (``air_gaps``). A run that begins past
the line's reach is not the constriction (it is the air beyond a closure): the gap is 0.
Where the grid knows a fixed bony wall (hard palate, incisors: as dark as air), the gap
ends there at the latest.

The tongue tip may close where no gridline runs (the synthesizer closes /t d n/ against the
back of the upper incisors, below the last alveolar line: the state's truth counts that contact,
``outlines.tip_contact_px``). ``tip_probes`` adds probe lines in the tongue tip's sector (from
the bisector of the last palatal and the first alveolar line on): the radial fan's own rays
between its lines and continued past the last alveolar line towards the incisors' edge, read
with the same profile logic; a probe closed by the gridlines' criterion closes the tongue tip
as a state's closure does (``state.with_closures``): no gap on its narrowest gridline.

Everything is vectorised over frames and lines: (frames, lines, samples) arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import map_coordinates, minimum_filter1d

from rtmri.articulation import regions as R
from rtmri.articulation.grid import AnalysisGrid, cross

STEP_PX = 0.25
AIR_PERCENTILE = 5.0
TISSUE_PERCENTILE = 95.0
SHALLOW_DIP = 0.75  # a run whose deepest air fraction stays below this is read by depth x width
DIP_MARGIN_PX = 2.0  # how far beyond a shallow run's crossings its width is looked for
FAINT = 0.35  # of the way from air to tissue: a faint structure ends the air here ...
RISE_PX = 1.5  # ... unless the profile rises on to the mid level within this distance (an edge)
FAINT_WIDTH_PX = 1.0  # a structure stays above FAINT this long; noise does not
ROI_FROM = 0.5  # a line's region of interest: from this fraction of its reach to its reach
# The tongue tip's probe lines (tip_probes): rays of the radial fan this fraction of its step
# apart (about a pixel apart where they meet the ridge and the incisors in 96-px frames: a
# contact a pixel wide does not slip between them; half steps find 2-4 % fewer of c20d's), on
# past the last alveolar line this many steps, towards the upper incisors' edge (on the c20d
# speakers' own tracts 1.7 to 2.5 steps past it; their tongues touch the incisors 0.3 to 1.5
# steps past it).
TIP_PROBE_STEP = 0.25
TIP_PROBES_PAST_LAST = 1.5


@dataclass(frozen=True)
class Measures:
    """What the images show, per frame."""

    distance_mm: np.ndarray  # (frames, lines) air gap along every gridline
    degree_mm: dict[str, np.ndarray]  # region -> (frames,) smallest gap in the region
    location: dict[str, np.ndarray]  # region -> (frames,) index of the line where it is smallest
    roi: dict[str, np.ndarray]  # region -> (frames,) mean intensity in [0, 1] of its region of interest
    mm_per_px: float
    tract_lines: np.ndarray  # the distance function's lines (the port's apart)

    def closed(self, region: str) -> np.ndarray:
        """Closure: constriction degree at or below one pixel."""
        return self.degree_mm[region] <= self.mm_per_px + 1e-6


def sample_positions(grid: AnalysisGrid) -> tuple[np.ndarray, np.ndarray]:
    """(s, points): distances along the lines (samples,) px and the points (lines, samples, 2)."""
    s = np.arange(0.0, float(grid.length.max()) + STEP_PX, STEP_PX)
    points = grid.inner[:, None, :] + s[None, :, None] * grid.direction[:, None, :]
    return s, points


def profiles(frames: np.ndarray, grid: AnalysisGrid) -> np.ndarray:
    """(frames, lines, samples) intensities in [0, 1]; NaN past a line's end or outside the image."""
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    s, points = sample_positions(grid)
    h, w = frames.shape[1:]
    xs, ys = points[..., 0].ravel(), points[..., 1].ravel()
    outside = (xs < 0) | (ys < 0) | (xs > w - 1) | (ys > h - 1)
    beyond = (s[None, :] > grid.length[:, None]).ravel()
    scale = 255.0 if frames.dtype == np.uint8 else 1.0
    out = np.empty((len(frames), len(xs)), np.float32)
    for k, frame in enumerate(frames):
        out[k] = map_coordinates(np.asarray(frame, np.float32) / scale, [ys, xs], order=1, mode="nearest")
    out[:, outside | beyond] = np.nan
    return out.reshape(len(frames), len(grid), len(s))


def measure(frames: np.ndarray, grid: AnalysisGrid) -> Measures:
    """The distance function, constriction per region and ROI intensities of uint8 (or [0, 1]) frames."""
    frames = np.asarray(frames)
    if frames.ndim == 2:
        frames = frames[None]
    probes = tip_probes(grid)
    lines = joined(grid, probes) if probes is not None else grid  # one sampling for the gridlines and the probes
    s, _ = sample_positions(lines)
    prof = profiles(frames, lines)
    scale = 255.0 if frames.dtype == np.uint8 else 1.0
    air = np.percentile(frames.reshape(len(frames), -1), AIR_PERCENTILE, axis=1).astype(np.float32) / scale
    gaps_px = air_gaps(prof, s, air, lines.reach, lines.wall)  # line by line: the probes change no gridline's gap
    n = len(grid)
    distance = gaps_px[:, :n] * grid.mm_per_px
    # (the probes are no longer than the alveolar lines: the samples are the gridlines' own; a
    # probe whose window leaves the image reads NaN, not closed)
    if probes is not None:
        distance = shown_closed_at_tip(distance, grid, (gaps_px[:, n:] <= 1.0 + 1e-6).any(axis=1))
    return summarise(distance, grid, roi_intensities(prof[:, :n], s, grid))


def shown_closed_at_tip(distance_mm: np.ndarray, grid: AnalysisGrid, contact: np.ndarray) -> np.ndarray:
    """A probe's contact as a state shows a closure (``state.with_closures``): no gap on the
    tongue tip's narrowest line, so the degree, the closure and the distance function read it
    as they read the true state's."""
    lines = grid.lines_of(R.ALVEOLAR)
    out = distance_mm.copy()
    close_narrowest(out, np.flatnonzero(contact & np.isfinite(out[:, lines]).any(axis=1)), lines)
    return out


def close_narrowest(gaps: np.ndarray, frames: np.ndarray, lines: np.ndarray) -> None:
    """In place: no gap, at each of ``frames``, on the narrowest of ``lines`` (non-finite gaps
    never the narrowest). How a closure is shown on the gridlines."""
    at_place = gaps[np.ix_(frames, lines)]
    gaps[frames, lines[np.argmin(np.where(np.isfinite(at_place), at_place, np.inf), axis=1)]] = 0.0


def tip_probes(grid: AnalysisGrid) -> AnalysisGrid | None:
    """Probe lines in the tongue tip's sector, where the tongue may touch the alveolar ridge or
    the back of the upper incisors between the gridlines; None for a grid without a palatal and
    two alveolar lines. They are the radial fan's own rays (from its centre, as long as its
    lines), every ``TIP_PROBE_STEP`` of its step from the bisector of the last palatal and the
    first alveolar line (the sector's edge, as ``outlines.tip_contact_px`` has it) to
    ``TIP_PROBES_PAST_LAST`` steps past the last alveolar line, the gridlines' own rays left
    out. A probe's window end (reach) and fixed wall lie where it crosses the line through
    those of its two nearest fan lines (the ridge's chord; past the last alveolar line the
    last chord continued, along the back of the incisors), its reach at the first lip line at
    the latest (the sector ends there); NaN walls stay NaN (the gap is read from the image
    alone, as on the gridlines)."""
    palatal, alveolar = grid.lines_of(R.PALATAL), grid.lines_of(R.ALVEOLAR)
    if len(alveolar) < 2 or not len(palatal):
        return None
    fan = np.concatenate([palatal[-1:], alveolar])  # the sector begins halfway between its first two
    z = grid.direction[fan] @ np.array([1.0, 1j])  # the fan's rays as complex numbers: steps by ratios
    step = (z[-1] / z[0]) ** (1.0 / (len(z) - 1))  # the fan is even (its angles a linspace)
    n_steps = int(round((len(z) - 1.5 + TIP_PROBES_PAST_LAST) / TIP_PROBE_STEP))
    position = 0.5 + np.arange(1, n_steps + 1) * TIP_PROBE_STEP  # in steps from the last palatal line
    position = position[(position > len(z) - 1) | (position % 1 != 0)]  # not on the gridlines
    rays = z[0] * step**position
    direction = np.stack([rays.real, rays.imag], axis=1)
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    centre = grid.inner[alveolar[0]]
    length = 0.999 * float(grid.length[fan].min())  # within the gridlines' samples (measure samples them together)
    near = np.minimum(np.floor(position).astype(int), len(z) - 2)  # the pair of fan lines around (or before) each probe
    a, b = fan[near], fan[near + 1]

    def crossing(at_a: np.ndarray, at_b: np.ndarray) -> np.ndarray:
        """Distance along each probe to the line through the points at_a (on line a) and at_b (on line b)."""
        pa = grid.inner[a] + grid.direction[a] * at_a[:, None]
        chord = grid.inner[b] + grid.direction[b] * at_b[:, None] - pa
        with np.errstate(invalid="ignore", divide="ignore"):
            return cross(pa - centre, chord) / cross(direction, chord)

    reach, wall = crossing(grid.reach[a], grid.reach[b]), crossing(grid.wall[a], grid.wall[b])
    lips = grid.lines_of(R.LIPS)
    if len(lips):
        with np.errstate(invalid="ignore", divide="ignore"):
            to_lip = cross(grid.inner[lips[0]] - centre, grid.direction[lips[0]]) / cross(direction, grid.direction[lips[0]])
        reach = np.where(to_lip > 0, np.minimum(reach, to_lip), reach)
    reach = np.minimum(reach, length)
    return AnalysisGrid(np.repeat(centre[None], len(rays), axis=0), centre + direction * length, reach,
                        wall, (R.ALVEOLAR,) * len(rays), grid.mm_per_px, "tongue-tip probes")


def joined(grid: AnalysisGrid, more: AnalysisGrid) -> AnalysisGrid:
    """The grid's lines followed by more lines (sampled and read together)."""
    return AnalysisGrid(np.concatenate([grid.inner, more.inner]), np.concatenate([grid.outer, more.outer]),
                        np.concatenate([grid.reach, more.reach]), np.concatenate([grid.wall, more.wall]),
                        grid.regions + more.regions, grid.mm_per_px, grid.source)



def summarise(distance_mm: np.ndarray, grid: AnalysisGrid, roi: dict[str, np.ndarray]) -> Measures:
    degree, location = {}, {}
    for region in R.REGIONS:
        lines = grid.lines_of(region)
        values = distance_mm[:, lines]
        valid = np.isfinite(values).any(axis=1)
        filled = np.where(np.isfinite(values), values, np.inf)
        degree[region] = np.where(valid, filled.min(axis=1), np.nan)
        location[region] = np.where(valid, lines[np.argmin(filled, axis=1)], -1)
    return Measures(distance_mm, degree, location, roi, grid.mm_per_px, grid.tract_lines)


def air_gaps(prof: np.ndarray, s: np.ndarray, air_level: np.ndarray, reach: np.ndarray, wall: np.ndarray) -> np.ndarray:
    """(frames, lines) gap in px along each line; NaN where the line leaves the image within its reach.

    The first run of samples darker than the mid level after the line's first tissue (the
    grid begins every line in tissue: a dark start is the partial volume of an edge there);
    its ends at the sub-sample crossings
    of the mid level. A run that never gets near the air level (a gap narrower than the blur)
    is read as its depth times its width at half depth (its air, without the noise around it)."""
    n_frames, n_lines, n_samples = prof.shape
    in_reach = s[None, None, :] <= reach[None, :, None]
    usable = ~(np.isnan(prof) & in_reach).any(axis=2)  # the whole window lies in the image
    tissue = percentile_ignoring_nan(np.where(in_reach, prof, np.nan), TISSUE_PERCENTILE)
    air = np.broadcast_to(air_level[:, None], tissue.shape)
    contrast = np.maximum(tissue - air, 1e-3)
    mid = (air + tissue) / 2
    filled = np.where(np.isnan(prof), np.inf, prof)  # past the line's end or the image: not air
    index = np.arange(n_samples)[None, None, :]
    bright = filled >= mid[..., None]
    first_tissue = np.argmax(bright, axis=2)  # every line begins in tissue (tongue, lower lip, behind the wall)
    dark = (filled < mid[..., None]) & (index > first_tissue[..., None])
    has_run = dark.any(axis=2)
    start = np.argmax(dark, axis=2)
    after = ~dark & (index > start[..., None])
    ends_inside = after.any(axis=2)
    end = np.where(ends_inside, np.argmax(after, axis=2), n_samples - 1)

    def crossing(i0, i1, level=mid):
        """Sub-sample position where the profile crosses the level between samples i0 and i1."""
        v0 = np.take_along_axis(filled, i0[..., None], axis=2)[..., 0]
        v1 = np.take_along_axis(filled, i1[..., None], axis=2)[..., 0]
        with np.errstate(invalid="ignore"):
            step = np.where(np.isfinite(v1 - v0) & (v0 != v1), v0 - v1, 1.0)
            return s[i0] + np.clip((v0 - level) / step, 0.0, 1.0) * STEP_PX

    start_px = np.where(start > 0, crossing(np.maximum(start - 1, 0), start), 0.0)
    end_px = np.where(ends_inside, crossing(np.maximum(end - 1, 0), end), s[end])
    # A faint structure (a thin velum, a blurred contact) ends the air before the profile gets
    # back to the mid level: where it rises past FAINT but not on to the mid level within
    # RISE_PX, the run ends at the FAINT crossing (not where a fixed wall ends it anyway).
    faint = air + FAINT * contrast
    deep = (filled < faint[..., None]) & (index >= start[..., None]) & (index < end[..., None])
    core = np.argmax(deep, axis=2)  # where the run first gets down to the air
    width = int(round(FAINT_WIDTH_PX / STEP_PX))
    lasting = minimum_filter1d(np.where(np.isfinite(filled), filled, 0.0), width, axis=2, origin=-(width // 2))
    risen = (lasting > faint[..., None]) & (index > core[..., None])  # stays up for FAINT_WIDTH_PX: not noise
    faint_end = np.where(risen.any(axis=2), np.argmax(risen, axis=2), n_samples - 1)
    early = deep.any(axis=2) & risen.any(axis=2) & (faint_end < end - int(round(RISE_PX / STEP_PX))) & np.isnan(wall)[None, :]
    end_px = np.where(early, crossing(np.maximum(faint_end - 1, 0), faint_end, faint), end_px)
    fraction = np.where(np.isfinite(filled), np.clip((tissue[..., None] - filled) / contrast[..., None], 0.0, 1.0), 0.0)
    in_run = (index >= start[..., None]) & (index < end[..., None])
    deepest = np.where(in_run, fraction, 0.0).max(axis=2)
    near = (s[None, None, :] >= (start_px - DIP_MARGIN_PX)[..., None]) & (s[None, None, :] <= (end_px + DIP_MARGIN_PX)[..., None])
    # a gap w much narrower than the blur is a dip of depth ~ w / (sigma sqrt(2 pi)) and full width
    # at half depth 2.355 sigma: depth x width ~ 0.94 w, with no noise summed from the tissue around
    half_width = (near & (fraction >= deepest[..., None] / 2)).sum(axis=2) * STEP_PX
    gap = np.where(deepest < SHALLOW_DIP, deepest * half_width, end_px - start_px)
    gap = np.where(np.isnan(wall)[None, :], gap, np.minimum(gap, np.maximum(wall[None, :] - start_px, 0.0)))
    gap = np.where(has_run & (start_px <= reach[None, :]), gap, 0.0)
    return np.where(usable, np.maximum(gap, 0.0), np.nan)


def percentile_ignoring_nan(values: np.ndarray, q: float) -> np.ndarray:
    """np.nanpercentile over the last axis (linear interpolation), by one sort: many times faster."""
    ordered = np.sort(values, axis=-1)  # NaN last
    count = np.sum(~np.isnan(values), axis=-1)
    position = q / 100.0 * np.maximum(count - 1, 0)
    low = np.floor(position).astype(int)
    high = np.minimum(low + 1, np.maximum(count - 1, 0))
    below = np.take_along_axis(ordered, low[..., None], axis=-1)[..., 0]
    above = np.take_along_axis(ordered, high[..., None], axis=-1)[..., 0]
    return np.where(count > 0, below + (position - low) * (above - below), np.nan)


def roi_intensities(prof: np.ndarray, s: np.ndarray, grid: AnalysisGrid) -> dict[str, np.ndarray]:
    """Lammert et al. (2010)-style region-of-interest intensity per region and frame: the mean
    intensity of the samples on the region's lines between ROI_FROM of their reach and the reach
    (where the constriction forms)."""
    window = (s[None, :] >= ROI_FROM * grid.reach[:, None]) & (s[None, :] <= grid.reach[:, None])
    out = {}
    for region in R.REGIONS:
        lines = grid.lines_of(region)
        values = np.where(window[lines][None], prof[:, lines], np.nan)
        with np.errstate(invalid="ignore"):
            out[region] = np.nanmean(values.reshape(len(prof), -1), axis=1) if np.isfinite(values).any() else np.full(len(prof), np.nan)
    return out
