"""An articulatory bundle (two graphs: sound -> state -> picture) run by the engine and the
streamer: each frame comes with its state. The tiny bundle of conftest.py opens its tract and
lips with the loudness of the sound and closes the lips in silence."""

from __future__ import annotations

import numpy as np
import soundfile

from rtmri.articulation.grid import grid_of_bundle
from rtmri.articulation.regions import LIPS, REGIONS
from rtmri.articulation.state import CLOSURE_PLACES, GAP, STATE_SIZE, constrictions
from rtmri.audio import N_MELS, SAMPLE_RATE, SILENCE_VALUE
from rtmri.bundle.engine import Engine
from rtmri.streamer.benchmarks.signals import bursts
from rtmri.streamer.sinks import CollectSink
from rtmri.streamer.sources import FileSource
from rtmri.streamer.stream import Streamer

SPEECH_VALUE = 1.0  # a loud mel window's level (silence is SILENCE_VALUE)
LIPS_AT = REGIONS.index(LIPS)
LIPS_BIT = CLOSURE_PLACES.index(LIPS)


def test_the_tiny_bundle_carries_a_grid_inside_its_pictures(make_tiny_articulatory_bundle):
    bundle = make_tiny_articulatory_bundle()
    grid = grid_of_bundle(bundle.manifest)
    points = np.concatenate([grid.inner, grid.outer])
    assert bundle.gives_state and bundle.window_columns == 32
    assert (points >= 0).all() and (points <= bundle.image_size - 1).all()


def test_the_engine_gives_a_state_and_a_frame_for_every_window(make_tiny_articulatory_bundle):
    engine = Engine(make_tiny_articulatory_bundle())
    columns = engine.bundle.window_columns
    windows = np.stack([np.full((N_MELS, columns), level, np.float32) for level in (SILENCE_VALUE, SPEECH_VALUE)])
    frames, states = engine.run_with_state(windows)
    assert frames.shape == (2, engine.image_size, engine.image_size) and frames.dtype == np.uint8
    assert states.shape == (2, STATE_SIZE)
    degree, closed = constrictions(states)
    assert closed[0, LIPS_BIT] and not closed[1, LIPS_BIT]  # silence closes the lips, speech opens them
    assert degree[0, LIPS_AT] == 0.0 and degree[1, LIPS_AT] > 5.0
    assert (states[1, GAP] > states[0, GAP]).all()
    half = engine.image_size // 2
    assert frames[1, half:].mean() > frames[0, half:].mean() + 20  # the renderer draws the opening


def stream(engine, path):
    sink = CollectSink()
    Streamer(engine, [sink], realtime=False).run(FileSource(path, realtime=False))
    return sink.frames


def test_streamed_frames_carry_the_state_that_follows_the_sound(make_tiny_articulatory_bundle, make_tiny_bundle, tmp_path):
    path = tmp_path / "bursts.wav"
    soundfile.write(path, bursts(3.0), SAMPLE_RATE, subtype="PCM_16")
    frames = stream(Engine(make_tiny_articulatory_bundle()), path)
    assert len(frames) >= 70 and all(f.state is not None and f.state.shape == (STATE_SIZE,) for f in frames)
    degree, closed = constrictions(np.stack([f.state for f in frames]))
    assert closed[:, LIPS_BIT].any() and not closed[:, LIPS_BIT].all()  # the bursts' silences close the lips
    lower = np.array([f.image[f.image.shape[0] // 2:].mean() for f in frames])
    assert np.corrcoef(degree[:, LIPS_AT], lower)[0, 1] > 0.8  # the picture follows the state
    assert all(f.state is None for f in stream(Engine(make_tiny_bundle()), path))  # a plain bundle gives none
