"""rtmri-live: speech in, real-time MRI video of the vocal tract out."""

__version__ = "0.1.0"


class RtmriError(Exception):
    """An error a user can act on: the CLI prints its message, without a traceback."""
