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
from skimage.measure import points_in_poly

from rtmri import RtmriError
from rtmri.articulation.grid import AnalysisGrid
from rtmri.files import atomic_writer

GEOMETRY_FILE = "geometry.npz"
TRUTH_STEP_PX = 0.05
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
    from scipy.ndimage import binary_closing

    width = int(round(min_tissue / step))
    closed = binary_closing(air, structure=np.ones((1, width + 1), bool))
    return closed | air


def crossings(polygon: np.ndarray, origins: np.ndarray, directions: np.ndarray) -> list[np.ndarray]:
    """Per line (origin + t * direction), the sorted t where it crosses the polygon's edges."""
    a = np.asarray(polygon, float)
    b = np.roll(a, -1, axis=0)
    edge = b - a  # (E, 2)
    rel = a[None, :, :] - origins[:, None, :]  # (L, E, 2)
    cross = lambda u, v: u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]  # noqa: E731
    denom = cross(directions[:, None, :], edge[None, :, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        t = cross(rel, edge[None, :, :]) / denom
        u = cross(rel, directions[:, None, :]) / denom
    valid = (np.abs(denom) > 1e-12) & (u >= 0) & (u < 1)
    return [np.sort(t[i][valid[i]]) for i in range(len(origins))]


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
    drawn shapes (``first_gap_along``); NaN where the line's window leaves the image, as for the
    image measure."""
    ends = grid.inner + grid.direction * np.minimum(grid.reach, grid.length)[:, None]
    inside = lambda p: (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] <= shape[1] - 1) & (p[:, 1] <= shape[0] - 1)  # noqa: E731
    usable = inside(grid.inner) & inside(ends)
    out = np.array([first_gap_along(_shapes_in_order(arrays, frame), grid) for frame in range(n_frames(arrays))])
    out[:, ~usable] = np.nan
    return out
