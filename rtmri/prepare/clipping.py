"""Cutting a recording (25 fps frames + 16 kHz audio) into clips of about N seconds, at
pauses where there are some.

Pauses come from the phone labels when the recording has them (a silence label, or no
label at all), else from the audio energy: per 40 ms frame the RMS level in dB, silent
below the noise floor (10th percentile) plus 30 % of the range up to the speech level
(95th percentile); no pauses when that range is under 6 dB (steady noise, no speech
contrast). A pause is a run of at least 3 silent frames (120 ms); its middle frame is a
candidate cut.

Clips are cut greedily from the start: the next cut is the candidate nearest to
``start + target`` among those that leave this clip between 0.6 and 1.4 x target long and
the rest at least 0.6 x target; without a candidate, the cut is at start + target. The last
clip takes what remains (at most 1.4 x target), so no clip is a short leftover.
"""

from __future__ import annotations

import numpy as np

from rtmri.alignment import FPS, SAMPLES_PER_FRAME

SILENCE_LABELS = frozenset({"", "sil", "sp", "pau", "pause", "silence", "#", "_", "h#", "<p:>", "<sil>", "<p>", "<s>", "</s>", "epi"})
MIN_PAUSE_FRAMES = 3
SHORTEST = 0.6
LONGEST = 1.4
MIN_CLIP_SECONDS = 1.0


def silent_from_audio(wav: np.ndarray, n_frames: int) -> np.ndarray:
    """bool (n_frames,): frame k's 40 ms of 16 kHz audio is quiet."""
    blocks = np.zeros((n_frames, SAMPLES_PER_FRAME), np.float32)
    usable = np.asarray(wav[: n_frames * SAMPLES_PER_FRAME], np.float32)
    blocks.reshape(-1)[: usable.size] = usable
    rms = np.sqrt(np.mean(blocks.astype(np.float64) ** 2, axis=1))
    if n_frames == 0:
        return np.zeros(0, bool)
    db = 20.0 * np.log10(rms + 1e-10)
    floor, speech = np.percentile(db, 10), np.percentile(db, 95)
    if speech - floor < 6.0:
        return np.zeros(n_frames, bool)
    return db < floor + 0.3 * (speech - floor)


def is_silence_label(label) -> bool:
    return str(label if label is not None else "").strip().lower() in SILENCE_LABELS


def silent_from_phones(phones: list[dict], n_frames: int) -> np.ndarray:
    """bool (n_frames,): the middle of frame k lies in a silence label or in no label."""
    centres = (np.arange(n_frames) + 0.5) / FPS
    speech = np.zeros(n_frames, bool)
    for p in phones:
        if is_silence_label(p.get("phone")):
            continue
        speech |= (centres >= float(p["start"])) & (centres < float(p["end"]))
    return ~speech


def pause_centres(silent: np.ndarray, min_run: int = MIN_PAUSE_FRAMES) -> np.ndarray:
    """Middle frame of every run of at least min_run silent frames."""
    padded = np.concatenate(([False], silent.astype(bool), [False]))
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = edges[0::2], edges[1::2]
    keep = (ends - starts) >= min_run
    return ((starts[keep] + ends[keep]) // 2).astype(int)


def plan_clips(n_frames: int, target_frames: int, candidates: np.ndarray) -> list[tuple[int, int]]:
    """[(start, end)) frame ranges covering 0..n_frames."""
    target = max(1, int(target_frames))
    shortest, longest = max(1, int(round(SHORTEST * target))), max(1, int(round(LONGEST * target)))
    candidates = np.sort(np.asarray(candidates, int))
    cuts, start = [], 0
    while n_frames - start > longest:
        lo, hi = start + shortest, min(start + longest, n_frames - shortest)
        inside = candidates[(candidates >= lo) & (candidates <= hi)]
        if inside.size:
            cut = int(inside[np.argmin(np.abs(inside - (start + target)))])
        else:
            cut = int(min(max(start + target, lo), hi))
        cuts.append((start, cut))
        start = cut
    if n_frames > start:
        cuts.append((start, n_frames))
    return cuts


def phones_for_clip(phones: list[dict] | None, start_s: float, end_s: float) -> list[dict] | None:
    """The labels overlapping [start_s, end_s), relative to start_s and cut to the clip."""
    if phones is None:
        return None
    out = []
    for p in phones:
        s, e = float(p["start"]), float(p["end"])
        if e <= start_s or s >= end_s:
            continue
        out.append({"phone": p.get("phone"), "start": round(max(s, start_s) - start_s, 6), "end": round(min(e, end_s) - start_s, 6)})
    return out
