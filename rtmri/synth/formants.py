"""F1 and F2 of a speaker's vowels, measured with Praat (praat-parselmouth) on sustained
vowels VocalTractLab synthesizes from the speaker's own tract.

The vowels are voiced at a low probe f0 by default: at a child's f0 (250-300 Hz) Praat's
F1 locks onto a harmonic (measured: child /i/ F1 484 Hz at its own f0 against 334 Hz at
the peak of VocalTractLab's transfer function), so the probe measures the tract, not the
voice. Praat's formant ceiling follows the tract length (5000 Hz for a 17 cm tract).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import vocaltractlab_cython as vtl

from rtmri.synth import tracts
from rtmri.synth.japanese import JA_U, ROUNDED_U
from rtmri.synth.cli import _types
from rtmri.synth.corpus import build_tracts
from rtmri.synth.speakers import make_speakers

SAMPLE_RATE = vtl.get_constants()["sr_audio"]
STEP = vtl.get_constants()["n_samples_per_state"]
PROBE_F0_HZ = 100.0
VOWEL_S = 0.6
ONSET_S = 0.03  # lung pressure rises over this
MEASURED_FROM_S, MEASURED_TO_S = 0.15, 0.55  # the steady part
CEILING_HZ_CM = 5000.0 * 17.0  # Praat's 5000 Hz ceiling for a 17 cm tract, scaled by length
CEILING_RANGE_HZ = (5000.0, 7000.0)
_GLOTTIS = [p["name"] for p in vtl.get_param_info("glottis")]


def sustained_vowel(shape: str, f0_hz: float = PROBE_F0_HZ, seconds: float = VOWEL_S) -> np.ndarray:
    """The active speaker's tract shape held for seconds, modal voice at f0_hz (44.1 kHz)."""
    n = int(seconds * SAMPLE_RATE / STEP)
    tract = np.tile(vtl.get_shape(shape, "tract"), (n, 1))
    glottis = np.tile(vtl.get_shape("modal", "glottis"), (n, 1))
    glottis[:, _GLOTTIS.index("F0")] = f0_hz
    glottis[:, _GLOTTIS.index("PR")] *= np.clip(np.arange(n) / (ONSET_S * SAMPLE_RATE / STEP), 0.0, 1.0)
    return vtl.synth_block(tract, glottis, STEP)


def formant_ceiling_hz(tract_length_cm: float) -> float:
    return float(np.clip(CEILING_HZ_CM / tract_length_cm, *CEILING_RANGE_HZ))


def f1_f2(audio: np.ndarray, ceiling_hz: float, sample_rate: float = SAMPLE_RATE) -> tuple[float, float]:
    """Median F1, F2 (Hz) over the steady part of a sustained vowel (Praat Burg, 5 formants)."""
    import parselmouth  # parselmouth: the synth extra, only for this check

    sound = parselmouth.Sound(np.asarray(audio, np.float64), sampling_frequency=sample_rate)
    sound = sound.extract_part(MEASURED_FROM_S, min(MEASURED_TO_S, sound.duration))
    formant = sound.to_formant_burg(time_step=0.01, max_number_of_formants=5, maximum_formant=ceiling_hz,
                                    window_length=0.025, pre_emphasis_from=50.0)
    times = np.arange(0.03, sound.duration - 0.03, 0.01)
    return tuple(float(np.nanmedian([formant.get_value_at_time(k, t) for t in times])) for k in (1, 2))


def speaker_formants(tract_file: str | None, vowels=("a", "i", JA_U, "e", "o"), f0_hz: float = PROBE_F0_HZ) -> dict[str, tuple[float, float]]:
    """{vowel: (F1, F2)} of the speaker file (None: JD3)."""
    tracts.use_tract(tract_file)
    ceiling = formant_ceiling_hz(tracts.tube_length_cm(vtl.get_shape(tracts.NEUTRAL_SHAPE, "tract")))
    return {v: f1_f2(sustained_vowel(v, f0_hz), ceiling) for v in vowels}


# The Japanese vowels, then German rounded u (what Japanese u was spoken as before JA_U).
TABLE_VOWELS = ("a", "i", JA_U, "e", "o", ROUNDED_U)
# Published F1, F2 (Hz) of Japanese vowels by speaker type, with their source.
PUBLISHED = {
    "male": ({"a": (753, 1385), "i": (315, 2172), JA_U: (367, 1332), "e": (500, 1947), "o": (520, 997)},
             "Kyoto University vowel survey, word utterances by native male speakers "
             "(http://winnie.kuis.kyoto-u.ac.jp/members/chjo/main/node104.html)"),
}


