"""python -m rtmri.mistakes.thresholds RESULTS.json [...]: the comparison's thresholds (the
articulators' rtmri.lessons.compare.NAMED, the per-phone PHONE_NAMED for length and sound, and
rtmri.lessons.contrast.CONTRAST_NAMED where two vowels count as merged,
rtmri.lessons.release.RELEASE_NAMED where an affricate's hiss began too gradually,
rtmri.lessons.rounding.ROUNDING_NAMED where a /ɯ/ sounded rounded) from the correct attempts of
`rtmri compare-bench` results.

Thresholds are set on benchmarks of correct attempts only, never on the one the comparison is
measured on (docs/mistakes_benchmark.md): `rtmri make-mistakes dev1 --seed 1 --mistakes
--speakers-per-type 3 --rates 4.5 5.5` and dev2 --seed 2 --rates 4 6, each run through
`rtmri compare-bench` first (RELEASE_NAMED also from dev4 --seed 4 --rates 4.5 5.5 and dev5
--seed 5 --rates 4 6, both --speakers-per-type 3 --lessons 05_tsu: dev1 and dev2 hold a dozen
affricates).

Each result's ``by_phone`` holds every reference phone's difference per channel (an
articulator, length, sound) in units of the channel's threshold. Per phone and channel, the
spread over correct attempts by other voices is the root mean square of those differences,
drawn towards the channel's own over all phones by ``PRIOR_COUNT`` occurrences (a phone said by
a dozen attempts is not a steady estimate on its own) and at least ``MIN_SHARE`` of it. One
factor, the same everywhere, then puts the thresholds where ``QUANTILE`` of the correct
attempts get no length or sound named: a phone is told of a difference that is large for that
phone, wherever it is. The articulators have one threshold each (``articulator_named``), the
same rule over all phones.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from rtmri.lessons.compare import NAMED
from rtmri.mistakes.scoring import CHANNELS, QUANTILE, largest

# The channels given a threshold per phone: those measured without the model (the alignment's
# lengths, the spectra). The articulators keep one threshold each (NAMED): the model reads the
# tract of an unheard voice, a child's most, unsteadily everywhere, so a phone's spread over a
# few dozen voices says little of the next one's.
PER_PHONE = ("length", "sound")
PRIOR_COUNT = 6
MIN_SHARE = 0.5  # of the channel's spread: a phone that hardly moves in a dozen attempts may still move
ARTICULATOR_CHANNELS = tuple(c for c in CHANNELS if c not in PER_PHONE)
# An articulator's threshold at least (log(1 + gap / SOFT_MM) units: the gap plus SOFT_MM a third
# wider or narrower): smaller differences hardly change the sound, and named one in five correct
# attempts of children when the tongue tip and body came out at 0.2 and 0.13.
MIN_ARTICULATOR_NAMED = 0.3
# A release's (and a rounding's) threshold this far beyond the farthest of the correct attempts: a
# few dozen affricates (vowels) said correctly give their tail only roughly.
RELEASE_MARGIN = 1.5


def differences(result: dict) -> list[tuple[str, str, float]]:
    """(phone, channel, |difference|) for every reference phone of a result."""
    out = []
    for entry in result["by_phone"]:
        values = dict(entry["articulators"], length=entry["length"], sound=entry["sound"])
        out += [(entry["phone"], c, abs(float(values[c]))) for c in CHANNELS if values.get(c) is not None]
    return out


def spreads(results: list[dict]) -> dict[str, dict[str, float]]:
    """phone -> channel -> spread (root mean square, drawn towards the channel's) over the results."""
    squares: dict[tuple[str, str], list[float]] = defaultdict(list)
    for result in results:
        for phone, channel, value in differences(result):
            squares[phone, channel].append(value**2)
    channel_mean = {c: float(np.mean([v for (_, k), vs in squares.items() if k == c for v in vs])) for c in CHANNELS
                    if any(k == c for _, k in squares)}
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for (phone, channel), values in squares.items():
        mean = (sum(values) + PRIOR_COUNT * channel_mean[channel]) / (len(values) + PRIOR_COUNT)
        out[phone][channel] = float(np.sqrt(max(mean, MIN_SHARE**2 * channel_mean[channel])))
    return dict(out)


def common_factor(results: list[dict], spread: dict[str, dict[str, float]]) -> float:
    """The factor on every PER_PHONE spread that leaves QUANTILE of the results with none of
    those channels named (as the articulators' factor does for them)."""
    largest = [max((v / spread[p][c] for p, c, v in differences(r) if c in PER_PHONE), default=0.0) for r in results]
    return float(np.quantile(largest, QUANTILE))


def phone_named(results: list[dict]) -> dict[str, dict[str, float]]:
    """phone -> channel -> the difference named there (channel units), over the correct results."""
    correct = [r for r in results if r["correct"] and r.get("by_phone")]
    spread = spreads(correct)
    factor = common_factor(correct, spread)
    return {p: {c: up(factor * v) for c, v in sorted(channels.items()) if c in PER_PHONE}
            for p, channels in sorted(spread.items())}


def articulator_named(results: list[dict]) -> dict[str, float]:
    """articulator -> its threshold (rtmri.lessons.compare.NAMED, log units), over the correct
    results: each articulator's QUANTILE of an attempt's largest per-phone difference, then one
    factor on all of them so that QUANTILE of the attempts get no articulator named; at least
    MIN_ARTICULATOR_NAMED. The results must have been made with the NAMED in force (their
    articulators are in its units)."""
    correct = [r for r in results if r["correct"] and r.get("by_phone")]
    table = np.array([[largest(r["by_phone"], c) for c in ARTICULATOR_CHANNELS] for r in correct])
    spread = np.quantile(table, QUANTILE, axis=0)
    moving = spread > 0  # an articulator still in nearly every attempt gets the floor, and no say in the factor
    factor = float(np.quantile((table[:, moving] / spread[moving]).max(axis=1), QUANTILE)) if moving.any() else 1.0
    return {c: up(max(NAMED[c] * s * factor, MIN_ARTICULATOR_NAMED)) for c, s in zip(ARTICULATOR_CHANNELS, spread)}


def up(value: float) -> float:
    """Two decimals, rounded up: rounding a threshold names nothing more."""
    return float(np.ceil(value * 100 - 1e-9) / 100)  # 1.5 * 0.1 is 0.15, not 0.16


def contrast_named(results: list[dict]) -> float | None:
    """The vowel contrast named as merged (rtmri.lessons.contrast.CONTRAST_NAMED, log units):
    below every correct result's lowest (two decimals, rounded down); None without vowel pairs."""
    lowest = [p["contrast"] for r in results if r["correct"] for p in r.get("by_phone", ()) if p.get("contrast") is not None]
    return float(np.floor(min(lowest) * 100 - 1e-6) / 100) if lowest else None


def beyond_correct(results: list[dict], key: str, sign: float) -> float | None:
    """A per-phone difference judged apart (by_phone[key], log units; sign +1: named above, -1:
    below), named at RELEASE_MARGIN times every correct result's farthest on that side (its
    magnitude, two decimals, rounded up); None without such phones."""
    values = [sign * p[key] for r in results if r["correct"] for p in r.get("by_phone", ()) if p.get(key) is not None]
    return up(RELEASE_MARGIN * max(max(values), 0.01)) if values else None


def release_named(results: list[dict]) -> float | None:
    """An affricate's release named as begun without its closure (rtmri.lessons.release.RELEASE_NAMED)."""
    return beyond_correct(results, "release", +1.0)


def rounding_named(results: list[dict]) -> float | None:
    """A /ɯ/ named as rounded (rtmri.lessons.rounding.ROUNDING_NAMED: its F2 ratio's log below the reference's)."""
    return beyond_correct(results, "rounding", -1.0)


def main(argv: list[str]) -> int:
    results = [r for path in argv for r in json.loads(Path(path).read_text(encoding="utf-8"))["results"]]
    print("NAMED =", json.dumps(articulator_named(results)))
    print("PHONE_NAMED =", json.dumps(phone_named(results), ensure_ascii=False))
    merged = contrast_named(results)
    if merged is not None:
        print(f"CONTRAST_NAMED = {merged:.2f}")
    for name, value in (("RELEASE_NAMED", release_named(results)), ("ROUNDING_NAMED", rounding_named(results))):
        if value is not None:
            print(f"{name} = {value:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
