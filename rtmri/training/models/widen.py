"""Function-preserving widening of a checkpoint (Net2WiderNet, Chen et al., ICLR 2016).

A network of width w becomes one of width 2w that computes the same function: output
channel j of a widened layer copies old channel j // 2 (weights, bias, batch-norm
statistics), and the next layer halves its weights on both copies of a duplicated input
channel, so their sum is unchanged. ReLU and LeakyReLU commute with copying, batch norm
is per channel, so the whole network is preserved, in eval and in train mode.

``scaled_channels`` keeps a layer at 4 channels at small widths, so between two widths
some layers double and others stay; and the generator's decoder concatenates its output
with encoder skip features. Each layer's input is therefore described as the list of
concatenated segments it reads (from the network's structure), and every segment is
mapped on its own: a 2 x 10 + 4 input is 10 doubled channels then 4 unchanged ones.

Copies that stay identical get identical gradients and never separate; ``noise`` (relative
to the layer's weight spread, seeded) perturbs the second copy of every duplicated output
channel so that they can.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from rtmri.training.models.checkpoints import (
    CheckpointError,
    build_model,
    checkpoint_meta,
    compare_state_dict,
    is_ours,
    strip_module_prefix,
)
from rtmri.training.models.discriminator import QualityDiscriminator
from rtmri.training.models.generator import Generator

DEFAULT_NOISE = 1e-3  # of the layer's weight standard deviation
BATCH_NORM_STATS = ("weight", "bias", "running_mean", "running_var")
# Checkpoint entries that hold a network's weights, with the network's kind.
WEIGHT_ENTRIES = {"state_dict": "generator", "disc_state_dict": "quality_discriminator"}


@dataclass(frozen=True)
class LayerShape:
    """A convolution as widening sees it: its state-dict prefix, the channels of each
    concatenated segment of its input, its output channels and its batch norm's prefix."""

    conv: str
    transposed: bool
    inputs: tuple[int, ...]
    outputs: int
    norm: str | None


def _chain(layers: list[LayerShape], prefix: str, sequence: nn.Sequential, inputs: tuple[int, ...]) -> tuple[int, ...]:
    """Append the convolutions of a sequence of blocks fed with ``inputs``; returns the
    segments of its output."""
    for index, module in enumerate(sequence):
        name = f"{prefix}.{index}"
        norm = None
        if hasattr(module, "conv_block"):  # a wav2lip block: conv_block.0 conv, .1 batch norm
            conv = module.conv_block[0]
            if len(module.conv_block) > 1:
                norm = f"{name}.conv_block.1"
            name = f"{name}.conv_block.0"
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            conv = module
        else:
            continue  # activations
        if sum(inputs) != conv.in_channels:
            raise ValueError(f"{name}: {conv.in_channels} input channels, the structure gives {inputs}")
        layers.append(LayerShape(name, isinstance(conv, nn.ConvTranspose2d), inputs, conv.out_channels, norm))
        inputs = (conv.out_channels,)
    return inputs


def generator_layers(gen: Generator) -> list[LayerShape]:
    """The generator's convolutions in order; a decoder block reads [previous decoder
    output, encoder skip], as Generator.decode concatenates them."""
    layers: list[LayerShape] = []
    skips = []
    inputs: tuple[int, ...] = (2 * gen.in_channels,)
    for index, block in enumerate(gen.face_encoder_blocks):
        inputs = _chain(layers, f"face_encoder_blocks.{index}", block, inputs)
        skips.append(inputs)
    inputs = _chain(layers, "audio_encoder", gen.audio_encoder, (1,))
    for index, block in enumerate(gen.face_decoder_blocks):
        inputs = _chain(layers, f"face_decoder_blocks.{index}", block, inputs) + skips.pop()
    _chain(layers, "output_block", gen.output_block, inputs)
    return layers


def discriminator_layers(disc: QualityDiscriminator) -> list[LayerShape]:
    layers: list[LayerShape] = []
    inputs: tuple[int, ...] = (disc.in_channels,)
    for index, block in enumerate(disc.face_encoder_blocks):
        inputs = _chain(layers, f"face_encoder_blocks.{index}", block, inputs)
    _chain(layers, "binary_pred", disc.binary_pred, inputs)
    return layers


LAYERS = {"generator": generator_layers, "quality_discriminator": discriminator_layers}


def network_layers(kind: str, width: float, in_channels: int) -> list[LayerShape]:
    """The layer shapes of a network, built on the meta device (no weights allocated)."""
    with torch.device("meta"):
        return LAYERS[kind](build_model(kind, width, in_channels))


