"""Audio augmentation of the training samples: reproducible by seed, each kind really
changes the features, noise at the asked SNR, nothing drawn means the clip's own features,
validation never augmented, and the setting recorded in run.toml for a resumed run."""

from __future__ import annotations

import numpy as np
import pytest

from rtmri.audio import SAMPLE_RATE, melspectrogram
from rtmri import perturbations
from rtmri.perturbations import heldout_perturbation
from rtmri.training import augment
from rtmri.training.augment import KINDS, NOISE_SNR_DB, Augmentation
from rtmri.training.config import ConfigError, read_toml, resolve, to_toml

FIRST, END = 60, 100  # the columns a sample reads (0.5 s), well inside the clip
CHANGED = 0.1  # mean |mel difference| that counts as a real change (1.25 dB; features span [-4, 4])
KEYS = [(0, i) for i in range(8)]


def vowel_like(seconds: float = 2.0, f0: float = 140.0) -> np.ndarray:
    """Harmonics of f0 under formant peaks (700, 1200, 2600 Hz), at a syllable rate."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    formants = [(700.0, 1.0), (1200.0, 0.6), (2600.0, 0.3)]
    wav = np.zeros_like(t)
    for h in range(1, int(7000 / f0)):
        f = h * f0
        wav += sum(a / (1 + ((f - fc) / 120.0) ** 2) for fc, a in formants) * np.sin(2 * np.pi * f * t)
    envelope = 0.55 + 0.45 * np.sin(2 * np.pi * 4.0 * t)
    return (0.1 * wav / np.abs(wav).max() * envelope).astype(np.float32)


@pytest.fixture(scope="module")
def speech():
    audio = vowel_like()
    return audio, melspectrogram(audio)


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def _snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    noise = noisy.astype(np.float64) - clean
    return 10 * np.log10(np.sum(np.square(clean, dtype=np.float64)) / np.sum(noise**2))


# ---- the augmentation itself ---------------------------------------------------------------------


def test_same_seed_and_index_give_the_same_augmentation_other_seeds_differ(speech):
    audio, mel = speech
    every = Augmentation({kind: 1.0 for kind in KINDS})
    first = every.mel(audio, mel, FIRST, END, (3, 17))
    assert np.array_equal(first, every.mel(audio, mel, FIRST, END, (3, 17)))
    assert np.array_equal(first, Augmentation({kind: 1.0 for kind in KINDS}, seed=0).mel(audio, mel, FIRST, END, (3, 17)))
    assert _distance(first, every.mel(audio, mel, FIRST, END, (4, 17))) > CHANGED  # another run seed
    assert _distance(first, every.mel(audio, mel, FIRST, END, (3, 18))) > CHANGED  # another sample
    assert np.array_equal(first[:, :FIRST], mel[:, :FIRST]) and np.array_equal(first[:, END:], mel[:, END:])  # only what the sample reads


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_really_changes_the_features(speech, kind):
    audio, mel = speech
    only = Augmentation({kind: 1.0})
    outputs = [only.mel(audio, mel, FIRST, END, key)[:, FIRST:END] for key in KEYS]
    distances = [_distance(out, mel[:, FIRST:END]) for out in outputs]
    assert min(distances) > 0 and np.median(distances) > CHANGED, distances
    assert np.array_equal(outputs[0], only.mel(audio, mel, FIRST, END, KEYS[0])[:, FIRST:END])
    assert not np.array_equal(outputs[0], only.mel(audio, mel, FIRST, END, (1, 0))[:, FIRST:END])  # another run seed


def test_switching_one_kind_off_leaves_the_others_draws(speech):
    audio, mel = speech
    with_gain = Augmentation({"gain": 1.0, "vtlp": 1.0}).mel(audio, mel, FIRST, END, (0, 5))
    gain_only = Augmentation({"gain": 1.0}).mel(audio, mel, FIRST, END, (0, 5))
    np.testing.assert_allclose(with_gain[:, FIRST:END], augment.vtlp(gain_only[:, FIRST:END], _vtlp_factor((0, 5))), atol=1e-6)


def _vtlp_factor(key) -> float:
    rng = Augmentation({"vtlp": 1.0})._drawn("vtlp", key)
    return float(rng.uniform(*augment.VTLP_FACTOR))


def test_the_perturbed_stretch_gives_the_columns_of_the_whole_perturbed_clip(speech):
    """Only the audio a sample reads (and a lead) is perturbed: with a gain, a perturbation
    that does not depend on where it starts, its columns are the whole clip's."""
    audio, mel = speech
    gain = Augmentation({"gain": 1.0})
    wholes = {key: melspectrogram(gain.perturb(audio, SAMPLE_RATE, key)) for key in KEYS}
    key = max(KEYS, key=lambda k: _distance(wholes[k], mel))  # a gain far from 0 dB
    for first, end in ((0, 16), (FIRST, END), (mel.shape[1] - 16, mel.shape[1])):
        np.testing.assert_allclose(gain.mel(audio, mel, first, end, key)[:, first:end], wholes[key][:, first:end], atol=1e-4)
        assert _distance(wholes[key][:, first:end], mel[:, first:end]) > CHANGED


