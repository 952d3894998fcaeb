"""The map from JD3's rest tract onto another speaker's rest tract.

The head around the tract (skull, face, palate bone, incisors, spine, nasal cavity) is drawn
around JD3's outlines (``anatomy``). For another tract the same drawing is carried over by
a thin-plate spline through corresponding points of the two rest outlines (VocalTractLab
draws every part with a fixed number of points), so the palate bone lies on the speaker's
own palate, the incisor on its own incisor; far from the tract the map becomes the
similarity that best fits the two tracts (a smaller head for a smaller tract).
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import RBFInterpolator

from rtmri.articulation.grid import similarity
from rtmri.synth.outlines import Outlines

CONTROL_PARTS = ("pharynx_wall", "upper", "larynx", "lower", "upper_teeth")
FAR_RING_RADIUS_MM = 220.0
FAR_RING_POINTS = 16
FAR_RING_CENTRE_MM = (-22.0, -22.0)
SMOOTHING = 1.0  # the outlines are matched to about a millimetre; no wiggles between them


class TractWarp:
    """Points in JD3 mm -> points in the speaker's mm (identity for JD3 itself)."""

    def __init__(self, reference: Outlines | None = None, speaker: Outlines | None = None):
        self._spline = None
        if reference is None or speaker is None:
            return
        source = np.concatenate([reference[p] for p in CONTROL_PARTS])
        target = np.concatenate([speaker[p] for p in CONTROL_PARTS])
        source, keep = np.unique(np.round(source, 3), axis=0, return_index=True)
        target = target[keep]
        matrix, offset = similarity(source, target)
        angle = np.linspace(0, 2 * np.pi, FAR_RING_POINTS, endpoint=False)
        ring = np.array(FAR_RING_CENTRE_MM) + FAR_RING_RADIUS_MM * np.stack([np.cos(angle), np.sin(angle)], axis=1)
        source = np.concatenate([source, ring])
        target = np.concatenate([target, ring @ matrix.T + offset])
        self._spline = RBFInterpolator(source, target - source, kernel="thin_plate_spline", smoothing=SMOOTHING)
        self.scale = float(np.sqrt(abs(np.linalg.det(matrix))))

    scale = 1.0

    @property
    def identity(self) -> bool:
        return self._spline is None

    def __call__(self, points) -> np.ndarray:
        points = np.asarray(points, float)
        if self._spline is None:
            return points
        flat = points.reshape(-1, 2)
        return (flat + self._spline(flat)).reshape(points.shape)
