"""A VocalTractLab speaker file with a new anatomy AND its articulations.

VocalTractLab (vocaltractlab-cython 0.0.17, API 2.4.2) can give its JD3 speaker a new
anatomy (``set_anatomy_params``: 13 values), but as shipped that is unusable:

* the anatomy setter rebuilds the tract shapes from a reference tract the API never loads,
  so the speaker ends with no vowel or consonant shapes at all;
* after it the process's heap is corrupted (it dies at exit): it runs here in a child
  process that saves the speaker and leaves with ``os._exit(0)``;
* ``save_speaker`` writes a file VocalTractLab cannot read back (``<glottis_models``
  without its ``>``, tract parameters without their ``unit=``), and a file it cannot read
  aborts the process: every file is first loaded in a child process;
* the piriform fossa, trachea and nasal cavity keep JD3's size (in a small tract the adult
  fossa pulls F1/F2 down).

Here the saved file is repaired, JD3's tract shapes (vowels and consonant targets) are
mapped into the new anatomy with a port of VocalTractLab's own
``AnatomyParams::adaptArticulation`` and clipped to the new parameter limits, and the
cavities are scaled. ``shape_repair`` then keeps the constrictions valid.

Every speaker file, JD3's own included (``reference_file``: a copy beside the temporary
files), also gets the vowels VocalTractLab lacks (``own_vowels``): Japanese /ɯ/ made from
the file's own rounded /u/.
"""

from __future__ import annotations

import json
import os
import re
import hashlib
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import vocaltractlab_cython as vtl
from vocaltractlab_cython.VocalTractLabApi import _initialize

from rtmri.files import atomic_write
from rtmri.synth.errors import SpeakerRejected
from rtmri.synth.japanese import JA_U, ROUNDED_U

REFERENCE_FILE = vtl.speaker_path()  # JD3, the adult male every synthetic tract derives from


@dataclass(frozen=True)
class AnatomyParam:
    key: str
    symbol: str  # VocalTractLab's name (AnatomyParams.h)
    low: float  # VocalTractLab's limits (restrictParams clips to them, silently)
    high: float


# In the order of vtlGet/SetAnatomyParams; lengths in cm, the angle in degrees.
ANATOMY = (
    AnatomyParam("lip_width", "W0", 0.5, 1.5),
    AnatomyParam("mandible_height", "H5", 0.9, 1.8),
    AnatomyParam("lower_molars_height", "H4", 0.3, 0.7),
    AnatomyParam("upper_molars_height", "H3", 0.3, 0.7),
    AnatomyParam("palate_height", "H2", 0.8, 2.0),
    AnatomyParam("palate_depth", "D0", 2.6, 5.0),
    AnatomyParam("hard_palate_length", "W1", 2.2, 5.2),
    AnatomyParam("soft_palate_length", "W2", 2.3, 3.1),
    AnatomyParam("pharynx_length", "H0", 3.5, 8.0),
    AnatomyParam("larynx_length", "H1", 2.0, 4.0),
    AnatomyParam("larynx_width", "W4", 2.0, 3.5),
    AnatomyParam("vocal_fold_length", "W3", 0.5, 2.0),
    AnatomyParam("oral_pharyngeal_angle", "A0", -105.0, -90.0),
)
INDEX = {p.symbol: i for i, p in enumerate(ANATOMY)}
W0, H5, H4, H3, H2, D0, W1, W2, H0, H1, W4, W3, A0 = range(len(ANATOMY))
JAW_STACK = [H2, H3, H4, H5]  # VocalTractLab raises the pharynx to at least their sum
TRACT_LENGTH_PARTS = [H0, H1, W1, W2]  # how the cavities scale with the tract

TRACT_PARAMS = tuple(p["name"] for p in vtl.get_param_info("tract"))
T = {name: i for i, name in enumerate(TRACT_PARAMS)}
TOLERANCE = 1e-6
CHILD_TIMEOUT_S = 120


