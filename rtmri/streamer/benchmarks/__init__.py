"""Benchmarks of the streamer, each an `rtmri` subcommand (not tests; they print tables).

latency  rtmri benchmark-latency: latency per stage against the budget (file, microphone, browser, window)
soak     rtmri benchmark-soak: minutes in real time, memory and latency per minute
serve    rtmri benchmark-serve: `rtmri serve` under load (viewers, learner sessions)
signals  the audio they play: speech from espeak-ng, or noise bursts
"""
