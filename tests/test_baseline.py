"""The FC-LSTM baseline (Csapó 2020): its samples pair frame k with frame k's mel window, its
frames ignore audio past the lookahead, training lowers the loss, a stopped or killed run
resumes where it stopped, and its checkpoint exports to a mel-only bundle that matches
PyTorch and that the streamer runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import default_collate  # noqa: E402
from training_faults import KillAfter, SimulatedKill  # noqa: E402

from rtmri import RtmriError  # noqa: E402
from rtmri.alignment import (  # noqa: E402
    DEFAULT_LOOKAHEAD_MS,
    SAMPLES_PER_FRAME,
    frame_windows,
    lookahead_samples,
    mel_window,
    samples_needed,
)
from rtmri.audio import SAMPLE_RATE, melspectrogram  # noqa: E402
from rtmri.bundle import architectures  # noqa: E402
from rtmri.bundle.engine import Engine, to_gray_uint8  # noqa: E402
from rtmri.cli import main as cli_main  # noqa: E402
from rtmri.clips import ClipDataset  # noqa: E402
from rtmri.export.exporter import ExportOptions, export_bundle  # noqa: E402
from rtmri.training.config import resolve  # noqa: E402
from rtmri.training.data import FrameSamples  # noqa: E402
from rtmri.training.models.baseline import FcLstmBaseline  # noqa: E402
from rtmri.training.models.checkpoints import (  # noqa: E402
    CheckpointError,
    atomic_save,
    build_model,
    load_model,
    model_meta,
    new_checkpoint,
    read_checkpoint,
)
from rtmri.training.runtime import setup_runtime  # noqa: E402
from rtmri.training.train_baseline import BaselineRun  # noqa: E402
from rtmri.training.train_baseline import train as train_baseline  # noqa: E402

HIDDEN = 16  # compact: the tests' runs take a fraction of a second per step
LOOKAHEAD_MS = 40.0
FAST = dict(hidden=HIDDEN, lookahead_ms=LOOKAHEAD_MS, num_workers=0, progress=False, tensorboard=False)
RUN = dict(steps=4, batch_size=4, eval_every=2, eval_samples=4, checkpoint_every=2, **FAST)
QUIET = dict(log=lambda message: None)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """On a machine whose cores are busy with other jobs, torch's threads wait on each other
    for whole scheduler slices (a step of these tiny networks: ~1 s with 2 threads, ~10 ms
    with 1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _train_records(out) -> list[dict]:
    entries = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [e for e in entries if e["split"] == "train"]


@pytest.fixture(scope="module")
def whole_run(tiny_clip_dataset, tmp_path_factory):
    """An uninterrupted 4-step run: the curve the interrupted ones must follow."""
    out = tmp_path_factory.mktemp("baseline_whole")
    summary = train_baseline(resolve("baseline", overrides=dict(data=str(tiny_clip_dataset), **RUN)), out, **QUIET)
    assert summary["step"] == 4
    return out


# ---- data and alignment ---------------------------------------------------------------------


def test_samples_pair_frame_k_with_frame_k_window(tiny_clip_dataset):
    clips = ClipDataset(tiny_clip_dataset).split("train")
    samples = FrameSamples(clips, seed=5, channels=1, lookahead_ms=LOOKAHEAD_MS)
    for index in (0, 7, 31):
        window, frame = samples[index]
        rng = np.random.default_rng([5, index])  # the draw FrameSamples makes
        clip = samples.clips[int(rng.integers(len(samples.clips)))]
        k = int(rng.integers(clip.n_frames))
        assert window.shape == (1, 80, 16) and frame.shape == (1, 96, 96)
        np.testing.assert_array_equal(window[0].numpy(), mel_window(clip.mel(), k, LOOKAHEAD_MS))
        np.testing.assert_allclose(frame[0].numpy(), clip.frames()[k] / 255.0, atol=1e-6)


@pytest.mark.parametrize("lookahead_ms", [0.0, LOOKAHEAD_MS, DEFAULT_LOOKAHEAD_MS])
def test_frame_k_ignores_audio_past_the_lookahead(lookahead_ms):
    torch.manual_seed(0)
    net = FcLstmBaseline(hidden=HIDDEN).eval()
    rng = np.random.default_rng(1)
    wav = (0.3 * rng.standard_normal(SAMPLE_RATE)).astype(np.float32)
    k = 10
    needed = samples_needed(k, lookahead_ms)
    assert needed - 1 - k * SAMPLES_PER_FRAME <= lookahead_samples(lookahead_ms)

    def frame(audio):
        window = mel_window(melspectrogram(audio), k, lookahead_ms)
        with torch.no_grad():
            return net(torch.from_numpy(window)[None, None])

    future_changed, last_changed = wav.copy(), wav.copy()
    future_changed[needed:] = rng.standard_normal(len(wav) - needed)
    last_changed[needed - SAMPLES_PER_FRAME // 4 : needed] = 0.0  # within the window's newest column
    assert torch.equal(frame(wav), frame(future_changed))
    assert not torch.allclose(frame(wav), frame(last_changed))  # the window does reach the lookahead


# ---- training ---------------------------------------------------------------------------------


def test_training_steps_lower_the_loss_on_a_fixed_batch(tiny_clip_dataset, tmp_path):
    cfg = resolve("baseline", overrides=dict(data=str(tiny_clip_dataset), lr=3e-3, dropout=0.0, **FAST))
    run = BaselineRun(cfg, tmp_path, **QUIET)
    run.rt = setup_runtime(cfg)
    dataset = ClipDataset(tiny_clip_dataset)
    torch.manual_seed(0)
    run.build(dataset.split("train"), dataset.split("val"))
    batch = default_collate([run.train_set[i] for i in range(8)])
    losses = [run.train_step(batch)["loss"] for _ in range(30)]
    assert losses[-1] < 0.3 * losses[0]  # 0.15 x when written
    with torch.no_grad():
        predicted = run.net.eval()(batch[0])
    assert predicted.shape == (8, 1, 96, 96) and 0 <= predicted.min() and predicted.max() <= 1


def test_checkpoints_record_the_baseline_and_rebuild_it(whole_run):
    ckpt = read_checkpoint(whole_run / "checkpoints" / "last.pt")
    assert ckpt["kind"] == "baseline" and ckpt["global_step"] == 4
    assert ckpt["model"] == {"in_channels": 1, "image_size": 96, "hidden": HIDDEN, "fc_layers": 2, "lstm_layers": 2,
                             "dropout": 0.2, "lookahead_ms": LOOKAHEAD_MS}
    model, meta = load_model(whole_run / "checkpoints" / "best.pt", "baseline")
    assert isinstance(model, FcLstmBaseline) and model.hidden == HIDDEN and meta["lookahead_ms"] == LOOKAHEAD_MS
    assert (whole_run / "run.toml").is_file() and "hidden = 16" in (whole_run / "run.toml").read_text()


def test_stopped_and_killed_runs_resume_on_the_uninterrupted_curve(tiny_clip_dataset, whole_run, tmp_path, capsys):
    stopped, killed = tmp_path / "stopped", tmp_path / "killed"
    args = ["train", "baseline", str(tiny_clip_dataset), "--out", str(stopped), "--steps", "4", "--batch-size", "4",
            "--eval-every", "2", "--eval-samples", "4", "--checkpoint-every", "100", "--hidden", str(HIDDEN),
            "--lookahead-ms", str(LOOKAHEAD_MS), "--num-workers", "0", "--no-progress", "--no-tensorboard"]
    assert cli_main(args + ["--stop-after", "3"]) == 0
    assert read_checkpoint(stopped / "checkpoints" / "last.pt")["global_step"] == 3
    assert cli_main(["train", "baseline", "--out", str(stopped)]) == 0  # everything else from run.toml
    out = capsys.readouterr().out
    assert "resuming" in out and "from step 3" in out and "baseline: step 4 of 4 (1 steps this run" in out

    cfg = resolve("baseline", overrides=dict(data=str(tiny_clip_dataset), **RUN))
    with pytest.raises(SimulatedKill):  # dies after step 3; its last checkpoint is step 2
        train_baseline(cfg, killed, KillAfter(3), **QUIET)
    assert read_checkpoint(killed / "checkpoints" / "last.pt")["global_step"] == 2
    assert train_baseline(resolve("baseline", out=killed), killed, **QUIET)["steps_run"] == 2

    expected = [(e["step"], e["loss"]) for e in _train_records(whole_run)]
    for out in (stopped, killed):
        got = [(e["step"], e["loss"]) for e in _train_records(out)]
        assert [s for s, _ in got] == [1, 2, 3, 4]
        np.testing.assert_allclose([v for _, v in got], [v for _, v in expected], rtol=1e-5)

    with pytest.raises(CheckpointError, match=r"hidden 16 in the checkpoint, 32 in this run"):
        train_baseline(resolve("baseline", out=killed, overrides={"hidden": 32, "steps": 5}), killed, **QUIET)


# ---- export and streaming ------------------------------------------------------------------------


def test_export_makes_a_mel_only_bundle_that_matches_torch_and_streams(tiny_clip_dataset, whole_run, tmp_path):
    checkpoint = whole_run / "checkpoints" / "best.pt"
    out = tmp_path / "bundle"
    assert cli_main(["export", str(checkpoint), str(out), "--data", str(tiny_clip_dataset)]) == 0
    engine = Engine(out)
    manifest = engine.bundle.manifest
    assert manifest.architecture == architectures.CSAPO2020_FC_LSTM
    assert manifest.face_encoder == "baked" and manifest.lookahead_ms == LOOKAHEAD_MS and manifest.channels == 1
    assert manifest.training["hidden"] == HIDDEN and manifest.training["global_step"] >= 2
    assert manifest.evaluation["parity_max_abs_error_fp32"] < 1e-4
    assert [i.name for i in engine.session.get_inputs()] == ["mel"]

    clip = ClipDataset(tiny_clip_dataset).split("val")[0]
    windows = frame_windows(clip.mel(), 12, LOOKAHEAD_MS)
    model, _ = load_model(checkpoint, "baseline")
    with torch.no_grad():
        expected = model(torch.from_numpy(windows)[:, None]).numpy()
    onnx = engine.session.run(["frames"], {"mel": windows[:, None]})[0]
    assert np.abs(onnx - expected).max() < 1e-4
    assert np.abs(engine.run(windows).astype(int) - to_gray_uint8(expected).astype(int)).max() <= 1

    video = tmp_path / "out.mp4"
    assert cli_main(["render", str(out), str(clip.folder / "audio.wav"), "-o", str(video), "--size", "96"]) == 0
    import av

    with av.open(str(video)) as container:
        n_frames = sum(1 for _ in container.decode(video=0))
    assert abs(n_frames - clip.n_frames) <= 1

    with pytest.raises(RtmriError, match="has no face input"):
        export_bundle(ExportOptions(checkpoint, tmp_path / "refused", tiny_clip_dataset, face_encoder="input"))


def test_generator_bundles_say_wav2lip(tiny_clip_dataset, tmp_path):
    torch.manual_seed(0)
    generator = build_model("generator", 0.0625, 1)
    path = tmp_path / "generator.pt"
    atomic_save(new_checkpoint("generator", generator, model_meta(generator, 96, LOOKAHEAD_MS), step=1, epoch=0), path)
    export_bundle(ExportOptions(path, tmp_path / "bundle", tiny_clip_dataset, face_encoder="baked"))
    manifest = json.loads((tmp_path / "bundle" / "model.onnx.json").read_text())
    assert manifest["architecture"] == architectures.WAV2LIP and manifest["training"]["width"] == 0.0625
