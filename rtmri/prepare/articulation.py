"""What ``prepare`` carries for the articulatory measures (DESIGN §5b): the synthesizer's
outlines of every frame, through the clip's own crop, resize and 25 fps conversion, each
speaker's analysis grid in the clips' pixels, and each clip's articulatory state (§4b).

Grids come from ``<speaker>/grid.json`` of a synthetic corpus (landmarks exact from the
head pose) or from a landmark file given with ``--landmarks`` (real recordings):
``{"pixel_mm": 1.0, "speakers": {"<speaker>": {"glottis": [x, y], "alveolar_ridge": [x, y],
"palate": [x, y], "upper_lip": [x, y]}}}`` in the source video's pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from rtmri import RtmriError
from rtmri.alignment import FPS
from rtmri.articulation import grid as analysis_grid
from rtmri.articulation import outlines, state
from rtmri.articulation.measure import measure
from rtmri.clips import FRAMES_FILE, Clip, ClipDataset, write_geometry, write_grid
from rtmri.synth.layout import CorpusFileError, SpeakerFolder
from rtmri.video.frame_rate import weight_matrix


def source_geometry(video: Path) -> Path | None:
    """A synthetic recording's outlines file (``rtmri.synth.layout``), if it has one."""
    path = SpeakerFolder.of_video(video).geometry(video.stem)
    return path if path.is_file() else None


def clip_geometry(video: Path, crop, size: int, source_fps: float | None, n_frames: int, interpolation: str,
                  warnings: list[str]) -> dict[str, np.ndarray] | None:
    """The recording's outlines in the clips' pixels at 25 fps (n_frames), or None (with a
    warning when a file exists but does not fit the video)."""
    path = source_geometry(video)
    if path is None:
        return None
    try:
        arrays = outlines.load(path)
        if not source_fps:
            raise outlines.GeometryError(f"{path.name}: the video's frame rate is unknown")
        n_source = outlines.n_frames(arrays)
        weights = weight_matrix(np.arange(n_source) / source_fps, n_frames, interpolation, FPS, source_fps)
        return outlines.in_time(outlines.to_clip(arrays, crop, size), weights)
    except RtmriError as exc:
        warnings.append(f"outlines not used: {exc}")
        return None


def write_clip_geometry(folder: Path, arrays: dict[str, np.ndarray], start: int, end: int) -> None:
    """The clip's frames [start, end) of the recording's outlines (already in the clips' pixels)."""
    write_geometry(folder, outlines.frames_slice(arrays, start, end))


def source_pixel_mm(video: Path, landmarks: dict | None, speaker: str) -> float | None:
    """The source video's pixel spacing: the landmark file's, else a synthetic speaker's."""
    if landmarks is not None and "pixel_mm" in landmarks:
        return float(landmarks["pixel_mm"])
    try:
        value = SpeakerFolder.of_video(video).read_speaker().get("pixel_mm")
    except (OSError, CorpusFileError):
        return None
    return float(value) if isinstance(value, (int, float)) else None