@pytest.mark.parametrize("kind", ["noise", "babble"])
def test_noise_is_added_at_an_snr_in_the_asked_range(speech, kind):
    audio, _ = speech
    only = Augmentation({kind: 1.0})
    measured = [_snr_db(audio, only.perturb(audio, SAMPLE_RATE, (0, i))) for i in range(12)]
    assert all(NOISE_SNR_DB[0] - 0.01 <= snr <= NOISE_SNR_DB[1] + 0.01 for snr in measured), measured
    assert max(measured) - min(measured) > 8  # drawn across the range, not one level


def test_vtlp_moves_a_formant_by_the_factor():
    """A single spectral peak at 1 kHz lands near factor x 1 kHz after the warp."""
    centres = augment._mel_centres_hz()
    peak = np.exp(-(((centres - 1000.0) / 80.0) ** 2))[:, None] * np.ones((1, 4), np.float32)
    for factor in (0.9, 1.1):
        warped = augment.vtlp(peak.astype(np.float32), factor)
        assert centres[np.argmax(warped[:, 0])] == pytest.approx(1000.0 * factor, rel=0.04)


def test_nothing_drawn_is_the_clip_own_features(speech):
    audio, mel = speech
    assert Augmentation.from_spec("none") is None and Augmentation.from_spec("gain=0") is None
    rarely = Augmentation({"room": 1e-9, "vtlp": 1e-9})
    assert all(rarely.mel(audio, mel, FIRST, END, key) is mel for key in KEYS)


def test_heldout_perturbation_is_reproducible_and_none_of_the_training_kinds(speech):
    audio, mel = speech
    held = heldout_perturbation(audio, SAMPLE_RATE, seed=1)
    assert held.shape == audio.shape and np.array_equal(held, heldout_perturbation(audio, SAMPLE_RATE, seed=1))
    assert _distance(melspectrogram(held), mel) > CHANGED
    assert not np.array_equal(held, heldout_perturbation(audio, SAMPLE_RATE, seed=2))
    assert perturbations.HELDOUT_HALLS.rt60_s[0] > perturbations.TRAINING_ROOMS.rt60_s[1]  # other rooms than training's
    assert perturbations.HELDOUT_HALLS.size_m[0][0] > perturbations.TRAINING_ROOMS.size_m[0][1]


def test_a_hall_is_a_large_reverberant_room_of_the_run_own_bank_never_a_heldout_one():
    hall = perturbations.room_impulse_response(0, 0, SAMPLE_RATE, bank="hall")
    room = perturbations.room_impulse_response(0, 0, SAMPLE_RATE, bank="room")
    heldout = {perturbations.room_impulse_response(perturbations.HELDOUT_BANK_SEED, k, SAMPLE_RATE, bank="heldout").tobytes()
               for k in range(perturbations.HELDOUT_ROOMS)}

    def decay_s(rir):  # time for the energy left to fall by 20 dB
        left = np.cumsum((rir.astype(np.float64) ** 2)[::-1])[::-1]
        return np.argmax(left < left[0] * 0.01) / SAMPLE_RATE

    assert decay_s(hall) > 2 * decay_s(room)
    assert all(perturbations.room_impulse_response(0, k, SAMPLE_RATE, bank="hall").tobytes() not in heldout
               for k in range(perturbations.ROOMS))


def test_hall_takes_the_room_place_and_band_removes_what_a_telephone_does_not_pass(speech):
    audio, _ = speech
    both = Augmentation({"room": 1.0, "hall": 1.0}).perturb(audio, SAMPLE_RATE, KEYS[0])
    assert np.array_equal(both, Augmentation({"hall": 1.0}).perturb(audio, SAMPLE_RATE, KEYS[0]))
    white = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32)
    band = Augmentation({"band": 1.0}).perturb(white, SAMPLE_RATE, KEYS[0])
    power = lambda x, where: float(np.sum(np.abs(np.fft.rfft(x)[where]) ** 2))  # noqa: E731
    hz = np.fft.rfftfreq(len(white), 1 / SAMPLE_RATE)
    for outside in (hz > 5000, hz < 120):
        assert power(band, outside) < 0.01 * power(white, outside)
    inside = (hz > 700) & (hz < 2500)
    assert power(band, inside) > 0.5 * power(white, inside)
    assert augment.parse_spec("hall,band") == augment.OPTIONAL_PROBABILITIES
    assert "hall" not in augment.parse_spec("default")


