"""The model bundle (the shared DESIGN.md §4): ``model.onnx`` next to ``model.onnx.json``.

The manifest holds everything needed to run the graph with no other file: feature
parameters, fps, window length, lookahead, image size and channels, the crop of the
frames, the reference frame(s) (PNG, base64), the training data it came from and its
evaluation figures at export time. It is read once into a typed ``Manifest``; readers use
its attributes. Loading needs numpy, Pillow and onnxruntime only.

Graph interface (checked against the manifest on load)::

    inputs:  "mel"  float32 (batch, 1, 80, 16)        the frames' mel windows
             "face" float32 (batch, 2*C, S, S)        only when the face encoder is not baked:
                                                      masked reference + reference, in [0, 1]
    output:  "frames" float32 (batch, C, S, S)        generated frames in [0, 1]

An articulatory bundle (architecture "articulatory", DESIGN.md §4b) holds two
graphs: ``model.onnx`` gives the state and the renderer (the manifest's ``renderer``:
{"onnx", "onnx_sha256"}) draws it::

    model.onnx     inputs:  "mel"   float32 (batch, 1, 80, W)     W = window_columns: the frame's
                                                                  window with its past
                   output:  "state" float32 (batch, state_size)
    renderer.onnx  inputs:  "state" float32 (batch, state_size)
                            "face"  float32 (batch, 2*C, S, S)    the state drawn on the reference
                                                                  speaker's grid, then the reference
                   output:  "frames" float32 (batch, C, S, S)

A bundle whose manifest has ``input_norm`` (rtmri.audio.SessionNorm.to_dict) takes its mel
normalised over the session: every reader builds its windows from ``Bundle.features`` (a whole
recording) or from a FrameWindows given ``Bundle.session_norm()`` (a stream).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath

import numpy as np
from PIL import Image

from rtmri import RtmriError
from rtmri.alignment import FPS, WINDOW_COLUMNS, lookahead_samples, window_end_sample
from rtmri.audio import HALF_WINDOW, N_MELS, SAMPLE_RATE, SessionNorm, feature_params
from rtmri.bundle import architectures
from rtmri.files import atomic_write, file_sha256

__all__ = [
    "FORMAT", "VERSION", "MANIFEST_SUFFIX", "MEL_INPUT", "FACE_INPUT", "FRAMES_OUTPUT", "STATE_OUTPUT",
    "BundleError", "Manifest", "Bundle", "manifest_path_for", "read_manifest", "expected_io",
    "graph_problems", "expected_renderer_io", "encode_png", "decode_png", "new_manifest", "write_bundle",
]

FORMAT = "rtmri-bundle"
VERSION = 1
MANIFEST_SUFFIX = ".json"
MEL_INPUT = "mel"
FACE_INPUT = "face"
FRAMES_OUTPUT = "frames"
STATE_OUTPUT = "state"
MAX_WINDOW_COLUMNS = 128  # 1.6 s: an articulatory model's past context
FACE_ENCODERS = ("baked", "input")  # "baked": reference folded into the graph; "input": face is an input
CHANNEL_COUNTS = (1, 3)
# The window's reach: its oldest sample (half an STFT window before its first column) lies at
# the frame's timestamp when the lookahead is this long; a longer one would make the frame
# from audio that starts after it, and the streamer wait that long for each frame.
MAX_LOOKAHEAD_MS = (window_end_sample(0) + HALF_WINDOW) * 1000 / SAMPLE_RATE  # 237.5 ms
MAX_MANIFEST_BYTES = 16 * 2**20  # a manifest with its reference PNGs is tens of kB
SHA256_HEX_DIGITS = 64
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class BundleError(RtmriError):
    """A bundle that is missing, incomplete or does not match its graph."""


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest, validated. Fields this version does not know (and optional ones
    it does not type, such as "variant") are kept in ``extra`` and written back unchanged."""

    onnx: str  # the graph's file name, next to the manifest
    lookahead_ms: float
    image_size: int
    channels: int
    face_encoder: str
    frames: dict  # crop [x, y, w, h] in the source video (or a per-speaker table), orientation
    reference: dict  # {"frames": [base64 PNG, ...], "source": ..., "speaker": ...}
    training: dict  # the data and run it came from
    evaluation: dict  # figures at export time
    architecture: str = architectures.WAV2LIP  # bundles from before the field hold wav2lip
    onnx_sha256: str | None = None  # written by export; bundles from before the field load unchecked
    format: str = FORMAT
    version: int = VERSION
    features: dict = field(default_factory=feature_params)
    fps: int = FPS
    window_columns: int = WINDOW_COLUMNS
    renderer: dict | None = None  # articulatory bundles: {"onnx": file, "onnx_sha256": ..., "state_size": n}
    input_norm: dict | None = None  # the mel's normalisation before the graph (rtmri.audio.SessionNorm.to_dict); None: raw
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data, source: str | Path) -> "Manifest":
        """Validate a parsed manifest; every problem is one line naming ``source`` and the field."""
        problems = _problems(data)
        if problems:
            raise BundleError("\n".join(f"{source}: {problem}" for problem in problems))
        known = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        typed = {k: v for k, v in data.items() if k in known}
        return cls(**{**typed, "lookahead_ms": float(data["lookahead_ms"])}, extra={k: v for k, v in data.items() if k not in known})

    def to_dict(self) -> dict:
        typed = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "extra"}
        for optional in ("onnx_sha256", "renderer", "input_norm"):
            if typed[optional] is None:
                del typed[optional]
        return {**typed, **self.extra}

    @property
    def face_baked(self) -> bool:
        return self.face_encoder == "baked"

    @property
    def gives_state(self) -> bool:
        """The model predicts the articulatory state (and renders it)."""
        return self.architecture == architectures.ARTICULATORY

    def reference_frames(self) -> np.ndarray:
        """uint8 (n, S, S) grayscale reference frames."""
        return np.stack([decode_png(item) for item in self.reference["frames"]])

    def training_lineage(self) -> list[dict]:
        """The training record, then those of the models it was fine-tuned from (export --fine-tuned-from)."""
        chain = [self.training]
        while isinstance(chain[-1].get("fine_tuned_from"), dict):
            chain.append(chain[-1]["fine_tuned_from"])
        return chain


