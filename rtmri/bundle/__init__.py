"""The model bundle (the shared DESIGN.md §4) and what every reader of one needs: the manifest
(``manifest``), running the graph (``engine``), which network it holds
(``architectures``) and how its reference anatomy is chosen (``reference``).
Torch-free: the streamer, the evaluator and the demo import from here."""

from rtmri.bundle.manifest import *  # noqa: F401,F403
from rtmri.bundle.manifest import __all__  # noqa: F401
