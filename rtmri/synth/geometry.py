"""Where a speaker's head lies in the 256x256 image, and the rigid motion of the jaw.

Points are (x, y) in VocalTractLab millimetres (x forward, y down, as VocalTractLab
draws them) or in image pixels (1 px = 1 mm before the speaker's head scale).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IMAGE_CENTRE_PX = np.array([128.0, 128.0])
# The VocalTractLab point that lands in the image centre for an average head: it puts
# the nose tip about 20 mm inside the right edge and the larynx near the bottom.
HEAD_CENTRE_MM = np.array([-22.0, -22.0])


@dataclass(frozen=True)
class HeadPose:
    """Similarity transform VocalTractLab mm -> image px: scale, tilt, then shift."""

    scale: float
    tilt_deg: float
    offset_px: tuple[float, float]

    @classmethod
    def of(cls, speaker) -> "HeadPose":
        return cls(speaker.head_scale, speaker.tilt_deg, tuple(speaker.head_offset_mm))

    @property
    def matrix(self) -> np.ndarray:
        angle = np.deg2rad(self.tilt_deg)
        rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        return self.scale * rotation

    def to_image(self, points_mm: np.ndarray) -> np.ndarray:
        points = np.asarray(points_mm, float) - HEAD_CENTRE_MM
        return points @ self.matrix.T + IMAGE_CENTRE_PX + np.asarray(self.offset_px)


@dataclass(frozen=True)
class Rigid:
    """A rotation plus translation in the plane, fitted to corresponding points."""

    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def fit(cls, source: np.ndarray, target: np.ndarray) -> "Rigid":
        """Least-squares rigid motion taking source points onto target points (Kabsch)."""
        source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
        covariance = (source - source_mean).T @ (target - target_mean)
        u, _, vt = np.linalg.svd(covariance)
        d = np.sign(np.linalg.det(vt.T @ u.T))
        rotation = vt.T @ np.diag([1.0, d]) @ u.T
        return cls(rotation, target_mean - source_mean @ rotation.T)

    def apply(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, float) @ self.rotation.T + self.translation