# field -> the JSON type(s) it must have; the checks of the values follow in _problems.
_FIELD_TYPES = {
    "format": str,
    "version": int,
    "onnx": str,
    "features": dict,
    "fps": int,
    "window_columns": int,
    "lookahead_ms": (int, float),
    "image_size": int,
    "channels": int,
    "face_encoder": str,
    "frames": dict,
    "reference": dict,
    "training": dict,
    "evaluation": dict,
}
_OPTIONAL_TYPES = {"architecture": str, "onnx_sha256": str, "renderer": dict, "input_norm": dict}


def _problems(data) -> list[str]:
    if not isinstance(data, dict):
        return [f"the manifest is {type(data).__name__}, expected a JSON object"]
    problems = []
    for name, kind in _FIELD_TYPES.items():
        if name not in data:
            problems.append(f"missing field {name!r}")
        elif not isinstance(data[name], kind) or isinstance(data[name], bool):
            problems.append(f"field {name!r} has the wrong type ({type(data[name]).__name__})")
    for name, kind in _OPTIONAL_TYPES.items():
        if name in data and not isinstance(data[name], kind):
            problems.append(f"field {name!r} has the wrong type ({type(data[name]).__name__})")
    if problems:
        return problems
    if data["format"] != FORMAT:
        problems.append(f"field 'format' is {data['format']!r}, expected {FORMAT!r}")
    if data["version"] != VERSION:
        problems.append(f"field 'version' is {data['version']}, this version reads version {VERSION}")
    if data["features"] != feature_params():
        differing = sorted(k for k in set(feature_params()) | set(data["features"]) if feature_params().get(k) != data["features"].get(k))
        problems.append(f"field 'features': feature parameters differ from this version's features: {', '.join(differing)}")
    if data["fps"] != FPS:
        problems.append(f"field 'fps' is {data['fps']}, this streamer runs at {FPS}")
    articulatory = data.get("architecture") == architectures.ARTICULATORY
    if not articulatory and data["window_columns"] != WINDOW_COLUMNS:
        problems.append(f"field 'window_columns' is {data['window_columns']}, expected {WINDOW_COLUMNS}")
    if articulatory and not WINDOW_COLUMNS <= data["window_columns"] <= MAX_WINDOW_COLUMNS:
        problems.append(f"field 'window_columns' is {data['window_columns']}, expected {WINDOW_COLUMNS} to {MAX_WINDOW_COLUMNS}")
    problems += _renderer_problems(data.get("renderer"), articulatory)
    problems += _input_norm_problems(data.get("input_norm"))
    problems += _lookahead_problems(data["lookahead_ms"])
    problems += _onnx_problems(data["onnx"], data.get("onnx_sha256"))
    if data["image_size"] <= 0:
        problems.append(f"field 'image_size' is {data['image_size']}, expected a positive number of pixels")
    if data["channels"] not in CHANNEL_COUNTS:
        problems.append(f"field 'channels' is {data['channels']}, expected 1 or 3")
    if data["face_encoder"] not in FACE_ENCODERS:
        problems.append(f"field 'face_encoder' is {data['face_encoder']!r}, expected 'baked' or 'input'")
    problems += _reference_problems(data["reference"], data["image_size"])
    return problems


