"""Net2WiderNet widening (rtmri.training.models.widen): a width-0.125 generator widened to
0.25 computes the same frames; noise lets the duplicated channels learn apart; widths that
are not kept-or-doubled are refused; `rtmri train generator --init-any-width` starts from
the widened weights, and without it another width is refused as before. An inverter's front
end and GRU widened (rtmri.training.models.widen_inverter) give the same state."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rtmri.cli import main as cli_main  # noqa: E402
from rtmri.training.config import read_toml  # noqa: E402
from rtmri.training.models import (  # noqa: E402
    Generator,
    QualityDiscriminator,
    face_input_for_reference,
)
from rtmri.training.models.checkpoints import (  # noqa: E402
    CheckpointError,
    atomic_save,
    model_meta,
    new_checkpoint,
    read_checkpoint,
)
from rtmri.training.models.widen import (  # noqa: E402
    LayerShape,
    channel_map,
    generator_layers,
    widen_state_dict,
    widened_checkpoint,
)

NARROW, WIDE = 0.125, 0.25
EXACT = 1e-5


def randomised(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights with non-trivial biases and batch-norm statistics (a fresh network's
    are 0 / 1, which would hide a wrongly mapped statistic)."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
        elif isinstance(module, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
            module.bias.data.uniform_(-0.1, 0.1)
    return model.eval()


def widened_generator(narrow: Generator, noise: float, seed: int = 0) -> Generator:
    wide = Generator(WIDE, narrow.in_channels)
    wide.load_state_dict(widen_state_dict(narrow.state_dict(), "generator", narrow.in_channels, NARROW, WIDE, noise=noise, seed=seed))
    return wide.eval()


def inputs(batch: int = 3, channels: int = 1, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, 80, 16, generator=g), torch.rand(batch, 2 * channels, 96, 96, generator=g)


def doubled_layers(narrow: Generator, wide: Generator) -> list[LayerShape]:
    return [new for old, new in zip(generator_layers(narrow), generator_layers(wide)) if new.outputs == 2 * old.outputs]


@pytest.mark.parametrize("channels", [1, 3])
def test_widened_generator_computes_the_same_frames(channels):
    narrow = randomised(Generator(NARROW, channels))
    wide = widened_generator(narrow, noise=0.0)
    assert sum(p.numel() for p in wide.parameters()) > 3 * sum(p.numel() for p in narrow.parameters())
    audio, face = inputs(channels=channels)
    with torch.no_grad():
        assert (wide(audio, face) - narrow(audio, face)).abs().max() < EXACT
        # wav2lip's sequence layout
        seq_audio, seq_face = audio.reshape(1, 3, 1, 80, 16), face.permute(1, 0, 2, 3).unsqueeze(0)
        assert (wide(seq_audio, seq_face) - narrow(seq_audio, seq_face)).abs().max() < EXACT
        # the streaming path: face features cached once, then decoded per window; each
        # widened feature channel is a copy of the narrow channel it came from
        reference = face_input_for_reference(face[:1, :channels])
        narrow_features, wide_features = narrow.encode_face(reference), wide.encode_face(reference)
        for a, b in zip(narrow_features, wide_features):
            index, _ = channel_map(a.shape[1], b.shape[1], "test")
            assert (b - a[:, index]).abs().max() < EXACT
        assert (wide.decode(audio, wide_features) - narrow.decode(audio, narrow_features)).abs().max() < EXACT
        # train mode too; normalising by the variance of 3 samples at the 1 x 1 layers
        # amplifies float rounding, hence the looser bound
        assert (wide.train()(audio, face) - narrow.train()(audio, face)).abs().max() < 1e-4


def test_widened_discriminator_computes_the_same_probabilities():
    narrow = randomised(QualityDiscriminator(NARROW, 1))
    wide = QualityDiscriminator(WIDE, 1)
    wide.load_state_dict(widen_state_dict(narrow.state_dict(), "quality_discriminator", 1, NARROW, WIDE, noise=0.0))
    frames = torch.rand(4, 1, 96, 96)
    with torch.no_grad():
        assert (wide.eval()(frames) - narrow(frames)).abs().max() < EXACT


def _copy_gap(model: Generator, layer: LayerShape) -> float:
    """Largest difference between the two copies of each duplicated output channel."""
    weight = model.state_dict()[f"{layer.conv}.weight"]
    if layer.transposed:  # [in, out, kh, kw]
        weight = weight.transpose(0, 1)
    return float((weight[0::2] - weight[1::2]).abs().max())


def _one_step(model: Generator) -> None:
    audio, face = inputs(batch=4, seed=2)
    target = torch.rand(4, 1, 96, 96, generator=torch.Generator().manual_seed(3))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    torch.nn.functional.l1_loss(model(audio, face), target).backward()
    optimizer.step()


def test_noise_makes_duplicated_channels_differ_and_learn_apart():
    narrow = randomised(Generator(NARROW, 1))
    exact, noisy = widened_generator(narrow, noise=0.0), widened_generator(narrow, noise=1e-3)
    layers = doubled_layers(narrow, exact)
    names = {layer.conv for layer in layers}
    assert "face_decoder_blocks.6.0.conv_block.0" in names and "output_block.0.conv_block.0" in names
    audio, face = inputs()
    with torch.no_grad():
        drift = (noisy(audio, face) - narrow(audio, face)).abs().max()
    assert 0 < drift < 1e-2  # a small perturbation of the same function
    before = [_copy_gap(noisy, layer) for layer in layers]
    assert all(gap > 0 for gap in before)
    assert all(_copy_gap(exact, layer) == 0 for layer in layers)

    _one_step(exact)
    _one_step(noisy)
    # without noise the copies get the same gradient and stay identical; with it they stay apart
    assert max(_copy_gap(exact, layer) for layer in layers) < 1e-7
    after = [_copy_gap(noisy, layer) for layer in layers]
    assert all(gap > 0 for gap in after)
    assert any(abs(a - b) > 1e-6 for a, b in zip(after, before))  # the step moved the copies apart differently


def test_widths_that_are_not_kept_or_doubled_are_refused():
    state = Generator(NARROW, 1).state_dict()
    # 0.125 -> 0.5 doubles the 4-channel first block (16 x 0.125 is held at 4) but
    # quadruples the next one: only doubling (or keeping) is supported
    with pytest.raises(CheckpointError, match=r"narrow\.pt.*0\.125 -> 0\.5, layer face_encoder_blocks\.1\.0\.conv_block\.0 \(output\): 4 -> 16 channels"):
        widen_state_dict(state, "generator", 1, NARROW, 0.5, source="narrow.pt")
    with pytest.raises(CheckpointError, match=r"narrow\.pt.*0\.125 -> 0\.0625, layer .*8 -> 4 channels"):
        widen_state_dict(state, "generator", 1, NARROW, 0.0625, source="narrow.pt")
    with pytest.raises(CheckpointError, match=r"narrow\.pt: its weights are not a width-0.25 generator"):
        widen_state_dict(state, "generator", 1, WIDE, 0.5, source="narrow.pt")


# ---- rtmri train generator --init-any-width ---------------------------------------------


def _narrow_checkpoint(path, lookahead_ms: float = 40.0):
    model = randomised(Generator(NARROW, 1))
    atomic_save(new_checkpoint("generator", model, model_meta(model, 96, lookahead_ms), 0, 0), path)
    return model


def _train_args(data, out, *extra):
    return ["train", "generator", str(data), "--out", str(out), "--width", str(WIDE), "--in-channels", "1", "--lookahead-ms", "40",
            "--sync-weight", "0", "--disc-weight", "0", "--steps", "3", "--batch-size", "2", "--eval-every", "3", "--eval-samples", "2",
            "--lr", "1e-12", "--num-workers", "0", "--no-progress", "--no-tensorboard", "--no-augment", *extra]


def test_cli_trains_a_wider_generator_from_a_narrow_one(tiny_clip_dataset, tmp_path, capsys):
    narrow = _narrow_checkpoint(tmp_path / "narrow.pt")
    assert cli_main(_train_args(tiny_clip_dataset, tmp_path / "refused", "--init", str(tmp_path / "narrow.pt"))) == 2
    assert "width 0.125 in the checkpoint, 0.25 in this run" in capsys.readouterr().err

    out = tmp_path / "run"
    assert cli_main(_train_args(tiny_clip_dataset, out, "--init", str(tmp_path / "narrow.pt"), "--init-any-width")) == 0
    assert "generator: step 3 of 3" in capsys.readouterr().out
    assert read_toml(out / "run.toml", "generator")["init_any_width"] is True
    # at a learning rate that changes nothing, the trained wide network is the narrow one
    # (up to the widening noise and the batch-norm statistics of 3 steps)
    ckpt = read_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["model"]["width"] == WIDE
    wide = Generator(WIDE, 1)
    wide.load_state_dict(ckpt["state_dict"])
    narrow_weight = narrow.state_dict()["output_block.1.weight"]
    assert torch.allclose(wide.state_dict()["output_block.1.weight"], narrow_weight.repeat_interleave(2, dim=1) / 2, atol=1e-4)


def test_a_checkpoint_is_widened_with_its_discriminator(tmp_path):
    narrow, disc = randomised(Generator(NARROW, 1)), randomised(QualityDiscriminator(NARROW, 1))
    ckpt = new_checkpoint("generator", narrow, model_meta(narrow, 96, 40.0), 5, 0,
                          disc_state_dict={k: v.clone() for k, v in disc.state_dict().items()})
    widened = widened_checkpoint(ckpt, WIDE, "--init narrow.pt")
    assert widened["model"] == {**ckpt["model"], "width": WIDE} and ckpt["model"]["width"] == NARROW
    wide_disc = QualityDiscriminator(WIDE, 1)
    wide_disc.load_state_dict(widened["disc_state_dict"])
    Generator(WIDE, 1).load_state_dict(widened["state_dict"])
    frames = torch.rand(2, 1, 96, 96)
    with torch.no_grad():  # the noise keeps it close, not equal
        assert 0 < (wide_disc.eval()(frames) - disc(frames)).abs().max() < 1e-2
    assert widened_checkpoint(ckpt, NARROW, "--init narrow.pt") is ckpt
    public = {"state_dict": narrow.state_dict()}  # not ours: left to the usual width check
    assert widened_checkpoint(public, WIDE, "--init public.pth") is public


# ---- the inverter (rtmri.training.models.widen_inverter) ------------------------------------


def _randomised_inverter(channels: int, hidden: int):
    from rtmri.training.models.articulatory import Inverter

    torch.manual_seed(0)
    inverter = Inverter(channels=channels, hidden=hidden, input_norm="session")
    for module in inverter.modules():
        if isinstance(module, torch.nn.BatchNorm1d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    inverter.target_mean.uniform_(0, 10)
    inverter.target_scale.uniform_(1, 3)
    return inverter.eval()


@pytest.mark.parametrize("channels, hidden", [(32, 32), (16, 32), (32, 16)])
def test_a_widened_inverter_gives_the_same_state(channels, hidden):
    from rtmri.training.models.articulatory import Inverter
    from rtmri.training.models.widen_inverter import widened_inverter_state

    narrow = _randomised_inverter(16, 16)
    mel = torch.randn(3, 1, 80, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = narrow(mel)
        for noise, near in ((0.0, EXACT), (1e-3, 1e-2)):
            wide = Inverter(channels=channels, hidden=hidden, input_norm="session")
            wide.load_state_dict(widened_inverter_state(narrow.state_dict(), narrow.architecture(), wide.architecture(),
                                                        "narrow.pt", noise=noise))
            got = wide.eval()(mel)
            assert (got - want).abs().max() < near
        assert (got - want).abs().max() > 0  # the noise told the copies apart
        assert torch.equal(wide.session_mean, narrow.session_mean) and torch.equal(wide.target_scale, narrow.target_scale)


def test_an_inverter_that_is_not_kept_or_doubled_is_refused():
    from rtmri.training.models.widen_inverter import widened_inverter_state

    narrow = _randomised_inverter(16, 16)
    with pytest.raises(CheckpointError, match="GRU's units"):
        widened_inverter_state(narrow.state_dict(), narrow.architecture(), {"channels": 16, "hidden": 48}, "narrow.pt")
