"""The ground truth the synthesizer writes next to each video: every frame's outlines and
filled shapes in the video's pixels (``rtmri.articulation.outlines``), and each speaker's
analysis grid (``rtmri.articulation.grid``), exact from the head pose."""

from __future__ import annotations

import dataclasses
import json
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import vocaltractlab_cython as vtl

from rtmri.articulation import grid as analysis_grid
from rtmri.articulation import outlines as geometry_file
from rtmri.articulation import regions as R
from rtmri.files import atomic_write
from rtmri.synth import anatomy
from rtmri.synth.errors import SynthError
from rtmri.synth.geometry import HeadPose
from rtmri.synth.layout import SPEAKER_FILE, SpeakerFolder, speaker_folders
from rtmri.synth.outlines import REST_SHAPE, Outlines, rest_outlines, tract_outlines
from rtmri.synth.speaker_file import REFERENCE_FILE, T, active_tract_limits, load
from rtmri.synth.speakers import Speaker
from rtmri.synth.tracts import head_of

OWN_WINDOWS = "measured on the speaker's own rest tract and head"
OUTLINE_PARTS = ("tongue", "upper", "lower", "uvula", "pharynx_wall", "epiglottis", "larynx")
# The filled shapes of anatomy.tract_shapes that border the air, by position from the end.
TRACT_SHAPES = ("velum", "airway", "tongue", "epiglottis", "lower_incisor")
STATIC_AIR = (anatomy.NASOPHARYNX, anatomy.NASAL_FLOOR_AIRWAY)
STATIC_BONE = (anatomy.HARD_PALATE, anatomy.UPPER_INCISOR)
RIGID_UPPER = slice(7, 18)  # VocalTractLab's upper outline from the hard palate to the incisor edge: fixed
# Its front end of the soft palate (x 2 to 18 mm) moves by a millimetre or two; beneath the bone
# of the hard palate its thin soft tissue is hard to see: the gap ends at the latest a little
# past its rest position.
PALATE_UPPER = slice(5, 8)
PALATE_TOLERANCE_MM = 1.0
PIXEL_MM = 1.0  # the synthetic images: 1 px = 1 mm (the head is scaled, the field of view is not)
PIXEL_CENTRE_SHIFT = 0.25  # frames are drawn at twice the size and averaged: a pixel's centre lies 1/4 px on


def frame_shapes_mm(outlines: Outlines, rest: Outlines, head: anatomy.Head | None = None) -> dict[str, np.ndarray]:
    """One frame's outlines and filled shapes, VocalTractLab mm (rest, head: the speaker's)."""
    skin, shapes = anatomy.tract_shapes(outlines, rest, head)
    arrays = {f"outline_{part}": outlines[part] for part in OUTLINE_PARTS}
    arrays.update({f"shape_{name}": shape.points for name, shape in zip(TRACT_SHAPES, shapes[-len(TRACT_SHAPES):])})
    arrays["shape_head"] = skin
    return arrays


def static_shapes_mm(head: anatomy.Head | None = None) -> dict[str, np.ndarray]:
    head = head or anatomy.Head.reference()
    arrays = {f"static_nasal_air_{i}": head.points(p)[None] for i, p in enumerate(STATIC_AIR)}
    arrays.update({f"static_bone_{i}": head.points(p)[None] for i, p in enumerate(STATIC_BONE)})
    return arrays


def to_pixels(arrays: dict[str, np.ndarray], pose: HeadPose) -> dict[str, np.ndarray]:
    return {k: (pose.to_image(v.reshape(-1, 2)) - PIXEL_CENTRE_SHIFT).reshape(v.shape).astype(np.float32) for k, v in arrays.items()}


def utterance_geometry(frame_outlines: list[Outlines], speaker) -> dict[str, np.ndarray]:
    """Every frame's shapes (frames, points, 2) and the static ones (1, points, 2), in the video's pixels."""
    rest, head = rest_outlines(speaker.tract_file), head_of(speaker.tract_file)
    per_frame = [frame_shapes_mm(o, rest, head) for o in frame_outlines]
    stacked = {k: np.stack([f[k] for f in per_frame]) for k in per_frame[0]}
    return to_pixels({**stacked, **static_shapes_mm(head)}, HeadPose.of(speaker))