def _lookahead_problems(lookahead_ms) -> list[str]:
    if not math.isfinite(lookahead_ms):
        return [f"field 'lookahead_ms' is {lookahead_ms}, expected a number of milliseconds"]
    if not 0 <= lookahead_ms <= MAX_LOOKAHEAD_MS:
        return [f"field 'lookahead_ms' is {lookahead_ms} ms, outside what the {WINDOW_COLUMNS}-column window allows "
                f"(0 to {MAX_LOOKAHEAD_MS} ms)"]
    try:
        lookahead_samples(lookahead_ms)
    except RtmriError as exc:
        return [f"field 'lookahead_ms': {exc}"]
    return []


def _input_norm_problems(spec: dict | None) -> list[str]:
    if spec is None:
        return []
    if spec.get("kind") != "session":
        return [f"field 'input_norm' has kind {spec.get('kind')!r}; this version knows 'session'"]
    bad = [key for key in ("prior_mean", "prior_std") if not (isinstance(spec.get(key), list) and len(spec[key]) == N_MELS)]
    return [f"field 'input_norm': {key!r} must be a list of {N_MELS} numbers" for key in bad]


def _renderer_problems(renderer: dict | None, articulatory: bool) -> list[str]:
    if not articulatory:
        return [] if renderer is None else ["field 'renderer' belongs to an articulatory bundle (architecture 'articulatory')"]
    if renderer is None:
        return ["missing field 'renderer': an articulatory bundle names its renderer graph"]
    problems = [f"field 'renderer' lacks {key!r}" for key in ("onnx", "state_size") if key not in renderer]
    if problems:
        return problems
    if not isinstance(renderer["state_size"], int) or renderer["state_size"] < 1:
        problems.append(f"field 'renderer': state_size is {renderer['state_size']!r}, expected a positive whole number")
    return problems + [f"renderer: {p}" for p in _onnx_problems(str(renderer["onnx"]), renderer.get("onnx_sha256"))]


def _onnx_problems(name: str, sha256: str | None) -> list[str]:
    problems = []
    if name in ("", ".", "..") or PurePosixPath(name).name != name or PureWindowsPath(name).name != name:
        problems.append(f"field 'onnx' is {name!r}: the graph must be a file next to the manifest, inside the bundle")
    if sha256 is not None and not (len(sha256) == SHA256_HEX_DIGITS and all(c in "0123456789abcdef" for c in sha256)):
        problems.append(f"field 'onnx_sha256' is {sha256!r}, expected {SHA256_HEX_DIGITS} lower-case hex digits")
    return problems


