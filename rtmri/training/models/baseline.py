"""The acoustic-to-rtMRI baseline: a re-implementation of Csapó's FC-LSTM regressor
(T. G. Csapó, "Speaker dependent acoustic-to-articulatory inversion using real-time MRI of
the vocal tract", Interspeech 2020).

Csapó predicts a whole rtMRI frame from an acoustic context: frame-wise fully connected
layers on each feature vector of the context, LSTM layers over the context, and a dense
layer to every pixel of the frame, trained with MSE and Adam. The adaptation here: the
acoustic context is the bundle's mel window of the frame (1, 80, 16), the same input the
wav2lip generator gets (rtmri.alignment, the run's lookahead), so the baseline trains on
the same data and streams through the same code. Its 16 mel columns are the time steps;
each 80-band column goes through the fully connected layers, the LSTM runs over the 16
columns and its last output becomes the frame (C, S, S) through a linear layer and a
sigmoid, in [0, 1] like the generator's frames. No reference image goes in. (Csapó's
input features were MGC-LSP; here they are the project's log-mel, the shared DESIGN.md §2.)
"""

from __future__ import annotations

import torch
from torch import nn

from rtmri.alignment import WINDOW_COLUMNS
from rtmri.audio import N_MELS
from rtmri.clips import IMAGE_SIZE

# The constructor's arguments, as recorded in checkpoints (the "model" meta) to rebuild it.
ARCHITECTURE_FIELDS = ("in_channels", "image_size", "hidden", "fc_layers", "lstm_layers", "dropout")


class FcLstmBaseline(nn.Module):
    """mel windows (B, 1, 80, 16) -> frames (B, C, S, S) in [0, 1]."""

    def __init__(self, in_channels: int = 1, image_size: int = IMAGE_SIZE, hidden: int = 256, fc_layers: int = 2,
                 lstm_layers: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels}")
        if min(image_size, hidden, fc_layers, lstm_layers) < 1 or not 0 <= dropout < 1:
            raise ValueError("image_size, hidden, fc_layers and lstm_layers must be >= 1 and dropout in [0, 1)")
        self.in_channels = in_channels
        self.image_size = image_size
        self.hidden = hidden
        self.fc_layers = fc_layers
        self.lstm_layers = lstm_layers
        self.dropout = float(dropout)

        layers, width = [], N_MELS
        for _ in range(fc_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
            width = hidden
        self.frame_wise = nn.Sequential(*layers)
        self.lstm = nn.LSTM(hidden, hidden, num_layers=lstm_layers, batch_first=True,
                            dropout=dropout if lstm_layers > 1 else 0.0)
        self.to_frame = nn.Linear(hidden, in_channels * image_size * image_size)

    def architecture(self) -> dict:
        return {name: getattr(self, name) for name in ARCHITECTURE_FIELDS}

    @classmethod
    def from_meta(cls, meta: dict) -> "FcLstmBaseline":
        return cls(**{name: meta[name] for name in ARCHITECTURE_FIELDS})

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.shape[1:] != (1, N_MELS, WINDOW_COLUMNS):
            raise ValueError(f"expected mel windows (B, 1, {N_MELS}, {WINDOW_COLUMNS}), got {tuple(mel.shape)}")
        columns = mel[:, 0].transpose(1, 2)  # (B, 16, 80): the columns as a time sequence
        sequence, _ = self.lstm(self.frame_wise(columns))
        frame = torch.sigmoid(self.to_frame(sequence[:, -1]))
        return frame.reshape(-1, self.in_channels, self.image_size, self.image_size)