def write_geometry(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    geometry_file.save(path, arrays)


def speaker_landmarks(speaker) -> dict[str, list[float]]:
    """The grid's landmarks in the pixels of the speaker's videos (exact: from the head pose)."""
    marks = HeadPose.of(speaker).to_image(speaker.landmarks) - PIXEL_CENTRE_SHIFT
    return {name: [round(float(v), 4) for v in point] for name, point in zip(analysis_grid.LANDMARKS, marks)}


def speaker_grid(speaker) -> analysis_grid.AnalysisGrid:
    """The speaker's grid in its videos' pixels. JD3 keeps the canonical measuring windows;
    any other tract gets its own, measured on its own rest tract and head (``rest_windows``),
    and its port lines placed on its own pharynx wall (``port_moves_mm``)."""
    source = f"synthesizer geometry of {speaker.id}"
    if speaker.tract_file is None:
        return analysis_grid.grid_from_landmarks(speaker_landmarks(speaker), PIXEL_MM, source, fixed_walls=True)
    grid = analysis_grid.grid_from_landmarks(speaker_landmarks(speaker), PIXEL_MM, source)
    rest = rest_outlines(speaker.tract_file)
    in_mm = analysis_grid.grid_from_landmarks(dict(zip(analysis_grid.LANDMARKS, speaker.landmarks)), 1.0)
    moves = port_moves_mm(in_mm, speaker.landmarks, rest, raised_uvula(speaker.tract_file))
    in_mm = analysis_grid.moved_port(in_mm, moves)
    from_wall = np.zeros(len(in_mm), bool)
    from_wall[in_mm.lines_of(R.VELOPHARYNGEAL)] = True
    reach, wall = rest_windows(in_mm.inner, in_mm.outer, rest, head_of(speaker.tract_file), from_wall=from_wall)
    # the same lines (the landmarks' similarity fit commutes with the head pose): mm -> px by its scale
    pose = HeadPose.of(speaker)
    grid = analysis_grid.moved_port(grid, moves @ pose.matrix.T)
    return dataclasses.replace(grid, reach=reach * pose.scale, wall=wall * pose.scale)


def port_anchor(rest: Outlines) -> np.ndarray:
    """The top of the rest tract's posterior pharynx wall (mm), where the uvula's back rests."""
    wall = rest["pharynx_wall"]
    return wall[np.argmin(wall[:, 1])].astype(float)


def port_shift_mm(landmarks_mm: np.ndarray, rest: Outlines) -> np.ndarray:
    """How far the port lines the landmarks carry move (x, y mm) so that they begin behind the
    speaker's own pharynx wall and cross its velum's back as JD3's do: from JD3's wall top,
    carried by the landmarks, to the tract's own. The landmarks (glottis, palate, ridge, lip)
    say little about the nasopharynx: they fit a shorter pharynx by shrinking the whole grid,
    which puts a woman's or a child's port lines in front of the wall, inside the velum, and
    miss a man's wall top by up to 4 mm, enough to misread his port."""
    matrix, offset = analysis_grid.similarity(analysis_grid.CANONICAL_LANDMARKS_MM, landmarks_mm)
    carried = matrix @ np.array(analysis_grid.CANONICAL_PORT_ANCHOR_MM) + offset
    return port_anchor(rest) - carried


def port_moves_mm(in_mm: analysis_grid.AnalysisGrid, landmarks_mm: np.ndarray, rest: Outlines,
                  uvula: np.ndarray) -> np.ndarray:
    """(port lines, 2) how far each port line of the landmarks' grid (in the speaker's mm) moves:
    by the shift onto the tract's own wall top (``port_shift_mm``), and drawn together towards
    it (parallel, as long) so that the lowest stands PORT_TIP_MM above the tip of the tract's
    uvula at its highest (``raised_uvula``): a child's uvula is too short for JD3's spread, and
    a line grazing the tip reads its partial volume as air, through the velum into the mouth."""
    port = in_mm.lines_of(R.VELOPHARYNGEAL)
    shift = port_shift_mm(landmarks_mm, rest)
    anchor = port_anchor(rest)
    direction = in_mm.direction[port]
    down = np.stack([-direction[:, 1], direction[:, 0]], axis=1)  # x forward, y down: the normal pointing down
    below = ((in_mm.inner[port] + shift - anchor) * down).sum(axis=1)  # each line's depth under the wall top
    lowest = int(np.argmax(below))
    room = ((uvula - anchor) @ down[lowest]).max() - analysis_grid.PORT_TIP_MM  # the tip's depth, as the lines'
    factor = min(1.0, room / below.max()) if below.max() > 0 else 1.0
    return shift + (factor - 1.0) * below[:, None] * down


@lru_cache(maxsize=None)
def raised_uvula(tract_file: str | None = None) -> np.ndarray:
    """The tract's uvula (mm) at its highest: its rest state with the velum shape VS at its
    lowest and the port closed. VocalTractLab gives the front vowels (/i/, /y/) and the
    consonants shaped beside them VS 0, which lifts the uvula's tip about 1 mm above the rest
    state's (schwa's); the velum opening only lowers it. Makes the tract the active speaker."""
    load(tract_file or REFERENCE_FILE)
    state = np.array(vtl.get_shape(REST_SHAPE, "tract"), dtype=np.float64)
    limits = active_tract_limits()
    for name in ("VS", "VO"):
        state[T[name]] = limits[name][0]
    with tempfile.TemporaryDirectory(prefix="rtmri-grid-") as scratch:
        return tract_outlines(state, Path(scratch) / "raised.svg")["uvula"]


def grid_content(speaker) -> dict:
    """grid.json: the landmarks (what prepare builds the grid from) and, for reading, the grid
    itself; a speaker with its own tract also says its windows and port lines are its own
    (prepare takes them)."""
    content = {"pixel_mm": PIXEL_MM, "landmarks": speaker_landmarks(speaker)}
    if speaker.tract_file is not None:
        content[analysis_grid.OWN_WINDOWS_KEY] = OWN_WINDOWS
        content[analysis_grid.OWN_PORT_KEY] = analysis_grid.OWN_PORT_LINES
    return {**content, "grid": speaker_grid(speaker).to_json()}


def write_speaker_grid(folder: SpeakerFolder, speaker) -> None:
    folder.path.mkdir(parents=True, exist_ok=True)
    atomic_write(folder.grid_file, json.dumps(grid_content(speaker), indent=1) + "\n")


def corpus_speaker(folder: SpeakerFolder) -> Speaker:
    """The Speaker a corpus folder's speaker.json describes."""
    try:
        return Speaker.from_json(folder.read_speaker(), folder.path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SynthError(f"{folder.speaker_file}: not a speaker of an rtmri synth corpus ({type(exc).__name__}: {exc})") from exc


def rewrite_grids(corpus: Path) -> list[str]:
    """Rewrite every speaker's grid.json of a corpus from its speaker.json and tract file (no
    synthesis); returns the speakers. JD3's are rewritten as they were."""
    folders = speaker_folders(corpus)
    if not folders:
        raise SynthError(f"{corpus}: no <speaker>/{SPEAKER_FILE}: not an rtmri synth corpus")
    for folder in folders:
        write_speaker_grid(folder, corpus_speaker(folder))
    return [folder.id for folder in folders]


def rest_windows(inner: np.ndarray, outer: np.ndarray, rest: Outlines, head: anatomy.Head,
                 margin_mm: float = analysis_grid.REACH_MARGIN_MM,
                 from_wall: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(reach, wall) per gridline (inner, outer in the speaker's mm), measured on its rest
    tract and head: the rest gap's far end plus the margin; the far end again as the wall
    where it lies on the rigid palate or incisor (a little past it on the front of the soft
    palate), brought forward on those lines to where the line first enters their bone, if
    sooner (a line grazing an incisor's edge: the tooth is as dark as the air beyond it).
    Lines in from_wall (port lines moved onto the tract's own wall) reach PORT_REACH_MM past
    where the rest gap begins (the posterior wall): their tract rests with the port open and a
    uvula thinner than JD3's, and the far end plus the margin would reach past the front of a
    closed velum into the oral airway."""
    names = ("",) * len(inner)
    unlimited = analysis_grid.AnalysisGrid(inner, outer, np.full(len(inner), 1e9), np.full(len(inner), np.nan), names, 1.0)
    arrays = {k: v[None] if not k.startswith("static_") else v for k, v in frame_shapes_mm(rest, rest, head).items()}
    arrays.update(static_shapes_mm(head))
    s = np.arange(0.0, float(unlimited.length.max()), geometry_file.TRUTH_STEP_PX)
    points = inner[:, None, :] + s[None, :, None] * unlimited.direction[:, None, :]
    air = geometry_file.close_slivers(geometry_file.air_along(arrays, points, 0), geometry_file.TRUTH_STEP_PX,
                                       geometry_file.MIN_TISSUE_MM)
    air &= s[None, :] <= unlimited.length[:, None]
    start = np.argmax(air, axis=1)
    after = (~air) & (np.arange(len(s))[None, :] > start[:, None])
    far = s[np.argmax(after, axis=1)]
    ends = inner + far[:, None] * unlimited.direction
    on_rigid = geometry_file.distances_to_polyline(ends, rest["upper"][RIGID_UPPER]) < 0.3
    on_palate = geometry_file.distances_to_polyline(ends, rest["upper"][PALATE_UPPER]) < 0.3
    wall = np.where(on_rigid, far, np.where(on_palate, far + PALATE_TOLERANCE_MM, np.nan))
    bone = np.concatenate([geometry_file.crossings_dense(polygon[0], inner, unlimited.direction)
                           for name, polygon in arrays.items() if name.startswith("static_bone")], axis=1)
    into_bone = np.where(bone > s[start][:, None], bone, np.inf).min(axis=1)
    reach = far + margin_mm
    if from_wall is not None:
        reach = np.where(from_wall, s[start] + analysis_grid.PORT_REACH_MM, reach)
    return np.minimum(reach, unlimited.length), np.minimum(wall, into_bone)


def canonical_windows(margin_mm: float = analysis_grid.REACH_MARGIN_MM) -> tuple[np.ndarray, np.ndarray]:
    """(reach, wall) per canonical gridline, measured on JD3's rest tract (grid.CANONICAL_*)."""
    inner, outer, _ = analysis_grid.canonical_lines()
    return rest_windows(inner, outer, rest_outlines(), anatomy.Head.reference(), margin_mm)

