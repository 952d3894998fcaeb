"""The errors of the synthetic corpus writer."""

from __future__ import annotations

from rtmri import RtmriError


class SynthError(RtmriError, ValueError):
    """Bad input or a corpus that cannot be written: the CLI prints the message, exits 2."""


class UtteranceFailed(SynthError):
    """VocalTractLab (or the checks on its output) failed for one utterance: it is skipped."""


class SpeakerRejected(SynthError):
    """A vocal tract VocalTractLab cannot build or synthesize; ``reason`` names why (a short
    kebab-case word, e.g. ``vowel-closed``), the message adds the detail."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason

    def __reduce__(self):  # picklable across worker processes
        return (type(self), (self.reason, str(self).partition(": ")[2]))
