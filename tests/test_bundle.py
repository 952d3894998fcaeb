import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from rtmri.bundle import BundleError, read_manifest
from rtmri.bundle.engine import Engine, face_input


def edit_manifest(bundle, **changes):
    manifest = json.loads(bundle.path.read_text())
    for key, value in changes.items():
        if value is None:
            manifest.pop(key)
        else:
            manifest[key] = value
    bundle.path.write_text(json.dumps(manifest))


def test_tiny_bundle_runs_and_follows_loudness(make_tiny_bundle):
    engine = Engine(make_tiny_bundle())
    quiet = np.full((1, 80, 16), -4.0, np.float32)
    loud = np.full((1, 80, 16), 3.0, np.float32)
    frames = engine.run(np.concatenate([quiet, loud]))
    assert frames.shape == (2, 32, 32) and frames.dtype == np.uint8
    lower = frames[:, 16:].mean(axis=(1, 2))
    assert lower[1] > lower[0] + 50


def test_bundle_loads_and_runs_where_torch_cannot_be_imported(make_tiny_bundle):
    bundle = make_tiny_bundle(face_input=True)
    script = textwrap.dedent(
        f"""
        import sys
        class BlockTorch:
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, BlockTorch())
        import numpy as np
        from rtmri.bundle.engine import Engine
        frames = Engine({str(bundle.path)!r}).run(np.zeros((2, 80, 16), np.float32))
        assert "torch" not in sys.modules
        print(frames.shape)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 32, 32)"


def test_face_input_masks_the_lower_half():
    ref = np.full((8, 8), 255, np.uint8)
    face = face_input(ref, 3)
    assert face.shape == (1, 6, 8, 8)
    assert np.all(face[0, :3, 4:] == 0) and np.all(face[0, :3, :4] == 1) and np.all(face[0, 3:] == 1)


@pytest.mark.parametrize("field", ["lookahead_ms", "features", "reference", "image_size"])
def test_missing_field_is_named(make_tiny_bundle, field):
    bundle = make_tiny_bundle()
    edit_manifest(bundle, **{field: None})
    with pytest.raises(BundleError, match=f"missing field '{field}'"):
        read_manifest(bundle.path)


def test_manifest_shapes_that_do_not_match_the_graph_are_refused(make_tiny_bundle):
    bundle = make_tiny_bundle()
    edit_manifest(bundle, image_size=64, reference={"frames": [png_base64(np.zeros((64, 64), np.uint8))]})
    with pytest.raises(BundleError, match=r"output 'frames' has shape .*32, 32.*64, 64"):
        Engine(bundle.path)


def test_manifest_promising_a_face_input_the_graph_lacks_is_refused(make_tiny_bundle):
    bundle = make_tiny_bundle()
    edit_manifest(bundle, face_encoder="input")
    with pytest.raises(BundleError, match="graph lacks input 'face'"):
        Engine(bundle.path)


def test_truncated_onnx_is_refused_with_its_path(make_tiny_bundle):
    bundle = make_tiny_bundle()
    data = bundle.onnx_path.read_bytes()
    bundle.onnx_path.write_bytes(data[: len(data) // 2])
    edit_manifest(bundle, onnx_sha256=None)  # without the hash, onnxruntime is what finds it
    with pytest.raises(BundleError, match="model.onnx: onnxruntime cannot load"):
        Engine(bundle.path)


def test_other_feature_parameters_are_refused(make_tiny_bundle):
    bundle = make_tiny_bundle()
    manifest = json.loads(bundle.path.read_text())
    manifest["features"]["fmax"] = 8000.0
    bundle.path.write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="feature parameters differ.*fmax"):
        read_manifest(bundle.path)


def test_not_json_and_missing_graph(make_tiny_bundle, tmp_path):
    bundle = make_tiny_bundle()
    bundle.onnx_path.unlink()
    with pytest.raises(BundleError, match="ONNX graph .* is missing"):
        read_manifest(bundle.path)
    bad = tmp_path / "bad.onnx.json"
    bad.write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_manifest(bad)


def test_unknown_provider_is_refused(make_tiny_bundle):
    with pytest.raises(BundleError, match="provider 'nonesuch' is not available"):
        Engine(make_tiny_bundle(), provider="nonesuch")


def test_manifest_keeps_fields_it_does_not_type_and_old_bundles_hold_wav2lip(make_tiny_bundle):
    from rtmri.bundle import architectures, write_bundle

    bundle = make_tiny_bundle()
    grid = {"gridlines": 30, "origin": [12.5, 40.0]}
    edit_manifest(bundle, architecture=None, analysis_grid=grid)  # a bundle from before the field, and a future field
    manifest = read_manifest(bundle.path).manifest
    assert manifest.architecture == architectures.WAV2LIP
    assert manifest.extra["analysis_grid"] == grid
    rewritten = write_bundle(bundle.path.parent / "again", bundle.onnx_path.read_bytes(), manifest)
    assert json.loads(rewritten.path.read_text())["analysis_grid"] == grid


def test_shipped_manifest_loads_and_round_trips_unchanged():
    from rtmri.demo import ASSETS

    path = ASSETS / "model" / "model.onnx.json"
    manifest = read_manifest(path).manifest
    assert manifest.to_dict() == json.loads(path.read_text())
    assert manifest.lookahead_ms == 40.0 and manifest.image_size == 96 and not manifest.face_baked
    assert manifest.onnx_sha256 is not None  # and read_manifest checked it against model.onnx


def png_base64(image: np.ndarray, fmt: str = "PNG") -> str:
    import base64
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


BAD_MANIFESTS = {
    "null": ("null", "expected a JSON object"),
    "string": ('"a bundle"', "expected a JSON object"),
    "nan lookahead": ({"lookahead_ms": float("nan")}, "field 'lookahead_ms' is nan"),
    "huge lookahead": ({"lookahead_ms": 1e9}, r"field 'lookahead_ms' is 1000000000.0 ms, outside .* \(0 to 237.5 ms\)"),
    "negative lookahead": ({"lookahead_ms": -40.0}, "field 'lookahead_ms' is -40.0 ms"),
    "onnx outside": ({"onnx": "../model.onnx"}, "field 'onnx' is '../model.onnx': .* inside the bundle"),
    "onnx absolute": ({"onnx": "/etc/hostname"}, "field 'onnx' is '/etc/hostname'"),
    "reference size": ({"reference": {"frames": [png_base64(np.zeros((16, 16), np.uint8))]}},
                       "field 'reference': frame 0 is 16x16 px, image_size is 32"),
    "reference jpeg": ({"reference": {"frames": [png_base64(np.zeros((32, 32), np.uint8), "JPEG")]}},
                       "field 'reference': frame 0 is not a PNG"),
    "reference text": ({"reference": {"frames": ["not base64 at all!"]}}, "field 'reference': frame 0 is not base64"),
    "input norm kind": ({"input_norm": {"kind": "cepstral", "prior_mean": [0.0] * 80, "prior_std": [1.0] * 80}},
                        "field 'input_norm' has kind 'cepstral'"),
    "input norm bands": ({"input_norm": {"kind": "session", "prior_mean": [0.0] * 40, "prior_std": [1.0] * 80}},
                         "field 'input_norm': 'prior_mean' must be a list of 80 numbers"),
}


@pytest.mark.parametrize("case", BAD_MANIFESTS)
def test_each_bad_field_is_one_line_naming_the_bundle_and_the_field(make_tiny_bundle, tmp_path, capsys, case):
    from rtmri.cli import main

    bundle = make_tiny_bundle()
    change, message = BAD_MANIFESTS[case]
    if isinstance(change, str):
        bundle.path.write_text(change)
    else:
        edit_manifest(bundle, **change)
    assert main(["render", str(bundle.path), str(tmp_path / "speech.wav"), "-o", str(tmp_path / "out.mp4")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(bundle.path) in lines[0], lines
    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out.mp4").exists()


def test_export_records_the_graph_hash_and_changed_weights_are_refused(make_tiny_bundle):
    import hashlib

    bundle = make_tiny_bundle()
    graph = bundle.onnx_path.read_bytes()
    assert json.loads(bundle.path.read_text())["onnx_sha256"] == hashlib.sha256(graph).hexdigest()
    weights = graph.index(np.full(64, 0.2, np.float32).tobytes())  # the "base" initializer's raw data
    flipped = bytearray(graph)
    flipped[weights : weights + 256] = bytes(b ^ 0xFF for b in flipped[weights : weights + 256])
    bundle.onnx_path.write_bytes(bytes(flipped))
    with pytest.raises(BundleError, match=r"field 'onnx_sha256': model.onnx has SHA-256 \w+, the manifest records"):
        Engine(bundle.path)
    edit_manifest(bundle, onnx_sha256=None)  # a bundle from before the field loads unchecked
    assert read_manifest(bundle.path).manifest.onnx_sha256 is None
