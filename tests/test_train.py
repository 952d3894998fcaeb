"""Training on a tiny synthetic clip dataset, on the CPU, at a compact width: the data
follows wav2lip's sampling through rtmri.alignment, loss and validation L1 fall, a killed
run resumes onto the uninterrupted loss curve, bad input and diverging losses stop with a
message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch.utils.data import default_collate  # noqa: E402
from training_faults import KillAfter, NanAt, SimulatedKill  # noqa: E402

from rtmri.alignment import mel_window, window_start  # noqa: E402
from rtmri.cli import main as cli_main  # noqa: E402
from rtmri.clips import ClipDataset, write_filelist, write_header  # noqa: E402
from rtmri.training.config import ConfigError, read_toml, resolve, to_toml  # noqa: E402
from rtmri.training.data import GeneratorSamples, SyncNetSamples, sync_window  # noqa: E402
from rtmri.training.loop import TrainingError  # noqa: E402
from rtmri.training.models.checkpoints import CheckpointError, read_checkpoint  # noqa: E402
from rtmri.training.runtime import setup_runtime  # noqa: E402
from rtmri.training.train_generator import train as train_generator  # noqa: E402
from rtmri.training.train_syncnet import SyncNetRun  # noqa: E402
from rtmri.training.train_syncnet import train as train_syncnet  # noqa: E402

SIZE = 48  # stored frame size; the datasets resize to the networks' 96
WIDTH = 0.0625  # compact: 4-32 channels
# Resumed and uninterrupted runs are compared within this tolerance (on the CPU they are
# in fact bit-identical: the data order is a function of (seed, step), the rest is state).
RESUME_RTOL, RESUME_ATOL = 1e-5, 1e-6
FAST = dict(width=WIDTH, in_channels=1, num_workers=0, progress=False, tensorboard=False)


def write_tiny_dataset(root: Path, clips=(6, 2), seconds=3.0, seed=0) -> Path:
    """A bright blob in the lower half whose height follows the loudness of a 220 Hz tone;
    a static ramp in the upper half."""
    rng = np.random.default_rng(seed)
    import soundfile

    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for split, count in zip(("train", "val"), clips):
        ids = []
        for c in range(count):
            clip_id = f"spk01/{split}{c:02d}"
            folder = root / "clips" / clip_id
            folder.mkdir(parents=True)
            n_frames = int(seconds * 25)
            knots = rng.random(int(seconds * 5) + 2)
            t = np.arange(n_frames * 640) / 16000
            envelope = np.interp(t, np.arange(len(knots)) * 0.2, knots)
            wav = 0.6 * envelope * np.sin(2 * np.pi * 220 * t) + 0.003 * rng.standard_normal(t.size)
            soundfile.write(folder / "audio.wav", wav.astype(np.float32), 16000, subtype="PCM_16")
            frames = np.empty((n_frames, SIZE, SIZE), np.uint8)
            for k in range(n_frames):
                loudness = np.interp((k + 0.5) / 25, np.arange(len(knots)) * 0.2, knots)
                cy = SIZE / 2 + 4 + loudness * (SIZE / 2 - 10)
                image = 40 + 60 * (yy < SIZE / 2) * (xx / SIZE)
                image = image + 180 * np.exp(-((yy - cy) ** 2 + (xx - SIZE / 2) ** 2) / (2 * (SIZE / 10) ** 2))
                frames[k] = np.clip(image, 0, 255)
            np.save(folder / "frames.npy", frames)
            info = {"speaker": "spk01", "recording": clip_id, "condition": 1, "start_s": 0.0, "n_frames": n_frames, "phones": []}
            (folder / "clip.json").write_text(json.dumps(info))
            ids.append(clip_id)
        write_filelist(root, split, ids)
    write_header(root, {"image_size": SIZE})
    return root


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_tiny_dataset(tmp_path_factory.mktemp("clips"))


@pytest.fixture(scope="module")
def syncnet_run(data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("syncnet")
    cfg = resolve("syncnet", overrides=dict(data=str(data), steps=6, batch_size=4, lr=1e-3, eval_every=3, eval_samples=8, checkpoint_every=3, **FAST))
    summary = train_syncnet(cfg, out, log=lambda m: None)
    assert summary["step"] == 6
    return out


def _records(out: Path, split: str) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["split"] == split]


# ---- data ---------------------------------------------------------------------------------


def test_generator_samples_follow_wav2lip(data):
    clips = ClipDataset(data).split("train")
    ds = GeneratorSamples(clips, seed=3, channels=3, lookahead_ms=40.0, masked_input="target")
    x, mels, mel, y = ds[17]
    assert x.shape == (6, 5, 96, 96) and y.shape == (3, 5, 96, 96)
    assert mels.shape == (5, 1, 80, 16) and mel.shape == (1, 80, 16)
    assert torch.all(x[:3, :, 48:] == 0) and torch.equal(x[:3, :, :48], y[:, :, :48])  # masked target
    live_like = GeneratorSamples(clips, seed=3, channels=3, lookahead_ms=40.0)[17][0]  # default: masked reference
    assert torch.all(live_like[:3, :, 48:] == 0) and torch.equal(live_like[:3, :, :48], live_like[3:, :, :48])
    assert torch.equal(y[0], y[1]) and not torch.equal(x[3:], y)  # grey as 3 channels; reference elsewhere
    assert all(torch.equal(a, b) for a, b in zip(ds[17], (x, mels, mel, y)))  # a pure function of (seed, index)

    # which clip and frames: recover k from the target and check the windows come from rtmri.alignment
    rng = np.random.default_rng([3, 17])
    ci = int(rng.integers(len(ds.clips)))
    k = int(rng.integers(ds.clips[ci].n_frames - 5 + 1))
    whole = ds.clips[ci].mel()
    for t in range(5):
        np.testing.assert_array_equal(mels[t, 0].numpy(), mel_window(whole, k + t, 40.0))
    np.testing.assert_array_equal(mel[0].numpy(), sync_window(whole, k))
    if k >= 0:  # wav2lip's SyncNet window of frames k..k+4 starts at int(80 k / 25)
        assert window_start(k + 2) == int(80 * k / 25)


def test_syncnet_samples_are_half_in_sync(data):
    ds = SyncNetSamples(ClipDataset(data).split("train"), seed=0, channels=1)
    labels = []
    for i in range(40):
        x, window, label = ds[i]
        assert x.shape == (5, 48, 96) and window.shape == (1, 80, 16)
        labels.append(float(label))
    assert 10 < sum(labels) < 30


# ---- runs ---------------------------------------------------------------------------------


def test_syncnet_steps_learn_to_tell_in_sync_from_off_sync(data, tmp_path):
    """Over-fitting a fixed batch: the sync loss falls from chance (ln 2) and the expert's
    cosine similarity ends above 0.5 exactly for the in-sync samples."""
    cfg = resolve("syncnet", overrides=dict(data=str(data), lr=1e-3, **FAST))
    run = SyncNetRun(cfg, tmp_path, log=lambda m: None)
    run.rt = setup_runtime(cfg)
    dataset = ClipDataset(data)
    torch.manual_seed(0)
    run.build(dataset.split("train"), dataset.split("val"))
    x, mel, y = default_collate([run.train_set[i] for i in range(8)])
    assert 0 < y.sum() < len(y)  # both labels present
    losses = [run.train_step([x, mel, y])["loss"] for _ in range(30)]
    assert losses[0] > 0.6 and losses[-1] < 0.2 * losses[0]  # 0.025 x when written
    with torch.no_grad():
        audio, video = run.net(mel, x)  # still in training mode: the batch norms use this batch's statistics
    in_sync = torch.nn.functional.cosine_similarity(audio, video) > 0.5
    assert torch.equal(in_sync, y.reshape(-1).bool())


def test_syncnet_run_writes_checkpoints_config_and_metrics(syncnet_run):
    assert (syncnet_run / "checkpoints" / "last.pt").is_file() and (syncnet_run / "checkpoints" / "best.pt").is_file()
    ckpt = read_checkpoint(syncnet_run / "checkpoints" / "last.pt")
    assert ckpt["kind"] == "syncnet" and ckpt["global_step"] == 6
    assert ckpt["model"] == {"width": WIDTH, "in_channels": 1, "image_size": 96, "lookahead_ms": 132.5}
    saved = read_toml(syncnet_run / "run.toml", "syncnet")
    assert saved["width"] == WIDTH and saved["steps"] == 6
    val = _records(syncnet_run, "val")
    assert [v["step"] for v in val] == [3, 6] and all(np.isfinite(v["loss"]) for v in val)


def test_generator_learns_and_a_killed_run_resumes_on_the_same_curve(data, syncnet_run, tmp_path):
    options = dict(
        data=str(data), syncnet=str(syncnet_run / "checkpoints" / "last.pt"), steps=8, batch_size=2, lr=1e-3,
        eval_every=4, eval_samples=4, checkpoint_every=3, sample_every=8, sample_count=2,
        sync_threshold=100.0,  # switch the sync loss on at the first validation (step 4)
        **{**FAST, "tensorboard": True},
    )
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    train_generator(resolve("generator", overrides=options), whole, log=lambda m: None)

    train = _records(whole, "train")
    val_l1 = [e["l1"] for e in _records(whole, "val")]
    assert len(train) == 8 and len(val_l1) == 2
    assert [e["sync_weight"] for e in train] == [0.0] * 4 + [0.03] * 4
    assert train[3]["loss"] < train[0]["loss"]  # before the sync term joins the loss
    assert np.mean([e["l1"] for e in train[-3:]]) < np.mean([e["l1"] for e in train[:3]])
    assert val_l1[1] < val_l1[0]
    assert (whole / "samples" / "step_00000008.png").is_file()
    assert list((whole / "tensorboard").glob("events.out.tfevents.*"))

    with pytest.raises(SimulatedKill):  # dies after step 7; its last checkpoint is step 6
        train_generator(resolve("generator", overrides=options), killed, KillAfter(7), log=lambda m: None)
    assert read_checkpoint(killed / "checkpoints" / "last.pt")["global_step"] == 6
    messages = []
    summary = train_generator(resolve("generator", out=killed), killed, log=messages.append)  # config from run.toml
    assert any("resuming" in m and "from step 6" in m for m in messages)
    assert summary["step"] == 8 and summary["steps_run"] == 2

    for a, b in zip(_records(whole, "train"), _records(killed, "train"), strict=True):
        assert a["step"] == b["step"]
        for key in ("loss", "l1", "sync", "perceptual", "disc"):
            assert b[key] == pytest.approx(a[key], rel=RESUME_RTOL, abs=RESUME_ATOL), (a["step"], key)
    np.testing.assert_allclose([e["l1"] for e in _records(killed, "val")], val_l1, rtol=RESUME_RTOL)

    # a checkpoint of another width is refused on resume, and as --init, with both values
    with pytest.raises(CheckpointError, match=r"width 0.0625 in the checkpoint, 0.125 in this run"):
        train_generator(resolve("generator", out=killed, overrides={"width": 0.125, "steps": 9}), killed, log=lambda m: None)
    other = {**options, "width": 0.125, "init": str(killed / "checkpoints" / "last.pt")}
    with pytest.raises(CheckpointError, match=r"--init .*width 0.0625 in the checkpoint, 0.125 in this run"):
        train_generator(resolve("generator", overrides=other), tmp_path / "other", log=lambda m: None)


def test_checkpoint_of_another_lookahead_is_refused(data, syncnet_run, tmp_path):
    with pytest.raises(CheckpointError, match=r"lookahead_ms 132.5 ms in the checkpoint, 40 ms in this run"):
        train_syncnet(resolve("syncnet", out=syncnet_run, overrides={"lookahead_ms": 40.0, "steps": 7}), syncnet_run, log=lambda m: None)
    cfg = resolve("syncnet", overrides=dict(data=str(data), lookahead_ms=40.0, init=str(syncnet_run / "checkpoints" / "last.pt"), steps=1, **FAST))
    with pytest.raises(CheckpointError, match=r"lookahead_ms 132.5 ms in the checkpoint, 40 ms in this run"):
        train_syncnet(cfg, tmp_path / "init", log=lambda m: None)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(data, tmp_path):
    cfg = resolve("syncnet", overrides=dict(data=str(data), steps=10, batch_size=2, eval_every=100, eval_samples=2, checkpoint_every=2, **FAST))
    with pytest.raises(TrainingError) as info:
        train_syncnet(cfg, tmp_path, NanAt(3), log=lambda m: None)
    message = str(info.value)
    assert "stopped at step 3" in message and "nan" in message and "last good checkpoint (step 2)" in message
    ckpt = read_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert ckpt["global_step"] == 2
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values() if v.is_floating_point())
    assert [e["step"] for e in _records(tmp_path, "train") if e.get("loss") is not None] == [1, 2]
    # re-running resumes from the good checkpoint
    summary = train_syncnet(resolve("syncnet", out=tmp_path, overrides={"steps": 3}), tmp_path, log=lambda m: None)
    assert summary["step"] == 3 and np.isfinite(summary["last_train"]["loss"])


def test_early_stopping_on_the_validation_metric(data, tmp_path):
    """With a learning rate too small to change anything, the validation loss never
    improves by min_delta: patience 2 stops the run after the third validation."""
    options = dict(data=str(data), steps=50, batch_size=2, lr=1e-12, eval_every=1, eval_samples=2, checkpoint_every=50,
                   patience=2, min_delta=1e-3, **FAST)
    summary = train_syncnet(resolve("syncnet", overrides=options), tmp_path, log=lambda m: None)
    assert summary["step"] == 3 and summary["best_step"] == 1
    assert "early stopping at step 3" in summary["stop_reason"]
    assert read_checkpoint(tmp_path / "checkpoints" / "last.pt")["global_step"] == 3
    assert read_checkpoint(tmp_path / "checkpoints" / "best.pt")["global_step"] == 1
    again = train_syncnet(resolve("syncnet", out=tmp_path), tmp_path, log=lambda m: None)
    assert again["steps_run"] == 0
    more = train_syncnet(resolve("syncnet", out=tmp_path, overrides={"patience": 3}), tmp_path, log=lambda m: None)
    assert more["step"] == 4 and more["steps_run"] == 1


# ---- command line and config -------------------------------------------------------------


def test_cli_trains_resumes_and_reports_dataset_errors(data, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "syncnet", str(data), "--out", str(out), "--width", str(WIDTH), "--in-channels", "1", "--steps", "2",
            "--batch-size", "2", "--eval-every", "2", "--eval-samples", "2", "--num-workers", "0", "--no-progress", "--no-tensorboard"]
    assert cli_main(args) == 0
    assert "syncnet: step 2 of 2" in capsys.readouterr().out
    assert cli_main(["train", "syncnet", "--out", str(out)]) == 0  # data and options from run.toml
    assert "nothing to do" in capsys.readouterr().out

    assert cli_main(["train", "syncnet", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r2")]) == 2
    assert "no such dataset folder" in capsys.readouterr().err
    empty = tmp_path / "empty"
    write_header(empty, {"image_size": SIZE})
    assert cli_main(["train", "syncnet", str(empty), "--out", str(tmp_path / "r3")]) == 2
    assert "split 'train' is empty" in capsys.readouterr().err
    old = tmp_path / "old"
    old.mkdir()
    (old / "dataset.json").write_text(json.dumps({"format": "rtmri-clips", "version": 0, "fps": 25}))
    assert cli_main(["train", "generator", str(old), "--out", str(tmp_path / "r4"), "--sync-weight", "0"]) == 2
    assert "version 0" in capsys.readouterr().err
    assert cli_main(["train", "generator", str(data), "--out", str(tmp_path / "r5")]) == 2
    assert "--syncnet" in capsys.readouterr().err


def test_config_precedence_and_toml_round_trip(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.toml").write_text(to_toml({"kind": "generator", "data": "/d", "width": 0.5, "steps": 10, "syncnet": "s.pt"}))
    extra = tmp_path / "extra.toml"
    extra.write_text('steps = 20\nlr = 3e-4\nsample_every = 7\n')
    cfg = resolve("generator", out=run, config_file=extra, overrides={"steps": 30, "width": None})
    assert (cfg.width, cfg.steps, cfg.lr, cfg.sample_every, cfg.data) == (0.5, 30, 3e-4, 7, "/d")
    (tmp_path / "again.toml").write_text(to_toml(cfg.to_dict()))
    assert resolve("generator", config_file=tmp_path / "again.toml") == cfg
    extra.write_text("stpes = 3\n")
    with pytest.raises(ConfigError, match="unknown option"):
        resolve("generator", out=run, config_file=extra)
    with pytest.raises(ConfigError, match="image_size 64"):
        resolve("generator", out=run, overrides={"image_size": 64})