def _reference_problems(reference: dict, size: int) -> list[str]:
    frames = reference.get("frames")
    if not isinstance(frames, list) or not frames:
        return ["field 'reference' has no frames (expected a list of base64 PNGs)"]
    problems = [_png_problem(item, size) for item in frames]
    return [f"field 'reference': frame {index} {problem}" for index, problem in enumerate(problems) if problem]


def _png_problem(item, size: int) -> str | None:
    """Why ``item`` is not a base64 PNG of size x size pixels; the size is read from the header,
    so a huge declared image is refused before its pixels are decoded."""
    if not isinstance(item, str):
        return f"is a JSON {type(item).__name__}, not a base64 PNG"
    try:
        data = base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        return "is not base64"
    if not data.startswith(PNG_SIGNATURE):
        return "is not a PNG"
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
            if image.size != (size, size):
                return f"is {image.size[0]}x{image.size[1]} px, image_size is {size}"
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return f"is a damaged PNG ({exc})"
    return None


@dataclass
class Bundle:
    path: Path  # the manifest file
    manifest: Manifest

    @property
    def onnx_path(self) -> Path:
        return self.path.parent / self.manifest.onnx

    @property
    def lookahead_ms(self) -> float:
        return float(self.manifest.lookahead_ms)

    @property
    def image_size(self) -> int:
        return self.manifest.image_size

    @property
    def window_columns(self) -> int:
        return self.manifest.window_columns

    @property
    def gives_state(self) -> bool:
        return self.manifest.gives_state

    @property
    def renderer_path(self) -> Path | None:
        return None if self.manifest.renderer is None else self.path.parent / self.manifest.renderer["onnx"]

    @property
    def channels(self) -> int:
        return self.manifest.channels

    @property
    def face_baked(self) -> bool:
        return self.manifest.face_baked

    def reference_frames(self) -> np.ndarray:
        """uint8 (n, S, S) grayscale reference frames."""
        return self.manifest.reference_frames()

    def session_norm(self) -> SessionNorm | None:
        """A new session's input normalisation (None: the graph takes the raw mel)."""
        return None if self.manifest.input_norm is None else SessionNorm.from_dict(self.manifest.input_norm)

    def features(self, mel: np.ndarray) -> np.ndarray:
        """A whole recording's mel as this bundle's graph takes it (a session from its start)."""
        norm = self.session_norm()
        return mel if norm is None else norm.push(mel)


def manifest_path_for(path: str | Path) -> Path:
    """Accepts a bundle folder, its ONNX file or its manifest."""
    path = Path(path)
    if path.is_dir():
        candidates = sorted(path.glob("*.onnx" + MANIFEST_SUFFIX))
        if len(candidates) != 1:
            raise BundleError(f"{path}: expected one *.onnx.json manifest in the folder, found {len(candidates)}")
        return candidates[0]
    if path.suffix == ".onnx":
        return path.with_name(path.name + MANIFEST_SUFFIX)
    return path


def read_manifest(path: str | Path) -> Bundle:
    """Read and validate a bundle's manifest (fields, feature parameters, consistency)."""
    manifest_file = manifest_path_for(path)
    if not manifest_file.is_file():
        raise BundleError(f"{manifest_file}: no such bundle manifest")
    if manifest_file.stat().st_size > MAX_MANIFEST_BYTES:
        raise BundleError(f"{manifest_file}: the manifest is {manifest_file.stat().st_size} bytes, more than the "
                          f"{MAX_MANIFEST_BYTES} a manifest may have")
    try:
        data = json.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_file}: manifest is not valid JSON ({exc})") from exc
    bundle = Bundle(manifest_file, Manifest.from_dict(data, manifest_file))
    graphs = [("onnx_sha256", bundle.onnx_path, bundle.manifest.onnx_sha256)]
    if bundle.renderer_path is not None:
        graphs.append(("renderer.onnx_sha256", bundle.renderer_path, bundle.manifest.renderer.get("onnx_sha256")))
    for field_name, graph, sha256 in graphs:
        if not graph.is_file():
            raise BundleError(f"{manifest_file}: its ONNX graph {graph} is missing")
        if sha256 is not None and file_sha256(graph) != sha256:
            raise BundleError(f"{manifest_file}: field '{field_name}': {graph.name} has SHA-256 {file_sha256(graph)}, the "
                              f"manifest records {sha256} (the graph changed after export)")
    return bundle


