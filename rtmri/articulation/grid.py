"""The midsagittal analysis grid (the shared DESIGN.md §5b): semi-polar gridlines from the glottis to the lips.

As in the rtMRI literature (Maeda; Proctor, Bresch and Narayanan; Carignan's MRI-analyses)
the grid has three parts: horizontal lines across the pharynx, lines radiating from a centre
in the tongue body to the velum, the hard palate and the alveolar ridge, and vertical lines
across the lips. Each gridline runs from an inner end (in the tongue or the lower lip) to an
outer end (behind the posterior pharynx wall, past the palate, in the upper lip); a fifth
group crosses the nasopharynx from behind the posterior wall to the velum (the port).

The grid is defined once, in the millimetres of VocalTractLab's rest tract (``CANONICAL``),
with four landmarks. A speaker's grid is the canonical one carried by the similarity
transform (scale, rotation, shift) that takes the canonical landmarks onto the speaker's:
exact for synthetic speakers (their head pose is a similarity), a fit for real ones. The
landmarks say little about the nasopharynx: a synthetic speaker with its own tract has its port
lines moved onto its own pharynx wall (``moved_port``, ``rtmri.synth.grid.port_moves_mm``).

Per line the grid also holds its measuring window (``reach``: an air gap must begin before
it, so a closed constriction is not read as the air beyond it, e.g. the nasopharynx above a
velum the tongue touches) and, where the outer wall is bone or tooth (hard palate, upper
incisors: as dark in MRI as air), that fixed wall's distance (``wall``, else NaN).
Coordinates are (x, y) image pixels with x forward (face to the right) and y down, pixel
centres at whole numbers; distances along lines are in pixels, ``mm_per_px`` converts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from rtmri import RtmriError
from rtmri.articulation import regions as R

LANDMARKS = ("glottis", "alveolar_ridge", "palate", "upper_lip")
# The landmarks in VocalTractLab's rest tract (mm): the middle of the glottis, the alveolar
# ridge (where the palate turns down to the incisors), the highest point of the hard palate,
# the lowest point of the upper lip.
CANONICAL_LANDMARKS_MM = np.array([(-16.8, 86.3), (41.5, -7.0), (28.0, -16.0), (59.0, 5.1)])

PHARYNX_Y_MM = np.linspace(28.0, 12.0, 5)
PHARYNX_X_MM = (6.0, -34.0)  # inner (tongue root), outer (behind the posterior wall)
CENTRE_MM = (8.0, 22.0)  # of the radial lines, in the tongue body
RADIAL_DEG = np.linspace(155.0, 28.0, 20)  # 180 points back, 90 up, 0 forward
RADIAL_LENGTH_MM = 52.0
VELAR_PALATAL_DEG = 95.0  # the radial line meeting the upper outline at x = 5 mm
PALATAL_ALVEOLAR_DEG = 47.5  # ... at x = 38 mm
LIP_X_MM = (56.5, 58.5, 60.5, 62.5)
LIP_Y_MM = (28.0, -8.0)  # inner (lower lip, chin), outer (upper lip)
PORT_Y_MM = np.linspace(-3.0, 3.0, 5)
PORT_X_MM = (-34.0, 2.0)  # inner (behind the posterior wall), outer (in the velum)
# The top of the posterior pharynx wall of JD3's rest tract, where the uvula's back rests on it
# (rtmri.synth.grid.port_anchor, checked by a test): the port lines begin 8.7 mm behind it.
CANONICAL_PORT_ANCHOR_MM = (-24.87, -3.96)
# A synthetic tract's own wall top lies 0.7-3.7 mm (men), 7.4-8.3 mm (women) and 11.3-14.5 mm
# (children) from JD3's carried by its landmarks (19 tracts): its port lines move by the difference.
# Their windows end this far past the wall, where the port's gap begins open or closed: before
# the front of a closed velum (a child's uvula is 4 mm thick there, a man's 6-7 mm).
PORT_REACH_MM = 2.0
# ... and the lowest of them stands this far above the tip of the tract's uvula at its highest
# (rtmri.synth.grid.raised_uvula: velum shape VS 0, /i/, about 1 mm above the rest tip). A line
# passing the tip within 1.5 mm may see its partial volume as air and read through the velum into
# the mouth (a 12-speaker part of c3h: 13 % of the lines within 1 mm of it 3 mm wrong or more, 4 %
# within 1-1.5 mm, none further off). JD3's canonical lowest line (7.0 mm under the wall top)
# stands only 1.0 mm above its raised tip (8.0 mm; 9.0 mm at rest).
PORT_TIP_MM = 2.0

# Measured on the rest tract (rtmri.synth.grid.canonical_windows, checked by a
# test): per line, the rest gap's far end plus REACH_MARGIN_MM; the fixed wall (hard palate,
# incisor) where the rest gap ends on it.
REACH_MARGIN_MM = 4.0
CANONICAL_REACH_MM = (
    39.4, 38.85, 38.25, 37.7, 37.15,  # pharyngeal
    41.85, 37.35, 37.05, 40.1, 41.8, 41.75, 40.55, 39.5, 38.9, 38.15, 37.7, 39.3, 41.55, 44.0, 47.1, 48.55, 48.5,
    48.35, 48.2, 49.0,  # radial: velar, palatal, alveolar
    27.45, 27.0, 27.15, 27.7,  # lips
    13.5, 13.5, 13.5, 13.9, 14.65,  # velopharyngeal port
)
_NO = float("nan")
CANONICAL_WALL_MM = (_NO,) * 14 + (35.15, 34.7, 36.3, 37.55, 40.0, 43.1, 44.55, 44.5, 44.35, 44.2, 45.0) + (_NO,) * 9
# A synthetic speaker's grid.json with this key has windows (reach, wall) measured on its own
# rest tract: they hold for its lines only, not for the canonical grid carried by its landmarks.
OWN_WINDOWS_KEY = "windows"
# ... and with this key (and value) its port lines are placed on its own pharynx wall (they may
# stand moved from the canonical ones, parallel); a grid.json with windows but without it predates
# that (or holds an earlier placement).
OWN_PORT_KEY = "port_lines"
OWN_PORT_LINES = "placed on the speaker's own rest pharynx wall; reach and spread from its own velum"  # its value


@dataclass(frozen=True)
class AnalysisGrid:
    inner: np.ndarray  # (n, 2) px
    outer: np.ndarray  # (n, 2) px
    reach: np.ndarray  # (n,) px from the inner end
    wall: np.ndarray  # (n,) px from the inner end, NaN where the outer wall is not fixed
    regions: tuple[str, ...]  # (n,)
    mm_per_px: float
    source: str = ""

    def __len__(self) -> int:
        return len(self.regions)

    @property
    def length(self) -> np.ndarray:
        return np.linalg.norm(self.outer - self.inner, axis=1)

    @property
    def direction(self) -> np.ndarray:
        return (self.outer - self.inner) / self.length[:, None]

    def lines_of(self, region: str) -> np.ndarray:
        return np.flatnonzero(np.array(self.regions) == region)

    @property
    def tract_lines(self) -> np.ndarray:
        """The distance function's lines, glottis to lips."""
        return np.flatnonzero(np.array(self.regions) != R.VELOPHARYNGEAL)

    def transformed(self, matrix, offset, mm_per_px: float | None = None, source: str | None = None) -> "AnalysisGrid":
        """Points p -> matrix @ p + offset (a similarity: lengths scale by its factor)."""
        matrix, offset = np.asarray(matrix, float), np.asarray(offset, float)
        scale = float(np.sqrt(abs(np.linalg.det(matrix))))
        return AnalysisGrid(self.inner @ matrix.T + offset, self.outer @ matrix.T + offset, self.reach * scale,
                            self.wall * scale, self.regions,
                            self.mm_per_px / scale if mm_per_px is None else mm_per_px, self.source if source is None else source)

    def to_clip(self, crop, size: int) -> "AnalysisGrid":
        """The grid of source frames, in the frames cropped to crop [x, y, w, h] and resized to size."""
        x, y, w, h = crop
        if w != h:
            raise GridError(f"crop {list(crop)} is not square; the grid needs one scale")
        factor = size / w
        # pixel centres: source u -> (u - x + 0.5) * factor - 0.5
        return self.transformed(np.eye(2) * factor, (-np.array([x, y], float) + 0.5) * factor - 0.5)

    def resized(self, from_size: int, to_size: int) -> "AnalysisGrid":
        return self.to_clip((0, 0, from_size, from_size), to_size)

    def to_json(self) -> dict:
        return {
            "format": "rtmri-analysis-grid", "version": 1, "source": self.source, "mm_per_px": self.mm_per_px,
            "lines": [{"region": r, "inner": [round(float(v), 4) for v in i], "outer": [round(float(v), 4) for v in o],
                       "reach_px": round(float(c), 4), "wall_px": None if np.isnan(w) else round(float(w), 4)}
                      for r, i, o, c, w in zip(self.regions, self.inner, self.outer, self.reach, self.wall)],
        }

    @classmethod
    def from_json(cls, data: dict, where: str = "grid") -> "AnalysisGrid":
        try:
            lines = data["lines"]
            return cls(np.array([l["inner"] for l in lines], float), np.array([l["outer"] for l in lines], float),
                       np.array([l["reach_px"] for l in lines], float),
                       np.array([np.nan if l["wall_px"] is None else l["wall_px"] for l in lines], float),
                       tuple(l["region"] for l in lines), float(data["mm_per_px"]), str(data.get("source", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise GridError(f"{where}: not an analysis grid ({type(exc).__name__}: {exc})") from exc


class GridError(RtmriError, ValueError):
    """An analysis grid or landmark file that cannot be used."""


def _canonical_lines() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    inner, outer, names = [], [], []
    for y in PHARYNX_Y_MM:
        inner.append((PHARYNX_X_MM[0], y)); outer.append((PHARYNX_X_MM[1], y)); names.append(R.PHARYNGEAL)
    centre = np.array(CENTRE_MM)
    for angle in RADIAL_DEG:
        direction = np.array([np.cos(np.deg2rad(angle)), -np.sin(np.deg2rad(angle))])
        inner.append(tuple(centre)); outer.append(tuple(centre + RADIAL_LENGTH_MM * direction))
        names.append(R.VELAR if angle > VELAR_PALATAL_DEG else R.PALATAL if angle > PALATAL_ALVEOLAR_DEG else R.ALVEOLAR)
    for x in LIP_X_MM:
        inner.append((x, LIP_Y_MM[0])); outer.append((x, LIP_Y_MM[1])); names.append(R.LIPS)
    for y in PORT_Y_MM:
        inner.append((PORT_X_MM[0], y)); outer.append((PORT_X_MM[1], y)); names.append(R.VELOPHARYNGEAL)
    return np.array(inner, float), np.array(outer, float), tuple(names)


def canonical_lines() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(inner, outer, regions) of the canonical grid, in VocalTractLab mm."""
    return _canonical_lines()


def canonical_grid() -> AnalysisGrid:
    """The grid on VocalTractLab's rest tract, in mm (1 "pixel" = 1 mm)."""
    inner, outer, names = _canonical_lines()
    return AnalysisGrid(inner, outer, np.array(CANONICAL_REACH_MM, float), np.array(CANONICAL_WALL_MM, float), names,
                        1.0, "canonical (VocalTractLab rest tract)")


def similarity(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares similarity (Umeyama) taking source points onto target: (matrix, offset)."""
    source, target = np.asarray(source, float), np.asarray(target, float)
    ms, mt = source.mean(axis=0), target.mean(axis=0)
    s, t = source - ms, target - mt
    u, singular, vt = np.linalg.svd(t.T @ s / len(source))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = np.trace(np.diag(singular) @ d) / (s**2).sum(axis=1).mean()
    matrix = scale * rotation
    return matrix, mt - ms @ matrix.T


def grid_from_landmarks(landmarks: dict, mm_per_px: float, source: str = "landmarks", fixed_walls: bool = False) -> AnalysisGrid:
    """The speaker's grid from its landmarks {name: (x, y) px} (names: ``LANDMARKS``).

    fixed_walls keeps the canonical hard palate and incisors as the lines' fixed walls: right
    where the speaker's anatomy is JD3's; for a real speaker the palate differs, and the gap is
    read from the image alone (a synthetic speaker of another tract brings its own: ``with_windows``)."""
    missing = [name for name in LANDMARKS if name not in landmarks]
    if missing:
        raise GridError(f"{source}: landmarks {', '.join(missing)} missing (give {', '.join(LANDMARKS)} as x, y pixels)")
    try:
        points = np.array([[float(v) for v in landmarks[name]] for name in LANDMARKS])
    except (TypeError, ValueError) as exc:
        raise GridError(f"{source}: a landmark is not a pair of numbers x, y ({exc})") from exc
    if points.shape != (len(LANDMARKS), 2) or not np.isfinite(points).all():
        raise GridError(f"{source}: each landmark must be a pair of numbers x, y")
    if not (np.isfinite(mm_per_px) and mm_per_px > 0):
        raise GridError(f"{source}: pixel spacing {mm_per_px} mm, expected a positive number")
    matrix, offset = similarity(CANONICAL_LANDMARKS_MM, points)
    grid = canonical_grid().transformed(matrix, offset, mm_per_px=mm_per_px, source=source)
    return grid if fixed_walls else dataclasses.replace(grid, wall=np.full(len(grid), np.nan))


def with_windows(grid: AnalysisGrid, own: AnalysisGrid, where: str, tolerance_px: float = 0.01) -> AnalysisGrid:
    """The grid with the reach, walls and port lines of ``own``, a grid of the same lines (a
    synthetic speaker's grid.json, measured on its rest tract) whose port lines may stand moved
    (placed on its own pharynx wall: as long, in the same direction); GridError if its lines
    are not these."""
    same = own.regions == grid.regions
    if same:
        tract = grid.tract_lines
        port = grid.lines_of(R.VELOPHARYNGEAL)
        same = all(np.allclose(a, b, atol=tolerance_px) for a, b in (
            (own.inner[tract], grid.inner[tract]), (own.outer[tract], grid.outer[tract]),
            (own.outer[port] - own.inner[port], grid.outer[port] - grid.inner[port])))
    if not same:
        raise GridError(f"{where}: its lines are not those of the current grid definition; rewrite it "
                        "(rtmri synth CORPUS --grids-only)")
    moved = np.linalg.norm(own.inner - grid.inner, axis=1)[:, None] > tolerance_px  # else the landmarks' (unrounded)
    return dataclasses.replace(grid, inner=np.where(moved, own.inner, grid.inner), outer=np.where(moved, own.outer, grid.outer),
                               reach=own.reach.copy(), wall=own.wall.copy())


def moved_port(grid: AnalysisGrid, shift) -> AnalysisGrid:
    """The grid with its port lines moved by shift (x, y in its pixels; one for all or one per
    port line), nothing else changed."""
    port = grid.lines_of(R.VELOPHARYNGEAL)
    inner, outer = grid.inner.copy(), grid.outer.copy()
    inner[port] += np.asarray(shift, float)
    outer[port] += np.asarray(shift, float)
    return dataclasses.replace(grid, inner=inner, outer=outer)


MANIFEST_KEY = "analysis_grid"  # where a bundle's manifest carries its reference speaker's grid


def grid_of_bundle(manifest) -> AnalysisGrid | None:
    """The analysis grid a bundle carries for its reference speaker (optional manifest key
    ``analysis_grid``, in the bundle's pixels), or None."""
    extra = getattr(manifest, "extra", manifest)
    data = extra.get(MANIFEST_KEY) if isinstance(extra, dict) else None
    return AnalysisGrid.from_json(data, "bundle manifest analysis_grid") if data else None


def cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The 2-D cross product of (..., 2) vectors (its sign: which side of u lies v)."""
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
