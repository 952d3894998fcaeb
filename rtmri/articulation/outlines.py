"""The synthesizer's outlines of each frame (the ground truth of the articulation), the
clip's copy of them, and the air gaps they give along a grid.

A geometry file (``geometry.npz``) holds float32 arrays of (x, y) points in the pixels of
the video it goes with (pixel centres at whole numbers):

- ``outline_<part>`` (frames, points, 2): VocalTractLab's outlines: tongue, upper (velum,
  hard palate, upper incisor, upper lip), lower (floor of the mouth, lower incisor, lower
  lip), uvula, pharynx_wall, epiglottis, larynx;
- ``shape_<name>`` (frames, points, 2): the filled shapes the frame was drawn with, in
  drawing order (``SHAPE_ORDER``): what is air and what is tissue at every point;
- ``static_<name>`` (1, points, 2): the fixed shapes around the tract that border the air.

``prepare`` carries the file through the clip's crop, resize and 25 fps conversion (the
frames' own kernel, ``rtmri.video.frame_rate.weight_matrix``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import binary_closing
from skimage.measure import points_in_poly

from rtmri import RtmriError
from rtmri.articulation import regions as R
from rtmri.articulation.grid import AnalysisGrid, cross
from rtmri.files import atomic_writer

GEOMETRY_FILE = "geometry.npz"
TRUTH_STEP_PX = 0.1  # the true gaps are read at this spacing along the lines (the exact rule: first_gap_along)
CONTACT_STEP_PX = 0.1  # outlines are compared at points this far apart (tip_contact_px)
# Tissue thinner than this between two air spaces (where two drawn shapes nearly meet) is
# below what the blurred image can show: the air spaces count as one.
MIN_TISSUE_MM = 1.5
# (name, is air): later shapes cover earlier ones, as the renderer draws them. "head" is the
# skin: outside it is air.
SHAPE_ORDER = (
    ("static_nasal_air", True), ("static_bone", False), ("shape_velum", False), ("shape_airway", True),
    ("shape_tongue", False), ("shape_epiglottis", False), ("shape_lower_incisor", False),
)


class GeometryError(RtmriError, ValueError):
    """A geometry file that cannot be read or does not fit its frames."""


def save(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_writer(Path(path)) as handle:
        np.savez_compressed(handle, **{k: np.asarray(v, np.float32) for k, v in arrays.items()})


def load(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, KeyError) as exc:
        raise GeometryError(f"{path}: cannot read the geometry ({exc})") from exc


def n_frames(arrays: dict[str, np.ndarray]) -> int:
    return max(len(v) for k, v in arrays.items() if not k.startswith("static_"))


def map_points(arrays: dict[str, np.ndarray], matrix, offset) -> dict[str, np.ndarray]:
    matrix, offset = np.asarray(matrix, float), np.asarray(offset, float)
    return {k: (v @ matrix.T + offset).astype(np.float32) for k, v in arrays.items()}


def to_clip(arrays: dict[str, np.ndarray], crop, size: int) -> dict[str, np.ndarray]:
    """Source-frame pixels -> the pixels of the frames cropped to crop [x, y, w, h], resized to size."""
    x, y, w, _ = crop
    factor = size / w
    return map_points(arrays, np.eye(2) * factor, (-np.array([x, y], float) + 0.5) * factor - 0.5)


def in_time(arrays: dict[str, np.ndarray], weights: np.ndarray) -> dict[str, np.ndarray]:
    """Apply a frame-rate conversion's (n_out, n_source) weights to every per-frame array."""
    out = {}
    for key, value in arrays.items():
        if key.startswith("static_"):
            out[key] = value
        elif len(value) != weights.shape[1]:
            raise GeometryError(f"{key}: {len(value)} frames of outlines, the video has {weights.shape[1]}")
        else:
            out[key] = np.einsum("ki,ipc->kpc", weights, value.astype(np.float64)).astype(np.float32)
    return out


def frames_slice(arrays: dict[str, np.ndarray], start: int, end: int) -> dict[str, np.ndarray]:
    return {k: (v if k.startswith("static_") else v[start:end]) for k, v in arrays.items()}


def air_along(arrays: dict[str, np.ndarray], points: np.ndarray, frame: int) -> np.ndarray:
    """Whether each point (..., 2) is air in the frame, by the shapes in drawing order."""
    flat = points.reshape(-1, 2)
    air = ~points_in_poly(flat, arrays["shape_head"][frame]) if "shape_head" in arrays else np.zeros(len(flat), bool)
    for key, is_air in SHAPE_ORDER:
        for name in sorted(k for k in arrays if k == key or k.startswith(key + "_")):
            polygon = arrays[name][0 if name.startswith("static_") else frame]
            inside = points_in_poly(flat, polygon)
            air = np.where(inside, is_air, air)
    return air.reshape(points.shape[:-1])


def close_slivers(air: np.ndarray, step: float, min_tissue: float) -> np.ndarray:
    """(lines, samples) air: runs of tissue shorter than min_tissue between air become air."""
    width = int(round(min_tissue / step))
    closed = binary_closing(air, structure=np.ones((1, width + 1), bool))
    return closed | air


