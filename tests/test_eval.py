import json

import numpy as np

from rtmri.cli import main
from rtmri.clips import ClipDataset, write_filelist
from rtmri.evaluation.generate import generate_clip
from rtmri.alignment import frame_windows
from rtmri.streamer.engine import Engine


def test_eval_writes_table_csv_videos_and_plot(make_tiny_bundle, tiny_clip_dataset, tmp_path):
    dataset = ClipDataset(tiny_clip_dataset)
    write_filelist(dataset.root, "test", [c.clip_id for c in dataset.split("val")])
    bundle = make_tiny_bundle(size=96, face_input=True)
    out = tmp_path / "eval"
    assert main(["eval", str(bundle.path), str(tiny_clip_dataset), "-o", str(out), "--examples", "1"]) == 0
    results = json.loads((out / "results.json").read_text())
    rows = {(r["split"], r["system"]): r for r in results["table"]}
    assert set(rows) == {("test", "model"), ("test", "reference held still"), ("test", "noise ceiling (second acquisition)")}
    for row in rows.values():
        assert row["videos"] == 2 and 0 <= row["ssim_mean"] <= 1 and row["nmse_mean"] >= 0
    ceiling = rows[("test", "noise ceiling (second acquisition)")]
    for system in ("model", "reference held still"):  # no system beats two scans of the same articulation
        assert ceiling["ssim_mean"] > rows[("test", system)]["ssim_mean"]
        assert ceiling["nmse_mean"] < rows[("test", system)]["nmse_mean"]
    assert "| 1: test clips of training speakers | model | 2 |" in (out / "table.md").read_text()
    lines = (out / "per_frame.csv").read_text().splitlines()
    assert lines[0] == "clip,split,system,frame,ssim,nmse" and len(lines) == 1 + 2 * 3 * 50
    assert len(list((out / "videos").glob("*.mp4"))) == 1
    assert (out / "ssim_over_time.png").stat().st_size > 1000
    from PIL import Image

    strip = Image.open(out / "strip.png")
    assert strip.size == (8 * 128, 2 * 128 + 32)


def test_generated_frames_are_the_offline_generation(make_tiny_bundle, tiny_clip_dataset):
    """Evaluation goes through the streaming path, which must add no error."""
    clip = ClipDataset(tiny_clip_dataset).split("train")[0]
    engine = Engine(make_tiny_bundle(size=96, lookahead_ms=132.5))
    streamed = generate_clip(engine, clip)
    offline = engine.run(frame_windows(clip.mel(), clip.n_frames, 132.5))
    assert streamed.shape == (clip.n_frames, 96, 96)
    assert np.abs(streamed.astype(int) - offline.astype(int)).max() <= 1


def test_baseline_bundles_are_scored_on_the_same_clips(make_tiny_bundle, tiny_clip_dataset, tmp_path):
    dataset = ClipDataset(tiny_clip_dataset)
    write_filelist(dataset.root, "test", [c.clip_id for c in dataset.split("val")])
    model = make_tiny_bundle(size=96, face_input=True)
    other = make_tiny_bundle(size=64, face_input=True, lookahead_ms=40.0)  # another size: compared at the model's
    out = tmp_path / "eval"
    assert main(["eval", str(model.path), str(tiny_clip_dataset), "-o", str(out), "--examples", "0",
                 "--baseline", str(other.path)]) == 0
    rows = {r["system"]: r for r in json.loads((out / "results.json").read_text())["table"]}
    assert set(rows) == {"model", "baseline 1", "reference held still", "noise ceiling (second acquisition)"}
    assert rows["baseline 1"]["videos"] == rows["model"]["videos"] == 2
    assert rows["baseline 1"]["ssim_mean"] != rows["model"]["ssim_mean"]