def read_landmark_file(path: Path | None) -> dict | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise analysis_grid.GridError(f"{path}: cannot read the landmark file ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("speakers"), dict):
        raise analysis_grid.GridError(f'{path}: expected {{"pixel_mm": 1.0, "speakers": {{"<speaker>": {{"glottis": [x, y], ...}}}}}}')
    return data


def source_grid(speaker_folder: Path | None, speaker: str, landmarks: dict | None, where: str) -> analysis_grid.AnalysisGrid | None:
    """The speaker's grid in the source video's pixels: from the landmark file, else from a
    synthetic corpus's grid.json (its landmarks, so the current grid definition applies; the
    windows and port lines its speaker's own rest tract gave, where it has them)."""
    if landmarks is not None and speaker in landmarks["speakers"]:
        return analysis_grid.grid_from_landmarks(landmarks["speakers"][speaker], float(landmarks.get("pixel_mm", 1.0)),
                                                 f"{where}: speaker {speaker}", fixed_walls=False)
    path = SpeakerFolder(speaker_folder).grid_file if speaker_folder is not None else None
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        source = f"synthesizer geometry of {speaker}"
        if analysis_grid.OWN_WINDOWS_KEY in data:  # a speaker of its own tract: its windows, measured on it
            if data.get(analysis_grid.OWN_PORT_KEY) != analysis_grid.OWN_PORT_LINES:
                raise analysis_grid.GridError(f"{path}: written before the port lines were placed on the speaker's own "
                                              "pharynx wall as they are now; rewrite it (rtmri synth CORPUS --grids-only)")
            grid = analysis_grid.grid_from_landmarks(data["landmarks"], float(data.get("pixel_mm", 1.0)), source)
            return analysis_grid.with_windows(grid, analysis_grid.AnalysisGrid.from_json(data["grid"], str(path)), str(path))
        # JD3's (walls in its grid): the canonical windows; a warped tract's written before its own: none
        walls = any(line.get("wall_px") is not None for line in data["grid"]["lines"]) if "grid" in data else True
        return analysis_grid.grid_from_landmarks(data["landmarks"], float(data.get("pixel_mm", 1.0)), source, fixed_walls=walls)
    except analysis_grid.GridError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise analysis_grid.GridError(f"{path}: not a grid file ({exc})") from exc


def write_grids(out: Path, grids: dict[str, analysis_grid.AnalysisGrid]) -> dict[str, float]:
    """DATA/grids/<speaker>.json; returns each speaker's mm per clip pixel."""
    for speaker, grid in grids.items():
        write_grid(out, speaker, grid)
    return {speaker: round(grid.mm_per_px, 6) for speaker, grid in grids.items()}


def clip_pixel_mm(video: Path, landmarks_path: Path | None, speaker: str, crop, size: int) -> float | None:
    """Millimetres per pixel of the clips made from this video, where the source's spacing is known."""
    spacing = source_pixel_mm(video, read_landmark_file(landmarks_path), speaker)
    return round(spacing * crop[2] / size, 6) if spacing else None


def write_speaker_grids(out: Path, recordings, results: list[dict], landmarks_path: Path | None, size: int) -> dict:
    """DATA/grids/<speaker>.json for every prepared speaker with a grid; the header's entries."""
    landmarks = read_landmark_file(landmarks_path)
    grids = {}
    for rec, result in zip(recordings, results):
        if result["status"] == "skipped" or rec.speaker in grids:
            continue
        grid = source_grid(SpeakerFolder.of_video(rec.video).path, rec.speaker, landmarks, str(landmarks_path))
        if grid is not None:
            grids[rec.speaker] = grid.to_clip(result["crop"], size)
    if not grids:
        return {}
    return {"analysis_grids": {"folder": "grids", "pixel_mm": write_grids(out, grids),
                               "note": "per speaker, in the clips' pixels (DESIGN §5b)"}}


def write_clip_states(out: Path, clip_ids: list[str], progress: bool = True) -> dict:
    """``state.npz`` beside every clip whose speaker has a grid (the shared DESIGN.md §4b):
    from the synthesizer's outlines where the clip has them, else from the image measure of
    its frames (real recordings, ``--landmarks``). A state newer than its clip's frames,
    outlines and grid, written by the current closure rule, is kept (prepare resumes). Returns the header's entry."""
    dataset = ClipDataset(out)
    written = {"geometry": 0, "image": 0, "kept": 0}
    for clip_id in tqdm(clip_ids, desc="articulatory states", unit="clip", disable=not progress):
        clip = Clip(dataset.root, clip_id)
        grid = dataset.grid(clip.speaker)
        if grid is None:
            continue
        target = clip.folder / state.STATE_FILE
        sources = [clip.folder / FRAMES_FILE, clip.folder / outlines.GEOMETRY_FILE, dataset.grid_path(clip.speaker)]
        if (target.is_file() and all(target.stat().st_mtime >= p.stat().st_mtime for p in sources if p.is_file())
                and state.closure_rule(target) == state.CLOSURE_RULE):
            written["kept"] += 1
            continue
        geometry = clip.geometry()
        if geometry is not None:
            found = state.from_geometry(geometry, grid, (dataset.image_size, dataset.image_size))
            written["geometry"] += 1
        else:
            found = state.from_measures(measure(clip.frames(), grid))
            written["image"] += 1
        found.save(target)
    return {"articulatory_state": {"file": state.STATE_FILE, "clips": sum(written.values()), "from": written,
                                   "note": "per clip: gaps and positions per gridline (mm), closures (DESIGN §4b)"}}
