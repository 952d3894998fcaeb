"""The errors of the synthetic corpus writer."""

from __future__ import annotations

from rtmri import RtmriError


class SynthError(RtmriError, ValueError):
    """Bad input or a corpus that cannot be written: the CLI prints the message, exits 2."""


class UtteranceFailed(SynthError):
    """VocalTractLab (or the checks on its output) failed for one utterance: it is skipped."""
