"""`rtmri prepare`: rtMRI recordings (a public or licensed database, or the corpus of
`rtmri synth`) -> the 25 fps clip dataset of :mod:`rtmri.clips`.

Per recording (``pipeline.process_recording``): find it (``layouts``), read its audio
(``rtmri.audio.load_audio``: mono, 16 kHz) and its video with timestamps, grayscale
(``rtmri.video.read``), crop and resize every source frame, convert to 25 fps by timestamp
(``rtmri.video.frame_rate``: linear blend of the two neighbouring source frames, see there why), check
that audio and video last equally long, cut into clips of about ``--clip-seconds`` at pauses
(``clipping``), write the clips. Then split the clips (``splits``), write the file lists, the
dataset header, ``report.md`` and ``manifest.json`` (``report``).

Nothing heavy is imported here: ``rtmri --help`` and ``rtmri prepare --help`` stay fast.
"""

from __future__ import annotations

from rtmri import RtmriError


class PrepareError(RtmriError, ValueError):
    """A problem with the run as a whole: a bad option, an unknown layout, a crop outside
    the frame, nothing usable left."""


class RecordingError(RtmriError, ValueError):
    """A problem with one recording: it is skipped with this message as the reason (or the
    run stops, with ``--strict``)."""