def check_anatomy(anatomy) -> np.ndarray:
    """The 13 values as an array; SpeakerRejected before VocalTractLab would clip them silently."""
    values = np.asarray(anatomy, dtype=float)
    if values.shape != (len(ANATOMY),) or not np.all(np.isfinite(values)):
        raise SpeakerRejected("anatomy-not-finite", f"13 finite values needed, got {np.array2string(values, precision=3)}")
    for param, value in zip(ANATOMY, values):
        if not param.low - TOLERANCE <= value <= param.high + TOLERANCE:
            raise SpeakerRejected("anatomy-out-of-vtl-range", f"{param.key}={value:.3f} outside [{param.low}, {param.high}]")
    if values[H0] < values[JAW_STACK].sum() - TOLERANCE:
        raise SpeakerRejected("pharynx-shorter-than-jaw",
                              f"pharynx_length={values[H0]:.2f} < palate+molars+mandible={values[JAW_STACK].sum():.2f}")
    return values


# ---------------------------------------------------------------------------------------
# Child processes: VocalTractLab's anatomy setter corrupts the heap, its XML errors abort.
# ---------------------------------------------------------------------------------------

_SET_ANATOMY = r"""
import json, os, sys
import numpy as np
import vocaltractlab_cython as vtl
request = json.loads(sys.argv[1])
reference = vtl.get_anatomy_params().tolist()
vtl.set_anatomy_params(np.array(request["anatomy"], dtype=float))
applied = vtl.get_anatomy_params().tolist()
vtl.save_speaker(request["out"])
sys.stdout.write("RESULT " + json.dumps({"reference": reference, "applied": applied}) + "\n")
sys.stdout.flush()
os._exit(0)
"""

_LOAD_CHECK = r"""
import os, sys
import vocaltractlab_cython as vtl
from vocaltractlab_cython.VocalTractLabApi import _initialize
_initialize(sys.argv[1])
for name in sys.argv[2:]:
    vtl.get_shape(name, "tract")
sys.stdout.write("LOADED\n")
sys.stdout.flush()
os._exit(0)
"""
LOAD_CHECK_SHAPES = ("a", "i", "u", "e", "o", "@", "tt-alveolar-closure(a)", "tb-velar-closure(i)", "ll-labial-closure(a)")