def expected_io(bundle: Bundle) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Input and output names with shapes (None for the dynamic batch)."""
    size, channels = bundle.image_size, bundle.channels
    inputs = {MEL_INPUT: (None, 1, N_MELS, bundle.window_columns)}
    if bundle.gives_state:
        return inputs, {STATE_OUTPUT: (None, bundle.manifest.renderer["state_size"])}
    if not bundle.face_baked:
        inputs[FACE_INPUT] = (None, 2 * channels, size, size)
    return inputs, {FRAMES_OUTPUT: (None, channels, size, size)}


def expected_renderer_io(bundle: Bundle) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """An articulatory bundle's renderer graph: state and face in, frames out."""
    size, channels = bundle.image_size, bundle.channels
    inputs = {STATE_OUTPUT: (None, bundle.manifest.renderer["state_size"]), FACE_INPUT: (None, 2 * channels, size, size)}
    return inputs, {FRAMES_OUTPUT: (None, channels, size, size)}


def graph_problems(bundle: Bundle, session, io=expected_io) -> list[str]:
    """Differences between the manifest's promise (``io``) and an onnxruntime session's graph."""
    want_in, want_out = io(bundle)
    have_in = {i.name: tuple(d if isinstance(d, int) else None for d in i.shape) for i in session.get_inputs()}
    have_out = {o.name: tuple(d if isinstance(d, int) else None for d in o.shape) for o in session.get_outputs()}
    problems = []
    for kind, want, have in (("input", want_in, have_in), ("output", want_out, have_out)):
        for name in sorted(set(want) | set(have)):
            if name not in have:
                problems.append(f"graph lacks {kind} {name!r} {want[name]}")
            elif name not in want:
                problems.append(f"graph has unexpected {kind} {name!r} {have[name]}")
            elif have[name][1:] != want[name][1:]:
                problems.append(f"{kind} {name!r} has shape {have[name]}, manifest implies {want[name]}")
    return problems


def encode_png(frame: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(frame, np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png(data: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"))


def new_manifest(onnx: str = "model.onnx", **fields) -> Manifest:
    """A manifest with this version's contract fields filled in; the caller gives the rest
    (fields it does not type are kept as extras)."""
    return Manifest.from_dict({"format": FORMAT, "version": VERSION, "features": feature_params(), "fps": FPS,
                               "window_columns": WINDOW_COLUMNS, "onnx": onnx, **fields}, "new manifest")


def write_bundle(out_dir: str | Path, onnx_bytes: bytes, manifest: Manifest, name: str = "model",
                 renderer_bytes: bytes | None = None) -> Bundle:
    """Write ``name.onnx`` (and for an articulatory bundle ``name.renderer.onnx``), then
    ``name.onnx.json``, each atomically, and read the result back."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = dataclasses.replace(manifest, onnx=f"{name}.onnx", onnx_sha256=hashlib.sha256(onnx_bytes).hexdigest())
    files = [(out_dir / manifest.onnx, onnx_bytes)]
    if renderer_bytes is not None:
        renderer = {**(manifest.renderer or {}), "onnx": f"{name}.renderer.onnx", "onnx_sha256": hashlib.sha256(renderer_bytes).hexdigest()}
        manifest = dataclasses.replace(manifest, renderer=renderer)
        files.append((out_dir / renderer["onnx"], renderer_bytes))
    manifest_file = files[0][0].with_name(files[0][0].name + MANIFEST_SUFFIX)
    for path, data in files + [(manifest_file, json.dumps(manifest.to_dict(), indent=2).encode())]:
        atomic_write(path, data)
    return read_manifest(manifest_file)
