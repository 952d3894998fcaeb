"""wav2lip's SyncNet expert (SyncNet_color): embeds the lower half of 5 consecutive frames
stacked on channels (5C channels, frame-major) and a 0.2 s mel window (1, 80, 16) into
L2-normalised 512-d vectors; sync probability = their cosine similarity."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from rtmri.alignment import SYNC_FRAMES
from rtmri.training.models.blocks import WidthScaledNetwork, audio_encoder_specs, conv_stack

r = True
_FACE_ENCODER = [
    (32, 7, 1, 3, False),  # 48 x 96
    (64, 5, (1, 2), 1, False), (64, 3, 1, 1, r), (64, 3, 1, 1, r),  # 46 x 47
    (128, 3, 2, 1, False), (128, 3, 1, 1, r), (128, 3, 1, 1, r), (128, 3, 1, 1, r),  # 23 x 24
    (256, 3, 2, 1, False), (256, 3, 1, 1, r), (256, 3, 1, 1, r),  # 12
    (512, 3, 2, 1, False), (512, 3, 1, 1, r), (512, 3, 1, 1, r),  # 6
    (512, 3, 2, 1, False), (512, 3, 1, 0, False), (512, 1, 1, 0, False),  # 3, 1, 1
]
del r


def syncnet_input(frames: torch.Tensor, channels: int | None = None) -> torch.Tensor:
    """(B, C, T, S, S) frames in [0, 1] -> (B, T*C', S/2, S): the lower halves stacked
    frame-major, converted to ``channels`` C' (grey repeated to 3, colour averaged to 1)."""
    c = frames.shape[1]
    if channels is not None and channels != c:
        if c == 1:
            frames = frames.expand(-1, channels, -1, -1, -1)
        elif channels == 1:
            frames = frames.mean(dim=1, keepdim=True)
        else:
            raise ValueError(f"cannot convert {c} channels to {channels}")
    lower = frames[:, :, :, frames.shape[3] // 2 :]
    return torch.cat([lower[:, :, t] for t in range(lower.shape[2])], dim=1)


def cosine_loss(audio_embedding: torch.Tensor, face_embedding: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """wav2lip's sync loss: BCE of the cosine similarity against 1 (in sync) / 0 (off)."""
    with torch.autocast(device_type=audio_embedding.device.type, enabled=False):  # BCE needs float32
        similarity = F.cosine_similarity(audio_embedding.float(), face_embedding.float())
        similarity = similarity.clamp(1e-7, 1 - 1e-7)  # ReLU embeddings: similarity in [0, 1]
        return F.binary_cross_entropy(similarity.unsqueeze(1), target.float().reshape(-1, 1))


class SyncNet(WidthScaledNetwork):
    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__(width, in_channels)
        modules, _ = conv_stack(_FACE_ENCODER, width, SYNC_FRAMES * in_channels)
        self.face_encoder = nn.Sequential(*modules)
        modules, _ = conv_stack(audio_encoder_specs(extra_residual_at_256=True), width, 1)
        self.audio_encoder = nn.Sequential(*modules)

    def forward(self, audio_window: torch.Tensor, face: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, 80, 16), (B, 5C, S/2, S) -> normalised (audio, face) embeddings."""
        face_embedding = self.face_encoder(face).reshape(face.shape[0], -1)
        audio_embedding = self.audio_encoder(audio_window).reshape(audio_window.shape[0], -1)
        return F.normalize(audio_embedding, p=2, dim=1), F.normalize(face_embedding, p=2, dim=1)

    def sync_loss(self, audio_window: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Sync loss of (B, C, T, S, S) generated frames against their 0.2 s windows."""
        a, v = self.forward(audio_window, syncnet_input(frames, self.in_channels))
        return cosine_loss(a, v, torch.ones(len(a), device=a.device))
