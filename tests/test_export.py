import hashlib
import json

import numpy as np
import pytest
import torch

from rtmri import RtmriError
from rtmri.bundle import read_manifest
from rtmri.export import exporter
from rtmri.export.exporter import ExportOptions, export_bundle
from rtmri.export.parity import ParityError, check_parity, clip_windows
from rtmri.bundle.engine import Engine
from rtmri.training.models.checkpoints import atomic_save, build_model, model_meta, new_checkpoint


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    generator = build_model("generator", 0.125, 1)
    path = tmp_path_factory.mktemp("ckpt") / "generator.pt"
    atomic_save(new_checkpoint("generator", generator, model_meta(generator, 96, 80.0), step=7, epoch=0), path)
    return path


def test_export_writes_a_bundle_that_matches_pytorch(tiny_checkpoint, tiny_clip_dataset, tmp_path):
    out = tmp_path / "bundle"
    summary = export_bundle(ExportOptions(tiny_checkpoint, out, tiny_clip_dataset))
    assert summary["parity_max_abs_error"] < 1e-3
    bundle = read_manifest(out)
    manifest = bundle.manifest
    assert manifest.lookahead_ms == 80.0 and manifest.image_size == 96 and manifest.channels == 1
    assert manifest.training["global_step"] == 7
    assert manifest.onnx_sha256 == hashlib.sha256(bundle.onnx_path.read_bytes()).hexdigest()
    assert 0.0 < manifest.evaluation["ssim"] <= 1.0
    assert bundle.reference_frames().shape == (1, 96, 96)
    frames = Engine(out).run(np.zeros((3, 80, 16), np.float32))
    assert frames.shape == (3, 96, 96)


def test_parity_failure_is_reported(tiny_checkpoint, tiny_clip_dataset, tmp_path):
    from rtmri.clips import ClipDataset
    from rtmri.bundle.engine import face_input
    from rtmri.training.models.checkpoints import load_model

    export_bundle(ExportOptions(tiny_checkpoint, tmp_path / "b", tiny_clip_dataset, face_encoder="baked"))
    engine = Engine(tmp_path / "b")
    other, _ = load_model(tiny_checkpoint, "generator")
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.05)  # a generator that is not the exported one
    windows = clip_windows(ClipDataset(tiny_clip_dataset).split("val")[:1], 80.0, max_frames=5)
    face = torch.from_numpy(face_input(engine.bundle.reference_frames()[0], 1))
    with pytest.raises(ParityError, match="differs from PyTorch by up to"):
        check_parity(other, face, engine.session, windows, face_is_input=False)


def test_int8_beyond_tolerance_is_refused(tiny_checkpoint, tiny_clip_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(exporter, "INT8_SSIM_TOLERANCE", -1.0)  # any loss at all is too much
    with pytest.raises(RtmriError, match="int8 loses .* validation SSIM"):
        export_bundle(ExportOptions(tiny_checkpoint, tmp_path / "q", tiny_clip_dataset, variant="int8"))
    assert not (tmp_path / "q").exists()


def test_existing_bundle_is_kept_without_overwrite(tiny_checkpoint, tiny_clip_dataset, tmp_path):
    out = tmp_path / "kept"
    out.mkdir()
    (out / "model.onnx.json").write_text(json.dumps({"precious": True}))
    with pytest.raises(RtmriError, match="--overwrite"):
        export_bundle(ExportOptions(tiny_checkpoint, out, tiny_clip_dataset))
    assert json.loads((out / "model.onnx.json").read_text()) == {"precious": True}


def test_a_fine_tuned_model_keeps_the_training_record_of_the_model_it_came_from(tiny_checkpoint, tiny_clip_dataset, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    export_bundle(ExportOptions(tiny_checkpoint, first, tiny_clip_dataset))
    export_bundle(ExportOptions(tiny_checkpoint, second, tiny_clip_dataset, fine_tuned_from=first))
    earlier = read_manifest(first).manifest
    lineage = read_manifest(second).manifest.training_lineage()
    assert len(lineage) == 2 and lineage[1] == earlier.training
    assert earlier.training_lineage() == [earlier.training]
