"""The articulators a learner is shown, from the regions of rtmri.articulation, and their
constriction curves from frames the model drew.

The tongue body is split where the regions split it: against the hard palate (front vowels,
palatals) and against the soft palate (back vowels, k, g): a single smallest gap over both
would hide /i/ against /a/ (each has one narrow and one wide part)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rtmri.alignment import frame_windows, n_frames_for_samples
from rtmri.articulation import regions as R
from rtmri.articulation.measure import Measures, measure
from rtmri.articulation.state import STATE_SIZE, ArticulatoryState
from rtmri.audio import melspectrogram

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
    states: np.ndarray | None = None  # (n, STATE_SIZE) the articulatory bundle's states, frame k at k / 25 s


def windows_of(engine, wav: np.ndarray) -> np.ndarray:
    """The model's mel windows of a 16 kHz recording, one per frame (the shared DESIGN.md §3)."""
    n_frames = n_frames_for_samples(len(wav))
    return frame_windows(engine.bundle.features(melspectrogram(np.asarray(wav, np.float32))), n_frames, engine.bundle.lookahead_ms,
                         engine.bundle.window_columns)


def model_states(engine, wav: np.ndarray) -> np.ndarray:
    """An articulatory bundle's states of a 16 kHz recording, without drawing."""
    windows = windows_of(engine, wav)
    if not len(windows):
        return np.zeros((0, STATE_SIZE), np.float32)
    return np.concatenate([engine.states(windows[i : i + FRAMES_PER_BATCH]) for i in range(0, len(windows), FRAMES_PER_BATCH)])


def render(engine, wav: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """The model's frames of a 16 kHz recording, on the offline path (the shared DESIGN.md §3
    windows), and its articulatory states where the bundle gives them."""
    windows = windows_of(engine, wav)
    n_frames = len(windows)
    size = engine.image_size
    if n_frames == 0:
        return np.zeros((0, size, size), np.uint8), (np.zeros((0, STATE_SIZE), np.float32) if engine.bundle.gives_state else None)
    made = [engine.run_with_state(windows[i : i + FRAMES_PER_BATCH]) for i in range(0, n_frames, FRAMES_PER_BATCH)]
    frames = np.concatenate([m[0] for m in made])
    return frames, (np.concatenate([m[1] for m in made]) if engine.bundle.gives_state else None)


def curves_of(measures: Measures) -> dict[str, np.ndarray]:
    curves = {}
    for articulator in ARTICULATORS:
        stacked = np.stack([measures.degree_mm[r] for r in articulator.regions])
        with np.errstate(all="ignore"):
            curves[articulator.key] = np.nanmin(stacked, axis=0) if np.isfinite(stacked).any() else stacked[0]
    return curves


def articulate(engine, wav: np.ndarray, grid, draw: bool = True) -> Articulation:
    """The model's frames and constriction curves: from the state it gives (articulatory
    bundles), else measured on its frames. draw=False: an articulatory bundle's state only,
    no frames (none to show: the benchmark of mistakes)."""
    if not draw and engine.bundle.gives_state:
        states = model_states(engine, wav)
        return Articulation(np.zeros((len(states), 0, 0), np.uint8), curves_of(ArticulatoryState.from_vector(states).measures(grid)),
                            grid.mm_per_px, states)
    frames, states = render(engine, wav)
    measures = measure(frames, grid) if states is None else ArticulatoryState.from_vector(states).measures(grid)
    return Articulation(frames, curves_of(measures), grid.mm_per_px, states)
