"""What the benchmark measures of the learner comparison, from each attempt's result.

- detection: ROC AUC of the score, a mistaken attempt against a correct attempt of the same
  lesson by another voice (every such pair; a tie counts half): the chance that the correct
  attempt scores higher.
- localisation: the share of mistaken attempts whose first named difference names one of the
  wrong articulators and lies (its largest instant) within ``NEAR_S`` of the mistaken phone
  (on the reference's clock: the comparison's clock).
- false alarms: the share of correct attempts given any named difference; and the share of
  mistaken attempts given a wrong one (a difference that is not the mistake: another
  articulator, or elsewhere).

A result (one per attempt): attempt, lesson, correct, mistake, speaker, speaker_type, score,
segments [{articulator, start_s, end_s, peak_s, ...}], and the label's ``wrong``.
"""

from __future__ import annotations

import numpy as np

NEAR_S = 0.1
ALL = "all"


def auc(mistaken: list[dict], correct: list[dict]) -> tuple[float, int]:
    """(AUC, number of pairs) over pairs of the same lesson by different voices; NaN without a pair."""
    wins, pairs = 0.0, 0
    for m in mistaken:
        others = np.array([c["score"] for c in correct if c["lesson"] == m["lesson"] and c["speaker"] != m["speaker"]], float)
        wins += float(np.sum(others > m["score"]) + 0.5 * np.sum(others == m["score"]))
        pairs += len(others)
    return (wins / pairs if pairs else float("nan")), pairs


def names_the_mistake(segment: dict, wrong: dict) -> bool:
    """The right articulator, within NEAR_S of the mistaken phone (reference clock)."""
    if segment["articulator"] not in wrong["articulators"]:
        return False
    peak = segment["peak_s"]
    return wrong["reference_start_s"] - NEAR_S <= peak <= wrong["reference_end_s"] + NEAR_S


def localised(result: dict) -> bool:
    return bool(result["segments"]) and names_the_mistake(result["segments"][0], result["wrong"])


def wrongly_named(result: dict) -> bool:
    return any(not names_the_mistake(s, result["wrong"]) for s in result["segments"])


def share(flags) -> float:
    flags = list(flags)
    return float(np.mean(flags)) if flags else float("nan")


def figures(mistaken: list[dict], correct: list[dict]) -> dict:
    area, pairs = auc(mistaken, correct)
    return {
        "auc": area, "pairs": pairs, "n_mistaken": len(mistaken), "n_correct": len(correct),
        "localisation": share(localised(r) for r in mistaken),
        "false_alarm": share(bool(r["segments"]) for r in correct),
        "wrong_difference": share(wrongly_named(r) for r in mistaken),
        "mean_score_mistaken": share(r["score"] for r in mistaken), "mean_score_correct": share(r["score"] for r in correct),
    }


CHANNELS = ("lips", "tongue_tip", "tongue_body", "tongue_back", "velum", "tongue_root", "length", "sound")
# Each part of the comparison's thresholds (the articulators; length and sound; vowel contrasts,
# below every correct attempt) leaves this share of dev's correct attempts with nothing of it
# named (rtmri.mistakes.thresholds): together they name a difference in about 5 % of them. At
# 0.95 each, dev1's correct attempts were told of a difference in 10 %, the target's edge.
QUANTILE = 0.975


def largest(by_phone: list[dict], channel: str) -> float:
    """An attempt's largest per-phone difference on a channel (an articulator, length or sound), in named units."""
    values = [abs(p["articulators"].get(channel) or 0.0) if channel in p["articulators"] else abs(p[channel] or 0.0)
              for p in by_phone]
    return max(values, default=0.0)


def headroom(results: list[dict]) -> dict:
    """Per channel, over the correct attempts: the QUANTILE of their largest per-phone difference
    (1 = the named threshold: above 1, that share of correct attempts would be told of a difference there)."""
    correct = [r for r in results if r["correct"] and r.get("by_phone")]
    return {c: float(np.quantile([largest(r["by_phone"], c) for r in correct], QUANTILE)) if correct else float("nan")
            for c in CHANNELS}


def summary(results: list[dict]) -> dict:
    """Figures over everything, per mistake type (against every correct attempt of its lessons)
    and per speaker type (mistakes and correct attempts of that type only)."""
    mistaken = [r for r in results if not r["correct"]]
    correct = [r for r in results if r["correct"]]
    mistakes = sorted({r["mistake"] for r in mistaken})
    types = sorted({r["speaker_type"] for r in results})
    return {
        ALL: figures(mistaken, correct),
        "correct_headroom": headroom(results),
        "by_mistake": {m: figures([r for r in mistaken if r["mistake"] == m],
                                  [c for c in correct if c["lesson"] in {r["lesson"] for r in mistaken if r["mistake"] == m}])
                       for m in mistakes},
        "by_speaker_type": {t: figures([r for r in mistaken if r["speaker_type"] == t], [c for c in correct if c["speaker_type"] == t])
                            for t in types},
    }
