import json
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
    edit_manifest(bundle, image_size=64)
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
    assert manifest.lookahead_ms == 132.5 and manifest.image_size == 96 and not manifest.face_baked
