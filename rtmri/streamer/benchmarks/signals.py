"""What the benchmarks (and the tests) play: speech read by espeak-ng where it is
installed, else noise bursts with a speech-like on/off structure."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile

from rtmri.audio import SAMPLE_RATE, load_audio

SPEECH_TEXT = "The tongue moves forward for the i, back for the u, and low for the a. " * 3


def bursts(seconds: float, period_s: float = 0.5, seed: int = 0) -> np.ndarray:
    """Loud noise and silence alternating every period_s: speech-like on/off structure."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    on = (np.arange(n) // int(period_s * SAMPLE_RATE)) % 2 == 0
    return (0.3 * rng.standard_normal(n) * on).astype(np.float32)


def speech_file(folder: Path, seconds: float) -> Path:
    """seconds of speech in folder/speech.wav: espeak-ng read aloud (repeated to length),
    else noise bursts."""
    path = folder / "speech.wav"
    if shutil.which("espeak-ng"):
        raw = folder / "espeak.wav"
        subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), SPEECH_TEXT], check=True, capture_output=True)
        wav = load_audio(raw)
    else:
        wav = bursts(1.0, period_s=0.25)
    wav = np.tile(wav, int(np.ceil(seconds * SAMPLE_RATE / len(wav))))[: int(seconds * SAMPLE_RATE)]
    soundfile.write(path, wav, SAMPLE_RATE, subtype="PCM_16")
    return path
