"""The articulatory state (the shared DESIGN.md §4b) and the model that predicts and draws
it: the state from the outlines and from images, drawn on a speaker's grid, written by
prepare, learned by the inverter and the renderer, exported into one bundle and read back
by the engine, the evaluator and the learner comparison."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rtmri.articulation import grid as G
from rtmri.articulation import regions as R
from rtmri.articulation import state as S
from rtmri.articulation.outlines import true_gaps
from rtmri.bundle.engine import Engine
from rtmri.cli import main as rtmri
from rtmri.clips import ClipDataset

MM_PER_PX = 1.25
OFFSET_PX = np.array([40.0, 45.0])  # the canonical grid inside a 96-px frame (as in test_articulation)


def clip_grid():
    marks = G.CANONICAL_LANDMARKS_MM / MM_PER_PX + OFFSET_PX
    return G.grid_from_landmarks(dict(zip(G.LANDMARKS, marks)), MM_PER_PX, "test")


def a_state(frames: int = 2, gap_mm: float = 6.0, position_mm: float = 10.0) -> S.ArticulatoryState:
    gap = np.full((frames, S.N_LINES), gap_mm, np.float32)
    return S.ArticulatoryState(gap, np.full_like(gap, position_mm), np.zeros((frames, 3), np.float32))


def test_state_vector_and_file_round_trip_and_a_bad_file_is_named(tmp_path):
    state = a_state(3)
    state.closed[1, 0] = 1.0
    back = S.ArticulatoryState.from_vector(state.to_vector())
    assert np.array_equal(back.gap_mm, state.gap_mm) and np.array_equal(back.closed, state.closed)
    state.save(tmp_path / S.STATE_FILE)
    loaded = S.load(tmp_path / S.STATE_FILE)
    assert np.array_equal(loaded.to_vector(), state.to_vector())
    (tmp_path / "bad.npz").write_bytes(b"not a state")
    with pytest.raises(S.StateError, match="bad.npz"):
        S.load(tmp_path / "bad.npz")
    with pytest.raises(S.StateError, match=str(S.STATE_SIZE)):
        S.ArticulatoryState.from_vector(np.zeros((2, 5)))


def test_a_predicted_closure_is_a_closure_in_the_measures():
    grid = clip_grid()
    state = a_state(2, gap_mm=4.0)
    state.closed[1, S.CLOSURE_PLACES.index(R.LIPS)] = 0.9
    measures = state.measures(grid)
    assert measures.degree_mm[R.LIPS][0] == pytest.approx(4.0)
    assert measures.degree_mm[R.LIPS][1] == 0.0 and measures.closed(R.LIPS).tolist() == [False, True]
    assert not measures.closed(R.ALVEOLAR).any()
    assert state.port_mm(grid) == pytest.approx([4.0, 4.0])


def test_the_raster_draws_air_along_each_line_where_the_state_puts_the_gap():
    grid = clip_grid()
    raster = S.StateRaster(grid, 96)
    state = a_state(1, gap_mm=8.0, position_mm=10.0)
    drawn = raster.draw(state.to_vector())[0]
    line = grid.lines_of(R.PALATAL)[3]
    along_px = lambda mm: grid.inner[line] + grid.direction[line] * mm / MM_PER_PX  # noqa: E731
    at = lambda mm: drawn[int(round(along_px(mm)[1])), int(round(along_px(mm)[0]))]  # noqa: E731
    assert at(14.0) > 0.9  # inside the gap (10 to 18 mm)
    assert at(4.0) < 0.1 and at(24.0) < 0.1  # the tongue before it, the palate after it
    assert drawn[2, 2] == S.OFF_GRID  # far from every line
    moved = raster.draw(a_state(1, gap_mm=8.0, position_mm=20.0).to_vector())[0]
    assert moved[int(round(along_px(14.0)[1])), int(round(along_px(14.0)[0]))] < 0.1  # the gap went with the position


def test_prepare_writes_the_state_of_every_clip_from_its_outlines(synth_clip_dataset):
    dataset = ClipDataset(synth_clip_dataset)
    assert dataset.header["articulatory_state"]["clips"] == len(list(synth_clip_dataset.glob("clips/*/*/clip.json")))
    clip = dataset.split("train")[0]
    state = S.load(clip.folder / S.STATE_FILE)
    grid = dataset.grid(clip.speaker)
    expected = true_gaps(clip.geometry(), grid, (dataset.image_size, dataset.image_size)) * grid.mm_per_px
    assert len(state) == clip.n_frames
    assert np.allclose(state.gap_mm, expected, atol=1e-3, equal_nan=True)
    assert np.isfinite(state.position_mm[:, grid.tract_lines]).all()
    assert ((state.position_mm >= 0) | np.isnan(state.position_mm)).all()
    assert S.closure_rule(clip.folder / S.STATE_FILE) == S.CLOSURE_RULE


def test_prepare_writes_again_a_state_of_an_older_closure_rule_and_keeps_a_current_one(synth_clip_dataset, tmp_path):
    import shutil

    from rtmri.prepare.articulation import write_clip_states

    out = tmp_path / "data"
    shutil.copytree(synth_clip_dataset, out)
    clips = ClipDataset(out).split("train")[:2]
    old, current = (clip.folder / S.STATE_FILE for clip in clips)
    state = S.load(old)
    with open(old, "wb") as handle:  # as written before files recorded their rule: the tip's contacts not closed
        np.savez_compressed(handle, gap_mm=state.gap_mm, position_mm=state.position_mm, closed=np.zeros_like(state.closed))
    assert S.closure_rule(old) == 1
    entry = write_clip_states(out, [clip.clip_id for clip in clips], progress=False)
    assert entry["articulatory_state"]["from"] == {"geometry": 1, "image": 0, "kept": 1}
    assert S.closure_rule(old) == S.CLOSURE_RULE and np.array_equal(S.load(old).closed, state.closed)


@pytest.fixture(scope="module")
def data(synth_clip_dataset, tmp_path_factory):
    """The session's prepared corpus with a validation split (its training clips)."""
    import shutil

    from rtmri.clips import write_filelist

    out = tmp_path_factory.mktemp("articulatory_data") / "data"
    shutil.copytree(synth_clip_dataset, out)
    write_filelist(out, "val", [c.clip_id for c in ClipDataset(out).split("train")])
    return out


