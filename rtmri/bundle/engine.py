"""Runs a model bundle with onnxruntime: mel windows in, grayscale frames out (and, for an
articulatory bundle, the articulatory state of each frame: its first graph gives the state,
the state is drawn on the reference speaker's grid, its renderer graph draws the frame)."""

from __future__ import annotations

import os

import numpy as np
import onnxruntime as ort

from rtmri.audio import N_MELS, SILENCE_VALUE, melspectrogram

from rtmri.articulation.grid import AnalysisGrid, grid_of_bundle
from rtmri.articulation.state import STATE_SIZE, StateRaster, with_closures
from rtmri.bundle.manifest import (
    FACE_INPUT,
    FRAMES_OUTPUT,
    MEL_INPUT,
    STATE_OUTPUT,
    Bundle,
    BundleError,
    expected_renderer_io,
    graph_problems,
    read_manifest,
)

PROVIDER_PREFERENCE = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {"tensorrt": "TensorrtExecutionProvider", "cuda": "CUDAExecutionProvider", "cpu": "CPUExecutionProvider"}
DEFAULT_THREADS = 2


def choose_providers(requested: str | None = None) -> list:
    """TensorRT, then CUDA, then CPU, among those this onnxruntime has; or the one asked for."""
    available = ort.get_available_providers()
    if requested:
        name = PROVIDER_ALIASES.get(requested.lower(), requested)
        if name not in available:
            raise BundleError(f"provider {requested!r} is not available here; available: {', '.join(available)}")
        chosen = [name]
    else:
        chosen = [p for p in PROVIDER_PREFERENCE if p in available]
    providers = []
    for name in chosen:
        if name == "TensorrtExecutionProvider":
            cache = os.path.expanduser("~/.cache/rtmri/trt")
            os.makedirs(cache, exist_ok=True)
            providers.append((name, {"trt_engine_cache_enable": True, "trt_engine_cache_path": cache}))
        else:
            providers.append(name)
    if "CPUExecutionProvider" not in chosen:
        providers.append("CPUExecutionProvider")
    return providers


