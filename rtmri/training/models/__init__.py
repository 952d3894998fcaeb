"""The wav2lip networks (generator, visual-quality discriminator, SyncNet expert) with a
width multiplier and a grayscale option, and their checkpoints.

At width 1.0 with 3 channels the state dicts have exactly the names and shapes of the
public wav2lip checkpoints (the shared DESIGN.md §7)."""

from rtmri.training.models.blocks import scaled_channels
from rtmri.training.models.discriminator import QualityDiscriminator
from rtmri.training.models.generator import Generator, face_input_for_reference
from rtmri.training.models.syncnet import SyncNet, cosine_loss, syncnet_input

__all__ = [
    "Generator",
    "QualityDiscriminator",
    "SyncNet",
    "cosine_loss",
    "face_input_for_reference",
    "scaled_channels",
    "syncnet_input",
]
