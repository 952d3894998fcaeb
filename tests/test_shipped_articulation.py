"""The shipped default on speakers it never met: six clips of the three unseen speakers of the
20-minute corpus (a male, a female and a child tract and voice; tests/data/unseen_clips: their
audio, words and phones, true articulatory state, analysis grid and reference frame, taken
from the prepared corpus). Closures are counted as `rtmri eval` counts them: recall during the
stops and nasals made at the place, precision over every frame of speech."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rtmri.alignment import frame_windows
from rtmri.articulation import compare
from rtmri.articulation import regions as R
from rtmri.articulation import state as S
from rtmri.articulation.grid import AnalysisGrid
from rtmri.articulation.measure import measure
from rtmri.audio import load_audio, melspectrogram
from rtmri.bundle.engine import Engine
from rtmri.demo import shipped

CLIPS = Path(__file__).parent / "data" / "unseen_clips"


def unseen_clips():
    for folder in sorted(p for p in CLIPS.iterdir() if p.is_dir()):
        info = json.loads((folder / "clip.json").read_text())
        speaker = info["speaker"]
        grid = AnalysisGrid.from_json(json.loads((CLIPS / f"{speaker}.grid.json").read_text()), speaker)
        reference = np.asarray(Image.open(CLIPS / f"{speaker}.reference.png").convert("L"))
        yield info, grid, reference, load_audio(folder / "audio.wav", 16000), S.load(folder / S.STATE_FILE)


@pytest.fixture(scope="module")
def scored():
    """Per system, pooled closure counts and per-clip DF RMSE against the true state."""
    model, wav2lip = Engine(shipped().bundle), Engine(shipped().wav2lip_bundle)
    counts = {name: {place: {"tp": 0, "fn": 0, "shut": 0, "fp": 0} for place in R.CLOSING_REGIONS} for name in ("model", "wav2lip")}
    df = {"model": [], "wav2lip": []}
    for info, grid, reference, wav, truth in unseen_clips():
        n = info["n_frames"]
        mel = melspectrogram(wav)
        said = S.ArticulatoryState.from_vector(model.states(frame_windows(model.bundle.features(mel), n, model.bundle.lookahead_ms,
                                                                          model.bundle.window_columns)))
        wav2lip.set_reference(reference)
        drawn = wav2lip.run(frame_windows(mel, n, wav2lip.bundle.lookahead_ms))
        true = truth.measures(grid)
        for name, measures in (("model", said.measures(grid)), ("wav2lip", measure(drawn, grid))):
            for place, c in compare.closure_counts(true, measures, info["phones"]).items():
                for key in ("tp", "fn", "shut", "fp"):
                    counts[name][place][key] += c[key]
            df[name].append(compare.clip_scores(true, measures)["df_rmse_mm"])
    return counts, df


def test_the_shipped_model_closes_the_lips_for_p_b_m_of_unseen_speakers(scored):
    counts, _ = scored
    precision, recall = compare.precision_recall(counts["model"][R.LIPS])
    assert counts["model"][R.LIPS]["tp"] + counts["model"][R.LIPS]["fn"] >= 10  # the truth closes the lips that often
    # precision counts a closure shown anywhere in the speech: the lips shut a few frames too long
    # after a /p/ and in a child's vowels cost it (0.81 here, stop 39's inverter 0.78, stop 38's 0.68, stop 36's 0.62; over c3hm's six unseen voices 0.78 / 0.84: README)
    assert recall >= 0.9 and precision >= 0.55, (precision, recall)
    assert compare.precision_recall(counts["wav2lip"][R.LIPS])[1] < 0.2  # the wav2lip default hardly ever did


def test_the_shipped_model_closes_the_tongue_tip_for_t_d_n_of_unseen_speakers(scored):
    counts, _ = scored
    precision, recall = compare.precision_recall(counts["model"][R.ALVEOLAR])
    assert counts["model"][R.ALVEOLAR]["tp"] + counts["model"][R.ALVEOLAR]["fn"] >= 10
    # three quarters of the truth's closed frames, and three quarters of its closures right (0.80 / 0.78 here, its closure decision keeping a quiet room open; without that 0.79 / 0.85; stop 39's 0.80 / 0.85, stop 38's 0.79 / 0.78, stop 36's 0.74 / 0.76;
    # the target is 0.8 / 0.8: README). The truth closes the tip also where the tongue touches between
    # the gridlines (rtmri.articulation.outlines.tip_contact_px): counted on the gridlines alone, the
    # truth had half as many closures, the model's said closures mostly "false" (0.58 / 0.96 then)
    assert recall >= 0.7 and precision >= 0.7, (precision, recall)
    assert recall > compare.precision_recall(counts["wav2lip"][R.ALVEOLAR])[1]


def test_the_shipped_models_tract_is_nearer_the_truth_than_the_wav2lip_defaults(scored):
    _, df = scored
    assert np.mean(df["model"]) < np.mean(df["wav2lip"]) - 0.3, df


def quiet_rooms() -> dict[str, np.ndarray]:
    """3 s of noise alone as rooms sound before anyone speaks (none of them the stretches the
    export's calibration kept open): a microphone's hiss, a fan's rumble, mains hum."""
    from rtmri.audio import SAMPLE_RATE
    from rtmri.training.augment import steady_noise

    n = 3 * SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE
    hum = 0.002 * (np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 100 * t)) + steady_noise("white", n, -80.0, 7)
    return {"hiss": steady_noise("white", n, -65.0, 7), "rumble": steady_noise("pink", n, -60.0, 7),
            "hum": hum.astype(np.float32)}


def closed_share_in(bundle, audio: np.ndarray) -> np.ndarray:
    """Per place, the share of a live session's frames the bundle shows closed."""
    from rtmri.streamer.windows import FrameWindows

    engine = Engine(bundle)
    windows = FrameWindows.for_bundle(engine.bundle)
    frames = windows.push(audio) + windows.flush()
    return (engine.states(np.stack([w.mel for w in frames]))[:, S.CLOSED] > S.CLOSED_AT).mean(axis=0)


def test_the_shipped_model_shows_a_quiet_room_open():
    """Before anyone speaks the page shows the tract at rest, not a closure (stop 40's inverter
    showed the dorsum closed in 75-98 % of a fan's rumble and mains hum)."""
    for name, audio in quiet_rooms().items():
        assert closed_share_in(shipped().bundle, audio).max() < 0.02, name
