"""wav2lip's visual-quality discriminator: no-norm convs with LeakyReLU on the lower half
of each frame, a 1x1 conv and a sigmoid (probability that the frame is real)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rtmri.training.models.blocks import NoNormConv2d, WidthScaledNetwork, scaled_channels

_BLOCKS = [
    [(32, 7, 1, 3)],  # 48 x 96
    [(64, 5, (1, 2), 2), (64, 5, 1, 2)],  # 48 x 48
    [(128, 5, 2, 2), (128, 5, 1, 2)],  # 24
    [(256, 5, 2, 2), (256, 5, 1, 2)],  # 12
    [(512, 3, 2, 1), (512, 3, 1, 1)],  # 6
    [(512, 3, 2, 1), (512, 3, 1, 1)],  # 3
    [(512, 3, 1, 0), (512, 1, 1, 0)],  # 1
]


def frames_2d(frames: torch.Tensor) -> torch.Tensor:
    """(B, C, T, S, S) -> (T*B, C, S, S) frame-major (wav2lip's order); 4-D passes through."""
    if frames.dim() == 5:
        return torch.cat([frames[:, :, t] for t in range(frames.shape[2])], dim=0)
    return frames


def bce(pred: torch.Tensor, label: float) -> torch.Tensor:
    """BCE of probabilities against a constant label, in float32 (also under autocast)."""
    with torch.autocast(device_type=pred.device.type, enabled=False):
        pred = pred.float().clamp(1e-7, 1 - 1e-7)
        return F.binary_cross_entropy(pred, torch.full_like(pred, label))


class QualityDiscriminator(WidthScaledNetwork):
    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__(width, in_channels)
        blocks = []
        cin = in_channels
        for specs in _BLOCKS:
            modules = []
            for cout, kernel, stride, padding in specs:
                cout = scaled_channels(cout, width)
                modules.append(NoNormConv2d(cin, cout, kernel, stride, padding))
                cin = cout
            blocks.append(nn.Sequential(*modules))
        self.face_encoder_blocks = nn.ModuleList(blocks)
        self.binary_pred = nn.Sequential(nn.Conv2d(cin, 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(N, C, S, S) or (B, C, T, S, S) in [0, 1] -> (N, 1) probabilities of 'real'."""
        x = frames_2d(frames)
        x = x[:, :, x.shape[2] // 2 :]
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).reshape(len(x), -1)

    def perceptual_loss(self, fake: torch.Tensor) -> torch.Tensor:
        """The generator's GAN term: BCE of the fakes against 'real'."""
        pred = self.forward(fake)
        return bce(pred, 1.0)
