"""The study's metrics (the shared DESIGN.md §5): on the lower half of each frame (the tongue region),
grayscale in [0, 1], generated vs original, per frame, then averaged per video."""

from __future__ import annotations

import numpy as np

SSIM_SIGMA = 1.5


def lower_half(frame: np.ndarray) -> np.ndarray:
    """uint8 or float frame -> float64 lower half in [0, 1]."""
    frame = np.asarray(frame)
    scaled = frame / 255.0 if frame.dtype == np.uint8 else frame.astype(np.float64)
    return scaled[frame.shape[0] // 2 :]


def ssim(original: np.ndarray, generated: np.ndarray) -> float:
    """SSIM (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03, range 1) of the lower halves."""
    from skimage.metrics import structural_similarity  # scikit-image: the eval extra

    return float(structural_similarity(lower_half(original), lower_half(generated), gaussian_weights=True,
                                       sigma=SSIM_SIGMA, use_sample_covariance=False, data_range=1.0))


def nmse(original: np.ndarray, generated: np.ndarray) -> float:
    """sum((original - generated)^2) / sum(original^2) over the lower halves."""
    a, b = lower_half(original), lower_half(generated)
    energy = float(np.sum(a * a))
    if energy == 0.0:
        return 0.0 if not np.any(b) else float("inf")
    return float(np.sum((a - b) ** 2) / energy)


def per_frame(originals: np.ndarray, generated: np.ndarray) -> dict[str, np.ndarray]:
    """{"ssim": (T,), "nmse": (T,)} over the common frames of two videos (T, H, W)."""
    n = min(len(originals), len(generated))
    return {
        "ssim": np.array([ssim(originals[i], generated[i]) for i in range(n)]),
        "nmse": np.array([nmse(originals[i], generated[i]) for i in range(n)]),
    }
