import json

import av
import numpy as np
import pytest

from rtmri.cli import main
from rtmri.clips import ClipDataset, write_filelist
from rtmri.evaluation.generate import generate_clip
from rtmri.evaluation.report import EXAMPLE_SIZE
from rtmri.alignment import frame_windows
from rtmri.bundle.engine import Engine
from rtmri.evaluation.run import generate_with_reference, speaker_references
from rtmri.metrics import per_frame
from rtmri.video import resize_frames, upscale
from PIL import Image

DEFAULT_BUNDLE = "rtmri/demo/assets/model"
WAV2LIP_BUNDLE = "rtmri/demo/assets/wav2lip"  # the previous default: the published method's generator


def test_eval_writes_table_csv_videos_and_plot(make_tiny_bundle, tiny_clip_dataset, tmp_path):
    dataset = ClipDataset(tiny_clip_dataset)
    write_filelist(dataset.root, "test", [c.clip_id for c in dataset.split("val")])
    bundle = make_tiny_bundle(size=96, face_input=True)
    out = tmp_path / "eval"
    assert main(["eval", str(bundle.path), str(tiny_clip_dataset), "-o", str(out), "--examples", "1", "--no-robustness"]) == 0
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
    (example,) = (out / "videos").glob("*.mp4")
    with av.open(str(example)) as container:  # original | generated | difference, with the sound
        video = container.streams.video[0]
        assert (video.width, video.height) == (3 * EXAMPLE_SIZE, EXAMPLE_SIZE) and len(container.streams.audio) == 1
    plot = np.asarray(Image.open(out / "ssim_over_time.png").convert("RGB")).astype(int)
    assert plot.shape == (int(3.2 * 120), 10 * 120, 3)
    blue = (plot[..., 2] > 150) & (plot[..., 0] < 80)  # the SSIM curve is drawn in tab:blue
    assert blue.sum() > 200 and len(np.unique(np.nonzero(blue)[1])) > 500  # a curve across the plot
    strip = np.asarray(Image.open(out / "strip.png"))
    assert strip.shape == (2 * 128 + 32, 8 * 128)
    original = strip[16 : 16 + 128, :128].astype(int)  # the first true frame, upscaled
    first = ClipDataset(tiny_clip_dataset).split("val")[0]
    assert np.abs(original - upscale(np.asarray(first.frames()[0]), 128).astype(int)).mean() < 1.0
    # a dataset prepared before analysis grids: evaluated, its articulation marked not available
    assert results["articulation"]["table"] == [] and results["articulation"]["speakers_without_grid"] == ["spk01", "spk02"]
    assert "Articulation: not available" in (out / "table.md").read_text()


def test_generated_frames_are_the_offline_generation(make_tiny_bundle, tiny_clip_dataset):
    """Evaluation goes through the streaming path, which must add no error."""
    clip = ClipDataset(tiny_clip_dataset).split("train")[0]
    engine = Engine(make_tiny_bundle(size=96, lookahead_ms=132.5))
    streamed = generate_clip(engine, clip).frames
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
    # the baseline's row is its own frames, made at its size and compared at the model's
    clips = dataset.split("test")
    engine = Engine(other.path)
    references = speaker_references(clips, 96)
    expected = [per_frame(resize_frames(c.frames(), 96), resize_frames(generate_with_reference(engine, dataset, c, references[c.speaker]).frames, 96))["ssim"].mean()
                for c in clips]
    assert rows["baseline 1"]["ssim_mean"] == pytest.approx(np.mean(expected), abs=1e-4)


# --- articulation (the shared DESIGN.md §5b), with the shipped default model on a synthesized dataset --------


