"""python -m rtmri.mistakes.thresholds RESULTS.json [...]: the comparison's per-phone thresholds
(rtmri.lessons.compare.PHONE_NAMED) and where a vowel contrast is named as merged
(rtmri.lessons.contrast.CONTRAST_NAMED) from the correct attempts of `rtmri compare-bench` results.

Thresholds are set on benchmarks of correct attempts only, never on the one the comparison is
measured on (docs/mistakes_benchmark.md): `rtmri make-mistakes dev1 --seed 1 --mistakes
--speakers-per-type 3 --rates 4.5 5.5` and dev2 --seed 2 --rates 4 6, each run through
`rtmri compare-bench` first.

Each result's ``by_phone`` holds every reference phone's difference per channel (an
articulator, length, sound) in units of the channel's threshold. Per phone and channel, the
spread over correct attempts by other voices is the root mean square of those differences,
drawn towards the channel's own over all phones by ``PRIOR_COUNT`` occurrences (a phone said by
a dozen attempts is not a steady estimate on its own) and at least ``MIN_SHARE`` of it. One
factor, the same everywhere, then puts the thresholds where ``QUANTILE`` of the correct
attempts get no named difference: a phone is told of a difference that is large for that
phone, wherever it is.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from rtmri.mistakes.scoring import CHANNELS

# The channels given a threshold per phone: those measured without the model (the alignment's
# lengths, the spectra). The articulators keep one threshold each (NAMED): the model reads the
# tract of an unheard voice, a child's most, unsteadily everywhere, so a phone's spread over a
# few dozen voices says little of the next one's.
PER_PHONE = ("length", "sound")
PRIOR_COUNT = 6
MIN_SHARE = 0.5  # of the channel's spread: a phone that hardly moves in a dozen attempts may still move
QUANTILE = 0.95


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
    those channels named (as each articulator's threshold was set: its own 95th percentile)."""
    largest = [max((v / spread[p][c] for p, c, v in differences(r) if c in PER_PHONE), default=0.0) for r in results]
    return float(np.quantile(largest, QUANTILE))


def phone_named(results: list[dict]) -> dict[str, dict[str, float]]:
    """phone -> channel -> the difference named there (channel units), over the correct results."""
    correct = [r for r in results if r["correct"] and r.get("by_phone")]
    spread = spreads(correct)
    factor = common_factor(correct, spread)
    up = lambda value: float(np.ceil(value * 100) / 100)  # two decimals, rounded up: rounding names nothing more
    return {p: {c: up(factor * v) for c, v in sorted(channels.items()) if c in PER_PHONE}
            for p, channels in sorted(spread.items())}


def contrast_named(results: list[dict]) -> float | None:
    """The vowel contrast named as merged (rtmri.lessons.contrast.CONTRAST_NAMED, log units):
    below every correct result's lowest (two decimals, rounded down); None without vowel pairs."""
    lowest = [p["contrast"] for r in results if r["correct"] for p in r.get("by_phone", ()) if p.get("contrast") is not None]
    return float(np.floor(min(lowest) * 100 - 1e-6) / 100) if lowest else None


def main(argv: list[str]) -> int:
    results = [r for path in argv for r in json.loads(Path(path).read_text(encoding="utf-8"))["results"]]
    print("PHONE_NAMED =", json.dumps(phone_named(results), ensure_ascii=False))
    merged = contrast_named(results)
    if merged is not None:
        print(f"CONTRAST_NAMED = {merged:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
