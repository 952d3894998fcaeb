"""The articulatory model (the shared DESIGN.md §4b): sound -> articulatory state -> picture.

``Inverter``: a frame's mel window with its past (B, 1, 80, W; W columns ending where the
frame's 16-column window ends, rtmri.alignment.first_column) -> the state of the frame
(B, STATE_SIZE: gaps and positions in mm, closure probabilities). A convolutional front end
over time, then a GRU over the window's steps: causal except for the bundle's lookahead.
It is stateless from frame to frame (the window carries the past), so the streamer batches
frames of many sessions as it does for any bundle. Targets are standardised per value with
the training set's mean and spread (buffers, so the graph gives millimetres).

``Renderer``: the state drawn on the speaker's grid (rtmri.articulation.state.StateRaster,
one channel) beside the reference frame (the speaker's anatomy) -> the frame. It is the
wav2lip generator's encoder-decoder with the drawn state where the generator has its
masked face, and the state vector, through a small MLP, where it has the audio embedding;
so it starts from a trained generator's weights.
"""

from __future__ import annotations

import torch
from torch import nn

from rtmri.alignment import WINDOW_COLUMNS
from rtmri.articulation.state import CLOSED, CLOSURE_PLACES, GAP, N_LINES, POSITION, STATE_SIZE
from rtmri.audio import N_MELS, SessionNorm
from rtmri.training.models.generator import Generator

INVERTER_FIELDS = ("window_columns", "channels", "hidden", "input_norm")
# "window": each band's mean over the window is taken away (sliding cepstral mean normalisation);
# "session": the mel is normalised over the session before it reaches the graph (rtmri.audio.SessionNorm,
# the training corpus's band means and spreads as its prior, kept here as buffers)
INPUT_NORMS = ("none", "window", "session")
RENDERER_FIELDS = ("width", "in_channels")
DEFAULT_CONTEXT_COLUMNS = 64  # 0.8 s: the window's 0.2 s and 0.6 s before it


class Inverter(nn.Module):
    def __init__(self, window_columns: int = DEFAULT_CONTEXT_COLUMNS, channels: int = 128, hidden: int = 128,
                 input_norm: str = "none") -> None:
        super().__init__()
        if window_columns < WINDOW_COLUMNS:
            raise ValueError(f"window_columns must be >= {WINDOW_COLUMNS}, got {window_columns}")
        if input_norm not in INPUT_NORMS:
            raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, got {input_norm!r}")
        self.window_columns, self.channels, self.hidden, self.input_norm = int(window_columns), int(channels), int(hidden), input_norm
        self.front = nn.Sequential(
            nn.Conv1d(N_MELS, channels, 5, padding=2), nn.BatchNorm1d(channels), nn.GELU(),
            nn.Conv1d(channels, channels, 5, stride=2, padding=2), nn.BatchNorm1d(channels), nn.GELU(),
        )
        self.gru = nn.GRU(channels, hidden, batch_first=True)
        self.head = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, STATE_SIZE))
        self.register_buffer("target_mean", torch.zeros(2 * N_LINES))
        self.register_buffer("target_scale", torch.ones(2 * N_LINES))
        # Added to the closure logits before the sigmoid: the training loss weighs a closed frame
        # up, which biases the probabilities; export calibrates this on validation clips.
        self.register_buffer("closure_offset", torch.zeros(len(CLOSURE_PLACES)), persistent=False)
        if input_norm == "session":
            self.register_buffer("session_mean", torch.zeros(N_MELS))
            self.register_buffer("session_std", torch.ones(N_MELS))

    def session_norm(self) -> SessionNorm | None:
        """The normalisation its input goes through before the graph (None: the raw mel)."""
        if self.input_norm != "session":
            return None
        return SessionNorm(self.session_mean.cpu().numpy(), self.session_std.cpu().numpy())

    def architecture(self) -> dict:
        return {name: getattr(self, name) for name in INVERTER_FIELDS}

    @classmethod
    def from_meta(cls, meta: dict) -> "Inverter":
        return cls(**{name: meta[name] for name in INVERTER_FIELDS if name in meta})

    def features(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, 80, W) -> (B, hidden): the GRU's output at the window's last column."""
        x = mel[:, 0]
        if self.input_norm == "window":  # the speaker's and the room's spectral colour, not the articulation
            x = x - x.mean(dim=2, keepdim=True)
        x = self.front(x)  # (B, C, W / 2)
        out, _ = self.gru(x.transpose(1, 2))
        return out[:, -1]

    def raw(self, mel: torch.Tensor) -> torch.Tensor:
        """(B, 1, 80, W) -> (B, STATE_SIZE): standardised gaps and positions, closure logits."""
        return self.head(self.features(mel))

    def to_state(self, raw: torch.Tensor) -> torch.Tensor:
        """Standardised values -> mm (gaps never negative), logits -> probabilities."""
        mm = raw[:, : 2 * N_LINES] * self.target_scale + self.target_mean
        gap = torch.relu(mm[:, GAP])
        return torch.cat([gap, mm[:, POSITION], torch.sigmoid(raw[:, CLOSED] + self.closure_offset)], dim=1)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.to_state(self.raw(mel))


class Renderer(Generator):
    def __init__(self, width: float = 0.125, in_channels: int = 1) -> None:
        super().__init__(width, in_channels)
        self.audio_encoder = nn.Sequential(nn.Linear(STATE_SIZE, 256), nn.GELU(), nn.Linear(256, self.embedding_channels))

    def architecture(self) -> dict:
        return {"width": float(self.width), "in_channels": int(self.in_channels)}

    @classmethod
    def from_meta(cls, meta: dict) -> "Renderer":
        return cls(float(meta["width"]), int(meta["in_channels"]))

    def decode(self, states: torch.Tensor, face_features: list[torch.Tensor]) -> torch.Tensor:
        embedded = self.audio_encoder(states)[:, :, None, None]
        return self.decode_embedding(embedded, face_features)

    def forward(self, states: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """(B, STATE_SIZE), (B, 2C, S, S) = [drawn state, reference] -> (B, C, S, S)."""
        return self.decode(states, self.encode_face(face))
