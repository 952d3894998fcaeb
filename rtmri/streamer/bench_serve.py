"""`python -m rtmri.streamer.bench_serve ...`: the old name of `rtmri benchmark-serve`
(rtmri.streamer.benchmarks.serve), kept because the README and issues name it."""

import sys

from rtmri.cli import main

if __name__ == "__main__":
    sys.exit(main(["benchmark-serve", *sys.argv[1:]]))
