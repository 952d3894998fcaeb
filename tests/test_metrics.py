import numpy as np
import pytest
from skimage.metrics import structural_similarity

from rtmri.metrics import lower_half, nmse, per_frame, ssim


def images(seed=0, size=64):
    rng = np.random.default_rng(seed)
    a = (rng.random((size, size)) * 255).astype(np.uint8)
    noisy = np.clip(a + rng.normal(0, 25, a.shape), 0, 255).astype(np.uint8)
    return a, noisy


def test_identical_frames_score_perfectly():
    a, _ = images()
    assert ssim(a, a) == pytest.approx(1.0)
    assert nmse(a, a) == 0.0


def test_ssim_agrees_with_scikit_image_on_the_lower_half():
    a, b = images()
    expected = structural_similarity(a[32:] / 255.0, b[32:] / 255.0, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=1.0)
    assert ssim(a, b) == pytest.approx(expected, abs=1e-12)
    assert 0.0 < ssim(a, b) < 0.99


def test_only_the_lower_half_counts():
    a, _ = images()
    b = a.copy()
    b[:32] = 0  # wreck the upper half only
    assert ssim(a, b) == pytest.approx(1.0) and nmse(a, b) == 0.0
    c = a.copy()
    c[32:] = 0
    assert nmse(a, c) == pytest.approx(1.0)


def test_nmse_by_hand():
    a = np.zeros((4, 4), np.uint8)
    a[2:] = 255
    b = a.copy()
    b[3] = 0
    assert nmse(a, b) == pytest.approx(0.5)
    assert lower_half(a).shape == (2, 4)


def test_per_frame_worse_for_noisier_video():
    a, b = images(1)
    _, c = images(2)
    video = np.stack([a, a, a])
    close = per_frame(video, np.stack([a, b, a]))
    assert close["ssim"].shape == (3,) and close["ssim"][0] == pytest.approx(1.0) and close["ssim"][1] < 1.0
