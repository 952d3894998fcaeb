"""What `rtmri compare` writes: the aligned side-by-side MP4 with both sounds, the curves as a
PNG, the comparison as JSON.

The MP4 runs on the reference's clock: reference on the left, the attempt's frame said at
the same point of the words on the right, each labelled, with the reference's phone and the
time on top. Its sound is stereo: the reference on the left channel, the attempt on the
right, time-warped onto the reference's clock (overlap-add of 40 ms Hann grains taken at
the aligned instants), so each ear hears what each picture shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from rtmri.alignment import FPS
from rtmri.audio import SAMPLE_RATE
from rtmri.files import atomic_write, atomic_writer
from rtmri.lessons.articulators import ARTICULATORS
from rtmri.video.compose import side_by_side
from rtmri.video.write import write_video

GRAIN = 640  # 40 ms
GRAIN_HOP = GRAIN // 4


def warp_audio(attempt: np.ndarray, attempt_time, n_samples: int) -> np.ndarray:
    """The attempt on the reference's clock: output instant t plays the attempt at attempt_time(t)."""
    window = np.hanning(GRAIN).astype(np.float32)
    out = np.zeros(n_samples + GRAIN, np.float32)
    weight = np.zeros_like(out)
    padded = np.pad(np.asarray(attempt, np.float32), GRAIN)
    centres = np.arange(0, n_samples + GRAIN_HOP, GRAIN_HOP)
    sources = np.rint(attempt_time(centres / SAMPLE_RATE) * SAMPLE_RATE).astype(int)
    for centre, source in zip(centres, sources):
        start = int(np.clip(source - GRAIN // 2 + GRAIN, 0, len(padded) - GRAIN))
        lo = centre - GRAIN // 2 + GRAIN // 2  # out is shifted by half a grain
        out[lo : lo + GRAIN] += padded[start : start + GRAIN] * window
        weight[lo : lo + GRAIN] += window
    out = out / np.maximum(weight, 1e-3)
    return out[GRAIN // 2 : GRAIN // 2 + n_samples]


def write_mp4(path: Path, comparison, reference_wav: np.ndarray, attempt_wav: np.ndarray) -> None:
    n = len(comparison.reference_frames)
    n_samples = n * SAMPLE_RATE // FPS
    left = np.pad(np.asarray(reference_wav, np.float32), (0, max(0, n_samples - len(reference_wav))))[:n_samples]
    right = warp_audio(attempt_wav, comparison.alignment.attempt_time, n_samples)
    stereo = np.clip(np.stack([left, right]), -1, 1).astype(np.float32)
    with atomic_writer(path) as handle:
        write_video(handle, (_picture(comparison, k) for k in range(n)), FPS, audio=stereo)


def _picture(comparison, k: int) -> np.ndarray:
    phone = _phone_at(comparison.phones, k / FPS)
    header = f"{k / FPS:5.2f} s  {('/' + phone + '/') if phone else ''}   left: reference   right: you (aligned)"
    return side_by_side([comparison.reference_frames[k], comparison.attempt_frames[k]],
                        labels=("reference", f"you {comparison.attempt_times_s[k]:.2f} s"), header=header)


def _phone_at(phones, time_s: float) -> str | None:
    return next((p["phone"] for p in phones if p["start"] <= time_s < p["end"]), None)


def write_curves_png(path: Path, comparison, title: str) -> None:
    import matplotlib  # matplotlib: the live and eval extras, not the core (rtmri compare writes no PNG without it)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(ARTICULATORS), 1, figsize=(9, 1.45 * len(ARTICULATORS) + 0.8), sharex=True)
    times = comparison.times_s
    for axis, articulator in zip(axes, ARTICULATORS):
        axis.plot(times, comparison.reference[articulator.key], color="black", label="reference")
        axis.plot(times, comparison.attempt[articulator.key], color="tab:red", linestyle="--", label="you")
        axis.set_ylabel(f"{articulator.en}\n(mm)", fontsize=8)
        for segment in comparison.segments:
            if segment.articulator == articulator.key:
                axis.axvspan(segment.start_s, segment.end_s, color="tab:orange", alpha=0.25)
        for phone in comparison.phones:
            axis.axvline(phone["start"], color="0.8", linewidth=0.6)
    for phone in comparison.phones:
        axes[0].text((phone["start"] + phone["end"]) / 2, 1.02, phone["phone"], transform=axes[0].get_xaxis_transform(),
                     ha="center", fontsize=8)
    axes[0].legend(loc="upper right", fontsize=7)
    axes[-1].set_xlabel("time on the reference (s)")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_writer(path) as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def write_json(path: Path, comparison, lesson, attempt: Path) -> None:
    content = {"attempt": str(attempt), "lesson": dict(lesson.describe(), audio=str(lesson.audio)), **comparison.to_json()}
    atomic_write(path, json.dumps(content, indent=1, ensure_ascii=False) + "\n")
