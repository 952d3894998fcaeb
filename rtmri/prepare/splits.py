"""Dividing the clips into the splits of rtmri.clips.

Clips of training speakers go at random (``numpy.random.default_rng(seed)`` permutation of
the sorted clip ids) into train/val/test in the given fractions, as the study did over
clips; the counts are the fractions times the number of clips, rounded by largest remainder
so they add up. The result depends only on the set of clip ids, the fractions and the seed:
not on the order in which recordings were processed, nor on whether a run was resumed.

Clips of held-out speakers go to none of those but to ``unseen_nonja`` when their
condition is non-Japanese material (synthetic corpus condition "non_ja"), else to
``unseen_ja`` (the Japanese passage, and any real recording, which carries no condition).
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from rtmri.clips import ALL_SPLITS, TRAINING_SPLITS, write_filelist
from rtmri.prepare import PrepareError

DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
NON_JAPANESE_CONDITIONS = frozenset({"non_ja", "nonja", "non-ja"})


def parse_fractions(text: str) -> tuple[float, float, float]:
    try:
        values = tuple(float(v) for v in str(text).split(","))
    except ValueError as exc:
        raise PrepareError(f"--split {text!r}: expected three numbers TRAIN,VAL,TEST such as 0.8,0.1,0.1") from exc
    if len(values) != 3 or any(not math.isfinite(v) or v < 0 for v in values):
        raise PrepareError(f"--split {text!r}: expected three non-negative numbers TRAIN,VAL,TEST such as 0.8,0.1,0.1")
    if abs(sum(values) - 1.0) > 1e-6:
        raise PrepareError(f"--split {text!r}: the fractions add up to {sum(values):g}, not 1")
    if values[0] <= 0:
        raise PrepareError(f"--split {text!r}: the train fraction must be above 0")
    return values  # type: ignore[return-value]


def split_counts(n: int, fractions) -> list[int]:
    """Largest-remainder rounding of n x fractions (sums to n)."""
    exact = [n * f for f in fractions]
    counts = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def unseen_split(condition: str | None) -> str:
    if condition is not None and str(condition).strip().lower() in NON_JAPANESE_CONDITIONS:
        return "unseen_nonja"
    return "unseen_ja"


def assign(clips: list[dict], heldout: set[str], fractions=DEFAULT_FRACTIONS, seed: int = 0) -> dict[str, list[str]]:
    """clips: dicts with "id", "speaker", "condition" -> {split: sorted clip ids}."""
    splits: dict[str, list[str]] = {name: [] for name in ALL_SPLITS}
    training = sorted(c["id"] for c in clips if c["speaker"] not in heldout)
    for c in clips:
        if c["speaker"] in heldout:
            splits[unseen_split(c.get("condition"))].append(c["id"])
    order = np.random.default_rng(seed).permutation(len(training))
    start = 0
    for name, count in zip(TRAINING_SPLITS, split_counts(len(training), fractions)):
        splits[name] = [training[i] for i in order[start : start + count]]
        start += count
    return {name: sorted(ids) for name, ids in splits.items()}


def write_filelists(out: Path, assigned: dict[str, list[str]]) -> None:
    """Write each split's list, refusing a clip id listed twice (in two splits, or twice in
    one): a clip in train and val would make the validation figures lie."""
    listed = Counter(clip_id for name in ALL_SPLITS for clip_id in assigned[name])
    repeated = sorted(clip_id for clip_id, count in listed.items() if count > 1)
    if repeated:
        where = {clip_id: [name for name in ALL_SPLITS for c in assigned[name] if c == clip_id] for clip_id in repeated[:5]}
        raise PrepareError(f"{out}: {len(repeated)} clip ids are listed more than once, e.g. "
                           + "; ".join(f"{clip_id} in {' and '.join(names)}" for clip_id, names in where.items())
                           + " (recordings whose names give the same clip id)")
    for name in ALL_SPLITS:
        write_filelist(out, name, assigned[name])