@pytest.fixture(scope="module")
def default_eval(synth_clip_dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "out"
    assert main(["eval", DEFAULT_BUNDLE, str(synth_clip_dataset), "-o", str(out), "--examples", "1", "--baseline", WAV2LIP_BUNDLE]) == 0
    return out, json.loads((out / "results.json").read_text())["articulation"]


def rows_by(articulation, key="table"):
    return {(r["split"], r["system"]): r for r in articulation[key]}


def test_second_acquisition_closes_where_the_true_video_closes(default_eval):
    _, articulation = default_eval
    ceiling = [r for r in articulation["table"] if r["system"] == "noise ceiling (second acquisition)"]
    assert sum(r["closure_alveolar_frames"] + r["closure_lips_frames"] for r in ceiling) >= 10
    scored = [r[f"closure_{region}_{what}"] for r in ceiling for region in ("lips", "alveolar") for what in ("precision", "recall")]
    scored = [v for v in scored if v is not None]
    # A row holds a handful of closure frames: one frame at the 1-px threshold is 0.25 of a row of four.
    assert len(scored) >= 4 and min(scored) >= 0.7 and np.mean(scored) >= 0.9


def test_the_still_reference_follows_the_constrictions_worse_than_the_model(default_eval):
    _, articulation = default_eval
    rows = rows_by(articulation)
    for split in ("test", "unseen_ja", "unseen_nonja"):
        model, still = rows[split, "model"], rows[split, "reference held still"]
        ceiling = rows[split, "noise ceiling (second acquisition)"]
        assert still["cd_r"] == 0.0 < model["cd_r"] < ceiling["cd_r"]
        assert still["amplitude_ratio"] == 0.0  # it does not move
        assert ceiling["cd_rmse_mm"] < model["cd_rmse_mm"] and ceiling["df_rmse_mm"] < still["df_rmse_mm"]
        if split.startswith("unseen"):  # on speakers it never heard, the model's tract is nearer the truth
            assert model["df_rmse_mm"] < still["df_rmse_mm"] and model["cd_rmse_mm"] < still["cd_rmse_mm"]
            assert model["roi_r"] > 0.2 and model["amplitude_ratio"] > 0.3


def test_the_wav2lip_default_is_scored_beside_the_model_and_both_against_the_true_state(default_eval):
    """The session corpus is too small to rank the two (one lip closure in its unseen clips:
    tests/test_shipped_articulation.py does that on the 20-minute corpus's unseen speakers);
    here: the model's row is its own state, the wav2lip default's its pictures measured."""
    _, articulation = default_eval
    rows = rows_by(articulation)
    for split in ("test", "unseen_ja", "unseen_nonja"):
        model, wav2lip = rows[split, "model"], rows[split, "baseline 1"]
        assert model["state_source"] == "model's state" and wav2lip["state_source"] == "image measure"
        assert np.isfinite(model["state_df_rmse_mm"]) and np.isfinite(wav2lip["state_df_rmse_mm"])
        assert rows[split, "renderer from the true state"]["df_rmse_mm"] < rows[split, "reference held still"]["df_rmse_mm"]


def test_articulation_outputs_geometry_check_phones_and_plots(default_eval):
    out, articulation = default_eval
    checks = {g["split"]: g for g in articulation["geometry_check"]}
    assert set(checks) == {"test", "unseen_ja", "unseen_nonja"}
    for check in checks.values():  # per condition of one or two clips (the pooled tolerance: test_synth)
        assert check["rmse_mm"] <= 2.0 * check["mm_per_px"] and check["measurements"] > 500
    phones = [r for r in articulation["phones"] if r["split"] == "unseen_nonja" and r["system"] == "model"]
    assert any(not r["japanese"] for r in phones) and any(r["japanese"] for r in phones)
    assert all(r["place"] in ("lips", "alveolar", "palatal", "velar", "pharyngeal") for r in phones)
    header = (out / "articulation_table.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["condition", "split", "system", "videos"] and "closure_lips_precision" in header
    table = (out / "table.md").read_text()
    assert "phones Japanese lacks" in table and "| DF RMSE mm |" in table
    for name, size in (("constriction_over_time.png", (6 * 1.6 * 110, 10 * 110)), ("phone_errors.png", (3 * 2.6 * 110, 10 * 110))):
        image = np.asarray(Image.open(out / name).convert("RGB")).astype(int)
        assert image.shape[:2] == (int(round(size[0])), int(round(size[1])))
        red = (image[..., 0] > 180) & (image[..., 1] < 90) & (image[..., 2] < 90)  # generated curve / nothing
        orange = (image[..., 0] > 220) & (image[..., 1] > 100) & (image[..., 1] < 160) & (image[..., 2] < 60)
        assert (red if name.startswith("constriction") else orange).sum() > 100


def test_a_dataset_without_outlines_marks_the_geometry_rows_not_available(synth_clip_dataset, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(synth_clip_dataset, data)
    for path in data.glob("clips/*/*/geometry.npz"):
        path.unlink()
    out = tmp_path / "eval"
    assert main(["eval", DEFAULT_BUNDLE, str(data), "-o", str(out), "--examples", "0", "--max-clips", "1"]) == 0
    articulation = json.loads((out / "results.json").read_text())["articulation"]
    assert articulation["geometry_check"] == [] and articulation["table"]
    assert {r["df_rmse_vs_geometry_mm"] for r in articulation["table"]} == {"n/a"}
    assert all(isinstance(r["cd_r"], float) for r in articulation["table"] if r["system"] == "model")
    assert "Geometry check: not available" in (out / "table.md").read_text()
