"""Checks that the ONNX graph computes what the PyTorch network computes, and the
quality figures a bundle carries, on real clips of the dataset."""

from __future__ import annotations

import numpy as np

from rtmri import RtmriError
from rtmri.alignment import WINDOW_COLUMNS, frame_windows
from rtmri.bundle import FACE_INPUT, FRAMES_OUTPUT, MEL_INPUT
from rtmri.metrics import per_frame
from rtmri.video import resize_frames

FP32_TOLERANCE = 1e-3  # max abs difference on frames in [0, 1]
MAX_FRAMES_PER_CLIP = 50


class ParityError(RtmriError):
    pass


def clip_windows(clips, lookahead_ms: float, max_frames: int = MAX_FRAMES_PER_CLIP,
                 columns: int = WINDOW_COLUMNS, norm=None) -> list[tuple[object, np.ndarray]]:
    """(clip, its first max_frames mel windows of ``columns``) for each clip, via the shared
    alignment; each clip's mel normalised as a session by ``norm`` (rtmri.audio.SessionNorm) if given."""
    out = []
    for clip in clips:
        n = min(clip.n_frames, max_frames)
        mel = clip.mel() if norm is None else norm.normalise(clip.mel())
        out.append((clip, frame_windows(mel, n, lookahead_ms, columns)))
    return out


def torch_frames(network, face, windows: np.ndarray) -> np.ndarray:
    """(B, 80, 16) -> float (B, C, S, S) in [0, 1] from the PyTorch network; ``face`` None
    for a mel-only network."""
    import torch  # torch: the train extra; the ONNX checks run without it

    with torch.no_grad():
        mel = torch.from_numpy(windows)[:, None]
        if face is None:
            return network(mel).numpy()
        return network(mel, face.expand(len(mel), *face.shape[1:])).numpy()


def onnx_frames(session, windows: np.ndarray, face: np.ndarray | None) -> np.ndarray:
    feeds = {MEL_INPUT: windows[:, None].astype(np.float32)}
    if face is not None:
        feeds[FACE_INPUT] = np.repeat(face, len(windows), axis=0)
    return session.run([FRAMES_OUTPUT], feeds)[0]


def check_parity(network, face, session, windows_by_clip, face_is_input: bool, tolerance: float = FP32_TOLERANCE) -> float:
    """Max abs error between PyTorch and onnxruntime over the clips; raises above tolerance."""
    worst = 0.0
    face_np = face.numpy() if face_is_input else None
    for _, windows in windows_by_clip:
        expected = torch_frames(network, face, windows)
        got = onnx_frames(session, windows, face_np)
        worst = max(worst, float(np.abs(expected - got).max()))
    if worst > tolerance:
        raise ParityError(f"ONNX output differs from PyTorch by up to {worst:.2e} (tolerance {tolerance:.0e})")
    return worst


def quality(engine, windows_by_clip) -> dict:
    """Mean SSIM and NMSE (lower half) of the engine's frames against the clips' own."""
    ssims, nmses = [], []
    for clip, windows in windows_by_clip:
        generated = engine.run(windows)
        original = resize_frames(clip.frames()[: len(windows)], engine.image_size)
        scores = per_frame(original, generated)
        ssims.append(scores["ssim"].mean())
        nmses.append(scores["nmse"].mean())
    return {"ssim": round(float(np.mean(ssims)), 4), "nmse": round(float(np.mean(nmses)), 4), "clips": len(windows_by_clip)}