def channel_map(old: int, new: int, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(old channel of each new channel, weight of each new channel as an input: 1 / its
    number of copies) for an unchanged or doubled channel group."""
    if new == old:
        return torch.arange(new), torch.ones(new)
    if new == 2 * old:
        return torch.arange(new) // 2, torch.full((new,), 0.5)
    raise CheckpointError(f"{where}: {old} -> {new} channels; widening only keeps a layer or doubles it")


def _input_map(old: LayerShape, new: LayerShape, where: str) -> tuple[torch.Tensor, torch.Tensor]:
    if len(old.inputs) != len(new.inputs):
        raise CheckpointError(f"{where}: input segments {old.inputs} vs {new.inputs}")
    indices, scales, offset = [], [], 0
    for a, b in zip(old.inputs, new.inputs):
        index, scale = channel_map(a, b, f"{where} (input segment of {a} channels)")
        indices.append(index + offset)
        scales.append(scale)
        offset += a
    return torch.cat(indices), torch.cat(scales)


def second_copies(old: int, new: int) -> torch.Tensor:
    """Mask of the new channels that are the second copy of a duplicated one."""
    return (torch.arange(new) % 2 == 1) if new == 2 * old else torch.zeros(new, dtype=torch.bool)


def jitter_copies(weight: torch.Tensor, bias: torch.Tensor, copies: torch.Tensor, spread: float, noise: float,
                  rng: torch.Generator, out_dim: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight`` and ``bias`` with seeded noise (``noise`` times ``spread``) on the output
    channels marked in ``copies`` (along ``out_dim`` of the weight), so that copies learn apart."""
    if noise <= 0 or not copies.any():
        return weight, bias
    shape = [1] * weight.dim()
    shape[out_dim] = -1
    jitter = torch.randn(weight.shape, generator=rng, dtype=weight.dtype) * (noise * spread)
    weight = weight + jitter * copies.reshape(shape).to(weight.dtype)
    bias = bias + torch.randn(bias.shape, generator=rng, dtype=bias.dtype) * (noise * spread) * copies.to(bias.dtype)
    return weight, bias


def widen_layer(sd: dict, out: dict, old: LayerShape, new: LayerShape, where: str, noise: float, rng: torch.Generator) -> None:
    """Write ``new``'s conv (and batch norm) tensors, widened from ``old``'s in ``sd``, to ``out``."""
    out_index, _ = channel_map(old.outputs, new.outputs, f"{where} (output)")
    in_index, in_scale = _input_map(old, new, where)
    weight = sd[f"{old.conv}.weight"]
    if new.transposed:  # ConvTranspose2d: [in, out, kh, kw]
        widened = weight[in_index][:, out_index] * in_scale[:, None, None, None]
    else:  # Conv2d: [out, in, kh, kw]
        widened = weight[out_index][:, in_index] * in_scale[None, :, None, None]
    bias = sd[f"{old.conv}.bias"][out_index].clone()
    copies = second_copies(old.outputs, new.outputs)
    widened, bias = jitter_copies(widened, bias, copies, float(weight.float().std()) or 1.0, noise, rng,
                                  out_dim=1 if new.transposed else 0)
    out[f"{new.conv}.weight"] = widened.contiguous()
    out[f"{new.conv}.bias"] = bias
    if new.norm is not None:
        for name in BATCH_NORM_STATS:
            out[f"{new.norm}.{name}"] = sd[f"{old.norm}.{name}"][out_index].clone()
        tracked = f"{old.norm}.num_batches_tracked"
        if tracked in sd:
            out[f"{new.norm}.num_batches_tracked"] = sd[tracked].clone()


def widen_state_dict(state_dict: dict, kind: str, in_channels: int, old_width: float, new_width: float,
                     source: str = "checkpoint", noise: float = DEFAULT_NOISE, seed: int = 0) -> dict:
    """The state dict of a ``kind`` network at ``old_width`` widened to ``new_width``
    (every layer kept or doubled), computing the same function up to ``noise``."""
    state_dict = strip_module_prefix(state_dict)
    with torch.device("meta"):
        narrow = build_model(kind, old_width, in_channels)
    old_layers = LAYERS[kind](narrow)
    missing, unexpected, misshaped = compare_state_dict(narrow, state_dict)
    if missing or unexpected or misshaped:
        first = (missing + unexpected + misshaped)[0]
        raise CheckpointError(f"{source}: its weights are not a width-{old_width:g} {kind} ({first}); cannot widen them")
    new_layers = network_layers(kind, new_width, in_channels)
    rng = torch.Generator().manual_seed(seed)
    out: dict = {}
    for old, new in zip(old_layers, new_layers):
        where = f"{source}: widening {kind} width {old_width:g} -> {new_width:g}, layer {old.conv}"
        widen_layer(state_dict, out, old, new, where, noise, rng)
    return out


def widened_checkpoint(ckpt: dict, width: float, source: str, noise: float = DEFAULT_NOISE, seed: int = 0) -> dict:
    """One of our checkpoints with its generator (and discriminator, when it has one)
    widened to ``width``; unchanged when it has that width already or is a public wav2lip
    checkpoint (full width: the usual width check refuses it)."""
    if not is_ours(ckpt):
        return ckpt
    meta = checkpoint_meta(ckpt)
    if float(meta["width"]) == float(width):
        return ckpt
    if ckpt.get("kind") != "generator":
        raise CheckpointError(f"{source}: a {ckpt.get('kind')} checkpoint; only a generator's can be widened")
    widened = dict(ckpt, model={**meta, "width": float(width)})
    for entry, kind in WEIGHT_ENTRIES.items():
        if isinstance(ckpt.get(entry), dict):
            widened[entry] = widen_state_dict(ckpt[entry], kind, int(meta["in_channels"]), float(meta["width"]), float(width),
                                              f"{source} ({entry})", noise, seed)
    return widened
