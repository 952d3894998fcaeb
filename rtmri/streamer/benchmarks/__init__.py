"""Benchmarks of the streamer, each an `rtmri` subcommand (not tests; they print tables).

latency  rtmri benchmark-latency: latency per stage against the budget (file, microphone, browser, window)
soak     rtmri benchmark-soak: minutes in real time, memory and latency per minute
serve    rtmri benchmark-serve: `rtmri serve` under load (viewers, learner sessions, a class comparing at
         once, through HAProxy with --workers; the engine's batch curve)
learner_client  a learner as the page is one (reconnects, compares), for benchmark-serve and the tests
signals  the audio they play: speech from espeak-ng, or noise bursts
"""