# ---- in the datasets and runs ---------------------------------------------------------------------


def test_training_samples_are_augmented_validation_never(tiny_clip_dataset, tmp_path):
    torch = pytest.importorskip("torch")
    from rtmri.clips import ClipDataset
    from rtmri.training.data import SyncNetSamples
    from rtmri.training.runtime import setup_runtime
    from rtmri.training.train_baseline import BaselineRun

    clips = ClipDataset(tiny_clip_dataset).split("train")
    plain = SyncNetSamples(clips, seed=0, channels=1)
    off = SyncNetSamples(clips, seed=0, channels=1, augmentation=Augmentation.from_spec("none"))
    warped = SyncNetSamples(clips, seed=0, channels=1, augmentation=Augmentation({"vtlp": 1.0}))
    for i in range(6):
        (x, window, label), (x_off, window_off, label_off), (x_w, window_w, label_w) = plain[i], off[i], warped[i]
        assert torch.equal(window, window_off) and torch.equal(x, x_off) and torch.equal(label, label_off)
        assert torch.equal(x, x_w) and torch.equal(label, label_w)  # the same picks
        assert not torch.equal(window, window_w)

    cfg = resolve("baseline", overrides=dict(data=str(tiny_clip_dataset), hidden=16, num_workers=0, progress=False, tensorboard=False))
    run = BaselineRun(cfg, tmp_path, log=lambda m: None)
    run.rt = setup_runtime(cfg)
    run.build(ClipDataset(tiny_clip_dataset).split("train"), ClipDataset(tiny_clip_dataset).split("val"))
    assert run.train_set.augmentation.probabilities == augment.DEFAULT_PROBABILITIES
    assert run.val_set.augmentation is None


def test_run_toml_records_the_augmentation_and_a_resumed_run_keeps_it(tiny_clip_dataset, tmp_path, capsys):
    pytest.importorskip("torch")
    from rtmri.cli import main as cli_main
    from rtmri.training.models.checkpoints import read_checkpoint

    out = tmp_path / "run"
    args = ["train", "baseline", str(tiny_clip_dataset), "--out", str(out), "--batch-size", "2", "--eval-every", "1",
            "--eval-samples", "2", "--hidden", "16", "--num-workers", "0", "--no-progress", "--no-tensorboard"]
    assert cli_main(args + ["--steps", "1", "--augment", "vtlp, room=0.25"]) == 0
    assert 'augment = "room=0.25,vtlp=0.5"' in (out / "run.toml").read_text()
    assert cli_main(["train", "baseline", "--out", str(out), "--steps", "2"]) == 0  # resumes with run.toml's
    assert "from step 1" in capsys.readouterr().out
    assert read_checkpoint(out / "checkpoints" / "last.pt")["config"]["augment"] == "room=0.25,vtlp=0.5"
    assert resolve("baseline", out=out).augment == "room=0.25,vtlp=0.5"

    off = tmp_path / "off"
    assert cli_main(args[:4] + [str(off)] + args[5:] + ["--steps", "1", "--no-augment"]) == 0
    assert read_toml(off / "run.toml", "baseline")["augment"] == "none"
    assert cli_main(args[:4] + [str(tmp_path / "bad")] + args[5:] + ["--augment", "echo=0.5"]) == 2
    assert "unknown kind 'echo'" in capsys.readouterr().err


def test_default_is_every_kind_and_an_older_run_resumes_without(tmp_path):
    assert resolve("generator", overrides={"data": "/d", "sync_weight": 0.0}).augment == augment.format_spec(augment.DEFAULT_PROBABILITIES)
    old = tmp_path / "old"
    old.mkdir()
    (old / "run.toml").write_text(to_toml({"kind": "syncnet", "data": "/d", "steps": 10}))  # written before augmentation
    assert resolve("syncnet", out=old).augment == "none"
    with pytest.raises(ConfigError, match="noise=2 is not a probability"):
        resolve("syncnet", out=old, overrides={"augment": "noise=2"})


def test_babble_over_a_short_stretch_stays_finite():
    """A sample's stretch can be a few hundredths of a second (at a clip's end): its babble's
    envelope is still drawn over seconds, so it never overflows into inf (then NaN features)."""
    import warnings

    from rtmri.training.augment import babble_noise

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for n in (50, 160, 320, 480, 800):
            for seed in range(60):
                noise = babble_noise(n, 16000, np.random.default_rng(seed))
                assert noise.shape == (n,) and np.isfinite(noise).all() and np.abs(noise).max() < 1e6, (n, seed)