def _run_child(code: str, *args: str) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT_S, env=env, check=False)
    except subprocess.TimeoutExpired as exc:
        raise SpeakerRejected("vtl-child-crashed", f"no answer within {CHILD_TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        tail = " ".join((proc.stderr or proc.stdout).split())[-300:]
        raise SpeakerRejected("vtl-child-crashed", f"exit {proc.returncode}: {tail}")
    return proc.stdout


def save_with_anatomy(anatomy: np.ndarray, raw_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(applied, reference) anatomy; VocalTractLab's raw (broken) file at raw_path."""
    stdout = _run_child(_SET_ANATOMY, json.dumps({"anatomy": [float(x) for x in anatomy], "out": str(raw_path)}))
    line = next((ln for ln in stdout.splitlines() if ln.startswith("RESULT ")), None)
    if line is None:
        raise SpeakerRejected("vtl-child-crashed", "the anatomy child gave no result")
    result = json.loads(line[len("RESULT "):])
    return np.array(result["applied"]), np.array(result["reference"])


def check_loadable(path: Path, shapes=LOAD_CHECK_SHAPES) -> None:
    """Load the file and its key shapes in a child (an unreadable file would abort this process)."""
    if "LOADED" not in _run_child(_LOAD_CHECK, str(path), *shapes):
        raise SpeakerRejected("speaker-file-not-loadable", str(path))


def load(path, force: bool = False) -> None:
    """Make the speaker file VocalTractLab's active speaker in this process (force: re-read it)."""
    if force or Path(vtl.active_speaker()) != Path(path):
        _initialize(str(path))


# ---------------------------------------------------------------------------------------
# Repairs of what save_speaker writes
# ---------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _reference_text() -> str:
    return Path(REFERENCE_FILE).read_text()


def repair_saved_text(text: str) -> str:
    """The two defects of save_speaker: the unclosed <glottis_models and the lost unit= attributes."""
    text = re.sub(r"<glottis_models\s*\n", "<glottis_models>\n", text, count=1)
    units = dict(re.findall(r'<param index="\d+"\s+name="(\w+)"\s+description="[^"]*"\s+unit="([^"]*)"',
                            _reference_text().split("<shapes>")[0]))

    def with_unit(match: re.Match) -> str:
        line = match.group(0)
        if "unit=" in line:
            return line
        return re.sub(r'(description="[^"]*")', lambda d: f'{d.group(1)}  unit="{units.get(match.group(1), "")}"', line, count=1)

    head, sep, tail = text.partition("<shapes>")
    return re.sub(r'<param index="\d+"\s+name="(\w+)"[^\n]*', with_unit, head) + sep + tail


def active_tract_limits() -> dict[str, tuple[float, float]]:
    """The tract parameters' limits of VocalTractLab's active speaker."""
    return {p["name"]: (p["min"], p["max"]) for p in vtl.get_param_info("tract")}


def tract_limits(text: str) -> dict[str, tuple[float, float]]:
    """The tract parameters' limits VocalTractLab derived for the file's anatomy."""
    head = text.split("<shapes>")[0]
    return {m.group(1): (float(m.group(2)), float(m.group(3)))
            for m in re.finditer(r'<param index="\d+"\s+name="(\w+)".*?min="([-\d.]+)"\s+max="([-\d.]+)"', head)}


def reference_shapes() -> list[tuple[str, np.ndarray]]:
    """(name, tract parameters) of every tract shape of JD3, in file order."""
    return list(shapes_of(_reference_text()).items())


def _shape_block(name: str, values: np.ndarray) -> str:
    params = "\n".join(f'        <param name="{p}" value="{v:.4f}"/>' for p, v in zip(TRACT_PARAMS, values))
    return f'      <shape name="{name}">\n{params}\n      </shape>'


def insert_shapes(text: str, shapes: list[tuple[str, np.ndarray]]) -> str:
    empty = re.compile(r"(<vocal_tract_model>.*?<shapes>)\s*(</shapes>)", re.DOTALL)
    if not empty.search(text):
        raise SpeakerRejected("unexpected-speaker-file", "no empty <shapes> in the saved vocal tract")
    blocks = "\n".join(_shape_block(name, values) for name, values in shapes)
    return empty.sub(lambda m: f"{m.group(1)}\n{blocks}\n    {m.group(2)}", text, count=1)


def replace_shapes(text: str, shapes: dict[str, np.ndarray]) -> str:
    for name, values in shapes.items():
        pattern = re.compile(rf'      <shape name="{re.escape(name)}">\n.*?\n      </shape>', re.DOTALL)
        block = _shape_block(name, values)
        text, n = pattern.subn(lambda _m, block=block: block, text, count=1)
        if n != 1:
            raise SpeakerRejected("unexpected-speaker-file", f"no tract shape {name}")
    return text


def scale_cavities(text: str, scale: float) -> str:
    """Piriform fossa length x s and volume x s^3, trachea and nasal cavity length x s."""
    for element, attribute, factor in (("piriform_fossa", "length", scale), ("piriform_fossa", "volume", scale**3),
                                       ("subglottal_cavity", "length", scale), ("nasal_cavity", "length", scale)):
        pattern = re.compile(rf'(<{element}\b[^>]*?\b{attribute}=")([-\d.]+)(")')
        text, n = pattern.subn(lambda m, factor=factor: f"{m.group(1)}{float(m.group(2)) * factor:.4f}{m.group(3)}", text, count=1)
        if n != 1:
            raise SpeakerRejected("unexpected-speaker-file", f"no {element} {attribute}")
    return text


def set_glottis_statics(text: str, values: dict[str, float], model: str = "Geometric glottis") -> str:
    """Static parameters of a glottis model (rest length RL, rest thickness RT, rest f0 RF0 ...)."""
    start = text.index(f'type="{model}"')
    end = text.index("</static_params>", start)
    block = text[start:end]
    for name, value in values.items():
        pattern = re.compile(rf'(name="{re.escape(name)}"[^>]*?neutral=")([-\d.]+)(")')
        block, n = pattern.subn(lambda m, value=value: f"{m.group(1)}{value:.6f}{m.group(3)}", block, count=1)
        if n != 1:
            raise SpeakerRejected("unexpected-speaker-file", f"no static parameter {name} of the {model}")
    return text[:start] + block + text[end:]


# ---------------------------------------------------------------------------------------
# The vowels VocalTractLab lacks
# ---------------------------------------------------------------------------------------

# Japanese /ɯ/ from the tract's rounded /u/, tuned on JD3 to the Kyoto survey's male /ɯ/
# (F1 367, F2 1332 Hz; docs/drafts/vowels.md): lips not protruded (LP as JD3's /i/ and /a/)
# and a little further apart, the tongue body and blade forward and a little lower. The
# shifts are JD3's centimetres; a built tract takes them scaled (``tracts.add_own_vowels``).
JA_U_LIP_PROTRUSION_CM = 0.1
JA_U_SHIFT_CM = {"LD": 0.06, "TCX": 0.6, "TBX": 0.6, "TCY": -0.25, "TBY": -0.25}


def unrounded_u(rounded: np.ndarray, scale: float, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Japanese /ɯ/ of a tract whose rounded /u/ is ``rounded``, moved by ``scale`` times JD3's shift."""
    out = np.array(rounded, dtype=float)
    out[T["LP"]] = JA_U_LIP_PROTRUSION_CM
    for key, shift in JA_U_SHIFT_CM.items():
        out[T[key]] += shift * scale
    return np.clip(out, low, high)


def own_vowels(shapes: dict[str, np.ndarray], scale: float, low: np.ndarray, high: np.ndarray) -> dict[str, np.ndarray]:
    """The vowel shapes VocalTractLab lacks, made from the file's own shapes."""
    return {JA_U: unrounded_u(shapes[ROUNDED_U], scale, low, high)}


def limits_of(text: str) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of the 19 tract parameters in a speaker file."""
    limits = tract_limits(text)
    return (np.array([limits.get(p, (-np.inf, np.inf))[0] for p in TRACT_PARAMS]),
            np.array([limits.get(p, (-np.inf, np.inf))[1] for p in TRACT_PARAMS]))


def append_shapes(text: str, shapes: dict[str, np.ndarray]) -> str:
    """The tract shapes added at the end of the vocal tract's shapes."""
    pattern = re.compile(r"(<vocal_tract_model>.*?)(\n\s*</shapes>)", re.DOTALL)
    if not pattern.search(text):
        raise SpeakerRejected("unexpected-speaker-file", "no <shapes> in the vocal tract")
    blocks = "\n".join(_shape_block(name, values) for name, values in shapes.items())
    return pattern.sub(lambda m: f"{m.group(1)}\n{blocks}{m.group(2)}", text, count=1)


def shapes_of(text: str) -> dict[str, np.ndarray]:
    """{name: tract parameters} of every tract shape in a speaker file's text."""
    root = ET.fromstring(text)
    out = {}
    for shape in root.find("vocal_tract_model").find("shapes"):
        values = {p.get("name"): float(p.get("value")) for p in shape}
        out[shape.get("name")] = np.array([values[n] for n in TRACT_PARAMS])
    return out


def add_own_vowels(path: Path, scale: float) -> dict[str, np.ndarray]:
    """Add (or replace) the vowels VocalTractLab lacks in a speaker file; returns them."""
    text = Path(path).read_text()
    shapes = shapes_of(text)
    made = own_vowels(shapes, scale, *limits_of(text))
    present = {name: values for name, values in made.items() if name in shapes}
    text = replace_shapes(text, present)
    text = append_shapes(text, {name: values for name, values in made.items() if name not in shapes})
    atomic_write(path, text)
    check_loadable(path, LOAD_CHECK_SHAPES + tuple(made))
    return made


@lru_cache(maxsize=1)
def reference_file() -> str:
    """JD3 with the vowels VocalTractLab lacks: a copy in the temporary folder, named by its content."""
    text = _reference_text()
    made = own_vowels(shapes_of(text), 1.0, *limits_of(text))
    text = append_shapes(text, made)
    path = Path(tempfile.gettempdir()) / f"rtmri-JD3-{hashlib.sha256(text.encode()).hexdigest()[:16]}.speaker"
    if not path.is_file() or path.read_text() != text:
        atomic_write(path, text)
    check_loadable(path, LOAD_CHECK_SHAPES + tuple(made))
    return str(path)


# ---------------------------------------------------------------------------------------
# Port of AnatomyParams::adaptArticulation (VocalTractLabBackend/AnatomyParams.cpp)
# ---------------------------------------------------------------------------------------


def _transform_x(x: float, ref: np.ndarray, new: np.ndarray) -> float:
    return x * (new[W2] / ref[W2] if x < 0.0 else new[W1] / ref[W1])


def _transform_y(x: float, y: float, ref: np.ndarray, new: np.ndarray) -> float:
    t = float(np.clip((x + ref[W2]) / (ref[W2] + ref[W1]), 0.0, 1.0))
    back = new[H2] + (y - ref[H2]) * new[H0] / ref[H0]
    front = new[H2] + (y - ref[H2]) * new[JAW_STACK].sum() / ref[JAW_STACK].sum()
    return (1.0 - t) * back + t * front


def adapt_articulation(old: np.ndarray, ref: np.ndarray, new: np.ndarray) -> np.ndarray:
    """A JD3 articulation (19 tract parameters) in the new anatomy."""
    out = np.array(old, dtype=float)
    out[T["HY"]] = _transform_y(0.0, old[T["HY"]], ref, new)
    out[T["JX"]] = old[T["JX"]] * (new[W1] + new[W2]) / (ref[W1] + ref[W2])
    out[T["LD"]] = old[T["LD"]] * new[H0] / ref[H0]
    for x_key, y_key in (("TCX", "TCY"), ("TTX", "TTY"), ("TBX", "TBY"), ("TRX", "TRY")):
        out[T[x_key]] = _transform_x(old[T[x_key]], ref, new)
        out[T[y_key]] = _transform_y(old[T[x_key]], old[T[y_key]], ref, new)
    for key in ("TS1", "TS2", "TS3"):
        out[T[key]] = old[T[key]] * new[D0] / ref[D0]
    return out


def length_scale(new: np.ndarray, ref: np.ndarray) -> float:
    """Tract-length ratio new / JD3 from the anatomy (pharynx, larynx, hard and soft palate)."""
    return float(new[TRACT_LENGTH_PARTS].sum() / ref[TRACT_LENGTH_PARTS].sum())


def area_scale(new: np.ndarray, ref: np.ndarray) -> float:
    """Cross-section ratio new / JD3 of the oral cavity (palate width x height)."""
    return float(new[D0] / ref[D0] * new[H2] / ref[H2])


def write_speaker_file(anatomy, path: Path, glottis_statics: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """JD3 with the given anatomy, its shapes adapted, cavities scaled, statics set: a loadable
    file at path. Returns (applied anatomy, JD3's anatomy); SpeakerRejected with a named reason."""
    anatomy = check_anatomy(anatomy)
    raw = path.with_name(path.name + ".raw")
    try:
        applied, reference = save_with_anatomy(anatomy, raw)
        text = raw.read_text()
    except OSError as exc:
        raise SpeakerRejected("vtl-child-crashed", f"no saved speaker: {exc}") from exc
    finally:
        raw.unlink(missing_ok=True)
    if not np.allclose(applied, anatomy, atol=TOLERANCE):
        changed = {ANATOMY[i].key: (round(anatomy[i], 3), round(applied[i], 3)) for i in np.flatnonzero(~np.isclose(applied, anatomy))}
        raise SpeakerRejected("anatomy-changed-by-vtl", str(changed))
    text = repair_saved_text(text)
    low, high = limits_of(text)
    shapes = []
    for name, values in reference_shapes():
        adapted = adapt_articulation(values, reference, applied)
        if not np.all(np.isfinite(adapted)):
            raise SpeakerRejected("shape-not-finite", name)
        shapes.append((name, np.clip(adapted, low, high)))
    text = insert_shapes(text, shapes)
    text = scale_cavities(text, length_scale(applied, reference))
    text = set_glottis_statics(text, glottis_statics)
    try:
        ET.fromstring(text)
    except ET.ParseError as exc:
        raise SpeakerRejected("speaker-xml-malformed", f"{path}: {exc}") from exc
    atomic_write(path, text)
    check_loadable(path)
    return applied, reference


def update_shapes(path: Path, shapes: dict[str, np.ndarray]) -> None:
    """Replace named tract shapes in the file; checked loadable before use."""
    atomic_write(path, replace_shapes(Path(path).read_text(), shapes))
    check_loadable(path)
