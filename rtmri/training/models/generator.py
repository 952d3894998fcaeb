"""The wav2lip generator: face encoder, audio encoder, face decoder with skip connections.

Layout (wav2lip's): the face input has 2C channels, the target frame with its lower half
zeroed followed by the reference frame, in [0, 1]; the audio input is a frame's mel window
(1, 80, 16); the output is the frame, C channels in [0, 1] (sigmoid). Images are 96 x 96.

For streaming with a fixed reference both halves of the face input depend only on the
reference (wav2lip's inference masks the reference itself): ``face_input_for_reference``
builds that input, ``encode_face`` runs the face encoder once, and ``decode`` makes frames
from mel windows and the cached face features.
"""

from __future__ import annotations

import torch
from torch import nn

from rtmri.training.models.blocks import (
    Conv2d,
    Conv2dTranspose,
    WidthScaledNetwork,
    audio_encoder_specs,
    conv_stack,
    scaled_channels,
)

# Face encoder at full width: per block, (cout, kernel, stride, padding, residual) tuples.
_FACE_ENCODER = [
    [(16, 7, 1, 3, False)],  # 96
    [(32, 3, 2, 1, False), (32, 3, 1, 1, True), (32, 3, 1, 1, True)],  # 48
    [(64, 3, 2, 1, False), (64, 3, 1, 1, True), (64, 3, 1, 1, True), (64, 3, 1, 1, True)],  # 24
    [(128, 3, 2, 1, False), (128, 3, 1, 1, True), (128, 3, 1, 1, True)],  # 12
    [(256, 3, 2, 1, False), (256, 3, 1, 1, True), (256, 3, 1, 1, True)],  # 6
    [(512, 3, 2, 1, False), (512, 3, 1, 1, True)],  # 3
    [(512, 3, 1, 0, False), (512, 1, 1, 0, False)],  # 1
]
# Face decoder at full width: per block, the upsampling output channels (None for the
# first block, a 1x1 conv), the transposed conv's (kernel, stride, padding, output
# padding), and how many residual convs follow.
_FACE_DECODER = [
    (512, None, 0),  # 1
    (512, (3, 1, 0, 0), 1),  # 3
    (512, (3, 2, 1, 1), 2),  # 6
    (384, (3, 2, 1, 1), 2),  # 12
    (256, (3, 2, 1, 1), 2),  # 24
    (128, (3, 2, 1, 1), 2),  # 48
    (64, (3, 2, 1, 1), 2),  # 96
]


def face_input_for_reference(reference: torch.Tensor) -> torch.Tensor:
    """wav2lip's face input for a fixed reference: (B, 2C, S, S) = [reference with its
    lower half zeroed, reference]. ``reference`` is (B, C, S, S) or (C, S, S) in [0, 1]."""
    if reference.dim() == 3:
        reference = reference.unsqueeze(0)
    masked = reference.clone()
    masked[:, :, reference.shape[2] // 2 :] = 0
    return torch.cat([masked, reference], dim=1)


class Generator(WidthScaledNetwork):
    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__(width, in_channels)

        blocks = []
        skip_channels = []
        cin = 2 * in_channels
        for specs in _FACE_ENCODER:
            modules, cin = conv_stack(specs, width, cin)
            blocks.append(nn.Sequential(*modules))
            skip_channels.append(cin)
        self.face_encoder_blocks = nn.ModuleList(blocks)

        modules, audio_channels = conv_stack(audio_encoder_specs(extra_residual_at_256=False), width, 1)
        self.audio_encoder = nn.Sequential(*modules)
        self.embedding_channels = audio_channels  # what the decoder starts from (B, this, 1, 1)

        blocks = []
        cin = audio_channels
        skips = list(skip_channels)
        for cout, transpose, n_residual in _FACE_DECODER:
            cout = scaled_channels(cout, width)
            if transpose is None:
                modules = [Conv2d(cin, cout, 1, 1, 0)]
            else:
                kernel, stride, padding, output_padding = transpose
                modules = [Conv2dTranspose(cin, cout, kernel, stride, padding, output_padding)]
                modules += [Conv2d(cout, cout, 3, 1, 1, residual=True) for _ in range(n_residual)]
            blocks.append(nn.Sequential(*modules))
            cin = cout + skips.pop()
        self.face_decoder_blocks = nn.ModuleList(blocks)

        hidden = scaled_channels(32, width)
        self.output_block = nn.Sequential(
            Conv2d(cin, hidden, 3, 1, 1), nn.Conv2d(hidden, in_channels, 1, 1, 0), nn.Sigmoid()
        )

    def encode_face(self, face: torch.Tensor) -> list[torch.Tensor]:
        """Face encoder features (the decoder's skip inputs), finest first."""
        features = []
        x = face
        for block in self.face_encoder_blocks:
            x = block(x)
            features.append(x)
        return features

    def decode(self, audio_windows: torch.Tensor, face_features: list[torch.Tensor]) -> torch.Tensor:
        """Frames (B, C, S, S) from mel windows (B, 1, 80, 16) and face features; features
        with batch 1 are shared by every window (a fixed reference)."""
        return self.decode_embedding(self.audio_encoder(audio_windows), face_features)

    def decode_embedding(self, x: torch.Tensor, face_features: list[torch.Tensor]) -> torch.Tensor:
        """Frames from the decoder's start (B, embedding_channels, 1, 1) and face features."""
        batch = x.shape[0]
        skips = list(face_features)
        for block in self.face_decoder_blocks:
            x = block(x)
            skip = skips.pop()
            if skip.shape[0] != batch:
                skip = skip.expand(batch, *skip.shape[1:])
            x = torch.cat([x, skip], dim=1)
        return self.output_block(x)

    def forward(self, audio_windows: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """(B, 1, 80, 16), (B, 2C, S, S) -> (B, C, S, S); or wav2lip's sequence layout
        (B, T, 1, 80, 16), (B, 2C, T, S, S) -> (B, C, T, S, S)."""
        if audio_windows.dim() == 5:
            batch, steps = audio_windows.shape[:2]
            audio = audio_windows.reshape(batch * steps, *audio_windows.shape[2:])
            frames = face.permute(0, 2, 1, 3, 4).reshape(batch * steps, face.shape[1], *face.shape[3:])
            out = self.decode(audio, self.encode_face(frames))
            return out.reshape(batch, steps, *out.shape[1:]).permute(0, 2, 1, 3, 4)
        return self.decode(audio_windows, self.encode_face(face))

    def face_input_for_reference(self, reference: torch.Tensor) -> torch.Tensor:
        return face_input_for_reference(reference)
