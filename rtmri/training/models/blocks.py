"""Building blocks of the wav2lip networks.

The attribute names (``conv_block``, ``act``) are what the public checkpoints use: a
block's convolution is ``conv_block.0`` and its batch norm ``conv_block.1``.
"""

from __future__ import annotations

import torch
from torch import nn

MIN_CHANNELS = 4


def scaled_channels(channels: int, width: float) -> int:
    """Channels of a layer at a width multiplier (identity at 1.0, never below 4)."""
    if width <= 0:
        raise ValueError(f"width must be > 0, got {width}")
    if width == 1.0:
        return channels
    return max(MIN_CHANNELS, int(round(channels * width)))


class Conv2d(nn.Module):
    """Conv + BatchNorm + ReLU; with ``residual`` the input is added before the ReLU."""

    def __init__(self, cin: int, cout: int, kernel_size, stride, padding, residual: bool = False) -> None:
        super().__init__()
        if residual and cin != cout:
            raise ValueError(f"a residual block needs cin == cout, got {cin} -> {cout}")
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding), nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv_block(x)
        if self.residual:
            out = out + x
        return self.act(out)


class NoNormConv2d(nn.Module):
    """Conv + LeakyReLU(0.01), no normalisation (the quality discriminator's block)."""

    def __init__(self, cin: int, cout: int, kernel_size, stride, padding) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


class Conv2dTranspose(nn.Module):
    """Transposed conv + BatchNorm + ReLU (the generator's upsampling block)."""

    def __init__(self, cin: int, cout: int, kernel_size, stride, padding, output_padding: int = 0) -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding), nn.BatchNorm2d(cout)
        )
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv_block(x))


def conv_stack(specs, width: float, in_channels: int) -> tuple[list[nn.Module], int]:
    """Conv2d blocks from (cout, kernel, stride, padding, residual) tuples at full width;
    returns the modules and the output channel count."""
    modules = []
    cin = in_channels
    for cout, kernel, stride, padding, residual in specs:
        cout = scaled_channels(cout, width)
        modules.append(Conv2d(cin, cout, kernel, stride, padding, residual=residual))
        cin = cout
    return modules, cin


def audio_encoder_specs(extra_residual_at_256: bool) -> list[tuple]:
    """The audio encoder of the generator (one residual block at 256 channels) and of the
    SyncNet (two): 1 x 80 x 16 -> 512 x 1 x 1."""
    r = True
    specs = [
        (32, 3, 1, 1, False), (32, 3, 1, 1, r), (32, 3, 1, 1, r),
        (64, 3, (3, 1), 1, False), (64, 3, 1, 1, r), (64, 3, 1, 1, r),
        (128, 3, 3, 1, False), (128, 3, 1, 1, r), (128, 3, 1, 1, r),
        (256, 3, (3, 2), 1, False), (256, 3, 1, 1, r),
    ]
    if extra_residual_at_256:
        specs.append((256, 3, 1, 1, r))
    specs += [(512, 3, 1, 0, False), (512, 1, 1, 0, False)]
    return specs


class WidthScaledNetwork(nn.Module):
    """A wav2lip network at a width multiplier, for 1 (grayscale) or 3 (colour) channels."""

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        self.width = float(width)
        self.in_channels = in_channels
