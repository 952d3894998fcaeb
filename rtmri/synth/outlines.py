"""The midsagittal outlines VocalTractLab draws for a tract state, as named polylines in mm.

``tract_state_to_svg`` writes 14 polylines in a fixed order (checked here): the
posterior pharynx wall, the uvula, the upper outline (velum, hard palate, upper
incisor, upper lip), the larynx front, the epiglottis, the lower outline (floor of the
mouth, lower incisor, lower lip), the tongue at the midline and at its side, and the
upper and lower rows of teeth. SVG units are 1/96 inch with y pointing down.

VocalTractLab draws the velum in one place whatever its opening (its parameter VO, the
velopharyngeal port's area, acts on the tube only): ``with_port`` moves the soft palate
and uvula forward by the port's midsagittal width (closed: against the posterior pharynx
wall), so that the drawing shows the port the synthesizer opens.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import vocaltractlab_cython as vtl

from rtmri.synth.errors import UtteranceFailed
from rtmri.synth.speaker_file import REFERENCE_FILE, T, load

SVG_UNITS_PER_MM = 96.0 / 25.4
PART_NAMES = (
    "pharynx_wall", "uvula", "upper", "larynx", "epiglottis", "lower", "tongue", "tongue_side",
    "upper_teeth_top", "upper_teeth", "upper_teeth_back", "lower_teeth_bottom", "lower_teeth", "lower_teeth_back",
)
_POINTS = re.compile(r'points="([^"]*)"')

# Landmarks by index into a part's points (VocalTractLab draws each part with a fixed
# number of points). Upper: the incisor runs from the palate side to the labial side.
UPPER_INCISOR = slice(12, 18)
# Lower outline: the mandible's inner surface (moves rigidly with the jaw), then the incisor.
MANDIBLE = slice(3, 13)
LOWER_INCISOR = slice(10, 17)
FLOOR_OF_MOUTH = slice(0, 10)  # from the hyoid corner to just behind the lower incisor
VELUM_END = 5  # upper[:VELUM_END] is the soft palate's oral surface, behind the hard palate
REST_SHAPE = "@"  # the schwa tract: the anatomy around the tract is drawn to fit its outlines
VELUM_ROOT_POINT = VELUM_END - 1  # upper[VELUM_ROOT_POINT]: where the soft palate leaves the hard palate
# The port's midsagittal width = its area / its lateral width (about 1 cm: an area of
# 0.5 cm^2, VocalTractLab's nasal consonants, opens it by 5 mm).
PORT_LATERAL_WIDTH_CM = 1.0
PORT_DROP = 0.3  # the velum moves down this much per mm it moves forward


@dataclass(frozen=True)
class Outlines:
    parts: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.parts[name]


def tract_outlines(tract_state: np.ndarray, svg_path: Path) -> Outlines:
    """Outlines of one state, the velum where its port opening puts it; svg_path is scratch
    space for VocalTractLab's drawing."""
    return with_port(vtl_outlines(tract_state, svg_path), port_width_mm(tract_state))


def vtl_outlines(tract_state: np.ndarray, svg_path: Path) -> Outlines:
    """The outlines as VocalTractLab draws them."""
    try:
        vtl.tract_state_to_svg(np.ascontiguousarray(tract_state, dtype=np.float64), str(svg_path))
        svg = svg_path.read_text()
    except (vtl.VtlApiError, OSError, ValueError) as exc:
        raise UtteranceFailed(f"VocalTractLab could not draw a tract state: {' '.join(str(exc).split())}") from exc
    return parse_svg(svg)


def port_width_mm(tract_state: np.ndarray) -> float:
    """Midsagittal width of the velopharyngeal port VocalTractLab's state opens (0: closed)."""
    return max(float(tract_state[T["VO"]]), 0.0) / PORT_LATERAL_WIDTH_CM * 10.0


def wall_x_at(outlines: Outlines, y: float) -> float:
    """x of the posterior pharynx wall at height y (its top point's above the wall)."""
    wall = outlines["pharynx_wall"]
    order = np.argsort(wall[:, 1])
    return float(np.interp(y, wall[order, 1], wall[order, 0]))


def with_port(outlines: Outlines, port_mm: float) -> Outlines:
    """The soft palate and uvula moved so that the uvula's back stands port_mm in front of the
    posterior pharynx wall (0: touching it), the root on the hard palate staying put: each
    point moves by its share of the way from the root to the back."""
    uvula, upper = outlines["uvula"], outlines["upper"]
    back = uvula[np.argmin(uvula[:, 0])]
    shift = wall_x_at(outlines, back[1]) + port_mm - back[0]
    root_x = upper[VELUM_ROOT_POINT, 0]

    def moved(points: np.ndarray) -> np.ndarray:
        share = np.clip((root_x - points[:, 0]) / max(root_x - back[0], 1e-6), 0.0, 1.0)[:, None]
        return points + share * shift * np.array([1.0, PORT_DROP if shift > 0 else 0.0])

    velum = moved(upper[:VELUM_END])
    return Outlines({**outlines.parts, "uvula": moved(uvula), "upper": np.concatenate([velum, upper[VELUM_END:]])})


def parse_svg(svg: str) -> Outlines:
    polylines = [np.array(points.split(), dtype=np.float64).reshape(-1, 2) / SVG_UNITS_PER_MM for points in _POINTS.findall(svg)]
    if len(polylines) != len(PART_NAMES):
        raise UtteranceFailed(f"VocalTractLab drew {len(polylines)} outlines, expected {len(PART_NAMES)}")
    return Outlines(dict(zip(PART_NAMES, polylines)))


@lru_cache(maxsize=None)
def rest_outlines(tract_file: str | None = None) -> Outlines:
    """The rest outlines of a speaker file (None: JD3); makes it the active speaker."""
    load(tract_file or REFERENCE_FILE)
    with tempfile.TemporaryDirectory(prefix="rtmri-synth-") as scratch:
        return vtl_outlines(vtl.get_shape(REST_SHAPE, "tract"), Path(scratch) / "rest.svg")
