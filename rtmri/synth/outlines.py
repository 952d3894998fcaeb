"""The midsagittal outlines VocalTractLab draws for a tract state, as named polylines in mm.

``tract_state_to_svg`` writes 14 polylines in a fixed order (checked here): the
posterior pharynx wall, the uvula, the upper outline (velum, hard palate, upper
incisor, upper lip), the larynx front, the epiglottis, the lower outline (floor of the
mouth, lower incisor, lower lip), the tongue at the midline and at its side, and the
upper and lower rows of teeth. SVG units are 1/96 inch with y pointing down.
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
from rtmri.synth.speaker_file import REFERENCE_FILE, load

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


@dataclass(frozen=True)
class Outlines:
    parts: dict[str, np.ndarray]

    def __getitem__(self, name: str) -> np.ndarray:
        return self.parts[name]


def tract_outlines(tract_state: np.ndarray, svg_path: Path) -> Outlines:
    """Outlines of one state; svg_path is scratch space for VocalTractLab's drawing."""
    try:
        vtl.tract_state_to_svg(np.ascontiguousarray(tract_state, dtype=np.float64), str(svg_path))
        svg = svg_path.read_text()
    except (vtl.VtlApiError, OSError, ValueError) as exc:
        raise UtteranceFailed(f"VocalTractLab could not draw a tract state: {' '.join(str(exc).split())}") from exc
    return parse_svg(svg)


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
        return tract_outlines(vtl.get_shape(REST_SHAPE, "tract"), Path(scratch) / "rest.svg")
