"""rtmri demo and rtmri package-demo: the shipped default and the one-command demo."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request

import av
import pytest

from rtmri.alignment import FPS
from rtmri.bundle import read_manifest
from rtmri.cli import main
from rtmri.clips import ClipDataset, write_filelist
from rtmri.demo import DemoAssets, shipped


@pytest.fixture(scope="module")
def assets(tmp_path_factory, tiny_clip_dataset):
    root = tmp_path_factory.mktemp("demo")
    data = root / "data"
    shutil.copytree(tiny_clip_dataset, data)
    clips = [c.clip_id for c in ClipDataset(data).split("val")]
    write_filelist(data, "test", clips[:1])
    write_filelist(data, "unseen_ja", clips)
    from conftest import tiny_manifest, tiny_onnx
    from rtmri.bundle import write_bundle

    bundle = write_bundle(root / "bundle", tiny_onnx(size=96, face_input=True), tiny_manifest(size=96, face_input=True))
    assert main(["package-demo", str(data), "--bundle", str(bundle.path.parent), "--out", str(root / "assets"), "--references", "2"]) == 0
    return DemoAssets(root / "assets")


def video_frames(path) -> tuple[int, int, int]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for _ in container.decode(stream)), stream.width, stream.height


def test_package_demo_writes_bundle_example_and_references(assets):
    assets.check()
    read_manifest(assets.bundle)
    info = json.loads(assets.example_info.read_text())
    assert info["split"] == "test" and info["speaker"] in ("spk01", "spk02")
    n, width, height = video_frames(assets.example_video)
    assert (width, height) == (96, 96) and n == 50  # the clip's frames at 25 fps, as in the dataset
    references = sorted(p.name for p in assets.references.iterdir())
    assert len(references) == 4 and {p.rsplit(".", 1)[1] for p in references} == {"flac", "mp4"}


def test_headless_demo_writes_side_by_side_mp4_and_prints_latency(assets, tmp_path, capsys):
    out = tmp_path / "demo.mp4"
    assert main(["demo", "--headless", "--assets", str(assets.root), "-o", str(out)]) == 0
    n, width, height = video_frames(out)
    assert abs(n - 2.0 * FPS) <= 1 and (width, height) == (2 * 256 + 4, 256)
    captured = capsys.readouterr()
    assert "sound -> frame on screen" in captured.err and f"wrote {out}" in captured.out


def test_demo_serves_the_learner_page_with_references_until_interrupted(assets):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "SDL_VIDEODRIVER")}
    process = subprocess.Popen([sys.executable, "-m", "rtmri.cli", "demo", "--port", "0", "--assets", str(assets.root)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = process.stdout.readline()
        match = re.search(r"open (http://\S+)", line)
        assert match, line + process.stderr.read()
        base = match.group(1).split("#")[0]
        page = urllib.request.urlopen(base, timeout=10).read().decode()
        assert "<html" in page.lower()
        listed = json.loads(urllib.request.urlopen(base + "references", timeout=10).read())
        assert [r["original"] for r in listed] == [True, True]
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    err = process.stderr.read()
    assert process.returncode == 0, err
    assert "no display" in err


def test_missing_assets_are_named(tmp_path, capsys):
    assert main(["demo", "--headless", "--assets", str(tmp_path)]) == 2
    assert "model.onnx" in capsys.readouterr().err


# ---------------------------------------------------------------- the shipped default


def test_shipped_default_predicts_the_articulatory_state_and_is_trained_on_twelve_speakers_of_three_tract_types():
    assets = shipped().check()
    manifest = read_manifest(assets.bundle).manifest
    assert manifest.architecture == "articulatory" and manifest.gives_state and manifest.window_columns > 16
    lineage = manifest.training_lineage()  # its own training, then what it started from, back to the wav2lip generator
    last = lineage[0]
    trained = set(last["speakers"]) - set(last["heldout_speakers"])
    assert len(trained) >= 12 and len(last["heldout_speakers"]) >= 3
    minutes = 60 * sum(last["hours"][split] for split in ("train", "val", "test"))
    assert minutes >= 18  # the 20-minute corpus of male, female and child tracts, less the pauses cut at clip boundaries
    assert len(lineage) >= 2 and any(e.get("checkpoint") for e in lineage[1:])  # fine-tuned from shipped weights
    assert {"inverter", "renderer"} <= set(last)
    evaluation = manifest.evaluation
    replaced = last.get("renderer_replaced")
    if replaced is None:
        # export scored it on validation clips after checking both graphs against PyTorch (it refuses above 1e-3)
        assert evaluation["split"] == "val" and evaluation["clips"] >= 1 and evaluation["parity_max_abs_error_fp32"] < 1e-3
    else:  # a renderer put in later (rtmri export RENDERER --into): its graph checked, the inverter's bytes and calibration kept
        assert evaluation["renderer_parity_max_abs_error_fp32"] < 1e-3 and evaluation["closure_offsets"]
        assert replaced["previous_onnx_sha256"] != manifest.renderer["onnx_sha256"]
    for kind in ("inverter", "renderer", "generator"):  # weights to fine-tune from, and the published method's
        assert assets.checkpoint_of(kind).is_file()
    wav2lip = read_manifest(assets.wav2lip_bundle).manifest
    assert wav2lip.architecture == "wav2lip" and not wav2lip.gives_state


def test_shipped_model_moves_the_tongue_with_the_speech():
    """On its example, the model's frames follow the true rtMRI: better than the reference
    held still, and better than the same frames out of time order or 400 ms late. They
    would not if the shipped weights were untrained or the windows misaligned."""
    import numpy as np

    from rtmri.evaluation.generate import generate_audio
    from rtmri.metrics import per_frame
    from rtmri.bundle.engine import Engine
    from rtmri.video import frames

    assets = shipped()
    engine = Engine(assets.bundle)
    truth = np.stack([image for _, image in frames(assets.example_video)])
    generated = generate_audio(engine, assets.example_audio, len(truth)).frames
    still = np.repeat(engine.bundle.reference_frames()[:1], len(truth), axis=0)
    def ssim(original, made):
        return per_frame(original, made)["ssim"].mean()

    model = ssim(truth, generated)
    others = {"still": ssim(truth, still),
              "shuffled": ssim(truth, generated[np.random.default_rng(0).permutation(len(generated))]),
              "400 ms late": ssim(truth[:-10], generated[10:])}
    assert all(model > other + 0.05 for other in others.values()), (model, others)
