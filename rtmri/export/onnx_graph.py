"""A network as an ONNX graph with the bundle's interface (rtmri/bundle.py).

The wav2lip generator: with a fixed reference, both halves of its face input depend on
the reference only, so the face encoder's outputs are constants: ``baked`` folds them into
the graph (the face encoder is not in it at all), ``input`` keeps the face as a graph
input. A mel-only network (the FC-LSTM baseline, no face) goes in as it is.
"""

from __future__ import annotations

import io
import warnings

import torch
from torch import nn

from rtmri.alignment import WINDOW_COLUMNS
from rtmri.audio import N_MELS
from rtmri.bundle import FACE_INPUT, FRAMES_OUTPUT, MEL_INPUT

OPSET = 17


class BakedReference(nn.Module):
    """mel windows -> frames, with the reference's face features held as constants."""

    def __init__(self, generator: nn.Module, face: torch.Tensor) -> None:
        super().__init__()
        self.generator = generator
        with torch.no_grad():
            features = generator.encode_face(face)
        for i, feature in enumerate(features):
            self.register_buffer(f"face_feature_{i}", feature)
        self.n_features = len(features)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        features = [getattr(self, f"face_feature_{i}") for i in range(self.n_features)]
        return self.generator.decode(mel, features)


class FaceAsInput(nn.Module):
    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator

    def forward(self, mel: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        return self.generator(mel, face)


def export_onnx(network: nn.Module, face: torch.Tensor | None, baked: bool = True) -> bytes:
    """ONNX bytes with a dynamic batch. ``face`` is (1, 2C, S, S) for the generator's
    reference, or None for a mel-only network (``network(mel)``)."""
    network = network.eval().float()
    mel = torch.zeros(2, 1, N_MELS, WINDOW_COLUMNS)
    if face is None:
        module, args, names = network, (mel,), [MEL_INPUT]
    elif baked:
        module, args, names = BakedReference(network, face), (mel,), [MEL_INPUT]
    else:
        module, args, names = FaceAsInput(network), (mel, face.expand(2, *face.shape[1:])), [MEL_INPUT, FACE_INPUT]
    return to_onnx(module, args, names, FRAMES_OUTPUT)


def to_onnx(module: nn.Module, args: tuple, inputs: list[str], output: str) -> bytes:
    """ONNX bytes of module(*args), every input and the output with a dynamic batch."""
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            module.eval(), args, buffer, input_names=inputs, output_names=[output],
            dynamic_axes={name: {0: "batch"} for name in inputs + [output]},
            opset_version=OPSET, do_constant_folding=True, dynamo=False,
        )
    return buffer.getvalue()
