"""The model bundle (DESIGN §4): ``model.onnx`` next to ``model.onnx.json``.

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
"""

from __future__ import annotations

import base64
import dataclasses
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rtmri import RtmriError
from rtmri.alignment import FPS, WINDOW_COLUMNS, lookahead_samples
from rtmri.audio import N_MELS, feature_params
from rtmri.bundle import architectures
from rtmri.files import atomic_write

__all__ = [
    "FORMAT", "VERSION", "MANIFEST_SUFFIX", "MEL_INPUT", "FACE_INPUT", "FRAMES_OUTPUT",
    "BundleError", "Manifest", "Bundle", "manifest_path_for", "read_manifest", "expected_io",
    "graph_problems", "encode_png", "decode_png", "new_manifest", "write_bundle",
]

FORMAT = "rtmri-bundle"
VERSION = 1
MANIFEST_SUFFIX = ".json"
MEL_INPUT = "mel"
FACE_INPUT = "face"
FRAMES_OUTPUT = "frames"
FACE_ENCODERS = ("baked", "input")  # "baked": reference folded into the graph; "input": face is an input
CHANNEL_COUNTS = (1, 3)


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
    format: str = FORMAT
    version: int = VERSION
    features: dict = field(default_factory=feature_params)
    fps: int = FPS
    window_columns: int = WINDOW_COLUMNS
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
        return {**typed, **self.extra}

    @property
    def face_baked(self) -> bool:
        return self.face_encoder == "baked"

    def reference_frames(self) -> np.ndarray:
        """uint8 (n, S, S) grayscale reference frames."""
        return np.stack([decode_png(item) for item in self.reference["frames"]])


# field -> (JSON types it may have, what it must be); the checks of values follow in _problems.
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
_OPTIONAL_TYPES = {"architecture": str}


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
    if data["format"] != FORMAT or data["version"] != VERSION:
        problems.append(f"format {data['format']!r} version {data['version']}, expected {FORMAT!r} version {VERSION}")
    if data["features"] != feature_params():
        differing = sorted(k for k in set(feature_params()) | set(data["features"]) if feature_params().get(k) != data["features"].get(k))
        problems.append(f"feature parameters differ from this version's features: {', '.join(differing)}")
    if data["fps"] != FPS:
        problems.append(f"fps {data['fps']}, this streamer runs at {FPS}")
    if data["window_columns"] != WINDOW_COLUMNS:
        problems.append(f"window_columns {data['window_columns']}, expected {WINDOW_COLUMNS}")
    try:
        lookahead_samples(data["lookahead_ms"])
    except RtmriError as exc:
        problems.append(str(exc))
    if data["channels"] not in CHANNEL_COUNTS:
        problems.append(f"channels {data['channels']}, expected 1 or 3")
    if data["face_encoder"] not in FACE_ENCODERS:
        problems.append(f"face_encoder {data['face_encoder']!r}, expected 'baked' or 'input'")
    if not data["reference"].get("frames"):
        problems.append("reference has no frames")
    return problems


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
    def channels(self) -> int:
        return self.manifest.channels

    @property
    def face_baked(self) -> bool:
        return self.manifest.face_baked

    def reference_frames(self) -> np.ndarray:
        """uint8 (n, S, S) grayscale reference frames."""
        return self.manifest.reference_frames()


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
    try:
        data = json.loads(manifest_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{manifest_file}: manifest is not valid JSON ({exc})") from exc
    bundle = Bundle(manifest_file, Manifest.from_dict(data, manifest_file))
    if not bundle.onnx_path.is_file():
        raise BundleError(f"{manifest_file}: its ONNX graph {bundle.onnx_path} is missing")
    return bundle


def expected_io(bundle: Bundle) -> tuple[dict[str, tuple], dict[str, tuple]]:
    """Input and output names with shapes (None for the dynamic batch)."""
    size, channels = bundle.image_size, bundle.channels
    inputs = {MEL_INPUT: (None, 1, N_MELS, WINDOW_COLUMNS)}
    if not bundle.face_baked:
        inputs[FACE_INPUT] = (None, 2 * channels, size, size)
    return inputs, {FRAMES_OUTPUT: (None, channels, size, size)}


def graph_problems(bundle: Bundle, session) -> list[str]:
    """Differences between the manifest's promise and an onnxruntime session's graph."""
    want_in, want_out = expected_io(bundle)
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
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(frame, np.uint8)).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def decode_png(data: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"))


def new_manifest(onnx: str = "model.onnx", **fields) -> Manifest:
    """A manifest with this version's contract fields filled in; the caller gives the rest
    (fields it does not type are kept as extras)."""
    return Manifest.from_dict({"format": FORMAT, "version": VERSION, "features": feature_params(), "fps": FPS,
                               "window_columns": WINDOW_COLUMNS, "onnx": onnx, **fields}, "new manifest")


def write_bundle(out_dir: str | Path, onnx_bytes: bytes, manifest: Manifest, name: str = "model") -> Bundle:
    """Write ``name.onnx`` and ``name.onnx.json`` (each atomically) and read the result back."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest = dataclasses.replace(manifest, onnx=f"{name}.onnx")
    onnx_path = out_dir / manifest.onnx
    manifest_file = onnx_path.with_name(onnx_path.name + MANIFEST_SUFFIX)
    for path, data in ((onnx_path, onnx_bytes), (manifest_file, json.dumps(manifest.to_dict(), indent=2).encode())):
        atomic_write(path, data)
    return read_manifest(manifest_file)
