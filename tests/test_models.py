"""The wav2lip networks: checkpoint compatibility with the public state dicts, public
checkpoint loading, compact variants, the streaming split and the size report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from rtmri.cli import main as cli_main  # noqa: E402
from rtmri.training.models import Generator, QualityDiscriminator, SyncNet, face_input_for_reference, syncnet_input  # noqa: E402
from rtmri.training.models.checkpoints import (  # noqa: E402
    CheckpointError,
    atomic_save,
    check_compatible,
    load_model,
    load_state_dict_checked,
    load_weights,
)
from rtmri.training.models.size_report import count_params, size_rows  # noqa: E402

REFERENCE = json.loads((Path(__file__).parent / "data" / "wav2lip_state_dicts.json").read_text())
NETWORKS = {"generator": Generator, "quality_discriminator": QualityDiscriminator, "syncnet": SyncNet}
PARAMS_M = {"generator": 36.3, "quality_discriminator": 14.1, "syncnet": 16.4}


@pytest.mark.parametrize("name", list(NETWORKS))
def test_full_width_state_dict_is_wav2lips(name):
    model = NETWORKS[name]()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    reference = REFERENCE[name]
    assert sorted(set(reference) - set(ours)) == [], "missing names"
    assert sorted(set(ours) - set(reference)) == [], "unexpected names"
    assert ours == reference  # shapes, name for name
    assert round(count_params(model) / 1e6, 1) == PARAMS_M[name]


def _fake_public_checkpoint(path: Path, model: torch.nn.Module) -> dict:
    torch.manual_seed(1)
    state = {
        k: (torch.rand_like(v) + 0.5 if k.endswith("running_var") else torch.randn_like(v) * 0.1 if v.is_floating_point() else v.clone())
        for k, v in model.state_dict().items()
    }
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}, "optimizer": {"state": {}, "param_groups": []},
                "global_step": 123, "global_epoch": 4}, path)
    return state


def test_public_generator_checkpoint_loads(tmp_path):
    path = tmp_path / "wav2lip_gan.pth"
    state = _fake_public_checkpoint(path, Generator())
    model, meta = load_model(path, "generator")
    assert meta == {"width": 1.0, "in_channels": 3, "image_size": 96, "lookahead_ms": 132.5}
    loaded = model.state_dict()
    for key in ("face_encoder_blocks.0.0.conv_block.0.weight", "output_block.1.bias", "face_decoder_blocks.6.2.conv_block.1.running_var"):
        assert torch.equal(loaded[key], state[key])
    with pytest.raises(CheckpointError, match="a generator checkpoint, expected a syncnet"):
        load_model(path, "syncnet")


def test_mismatched_checkpoint_lists_missing_unexpected_and_misshaped(tmp_path):
    state = dict(SyncNet().state_dict())
    del state["audio_encoder.13.conv_block.0.bias"]
    state["audio_encoder.14.conv_block.0.weight"] = torch.zeros(1)
    state["face_encoder.0.conv_block.0.weight"] = torch.zeros(32, 6, 7, 7)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}, "global_step": 0}, path)
    with pytest.raises(CheckpointError) as info:
        load_model(path, "syncnet")
    message = str(info.value)
    assert "missing keys (1)" in message and "audio_encoder.13.conv_block.0.bias" in message
    assert "unexpected keys (1)" in message and "audio_encoder.14.conv_block.0.weight" in message
    assert "mis-shaped keys (1)" in message and "face_encoder.0.conv_block.0.weight: checkpoint [32, 6, 7, 7] vs model [32, 15, 7, 7]" in message


def test_another_width_does_not_load():
    with pytest.raises(CheckpointError, match="mis-shaped keys"):
        load_state_dict_checked(Generator(0.25, 1), Generator(0.5, 1).state_dict())


def test_colour_checkpoint_folds_into_grey_syncnet(tmp_path):
    """A public (colour) SyncNet loaded into a grey one embeds grey exactly as the colour
    network embeds the grey repeated to 3 channels."""
    path = tmp_path / "lipsync_expert.pth"
    _fake_public_checkpoint(path, SyncNet())
    colour, _ = load_model(path, "syncnet")
    grey = SyncNet(in_channels=1).eval()
    load_weights(grey, "syncnet", path)
    frames = torch.rand(2, 1, 5, 96, 96)
    mel = torch.randn(2, 1, 80, 16)
    with torch.no_grad():
        a3, v3 = colour(mel, syncnet_input(frames, 3))
        a1, v1 = grey(mel, syncnet_input(frames, 1))
    torch.testing.assert_close(a1, a3)
    torch.testing.assert_close(v1, v3, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("width", [0.5, 0.25, 0.125])
@pytest.mark.parametrize("channels", [1, 3])
def test_compact_variants_forward_the_right_shapes(width, channels):
    torch.manual_seed(0)
    gen, disc, sync = Generator(width, channels).eval(), QualityDiscriminator(width, channels).eval(), SyncNet(width, channels).eval()
    assert count_params(gen) < PARAMS_M["generator"] * 1e6 * width
    assert count_params(sync) < PARAMS_M["syncnet"] * 1e6 * width
    mel = torch.randn(2, 1, 80, 16)
    face = torch.rand(2, 2 * channels, 96, 96)
    with torch.no_grad():
        out = gen(mel, face)
        assert out.shape == (2, channels, 96, 96) and 0 <= out.min() and out.max() <= 1
        pred = disc(torch.rand(1, channels, 3, 96, 96))
        assert pred.shape == (3, 1) and ((0 <= pred) & (pred <= 1)).all()
        a, v = sync(mel, torch.rand(2, 5 * channels, 48, 96))
        assert a.shape == v.shape and a.shape[0] == 2
        torch.testing.assert_close(a.norm(dim=1), torch.ones(2))


def test_sequence_layout_is_per_frame():
    """wav2lip's (B, T, ...) layout gives, frame for frame, the 4-D forward's output."""
    torch.manual_seed(0)
    gen = Generator(0.125, 3).eval()
    mels, faces = torch.randn(2, 5, 1, 80, 16), torch.rand(2, 6, 5, 96, 96)
    with torch.no_grad():
        seq = gen(mels, faces)
        assert seq.shape == (2, 3, 5, 96, 96)
        torch.testing.assert_close(seq[1, :, 3], gen(mels[1:2, 3], faces[1:2, :, 3])[0])


def test_streaming_split_with_a_fixed_reference():
    """encode_face once for the reference; decode any batch of windows with it."""
    torch.manual_seed(0)
    gen = Generator(0.125, 1).eval()
    reference = torch.rand(1, 96, 96)
    face = face_input_for_reference(reference)
    assert face.shape == (1, 2, 96, 96)
    assert torch.all(face[0, 0, 48:] == 0) and torch.equal(face[0, 0, :48], reference[0, :48])
    assert torch.equal(face[0, 1], reference[0])
    mel = torch.randn(4, 1, 80, 16)
    with torch.no_grad():
        cached = gen.decode(mel, gen.encode_face(face))
        full = gen(mel, face.expand(4, -1, -1, -1))
    torch.testing.assert_close(cached, full)


def test_checkpoint_of_another_width_or_lookahead_names_both_values():
    run = {"width": 0.25, "in_channels": 1, "image_size": 96, "lookahead_ms": 40.0}
    with pytest.raises(CheckpointError, match=r"width 0.5 in the checkpoint, 0.25 in this run"):
        check_compatible({**run, "width": 0.5}, run, "x.pt")
    with pytest.raises(CheckpointError, match=r"lookahead_ms 132.5 ms in the checkpoint, 40 ms in this run"):
        check_compatible({**run, "lookahead_ms": 132.5}, run, "x.pt")
    check_compatible({**run, "lookahead_ms": 132.5}, run, "x.pt", check_lookahead=False)


def test_size_report_and_command(capsys):
    rows = size_rows([1.0, 0.25], 3)
    assert rows[0]["generator_params"] == 36_298_035 and rows[0]["syncnet_params"] == 16_435_072
    assert rows[0]["generator_flops"] > rows[0]["decode_flops"] > rows[1]["generator_flops"] > 0
    assert 7e9 < rows[0]["generator_flops"] < 9e9  # about 4 G multiply-accumulates per frame at 96 px
    assert cli_main(["train", "sizes", "--widths", "0.5,0.125", "--in-channels", "1"]) == 0
    table = capsys.readouterr().out
    assert "gen params" in table and "0.125" in table and "decode GFLOP/frame" in table


def test_atomic_save_leaves_the_old_checkpoint_when_writing_fails(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"global_step": 1, "w": torch.ones(2)}, path)
    with pytest.raises(Exception):
        atomic_save({"global_step": 2, "unpicklable": lambda: None}, path)
    assert torch.load(path, weights_only=True)["global_step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
