"""The articulators a learner is shown, from the regions of rtmri.articulation, and their
constriction curves from frames the model drew.

The tongue body is split where the regions split it: against the hard palate (front vowels,
palatals) and against the soft palate (back vowels, k, g): a single smallest gap over both
would hide /i/ against /a/ (each has one narrow and one wide part)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtmri.articulation import regions as R

FRAMES_PER_BATCH = 32


@dataclass(frozen=True)
class Articulator:
    key: str
    en: str
    ja: str
    regions: tuple[str, ...]  # its constriction is the smallest gap over these regions


ARTICULATORS = (
    Articulator("lips", "lips", "唇", (R.LIPS,)),
    Articulator("tongue_tip", "tongue tip", "舌先", (R.ALVEOLAR,)),
    Articulator("tongue_body", "tongue body", "舌の中ほど", (R.PALATAL,)),
    Articulator("tongue_back", "back of the tongue", "舌の奥", (R.VELAR,)),
    Articulator("velum", "velum", "軟口蓋", (R.VELOPHARYNGEAL,)),
    Articulator("tongue_root", "tongue root", "舌根", (R.PHARYNGEAL,)),
)
BY_KEY = {a.key: a for a in ARTICULATORS}


@dataclass(frozen=True)
class Articulation:
    frames: np.ndarray  # uint8 (n, S, S) as the model drew them, frame k at k / 25 s
    curves: dict[str, np.ndarray]  # articulator key -> (n,) constriction degree in mm (velum: the port's opening)
    mm_per_px: float


def render(engine, wav: np.ndarray) -> np.ndarray:
    """The model's frames of a 16 kHz recording, on the offline path (DESIGN §3 windows)."""
    from rtmri.alignment import frame_windows, n_frames_for_samples
    from rtmri.audio import melspectrogram

    n_frames = n_frames_for_samples(len(wav))
    windows = frame_windows(melspectrogram(np.asarray(wav, np.float32)), n_frames, engine.bundle.lookahead_ms)
    size = engine.image_size
    if n_frames == 0:
        return np.zeros((0, size, size), np.uint8)
    return np.concatenate([engine.run(windows[i : i + FRAMES_PER_BATCH]) for i in range(0, n_frames, FRAMES_PER_BATCH)])


def curves_of(frames: np.ndarray, grid) -> tuple[dict[str, np.ndarray], float]:
    from rtmri.articulation.measure import measure

    measures = measure(frames, grid)
    curves = {}
    for articulator in ARTICULATORS:
        stacked = np.stack([measures.degree_mm[r] for r in articulator.regions])
        with np.errstate(all="ignore"):
            curves[articulator.key] = np.nanmin(stacked, axis=0) if np.isfinite(stacked).any() else stacked[0]
    return curves, measures.mm_per_px


def articulate(engine, wav: np.ndarray, grid) -> Articulation:
    frames = render(engine, wav)
    curves, mm_per_px = curves_of(frames, grid)
    return Articulation(frames, curves, mm_per_px)
