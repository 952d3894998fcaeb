"""Which network a bundle's graph holds: the manifest's "architecture" field
(``Manifest.architecture``). Bundles written before the field existed hold the wav2lip
generator. Torch-free, for readers."""

from __future__ import annotations

FIELD = "architecture"
WAV2LIP = "wav2lip"
CSAPO2020_FC_LSTM = "csapo2020-fc-lstm"  # rtmri.training.models.baseline
ARTICULATORY = "articulatory"  # sound -> articulatory state -> picture: rtmri.training.models.articulatory