def speaker_table(speakers, vowels=TABLE_VOWELS) -> list[dict]:
    """Per speaker (with its tract built): type, tract length, F1/F2 of the vowels."""
    rows = []
    for speaker in speakers:
        tracts.use_tract(speaker.tract_file)
        measured = speaker_formants(speaker.tract_file, vowels)
        rows.append({"speaker": speaker.id, "type": speaker.tract_type, "held_out": speaker.held_out,
                     "tract_length_cm": round(tracts.tube_length_cm(vtl.get_shape(tracts.NEUTRAL_SHAPE, "tract")), 1),
                     "f0_hz": round(speaker.f0_hz), "voice_quality": speaker.voice_quality,
                     **{f"{v}_F{k + 1}": round(measured[v][k]) for v in vowels for k in (0, 1)}})
    return rows


def table_markdown(rows: list[dict], vowels=TABLE_VOWELS) -> str:
    head = "| speaker | type | tract length (cm) | f0 (Hz) | voice | " + " | ".join(f"/{v}/ F1, F2 (Hz)" for v in vowels) + " |"
    lines = [head, "|---" * (5 + len(vowels)) + "|"]
    for r in rows:
        name = r["speaker"] + (" (held out)" if r["held_out"] else "")
        cells = " | ".join(f"{r[f'{v}_F1']}, {r[f'{v}_F2']}" for v in vowels)
        lines.append(f"| {name} | {r['type']} | {r['tract_length_cm']} | {r['f0_hz']} | {r['voice_quality']} | {cells} |")
    return "\n".join(lines)


def type_means(rows: list[dict], vowels=TABLE_VOWELS) -> dict[str, dict[str, tuple[float, float]]]:
    """{type: {vowel: (mean F1, mean F2)}} over the speakers of each type."""
    means = {}
    for kind in dict.fromkeys(r["type"] for r in rows):
        chosen = [r for r in rows if r["type"] == kind]
        means[kind] = {v: tuple(float(np.mean([r[f"{v}_F{k}"] for r in chosen])) for k in (1, 2)) for v in vowels}
    return means


def gap_table_markdown(rows: list[dict], published=PUBLISHED, vowels=TABLE_VOWELS) -> str:
    """Per type and vowel: the synthetic speakers' mean F1, F2, the published values and the gap
    (synthetic - published, Hz and %)."""
    lines = ["| type | speakers | vowel | synthetic F1, F2 (Hz) | published F1, F2 (Hz) | gap F1, F2 (Hz) | gap F1, F2 (%) |",
             "|---|---:|---|---|---|---|---|"]
    for kind, means in type_means(rows, vowels).items():
        count = sum(1 for r in rows if r["type"] == kind)
        target = published.get(kind, ({}, ""))[0]
        for v in vowels:
            f1, f2 = means[v]
            if v in target:
                p1, p2 = target[v]
                cells = f"{p1}, {p2} | {f1 - p1:+.0f}, {f2 - p2:+.0f} | {100 * (f1 / p1 - 1):+.0f}, {100 * (f2 / p2 - 1):+.0f}"
            else:
                cells = "– | – | –"
            lines.append(f"| {kind} | {count} | /{v}/ | {f1:.0f}, {f2:.0f} | {cells} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    """python -m rtmri.synth.formants OUT --speakers N --heldout-speakers H [--types ...] [--seed S]:
    the speakers `rtmri synth` would make with these options, their speaker files built in OUT,
    a markdown table of their tract lengths and formants (probe f0 100 Hz), and one by speaker
    type against the published formants of Japanese speakers."""
    parser = argparse.ArgumentParser(prog="python -m rtmri.synth.formants", description=main.__doc__)
    parser.add_argument("out", type=Path)
    parser.add_argument("--speakers", type=int, required=True)
    parser.add_argument("--heldout-speakers", type=int, default=0)
    parser.add_argument("--types", type=_types, default=tracts.DEFAULT_TYPES)
    parser.add_argument("--heldout-types", type=_types, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    drawn = make_speakers(args.speakers, args.heldout_speakers, args.seed, args.types, args.heldout_types)
    speakers, skipped = build_tracts(drawn, args.out, args.workers)
    rows = speaker_table(speakers)
    print(table_markdown(rows))
    print()
    print(gap_table_markdown(rows))
    for entry in skipped:
        print(f"skipped {entry['speaker']} ({entry['type']}): {entry['detail']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