class Engine:
    """An onnxruntime session for one bundle, with the reference input fixed."""

    def __init__(self, bundle: Bundle | str, provider: str | None = None, threads: int = DEFAULT_THREADS) -> None:
        self.bundle = bundle if isinstance(bundle, Bundle) else read_manifest(bundle)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Spinning idle threads would take a core from the audio, the encoder and other sessions.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = choose_providers(provider)
        self.session = _open(self.bundle.onnx_path, _inverter_options(options) if self.bundle.gives_state else options, providers)
        problems = graph_problems(self.bundle, self.session)
        self.renderer = None
        if self.bundle.gives_state:
            if self.bundle.manifest.renderer["state_size"] != STATE_SIZE:
                raise BundleError(f"{self.bundle.path}: its state has {self.bundle.manifest.renderer['state_size']} values a frame, "
                                  f"this version's state {STATE_SIZE} (the shared DESIGN.md §4b)")
            self.renderer = _open(self.bundle.renderer_path, options, providers)
            problems += [f"renderer: {p}" for p in graph_problems(self.bundle, self.renderer, expected_renderer_io)]
        if problems:
            raise BundleError(f"{self.bundle.path}: manifest does not match the graph: " + "; ".join(problems))
        self.providers = self.session.get_providers()
        self._face = None if self.bundle.face_baked else face_input(self.bundle.reference_frames()[0], self.bundle.channels)
        self._raster = self._grid = None
        if self.bundle.gives_state:
            grid = grid_of_bundle(self.bundle.manifest)
            if grid is None:
                raise BundleError(f"{self.bundle.path}: an articulatory bundle needs its reference speaker's analysis grid "
                                  "(manifest key 'analysis_grid'); export it again with --data")
            self._draw_on(grid)

    def set_reference(self, reference: np.ndarray, grid: AnalysisGrid | None = None) -> None:
        """Draw another anatomy: a uint8 (S, S) reference frame (bundles with a face input
        only); an articulatory bundle draws its states on that speaker's ``grid`` (at S)."""
        if self.bundle.face_baked:
            raise BundleError(f"{self.bundle.path}: the reference is baked into this graph and cannot be changed")
        if reference.shape != (self.image_size, self.image_size):
            raise BundleError(f"reference is {reference.shape}, this bundle draws {self.image_size}x{self.image_size} frames")
        if self.bundle.gives_state:
            if grid is None:
                raise BundleError(f"{self.bundle.path}: an articulatory bundle draws the state on the reference speaker's "
                                  "analysis grid: give the grid with the reference")
            self._draw_on(grid)
        self._face = face_input(reference, self.bundle.channels)

    def _draw_on(self, grid: AnalysisGrid) -> None:
        """States are drawn on this speaker's grid: its raster, and its lines for the closures."""
        self._raster, self._grid = StateRaster(grid, self.image_size), grid

    @property
    def image_size(self) -> int:
        return self.bundle.image_size

    def run(self, mel_windows: np.ndarray) -> np.ndarray:
        """(B, 80, W) windows -> uint8 (B, S, S) grayscale frames."""
        return self.run_with_state(mel_windows)[0]

    def run_with_state(self, mel_windows: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(B, 80, W) windows -> (uint8 (B, S, S) frames, float32 (B, state size) states or None)."""
        mel = np.ascontiguousarray(mel_windows, np.float32)[:, None]
        if self.renderer is None:
            feeds = {MEL_INPUT: mel}
            if self._face is not None:
                feeds[FACE_INPUT] = np.repeat(self._face, len(mel), axis=0)
            (frames,) = self.session.run([FRAMES_OUTPUT], feeds)
            return to_gray_uint8(frames), None
        (states,) = self.session.run([STATE_OUTPUT], {MEL_INPUT: mel})
        return self.render(states), states

    def states(self, mel_windows: np.ndarray) -> np.ndarray:
        """(B, 80, W) windows -> float32 (B, state size) states, without drawing (articulatory bundles)."""
        if self.renderer is None:
            raise BundleError(f"{self.bundle.path}: a {self.bundle.manifest.architecture} bundle gives no articulatory state")
        return self.session.run([STATE_OUTPUT], {MEL_INPUT: np.ascontiguousarray(mel_windows, np.float32)[:, None]})[0]

    def render(self, states: np.ndarray) -> np.ndarray:
        """(B, state size) states -> uint8 (B, S, S) frames of the reference anatomy (articulatory bundles);
        a closure the state says is drawn as a contact (articulation.state.with_closures)."""
        if self.renderer is None:
            raise BundleError(f"{self.bundle.path}: a {self.bundle.manifest.architecture} bundle draws no state")
        states = with_closures(states, self._grid)
        face = np.repeat(self._face, len(states), axis=0)
        face[:, : self.bundle.channels] = self._raster.draw(states)[:, None]
        (frames,) = self.renderer.run([FRAMES_OUTPUT], {STATE_OUTPUT: states, FACE_INPUT: face})
        return to_gray_uint8(frames)

    def warm_up(self, batch_sizes=(1, 2)) -> None:
        """First runs are slow (allocation, kernel choice); do them before the first frame."""
        melspectrogram(np.zeros(N_MELS * 10, np.float32))  # builds the mel basis once
        for batch in batch_sizes:
            self.run(np.full((batch, N_MELS, self.bundle.window_columns), SILENCE_VALUE, np.float32))


def _inverter_options(options):
    """An articulatory bundle's first graph is small and sequential (a GRU over the window):
    one thread, so that it does not wake the renderer's pool for every step."""
    single = ort.SessionOptions()
    for name in ("inter_op_num_threads", "log_severity_level"):
        setattr(single, name, getattr(options, name))
    single.intra_op_num_threads = 1
    return single


def _open(path, options, providers):
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for damaged graphs
        raise BundleError(f"{path}: onnxruntime cannot load the graph ({exc})") from exc


def face_input(reference: np.ndarray, channels: int) -> np.ndarray:
    """wav2lip's face input for a fixed reference: (1, 2C, S, S) = [reference with its
    lower half zeroed, reference], in [0, 1]."""
    ref = np.asarray(reference, np.float32) / 255.0
    masked = ref.copy()
    masked[ref.shape[0] // 2 :] = 0.0
    stack = [masked] * channels + [ref] * channels
    return np.stack(stack)[None].astype(np.float32)


def to_gray_uint8(frames: np.ndarray) -> np.ndarray:
    """(B, C, S, S) in [0, 1] -> uint8 (B, S, S); colour channels are averaged."""
    gray = frames.mean(axis=1) if frames.shape[1] > 1 else frames[:, 0]
    return np.clip(np.rint(gray * 255.0), 0, 255).astype(np.uint8)