def crossings(polygon: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> list[np.ndarray]:
    """Per line (origin + t * direction), the sorted t where it crosses the polygon's edges."""
    dense = crossings_dense(polygon, origins, directions)
    return [row[np.isfinite(row)] for row in dense]


def crossings_dense(polygon: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """(lines, edges): each line's crossing parameters t, sorted, +inf past the last crossing."""
    a = np.asarray(polygon, float)
    edge = np.roll(a, -1, axis=0) - a  # (E, 2)
    rel = a[None, :, :] - origins[:, None, :]  # (L, E, 2)
    denom = cross(directions[:, None, :], edge[None, :, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = cross(rel, edge[None, :, :]) / denom
        u = cross(rel, directions[:, None, :]) / denom
    valid = (np.abs(denom) > 1e-12) & (u >= 0) & (u < 1)
    return np.sort(np.where(valid, t, np.inf), axis=1)


def _shapes_in_order(arrays: dict[str, np.ndarray], frame: int) -> list[tuple[np.ndarray, bool]]:
    shapes = [(arrays["shape_head"][frame], False)] if "shape_head" in arrays else []
    for key, is_air in SHAPE_ORDER:
        for name in sorted(k for k in arrays if k == key or k.startswith(key + "_")):
            shapes.append((arrays[name][0 if name.startswith("static_") else frame], is_air))
    return shapes


def first_gap_along(shapes: list[tuple[np.ndarray, bool]], grid: AnalysisGrid) -> np.ndarray:
    """(lines,) px: the first air run after each line's first tissue, by exact crossings with the shapes (outside
    the first shape, the head, is air), tissue thinner than MIN_TISSUE_MM between air counted as
    air, 0 if the run begins past the line's reach, ended at the latest at a fixed wall."""
    origins, directions, lengths = grid.inner, grid.direction, grid.length
    per_shape = [(crossings(polygon, origins, directions), is_air) for polygon, is_air in shapes]
    gaps = np.zeros(len(grid))
    for line in range(len(grid)):
        cuts = np.unique(np.clip(np.concatenate([[0.0, lengths[line]]] + [c[line] for c, _ in per_shape]), 0.0, lengths[line]))
        middles = (cuts[:-1] + cuts[1:]) / 2
        air = np.ones(len(middles), bool) if shapes and shapes[0][1] is False else np.zeros(len(middles), bool)
        for cut, is_air in per_shape:
            inside = np.searchsorted(cut[line], middles) % 2 == 1
            air = np.where(inside, is_air, air)
        gaps[line] = _first_run(cuts, air, grid.reach[line], grid.wall[line], MIN_TISSUE_MM / grid.mm_per_px)
    return gaps


def _first_run(cuts: np.ndarray, air: np.ndarray, reach: float, wall: float, min_tissue: float) -> float:
    widths = np.diff(cuts)
    thin = (~air) & (widths < min_tissue)
    inner = np.zeros(len(air), bool)
    inner[1:-1] = thin[1:-1] & air[:-2] & air[2:]
    air = air | inner
    tissue = np.flatnonzero(~air)
    if tissue.size == 0 or not air[tissue[0]:].any():
        return 0.0
    first = tissue[0] + int(np.argmax(air[tissue[0]:]))  # the lines begin in tissue: air before it is not the gap
    last = first
    while last + 1 < len(air) and air[last + 1]:
        last += 1
    start, end = cuts[first], cuts[last + 1]
    if start > reach:
        return 0.0
    if not np.isnan(wall):
        end = min(end, max(wall, start))
    return float(end - start)


def true_gaps(arrays: dict[str, np.ndarray], grid: AnalysisGrid, shape: tuple[int, int]) -> np.ndarray:
    """(frames, lines) air gap in px along each gridline of frames of ``shape`` (H, W), from the
    drawn shapes: the same rule as ``first_gap_along``, on the lines sampled every
    TRUTH_STEP_PX (all lines at once); NaN where the line's window leaves the image, as for
    the image measure."""
    return true_spans(arrays, grid, shape)[0]


def true_spans(arrays: dict[str, np.ndarray], grid: AnalysisGrid, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(gaps, starts): ``true_gaps`` and, per frame and line, where along the line (px from its
    inner end) the gap begins; a closed line's start is where its first air run would begin
    (the articulator's surface), or its reach when the line has no air at all."""
    ends = grid.inner + grid.direction * np.minimum(grid.reach, grid.length)[:, None]
    inside = lambda p: (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= shape[1] - 1) & (p[:, 1] <= shape[0] - 1)  # noqa: E731
    usable = inside(grid.inner) & inside(ends)
    s = np.arange(0.0, float(grid.length.max()) + TRUTH_STEP_PX, TRUTH_STEP_PX)
    n_lines, index = len(grid), np.arange(len(s))[None, :]
    on_line = s[None, :] <= grid.length[:, None]
    closing = np.ones((1, max(1, int(round(MIN_TISSUE_MM / grid.mm_per_px / TRUTH_STEP_PX))) + 1), bool)
    out = np.zeros((n_frames(arrays), n_lines))
    starts = np.zeros_like(out)
    for frame in range(len(out)):
        air = np.zeros((n_lines, len(s)), bool)
        for number, (polygon, is_air) in enumerate(_shapes_in_order(arrays, frame)):
            inside_shape = _inside_along(polygon, grid, s)
            air = np.where(inside_shape, is_air, ~inside_shape if number == 0 and "shape_head" in arrays else air)
        air = (binary_closing(air, closing) | air) & on_line
        tissue = ~air & on_line
        first_tissue = np.argmax(tissue, axis=1)
        after_tissue = air & (index > first_tissue[:, None]) & tissue.any(axis=1)[:, None]
        has = after_tissue.any(axis=1)
        start = np.argmax(after_tissue, axis=1)
        closed_again = ~air & (index > start[:, None])
        end = np.where(closed_again.any(axis=1), np.argmax(closed_again, axis=1), len(s) - 1)
        start_px, end_px = s[start], s[end]
        end_px = np.where(np.isnan(grid.wall), end_px, np.minimum(end_px, np.maximum(grid.wall, start_px)))
        out[frame] = np.where(has & (start_px <= grid.reach), end_px - start_px, 0.0)
        starts[frame] = np.where(has, np.minimum(start_px, grid.reach), grid.reach)
    out[:, ~usable] = np.nan
    starts[:, ~usable] = np.nan
    return out, starts


def tip_contact_px(arrays: dict[str, np.ndarray], grid: AnalysisGrid) -> np.ndarray | None:
    """(frames,) px: how near the tongue's outline comes to the upper outline in the tongue
    tip's sector, from the bisector of the last palatal and the first alveolar gridline forward
    to the first lip line (the alveolar ridge and the back of the upper incisors); None without
    the outlines. The synthesizer closes /t d n/ behind the incisors, between the last alveolar
    line and the first lip line, where no gridline runs: the gaps alone read most of those
    closures as open."""
    if "outline_tongue" not in arrays or "outline_upper" not in arrays:
        return None
    palatal, alveolar, lips = (grid.lines_of(region) for region in (R.PALATAL, R.ALVEOLAR, R.LIPS))
    centre = grid.inner[alveolar[0]]
    bisector = grid.direction[palatal[-1]] + grid.direction[alveolar[0]]
    forward = np.sign(cross(bisector, grid.direction[alveolar[-1]]))
    lip_line, lip_direction = grid.inner[lips[0]], grid.direction[lips[0]]
    behind = np.sign(cross(lip_direction, centre - lip_line))
    out = np.full(n_frames(arrays), np.inf)
    for frame in range(len(out)):
        upper = _densified(arrays["outline_upper"][frame], CONTACT_STEP_PX)
        sector = (np.sign(cross(bisector, upper - centre)) == forward) & (np.sign(cross(lip_direction, upper - lip_line)) == behind)
        if sector.any():
            out[frame] = distances_to_polyline(upper[sector], arrays["outline_tongue"][frame]).min()
    return out


def distances_to_polyline(points: np.ndarray, polyline: np.ndarray) -> np.ndarray:
    """(n,): each point's (n, 2) distance to the nearest of the polyline's segments (its
    non-finite points left out)."""
    polyline = polyline[np.all(np.isfinite(polyline), axis=1)]
    a, b = polyline[:-1], polyline[1:]
    ab = b - a
    t = np.clip(((points[:, None, :] - a[None]) * ab[None]).sum(axis=2) / np.maximum((ab**2).sum(axis=1), 1e-12)[None], 0, 1)
    nearest = a[None] + t[..., None] * ab[None]
    return np.sqrt(((points[:, None, :] - nearest) ** 2).sum(axis=2)).min(axis=1)


def _densified(polyline: np.ndarray, step: float) -> np.ndarray:
    """The polyline's vertices and points every ``step`` along each of its segments."""
    polyline = polyline[np.all(np.isfinite(polyline), axis=1)]
    pieces = [polyline[-1:]]
    for a, b in zip(polyline[:-1], polyline[1:]):
        n = max(1, int(np.ceil(np.linalg.norm(b - a) / step)))
        pieces.append(a + (b - a) * (np.arange(n) / n)[:, None])
    return np.concatenate(pieces)


def _inside_along(polygon: np.ndarray, grid: AnalysisGrid, s: np.ndarray) -> np.ndarray:
    """(lines, samples): inside the polygon, by the parity of its crossings before each sample."""
    t = crossings_dense(polygon, grid.inner, grid.direction)
    n_lines, n_edges = t.shape
    span = float(np.max(np.abs(s))) + 1.0
    rows = (np.arange(n_lines) * 4.0 * span)[:, None]  # the rows side by side on one axis: one search for all
    keys = (np.clip(t, -span, span) + rows).ravel()
    counts = np.searchsorted(keys, s[None, :] + rows) - (np.arange(n_lines) * n_edges)[:, None]
    return counts % 2 == 1