@pytest.fixture(scope="module")
def articulatory_bundle(data, tmp_path_factory):
    """A few steps of each half on the session's corpus, exported into one bundle."""
    synth_clip_dataset = data
    runs = tmp_path_factory.mktemp("articulatory")
    common = ["--steps", "6", "--eval-every", "3", "--eval-samples", "8", "--batch-size", "4", "--num-workers", "0",
              "--no-progress", "--no-tensorboard"]
    assert rtmri(["train", "inverter", str(synth_clip_dataset), "--out", str(runs / "inv"), "--context-columns", "32",
                  "--channels", "16", "--hidden", "16", "--input-norm", "session", *common]) == 0
    assert rtmri(["train", "renderer", str(synth_clip_dataset), "--out", str(runs / "ren"), *common]) == 0
    out = runs / "bundle"
    assert rtmri(["export", str(runs / "inv/checkpoints/last.pt"), str(out), "--renderer", str(runs / "ren/checkpoints/last.pt"),
                  "--data", str(synth_clip_dataset)]) == 0
    return runs, out


def test_an_interrupted_inverter_run_resumes_where_it_stopped(articulatory_bundle):
    runs, _ = articulatory_bundle
    lines = [json.loads(line) for line in (runs / "inv/metrics.jsonl").read_text().splitlines()]
    val = [e for e in lines if e.get("split") == "val"]
    assert [e["step"] for e in val] == [3, 6]
    assert {"gap_mm", "position_mm", "velocity_mm", "closure_bce", "lips_closure_recall"} <= set(val[-1])
    assert rtmri(["train", "inverter", "--out", str(runs / "inv"), "--steps", "8"]) == 0  # resumes from step 6
    steps = [json.loads(line)["step"] for line in (runs / "inv/metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 8 and steps.count(7) >= 1 and steps.count(1) == 1


def test_export_sets_the_closure_decision_on_the_splits_it_is_told(articulatory_bundle, data, tmp_path):
    from rtmri.export.articulatory import INVERTER_KIND, calibrate_closures, load, quiet_room_windows

    runs, _ = articulatory_bundle
    out = tmp_path / "calibrated"
    inverter_path, renderer_path = runs / "inv/checkpoints/last.pt", runs / "ren/checkpoints/last.pt"
    assert rtmri(["export", str(inverter_path), str(out), "--renderer", str(renderer_path), "--data", str(data),
                  "--calibrate-on", "unseen_ja", "unseen_nonja"]) == 0
    evaluation = Engine(out).bundle.manifest.evaluation
    assert evaluation["closure_calibration_splits"] == ["unseen_ja", "unseen_nonja"]
    inverter, meta, _ = load(inverter_path, INVERTER_KIND)
    dataset = ClipDataset(data)
    timing = float(meta["lookahead_ms"]), int(meta["window_columns"]), inverter.session_norm()
    expected = calibrate_closures(inverter, dataset.split("unseen_ja") + dataset.split("unseen_nonja"), *timing,
                                  quiet_room_windows(*timing))
    assert expected and evaluation["closure_offsets"] == {k: round(v, 3) for k, v in expected.items()}
    assert len(evaluation["closure_calibration_quiet_rooms"]) == len(quiet_room_windows(*timing))
    # a split the data does not have is named; a wav2lip export has no closure decision to set
    assert rtmri(["export", str(inverter_path), str(tmp_path / "x"), "--renderer", str(renderer_path), "--data", str(data),
                  "--calibrate-on", "no_such_split"]) != 0
    assert rtmri(["export", str(inverter_path), str(tmp_path / "y"), "--data", str(data), "--calibrate-on", "val"]) != 0


def test_the_bundle_gives_the_state_and_its_frames_and_the_streamer_carries_them(articulatory_bundle, data):
    from rtmri.evaluation.generate import generate_clip

    _, out = articulatory_bundle
    engine = Engine(out)
    manifest = engine.bundle.manifest
    assert manifest.architecture == "articulatory" and engine.bundle.gives_state and manifest.window_columns == 32
    assert manifest.evaluation["parity_max_abs_error_fp32"] < 1e-3 and "closure_offsets" in manifest.evaluation
    clip = ClipDataset(data).split("train")[0]
    made = generate_clip(engine, clip)
    assert made.frames.shape == (clip.n_frames, 96, 96) and made.states.shape == (clip.n_frames, S.STATE_SIZE)
    assert (made.states[:, S.GAP] >= 0).all() and ((made.states[:, S.CLOSED] >= 0) & (made.states[:, S.CLOSED] <= 1)).all()
    # the frames are the renderer's drawing of those states on the reference speaker's grid
    assert np.abs(engine.render(made.states).astype(int) - made.frames.astype(int)).max() <= 1


def test_the_session_normalisation_travels_from_training_to_the_stream(articulatory_bundle, data):
    from rtmri.alignment import frame_windows
    from rtmri.evaluation.generate import generate_clip
    from rtmri.training.data import StateSamples
    from rtmri.training.models.checkpoints import build_from_meta, checkpoint_meta, read_checkpoint

    runs, out = articulatory_bundle
    engine = Engine(out)
    norm = engine.bundle.session_norm()
    ckpt = read_checkpoint(runs / "inv/checkpoints/last.pt")
    inverter = build_from_meta("inverter", checkpoint_meta(ckpt))
    inverter.load_state_dict(ckpt["state_dict"])
    np.testing.assert_allclose(norm.prior_mean, inverter.session_mean.numpy(), atol=1e-4)  # the training corpus's prior
    assert -4 < norm.prior_mean.mean() < 0 and (norm.prior_std > 0.05).all()
    # the stream (evaluation runs the streamer) gives the states of the whole clip normalised as a session
    clip = ClipDataset(data).split("train")[0]
    streamed = generate_clip(engine, clip).states
    offline = engine.states(frame_windows(engine.bundle.features(clip.mel()), clip.n_frames, engine.bundle.lookahead_ms,
                                          engine.bundle.window_columns))
    np.testing.assert_allclose(streamed, offline, atol=1e-3)
    raw = engine.states(frame_windows(clip.mel(), clip.n_frames, engine.bundle.lookahead_ms, engine.bundle.window_columns))
    assert np.abs(raw - offline).max() > 1e-2  # the normalisation is not a no-op
    # a training sample near the clip's start (its session began there) reads exactly those windows
    from rtmri.alignment import first_column, mel_window

    samples = StateSamples([clip], split="train", columns=32, steps=2, lookahead_ms=engine.bundle.lookahead_ms)
    samples.session_norm = norm
    frames = [0, 1, 2]
    mel = samples._session_mel(0, 0, [first_column(f, engine.bundle.lookahead_ms, 32) for f in frames], np.random.default_rng(0))
    expected = frame_windows(norm.normalise(clip.mel()), 3, engine.bundle.lookahead_ms, 32)
    for f in frames:
        np.testing.assert_allclose(mel_window(mel, f, engine.bundle.lookahead_ms, 32), expected[f], atol=1e-5)


def test_another_speakers_anatomy_needs_its_grid(articulatory_bundle):
    from rtmri.bundle import BundleError

    engine = Engine(articulatory_bundle[1])
    reference = engine.bundle.reference_frames()[0]
    with pytest.raises(BundleError, match="grid"):
        engine.set_reference(reference)
    engine.set_reference(reference, G.grid_of_bundle(engine.bundle.manifest))


def test_eval_scores_the_models_state_against_the_true_state(articulatory_bundle, data, tmp_path):
    out = tmp_path / "eval"
    assert rtmri(["eval", str(articulatory_bundle[1]), str(data), "-o", str(out), "--examples", "0",
                  "--no-robustness"]) == 0
    rows = {(r["split"], r["system"]): r for r in json.loads((out / "results.json").read_text())["articulation"]["table"]}
    model, floor, still = rows["test", "model"], rows["test", "renderer from the true state"], rows["test", "reference held still"]
    assert model["state_source"] == "model's state" and still["state_source"] == "image measure"
    assert np.isfinite(model["state_df_rmse_mm"]) and np.isfinite(floor["df_rmse_mm"])
    table = (out / "table.md").read_text()
    assert "Against the true articulatory state" in table and "tip shut in pauses" in table
    # the held-still reference's tongue tip is open throughout: it never shuts it in a pause
    assert still["closure_alveolar_outside_speech"] in (0.0, "n/a") and 0.0 <= model["state_closure_alveolar_outside_speech"] <= 1.0


def test_renderer_starts_from_a_generator_of_the_same_width(data, tmp_path):
    import torch

    from rtmri.demo import shipped
    from rtmri.training.models.checkpoints import read_checkpoint

    generator = shipped().checkpoint
    assert rtmri(["train", "renderer", str(data), "--out", str(tmp_path / "r"), "--init", str(generator),
                  "--steps", "1", "--eval-every", "1", "--eval-samples", "4", "--batch-size", "2", "--num-workers", "0",
                  "--no-progress", "--no-tensorboard", "--lr", "1e-12"]) == 0
    saved = read_checkpoint(tmp_path / "r/checkpoints/last.pt")["state_dict"]
    wav2lip = read_checkpoint(generator)["state_dict"]
    decoder = [k for k in wav2lip if k.startswith("face_decoder_blocks.") and k.endswith("weight")][0]
    assert torch.allclose(saved[decoder], wav2lip[decoder], atol=1e-6)  # the encoder-decoder came from the generator
    assert saved["audio_encoder.0.weight"].shape == (256, S.STATE_SIZE)  # the state embedding starts fresh


def test_rare_closures_weigh_more_than_open_frames():
    from rtmri.training.train_articulatory import MAX_CLOSURE_WEIGHT, state_statistics

    class Samples:
        clips = [0, 1]

        def state(self, i):
            state = a_state(10)
            state.closed[: 1 + i, 0] = 1.0  # lips closed in 1 of 10 and 2 of 10 frames
            return state.to_vector()

    mean, scale, weight = state_statistics(Samples())
    assert weight[0] == pytest.approx(17 / 3) and weight[1] == MAX_CLOSURE_WEIGHT  # never closed: capped
    assert mean[0] == pytest.approx(6.0) and scale[0] >= 0.5


def test_a_phone_head_trains_beside_the_inverter_resumes_and_stays_out_of_the_bundle(data, tmp_path):
    """--phone-weight: each frame's phone class is learnt from the GRU's output; the head is kept
    in the run's checkpoints (a resumed run goes on with it) and the exported bundle is the same
    inverter graph as without it."""
    import torch

    from rtmri.training.data import PHONE_INDEX, frame_phone_classes

    phones = [{"phone": "a", "start": 0.0, "end": 0.1}, {"phone": "zz", "start": 0.1, "end": 0.2}]
    assert list(frame_phone_classes(phones, [0, 1, 2, 3, 4, 5])) == [PHONE_INDEX["a"]] * 3 + [-100] * 2 + [PHONE_INDEX[""]]

    run = tmp_path / "inv"
    common = ["--eval-every", "3", "--eval-samples", "8", "--batch-size", "4", "--num-workers", "0", "--no-progress",
              "--no-tensorboard", "--context-columns", "32", "--channels", "16", "--hidden", "16"]
    assert rtmri(["train", "inverter", str(data), "--out", str(run), "--steps", "4", "--phone-weight", "0.5", *common]) == 0
    train = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    ce = [e["phone_ce"] for e in train if e.get("split") == "train" and "phone_ce" in e]
    assert ce and all(np.isfinite(ce))
    head = torch.load(run / "checkpoints/last.pt", map_location="cpu", weights_only=False)["phone_head"]
    assert head["weight"].shape[0] == len(PHONE_INDEX)
    assert rtmri(["train", "inverter", "--out", str(run), "--steps", "6"]) == 0  # resumes, head included
    resumed = torch.load(run / "checkpoints/last.pt", map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 6 and not torch.equal(resumed["phone_head"]["weight"], head["weight"])
    assert not any(k.startswith("phone") for k in resumed["state_dict"])


def test_an_inverter_trains_wider_from_a_narrow_one_only_when_asked(data, tmp_path, capsys):
    """--init-any-width: the narrow inverter's weights, widened, are where the wide run starts
    (at a learning rate that changes nothing, its states are the narrow one's); without it the
    other size is refused."""
    import torch

    from rtmri.training.models.articulatory import Inverter
    from rtmri.training.models.checkpoints import read_checkpoint

    common = ["--eval-every", "2", "--eval-samples", "4", "--batch-size", "2", "--num-workers", "0", "--no-progress",
              "--no-tensorboard", "--context-columns", "32", "--input-norm", "session", "--no-augment"]
    narrow = tmp_path / "narrow"
    assert rtmri(["train", "inverter", str(data), "--out", str(narrow), "--steps", "2", "--channels", "16", "--hidden", "16",
                  *common]) == 0
    init = ["--init", str(narrow / "checkpoints/last.pt"), "--channels", "32", "--hidden", "32", "--steps", "1", "--lr", "1e-12"]
    assert rtmri(["train", "inverter", str(data), "--out", str(tmp_path / "refused"), *init, *common]) == 2
    assert "channels" in capsys.readouterr().err
    wide = tmp_path / "wide"
    assert rtmri(["train", "inverter", str(data), "--out", str(wide), *init, "--init-any-width", *common]) == 0
    assert "widened from 16 channels / 16 GRU units to 32 / 32" in capsys.readouterr().out
    nets = []
    for run in (narrow, wide):
        ckpt = read_checkpoint(run / "checkpoints/last.pt")
        net = Inverter.from_meta(ckpt["model"])
        net.load_state_dict(ckpt["state_dict"])
        nets.append(net.eval())
    mel = torch.randn(2, 1, 80, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():  # one step's batch-norm statistics and the widening noise apart
        assert (nets[0](mel) - nets[1](mel)).abs().max() < 0.05 * nets[0](mel).abs().max()
    assert nets[1].architecture()["hidden"] == 32


def test_phone_balance_draws_a_rare_phones_frames_more_often_and_a_common_ones_less(data):
    """--phone-balance: the inverter's samples come from a frame in proportion to its phone's
    rarity; at 0 every frame is as likely as before."""
    from rtmri.training.data import PHONE_INDEX, StateSamples, frame_phone_classes

    clips = ClipDataset(data).split("train")
    labels = np.concatenate([frame_phone_classes(c.info["phones"], range(c.n_frames)) for c in clips])
    named = labels[(labels != PHONE_INDEX[""]) & (labels >= 0)]
    classes, counts = np.unique(named, return_counts=True)
    rare, common = classes[np.argmin(counts)], classes[np.argmax(counts)]

    def shares(balance: float) -> tuple[float, float]:
        samples = StateSamples(clips, columns=32, steps=3, seed=0)
        samples.with_phones, samples.phone_balance = True, balance
        drawn = np.concatenate([samples[i][2].numpy() for i in range(600)])
        return float(np.mean(drawn == rare)), float(np.mean(drawn == common))

    (rare_even, common_even), (rare_balanced, common_balanced) = shares(0.0), shares(1.0)
    assert rare_balanced > 1.5 * rare_even and common_balanced < common_even


def test_a_renderer_learns_from_a_teacher_renderer_and_records_it(data, tmp_path):
    """`rtmri train renderer --teacher CKPT --distill-weight 1`: the loss is the teacher's
    frames alone, and the run records its teacher."""
    from rtmri.demo import shipped
    from rtmri.training.models.checkpoints import read_checkpoint

    teacher = shipped().checkpoint_of("renderer")
    out = tmp_path / "student"
    assert rtmri(["train", "renderer", str(data), "--out", str(out), "--width", "0.0625", "--teacher", str(teacher),
                  "--distill-weight", "1", "--steps", "2", "--eval-every", "2", "--eval-samples", "4", "--batch-size", "2",
                  "--num-workers", "0", "--no-progress", "--no-tensorboard"]) == 0
    train = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["split"] == "train"]
    assert train and all(r["loss"] == r["distill"] != r["l1"] for r in train)
    recorded = read_checkpoint(out / "checkpoints/last.pt")["teacher"]
    assert recorded["path"] == str(teacher.resolve()) and recorded["width"] == read_checkpoint(teacher)["model"]["width"]


def test_a_new_renderer_goes_into_a_bundle_that_keeps_its_inverter(data, tmp_path, capsys):
    """`rtmri export RENDERER.pt OUT --into BUNDLE --data DATA`: the inverter graph and the
    manifest's reference, grid and closure offsets are the bundle's; the frames the new one's."""
    from rtmri.demo import shipped
    from rtmri.bundle import read_manifest

    assets = shipped()
    bundle = read_manifest(assets.bundle)
    out = tmp_path / "swapped"
    args = ["export", str(assets.checkpoint_of("renderer")), str(out), "--into", str(assets.bundle), "--data", str(data)]
    assert rtmri(args) == 0
    swapped = read_manifest(out)
    assert swapped.onnx_path.read_bytes() == bundle.onnx_path.read_bytes()
    for field in ("reference", "input_norm", "extra"):
        assert getattr(swapped.manifest, field) == getattr(bundle.manifest, field)
    assert swapped.manifest.evaluation["closure_offsets"] == bundle.manifest.evaluation["closure_offsets"]
    assert not {"ssim", "parity_max_abs_error_fp32"} & set(swapped.manifest.evaluation)  # the previous renderer's figures
    assert rtmri([*args, "--overwrite", "--variant", "int8"]) == 2 and "--variant" in capsys.readouterr().err
    assert swapped.manifest.training["renderer_replaced"]["previous_onnx_sha256"] == bundle.manifest.renderer["onnx_sha256"]
    windows = np.random.default_rng(0).uniform(-4, 0, (3, 80, bundle.window_columns)).astype(np.float32)
    frames, states = Engine(out).run_with_state(windows)
    shipped_frames, shipped_states = Engine(assets.bundle).run_with_state(windows)
    assert np.array_equal(states, shipped_states)
    assert np.abs(frames.astype(int) - shipped_frames.astype(int)).max() <= 1  # the same weights, exported again
    assert rtmri(args) == 2 and "--overwrite" in capsys.readouterr().err
    wav2lip = ["export", str(assets.checkpoint_of("renderer")), str(tmp_path / "w"), "--into", str(assets.wav2lip_bundle), "--data", str(data)]
    assert rtmri(wav2lip) == 2 and "no renderer to replace" in capsys.readouterr().err


def test_a_new_inverter_goes_into_a_bundle_that_keeps_its_renderer(articulatory_bundle, data, tmp_path, capsys):
    """`rtmri export INVERTER.pt OUT --into BUNDLE --data DATA`: the renderer graph, reference and
    grid are the bundle's; the states, the closure decision and the input normalisation the new one's."""
    import torch

    from rtmri.bundle import read_manifest
    from rtmri.demo import shipped
    from rtmri.export.articulatory import INVERTER_KIND, load

    runs, _ = articulatory_bundle
    assets = shipped()
    bundle = read_manifest(assets.bundle)
    out = tmp_path / "swapped"
    inverter = runs / "inv/checkpoints/last.pt"
    args = ["export", str(inverter), str(out), "--into", str(assets.bundle), "--data", str(data), "--calibrate-on", "test"]
    assert rtmri(args) == 0
    swapped = read_manifest(out)
    assert swapped.renderer_path.read_bytes() == bundle.renderer_path.read_bytes()
    for field in ("reference", "extra"):
        assert getattr(swapped.manifest, field) == getattr(bundle.manifest, field)
    assert swapped.manifest.window_columns == 32 != bundle.manifest.window_columns  # the fixture's inverter's
    assert swapped.manifest.input_norm != bundle.manifest.input_norm
    assert swapped.manifest.evaluation["closure_calibration_splits"] == ["test"]
    assert swapped.manifest.training["inverter_replaced"]["previous_onnx_sha256"] == bundle.manifest.onnx_sha256
    windows = np.random.default_rng(0).uniform(-4, 0, (3, 80, 32)).astype(np.float32)
    frames, states = Engine(out).run_with_state(windows)
    with torch.no_grad():
        expected = load(inverter, INVERTER_KIND)[0](torch.from_numpy(windows)[:, None]).numpy()
    assert np.allclose(states[:, : 2 * S.N_LINES], expected[:, : 2 * S.N_LINES], atol=1e-4)  # its gaps and positions
    shipped_engine = Engine(assets.bundle)
    assert np.abs(frames.astype(int) - shipped_engine.render(states).astype(int)).max() <= 1  # drawn by the shipped renderer
    assert rtmri([*args, "--overwrite", "--speaker", "spk01"]) == 2 and "--speaker" in capsys.readouterr().err


def test_train_only_closures_keeps_every_weight_but_the_closure_outputs(articulatory_bundle, data, tmp_path):
    import torch

    from rtmri.training.models.checkpoints import read_checkpoint

    runs, _ = articulatory_bundle
    init = runs / "inv/checkpoints/last.pt"
    out = tmp_path / "closures"
    assert rtmri(["train", "inverter", str(data), "--out", str(out), "--init", str(init), "--train-only", "closures",
                  "--context-columns", "32", "--channels", "16", "--hidden", "16", "--input-norm", "session", "--lr", "0.05",
                  "--steps", "4", "--eval-every", "4", "--eval-samples", "8", "--batch-size", "4", "--num-workers", "0",
                  "--no-progress", "--no-tensorboard"]) == 0
    before, after = (read_checkpoint(p)["state_dict"] for p in (init, out / "checkpoints/last.pt"))
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed == {"head.2.weight", "head.2.bias"}  # not the trunk, nor the batch norms' statistics
    rows = ~torch.isclose(before["head.2.weight"], after["head.2.weight"]).all(dim=1)
    assert rows.nonzero().flatten().tolist() == list(range(S.STATE_SIZE)[S.CLOSED])
    assert rtmri(["train", "inverter", str(data), "--out", str(tmp_path / "x"), "--train-only", "closures", "--steps", "1"]) == 2


def test_an_inverter_learns_from_more_datasets_than_one_and_a_missing_one_is_named(data, tmp_path):
    """--also-data: the other datasets' train and val clips join DATA's (a fine-tune that keeps
    the corpus it learnt from beside a new one); the run and the bundle record them."""
    import shutil

    from rtmri.clips import write_filelist
    from rtmri.training.config import resolve
    from rtmri.training.models.checkpoints import read_checkpoint
    from rtmri.training.train_articulatory import InverterRun

    other = tmp_path / "other"
    shutil.copytree(data, other)
    own = [c.clip_id for c in ClipDataset(other).split("train")]
    write_filelist(other, "train", own[:1])
    write_filelist(other, "val", own[1:2])
    cfg = resolve("inverter", out=tmp_path / "inv", overrides={"data": str(data), "also_data": f"{other}, "})
    train, val = InverterRun(cfg, tmp_path / "inv").clips()
    base = ClipDataset(data)
    assert [c.root for c in train] == [base.root] * len(base.split("train")) + [other]
    assert [c.root for c in val] == [base.root] * len(base.split("val")) + [other]

    common = ["--steps", "2", "--eval-every", "2", "--eval-samples", "4", "--batch-size", "4", "--num-workers", "0",
              "--no-progress", "--no-tensorboard", "--context-columns", "32", "--channels", "16", "--hidden", "16"]
    assert rtmri(["train", "inverter", str(data), "--out", str(tmp_path / "run"), "--also-data", str(other), *common]) == 0
    ckpt = read_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert ckpt["config"]["also_data"] == str(other.resolve())
    assert rtmri(["train", "inverter", str(data), "--out", str(tmp_path / "bad"), "--also-data", str(tmp_path / "nowhere"),
                  *common]) == 2


def test_a_fine_tune_feeds_its_samples_through_the_prior_its_bundle_will_carry(articulatory_bundle, data, tmp_path):
    """The session normalisation puts its prior's band levels in place of the session's: a
    fine-tune on another corpus must train on the --init's prior (what its export holds), not
    on the new corpus's, or the exported model meets inputs it never trained on."""
    import torch

    from rtmri.training.config import resolve
    from rtmri.training.models.checkpoints import read_checkpoint
    from rtmri.training.train_articulatory import InverterRun

    runs, _ = articulatory_bundle
    ckpt = read_checkpoint(runs / "inv/checkpoints/last.pt")
    ckpt["state_dict"]["session_mean"] = ckpt["state_dict"]["session_mean"] + 0.5  # another corpus's levels
    init = tmp_path / "init.pt"
    torch.save(ckpt, init)
    cfg = resolve("inverter", out=tmp_path / "ft", overrides={
        "data": str(data), "init": str(init), "context_columns": 32, "channels": 16, "hidden": 16, "input_norm": "session",
        "num_workers": 0, "progress": False, "tensorboard": False})
    run = InverterRun(cfg, tmp_path / "ft")
    run._set_up()
    prior = ckpt["state_dict"]["session_mean"].numpy()
    for samples in (run.train_set, run.val_set):
        assert np.allclose(samples.session_norm.prior_mean, prior)
    assert np.allclose(run.net.session_norm().prior_mean, prior)


def test_a_bundle_records_how_each_half_was_trained(articulatory_bundle, data, tmp_path):
    """The manifest says what data, initialisation and losses made each half (a renderer put into
    a bundle too), so a researcher can tell two bundles' renderers apart."""
    from rtmri.bundle import read_manifest

    runs, out = articulatory_bundle
    training = read_manifest(out).manifest.training
    assert training["inverter"]["run"]["data"] == str(data) and training["inverter"]["run"]["input_norm"] == "session"
    assert training["renderer"]["run"]["closure_pixel_weight"] == 0.0
    assert rtmri(["train", "renderer", str(data), "--out", str(runs / "ren-closures"), "--steps", "2", "--eval-every", "2",
                  "--eval-samples", "4", "--batch-size", "2", "--num-workers", "0", "--no-progress", "--no-tensorboard",
                  "--closure-pixel-weight", "30", "--init", str(runs / "ren/checkpoints/last.pt")]) == 0
    swapped = tmp_path / "swapped"
    assert rtmri(["export", str(runs / "ren-closures/checkpoints/last.pt"), str(swapped), "--into", str(out), "--data", str(data)]) == 0
    renderer = read_manifest(swapped).manifest.training["renderer"]
    assert renderer["run"]["closure_pixel_weight"] == 30.0 and renderer["run"]["init"].endswith("ren/checkpoints/last.pt")


def test_a_run_records_which_weights_it_started_from_after_its_init_file_is_replaced(articulatory_bundle, data, tmp_path):
    """--init is recorded with the SHA-256 of its file at the start, kept when the run resumes and
    carried into the bundle: replacing the file, as a shipped checkpoint is replaced, leaves the
    record true."""
    import shutil

    from rtmri.bundle import read_manifest
    from rtmri.files import file_sha256
    from rtmri.training.models.checkpoints import read_checkpoint

    runs, out = articulatory_bundle
    init = tmp_path / "inverter.pt"
    shutil.copy(runs / "inv/checkpoints/last.pt", init)
    started_from = file_sha256(init)
    run = tmp_path / "fine"
    assert rtmri(["train", "inverter", str(data), "--out", str(run), "--init", str(init), "--steps", "2", "--eval-every", "2",
                  "--eval-samples", "4", "--batch-size", "2", "--num-workers", "0", "--no-progress", "--no-tensorboard",
                  "--context-columns", "32", "--channels", "16", "--hidden", "16", "--input-norm", "session"]) == 0
    shutil.copy(run / "checkpoints/last.pt", init)  # the file --init named holds other weights now
    assert file_sha256(init) != started_from
    assert rtmri(["train", "inverter", "--out", str(run), "--steps", "3"]) == 0  # resumed
    for name in ("last.pt", "best.pt"):
        assert read_checkpoint(run / "checkpoints" / name)["init_source"] == {"path": str(init), "sha256": started_from}
    assert "init_source" not in read_checkpoint(runs / "ren/checkpoints/last.pt")  # from scratch
    swapped = tmp_path / "swapped"
    assert rtmri(["export", str(run / "checkpoints/last.pt"), str(swapped), "--into", str(out), "--data", str(data)]) == 0
    assert read_manifest(swapped).manifest.training["inverter"]["run"]["init_sha256"] == started_from


def test_a_closure_the_state_says_is_drawn_as_a_contact():
    """The gap regression averages a brief stop away; the closure head does not: a state whose
    lips are closed is drawn with no gap at the lips' narrowest line, as it is scored."""
    from rtmri.articulation.grid import grid_of_bundle
    from rtmri.demo import shipped

    engine = Engine(shipped().bundle)
    grid = grid_of_bundle(engine.bundle.manifest)
    lips = grid.lines_of(R.LIPS)
    state = np.repeat(engine.states(np.full((1, 80, engine.bundle.window_columns), -4.0, np.float32)), 2, axis=0)
    state[:, lips] = 4.0
    state[:, lips[1]] = 2.5  # the narrowest line at the lips
    state[:, S.CLOSED] = 0.0  # no other place closed
    k = 2 * S.N_LINES + S.CLOSURE_PLACES.index(R.LIPS)
    state[:, k] = [0.9, 0.1]  # said closed, said open
    contact = S.with_closures(state, grid)
    assert contact[0, lips[1]] == 0.0 and np.all(contact[0, np.delete(lips, 1)] == 4.0)
    assert np.array_equal(contact[1], state[1])  # an open state is drawn as it is
    zeroed = state[:1].copy()
    zeroed[0, lips[1]] = 0.0
    closed_frame, open_frame = engine.render(state)
    assert np.array_equal(closed_frame, engine.render(zeroed)[0])
    assert not np.array_equal(closed_frame, open_frame)
    assert S.ArticulatoryState.from_vector(state).measures(grid).degree_mm[R.LIPS][0] == 0.0


def test_the_class_bundle_says_what_the_default_says_and_draws_it_cheaper():
    """The shipped class bundle (`rtmri serve --mode learner --bundle rtmri/demo/assets/class`):
    the default's inverter byte for byte, so a learner's comparison is the same, and a
    renderer of half the width (fewer weights to run for every frame of every learner)."""
    from rtmri.bundle import read_manifest
    from rtmri.demo import shipped

    default, small = read_manifest(shipped().bundle), read_manifest(shipped().class_bundle)
    assert small.onnx_path.read_bytes() == default.onnx_path.read_bytes()
    assert small.manifest.training["renderer"]["width"] == default.manifest.training["renderer"]["width"] / 2
    assert small.renderer_path.stat().st_size < default.renderer_path.stat().st_size / 2
    windows = np.random.default_rng(1).uniform(-4, 0, (4, 80, default.window_columns)).astype(np.float32)
    (frames, states), (_, default_states) = Engine(small).run_with_state(windows), Engine(default).run_with_state(windows)
    assert np.array_equal(states, default_states) and frames.shape == (4, default.image_size, default.image_size)
    assert frames.std() > 10  # a picture, not a blank


LIPS_CLOSED = S.CLOSED.start + S.CLOSURE_PLACES.index(R.LIPS)  # the lips' closure in a state vector


def one_state_render_samples(data):
    """(RenderSamples of one training speaker whose every frame has one state, that state (1,
    STATE_SIZE) to change in place, the speaker, the speaker's grid)."""
    from rtmri.training.data import RenderSamples

    dataset = ClipDataset(data)
    speaker = dataset.split("train")[0].speaker
    clips = [c for c in dataset.split("train") if c.speaker == speaker]
    grid = dataset.grid(speaker)
    samples = RenderSamples(clips, grids={speaker: grid}, image_size=dataset.image_size, channels=1)
    state = a_state(frames=1, gap_mm=4.0).to_vector()
    samples.state = lambda ci: state
    return samples, state, speaker, grid


def test_the_renderer_learns_a_said_closure_as_the_engine_draws_it(data):
    """A measured closure may keep a pixel of gap; the engine draws a said closure as a contact,
    so the renderer's training input is the same contact."""
    samples, state, speaker, grid = one_state_render_samples(data)
    lips = grid.lines_of(R.LIPS)
    state[0, lips[2]] = 1.0  # the lips nearly shut: a pixel of gap left, as measured
    for said_closed, gap in ((1.0, 0.0), (0.0, 1.0)):
        state[0, LIPS_CLOSED] = said_closed
        face, vector, _, _ = samples[0]
        assert vector[lips[2]].item() == gap
        drawn = samples.raster(speaker).draw(vector.numpy()[None])
        assert np.array_equal(face[0].numpy(), drawn[0])


def test_the_renderer_weighs_the_pixels_of_a_closed_place_and_only_while_it_is_closed(data):
    """The pixels --closure-pixel-weight weighs: the lips' gridline pixels in a frame with the
    lips closed, nowhere else and not in an open frame."""
    samples, state, speaker, grid = one_state_render_samples(data)
    lips = samples.raster(speaker).band(grid.lines_of(R.LIPS))
    tip = samples.raster(speaker).band(grid.lines_of(R.ALVEOLAR))
    assert lips.sum() > 10 and not (lips & tip).any()
    state[0, LIPS_CLOSED] = 1.0
    pixels = samples[0][3][0].numpy()
    assert np.all(pixels[lips] == 1.0) and np.all(pixels[~lips] == 0.0)
    state[0, LIPS_CLOSED] = 0.0
    assert not samples[0][3].numpy().any()


def test_the_renderer_loss_weighs_a_closure_drawn_wrong_more_than_the_same_error_elsewhere():
    import torch

    from rtmri.training.train_articulatory import renderer_l1

    frames = torch.zeros(2, 1, 8, 8)
    closure = torch.zeros(2, 1, 8, 8)
    closure[0, 0, 2:4, 2:4] = 1.0  # frame 0: a closed place's 4 pixels
    on, off = frames.clone(), frames.clone()
    on[0, 0, 2, 2] = 1.0  # the closure drawn open at one pixel
    off[0, 0, 6, 6] = 1.0  # the same error away from it
    assert renderer_l1(on, frames, closure, 0.0) == renderer_l1(off, frames, closure, 0.0)
    plain, weighted = renderer_l1(on, frames, closure, 20.0)
    assert weighted > 10 * plain and weighted > renderer_l1(off, frames, closure, 20.0)[1]
    assert renderer_l1(off, frames, torch.zeros_like(closure), 20.0)[1] == plain  # no closure: the plain L1


def test_the_closure_calibration_counts_a_closure_said_outside_the_stops():
    """A model that leans towards closure in the vowels too: at the stops every offset that closes
    them scores alike; over the speech a closure said in a vowel costs precision (one a frame
    after the truth's does not), so the calibration keeps the closures to the stop."""
    from rtmri.articulation.compare import near
    from rtmri.export.articulatory import best_offset

    closed = np.r_[np.zeros(5, bool), np.ones(10, bool), np.zeros(25, bool)]
    stops = np.zeros(40, bool)
    stops[4:16] = True
    logits = np.where(closed, 2.0, 1.0)
    logits[15] = 1.5  # a frame late
    offset = best_offset(logits, closed, stops, near(closed))
    said = logits + offset > 0
    assert said[closed].all() and not said[~stops].any(), offset


def test_the_closure_calibration_counts_a_closure_said_in_a_pause(data):
    """An inverter that says every true closure, half of them surely, and in the pauses before,
    between and after the phones a tongue-tip closure too (as a closure head learnt again did):
    the calibration keeps the pauses open, though no pause is speech."""
    import torch

    from rtmri.articulation.compare import phone_frames, speech_frames
    from rtmri.export.articulatory import calibrate_closures

    clips = [c for c in ClipDataset(data).split("train") if (c.folder / S.STATE_FILE).is_file() and c.info.get("phones")]
    tip = S.CLOSURE_PLACES.index(R.ALVEOLAR)

    class PauseCloser:
        closure_offset = torch.zeros(len(S.CLOSURE_PLACES))

        def __init__(self):
            self.clips, self.pauses, self.closures, self.said = iter(clips), 0, 0, []

        def raw(self, windows):
            clip, n = next(self.clips), len(windows)
            closed = S.load(clip.folder / S.STATE_FILE).closed[:n] > S.CLOSED_AT
            logits = np.where(closed, np.where(np.arange(n) % 2 == 0, 3.0, 1.5)[:, None], -3.0)  # half of them surer
            pause = np.ones(n, bool)
            pause[speech_frames(phone_frames(clip.info["phones"], n))] = False
            logits[pause & ~closed[:, tip], tip] = 2.0  # surer than half the true closures
            self.pauses += int((pause & ~closed[:, tip]).sum())
            self.closures += int(closed[:, tip].sum())
            self.said.append(logits)
            out = torch.zeros(n, S.STATE_SIZE)
            out[:, S.CLOSED] = torch.from_numpy(logits.astype(np.float32))
            return out

    inverter = PauseCloser()
    offsets = calibrate_closures(inverter, clips, 40.0, 64)
    # the pauses outnumber the closures: saying both scores below keeping the surer half alone
    assert inverter.pauses > inverter.closures > 0 and R.ALVEOLAR in offsets
    logits = np.concatenate(inverter.said)[:, tip]
    assert ((logits + offsets[R.ALVEOLAR] > 0) == (logits == 3.0)).all(), offsets  # counted over the speech: all three


def test_the_closure_calibration_keeps_a_quiet_room_open(data):
    """An inverter that says every true closure, half of them only weakly, and says the tongue tip
    and dorsum closed in noise alone surer than those weak ones (as inverters did in a fan's
    rumble and mains hum): calibrated on the clips alone it shows the quiet room closed; with the
    quiet rooms (what a live session begins in) it keeps them open, and the sure closures said."""
    import torch

    from rtmri.export.articulatory import QUIET_ROOM_S, QUIET_ROOMS, calibrate_closures, quiet_room_windows

    clips = [c for c in ClipDataset(data).split("train") if (c.folder / S.STATE_FILE).is_file() and c.info.get("phones")]
    quiet = quiet_room_windows(40.0, 64)
    assert len(quiet) == len(QUIET_ROOMS) and all(w.shape == (int(QUIET_ROOM_S * 25), 80, 64) for w in quiet)
    assert not np.allclose(quiet[0], quiet[len(quiet) // 2])  # hiss and rumble differ
    noise_ptrs = {w.ctypes.data for w in quiet}
    places = [S.CLOSURE_PLACES.index(R.ALVEOLAR), S.CLOSURE_PLACES.index(R.VELAR)]

    class RoomCloser:
        def __init__(self):
            self.closure_offset = torch.zeros(len(S.CLOSURE_PLACES))
            self.clips, self.noise, self.sure = iter(clips), [], []

        def raw(self, windows):
            n = len(windows)
            if windows.data_ptr() in noise_ptrs:
                logits = np.full((n, len(S.CLOSURE_PLACES)), -3.0)
                logits[:, places] = 1.0
                self.noise.append(logits)
            else:
                closed = S.load(next(self.clips).folder / S.STATE_FILE).closed[:n] > S.CLOSED_AT
                logits = np.where(closed, np.where(np.arange(n) % 2 == 0, 3.0, 0.3)[:, None], -3.0)
                self.sure.append(np.where(closed & (logits == 3.0), 1, 0))
            out = torch.zeros(n, S.STATE_SIZE)
            out[:, S.CLOSED] = torch.from_numpy(logits.astype(np.float32))
            return out

    tip = S.CLOSURE_PLACES.index(R.ALVEOLAR)
    alone = calibrate_closures(RoomCloser(), clips, 40.0, 64)
    assert 1.0 + alone[R.ALVEOLAR] > 0  # every closure said, and the room's noise with them
    inverter = RoomCloser()
    offsets = calibrate_closures(inverter, clips, 40.0, 64, quiet=quiet)
    assert len(inverter.noise) == len(quiet)
    for place in (R.ALVEOLAR, R.VELAR):
        if place in offsets:
            assert 1.0 + offsets[place] < 0 < 3.0 + offsets[place], offsets
    assert np.concatenate(inverter.sure)[:, tip].sum() > 0


def test_the_closure_calibration_moves_either_way():
    """A model that leans away from closure (every logit below 0) gets a positive offset large
    enough to say its closures, one that leans towards it a negative one."""
    from rtmri.export.articulatory import best_offset

    closed = np.array([True] * 10 + [False] * 30)
    away = np.where(closed, -1.5, -3.5)  # ranked right, every frame said open at offset 0
    offset = best_offset(away, closed)
    assert np.array_equal(away + offset > 0, closed) and offset > 1.0, offset
    towards = np.where(closed, 3.5, 1.5)
    offset = best_offset(towards, closed)
    assert np.array_equal(towards + offset > 0, closed) and offset < -1.0, offset


def test_pause_samples_are_a_session_begun_in_a_rooms_noise_labelled_at_rest(articulatory_bundle, data, tmp_path):
    """--pause-share: a sample is a session that began in a room's noise alone, before a clip
    that opens with a pause, its frames labelled with that pause (the tract at rest); without such
    samples the closure heads read a quiet room as a stop's closure (tools/noise_closures.py)."""
    from rtmri.alignment import FPS
    from rtmri.audio import SILENCE_VALUE
    from rtmri.training.augment import ROOM_TONE_DBFS, room_tone
    from rtmri.training.data import PAUSE_LEAD_S, StateSamples

    level = 20 * np.log10(room_tone(16000, np.random.default_rng(3)).std())
    assert ROOM_TONE_DBFS[0] - 0.1 <= level <= ROOM_TONE_DBFS[1] + 0.1
    clips = ClipDataset(data).split("train")
    samples = StateSamples(clips, split="train", columns=64, steps=3, lookahead_ms=40.0)
    samples.session_norm = Engine(articulatory_bundle[1]).bundle.session_norm()
    opening = samples.opening_pauses()
    assert opening, "the synthetic clips open with a pause"
    speech_peak = max(float(samples.cache.mel(i).mean(axis=0).max()) for i in range(len(samples.clips)))
    ordinary = samples[0][0]
    samples.pause_share = 1.0
    padded = unpadded = 0
    for index in range(12):
        mels, states = samples[index]
        first_state = {tuple(samples.state(i)[0]) for i in opening}
        assert all(tuple(row) in first_state for row in states.numpy()) and (states == states[0]).all()
        windows = mels[:, 0].numpy()
        assert windows.shape == ordinary[:, 0].shape == (3, 80, 64)
        silent = np.all(windows == SILENCE_VALUE, axis=1)  # columns before the session began
        padded += int(silent[0].any())
        unpadded += int(not silent[-1].any())
        # nobody speaks in a pause sample: its raw columns stay far below the clips' speech
        samples.session_norm, norm = None, samples.session_norm
        raw = samples[index][0][:, 0].numpy()
        samples.session_norm = norm
        assert raw.mean(axis=1).max() < speech_peak - 1.0  # levels: 8 = 100 dB
    assert padded and unpadded, "a session's first frames and frames well into the lead are both drawn"
    assert round(PAUSE_LEAD_S[0] * FPS) >= 3
    from rtmri.training.config import ConfigError, resolve
    from rtmri.training.models.checkpoints import read_checkpoint

    with pytest.raises(ConfigError, match="pause_share"):
        resolve("inverter", out=tmp_path / "inv", overrides={"data": str(data), "pause_share": 1.0})
    common = ["--steps", "2", "--eval-every", "2", "--eval-samples", "4", "--batch-size", "4", "--num-workers", "0",
              "--no-progress", "--no-tensorboard", "--context-columns", "32", "--channels", "16", "--hidden", "16"]
    assert rtmri(["train", "inverter", str(data), "--out", str(tmp_path / "run"), "--pause-share", "0.5",
                  "--input-norm", "session", *common]) == 0
    assert read_checkpoint(tmp_path / "run/checkpoints/last.pt")["config"]["pause_share"] == 0.5
