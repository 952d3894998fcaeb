"""Shared fixtures: a tiny ONNX bundle built with onnx.helper (no torch), whose lower half
brightens with the loudness of its mel window, so frames visibly follow the speech; and a
tiny articulatory bundle (two graphs) whose state follows the loudness the same way."""

from __future__ import annotations

import numpy as np
import pytest

from rtmri.articulation import grid as analysis_grid
from rtmri.articulation.regions import LIPS
from rtmri.articulation.state import CLOSED, CLOSURE_PLACES, GAP, N_LINES, POSITION, STATE_SIZE
from rtmri.bundle import FACE_INPUT, FRAMES_OUTPUT, MEL_INPUT, STATE_OUTPUT, Manifest, encode_png, new_manifest, write_bundle
from rtmri.bundle.architectures import ARTICULATORY

TINY_SIZE = 32


def tiny_onnx(size: int = TINY_SIZE, channels: int = 1, face_input: bool = False) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rows = np.linspace(0, 1, size, dtype=np.float32)[:, None]
    pattern = (np.where(rows >= 0.5, 0.8, 0.0) * np.ones((1, size))).astype(np.float32)
    base = np.full((size, size), 0.2, np.float32)
    initializers = [
        numpy_helper.from_array(np.broadcast_to(pattern, (1, channels, size, size)).copy(), "pattern"),
        numpy_helper.from_array(np.broadcast_to(base, (1, channels, size, size)).copy(), "base"),
        numpy_helper.from_array(np.array(0.5, np.float32), "gain"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
    ]
    nodes = [
        helper.make_node("ReduceMean", [MEL_INPUT], ["loudness"], axes=[1, 2, 3], keepdims=1),
        helper.make_node("Mul", ["loudness", "gain"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["level"]),
        helper.make_node("Mul", ["level", "pattern"], ["tongue"]),
        helper.make_node("Add", ["tongue", "base"], ["plain"]),
    ]
    inputs = [helper.make_tensor_value_info(MEL_INPUT, TensorProto.FLOAT, ["batch", 1, 80, 16])]
    if face_input:
        inputs.append(helper.make_tensor_value_info(FACE_INPUT, TensorProto.FLOAT, ["batch", 2 * channels, size, size]))
        initializers += [numpy_helper.from_array(np.array(x, np.int64), n) for x, n in (([channels], "lo"), ([2 * channels], "hi"), ([1], "axis"))]
        nodes += [
            helper.make_node("Slice", [FACE_INPUT, "lo", "hi", "axis"], ["reference"]),
            helper.make_node("Mul", ["reference", "gain"], ["ref_half"]),
            helper.make_node("Add", ["plain", "ref_half"], ["summed"]),
            helper.make_node("Min", ["summed", "one"], [FRAMES_OUTPUT]),
        ]
    else:
        nodes[-1] = helper.make_node("Add", ["tongue", "base"], [FRAMES_OUTPUT])
    output = helper.make_tensor_value_info(FRAMES_OUTPUT, TensorProto.FLOAT, ["batch", channels, size, size])
    graph = helper.make_graph(nodes, "tiny", inputs, [output], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_manifest(size: int = TINY_SIZE, channels: int = 1, face_input: bool = False, lookahead_ms: float = 40.0) -> dict:
    reference = (np.random.default_rng(0).random((size, size)) * 255).astype(np.uint8)
    return new_manifest(
        lookahead_ms=lookahead_ms,
        image_size=size,
        channels=channels,
        face_encoder="input" if face_input else "baked",
        frames={"crop": [0, 0, 256, 256], "orientation": "face-left, top-up"},
        reference={"frames": [encode_png(reference)], "source": "synthetic noise"},
        training={"dataset": "none (test fixture)"},
        evaluation={},
    )


@pytest.fixture
def make_tiny_bundle(tmp_path):
    def make(**options):
        folder = tmp_path / f"bundle{len(list(tmp_path.glob('bundle*')))}"
        onnx_options = {k: options[k] for k in ("size", "channels", "face_input") if k in options}
        return write_bundle(folder, tiny_onnx(**onnx_options), tiny_manifest(**options))

    return make


# The tiny articulatory bundle: level = sigmoid(gain (loudness - centre)), loudness the mel
# window's mean (silence -4, speech about 1); gap = level * open gap, lips closed = 1 - level.
TINY_COLUMNS = 32
TINY_LOUDNESS_CENTRE, TINY_LOUDNESS_GAIN = -2.0, 2.0
TINY_OPEN_GAP_MM = np.linspace(4.0, 16.0, N_LINES)  # a different width per line, so regions differ
TINY_POSITION_MM = 5.0
TINY_GRID_MARGIN_PX = 1.0


def _tiny_model(name: str, nodes, inputs, outputs, initializers) -> bytes:
    import onnx
    from onnx import helper, numpy_helper

    graph = helper.make_graph(nodes, name, inputs, outputs, [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def tiny_state_onnx(columns: int = TINY_COLUMNS) -> bytes:
    """mel (B, 1, 80, W) -> state (B, STATE_SIZE): the gaps and the lips' closure follow the loudness."""
    from onnx import TensorProto, helper

    weight, bias = np.zeros(STATE_SIZE, np.float32), np.zeros(STATE_SIZE, np.float32)
    weight[GAP] = TINY_OPEN_GAP_MM
    bias[POSITION] = TINY_POSITION_MM
    lips = np.arange(STATE_SIZE)[CLOSED][CLOSURE_PLACES.index(LIPS)]
    weight[lips], bias[lips] = -1.0, 1.0
    nodes = [
        helper.make_node("ReduceMean", [MEL_INPUT], ["loudness"], axes=[2, 3], keepdims=0),  # (B, 1)
        helper.make_node("Sub", ["loudness", "centre"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["scaled"]),
        helper.make_node("Sigmoid", ["scaled"], ["level"]),
        helper.make_node("Mul", ["level", "weight"], ["weighted"]),
        helper.make_node("Add", ["weighted", "bias"], [STATE_OUTPUT]),
    ]
    initializers = {"centre": np.float32(TINY_LOUDNESS_CENTRE), "gain": np.float32(TINY_LOUDNESS_GAIN), "weight": weight, "bias": bias}
    return _tiny_model("tiny-state", nodes, [helper.make_tensor_value_info(MEL_INPUT, TensorProto.FLOAT, ["batch", 1, 80, columns])],
                       [helper.make_tensor_value_info(STATE_OUTPUT, TensorProto.FLOAT, ["batch", STATE_SIZE])], initializers)


def tiny_renderer_onnx(size: int = TINY_SIZE) -> bytes:
    """state (B, STATE_SIZE), face (B, 2, S, S) -> frames: the drawn state (face channel 0) over
    the reference, and a lower half that brightens as the tract opens."""
    from onnx import TensorProto, helper

    rows = np.linspace(0, 1, size, dtype=np.float32)[:, None]
    pattern = (np.where(rows >= 0.5, 0.5, 0.0) * np.ones((1, size)))[None, None].astype(np.float32)
    nodes = [
        helper.make_node("Slice", [FACE_INPUT, "zero", "one_i", "axis1"], ["raster"]),
        helper.make_node("Slice", [FACE_INPUT, "one_i", "two_i", "axis1"], ["reference"]),
        helper.make_node("Slice", [STATE_OUTPUT, "zero", "lines", "axis1"], ["gaps"]),
        helper.make_node("ReduceMean", ["gaps"], ["mean_gap"], axes=[1], keepdims=1),  # (B, 1)
        helper.make_node("Mul", ["mean_gap", "per_mm"], ["openness"]),
        helper.make_node("Reshape", ["openness", "column"], ["opening"]),  # (B, 1, 1, 1)
        helper.make_node("Mul", ["opening", "pattern"], ["tongue"]),
        helper.make_node("Mul", ["raster", "half"], ["drawn"]),
        helper.make_node("Mul", ["reference", "third"], ["anatomy"]),
        helper.make_node("Add", ["drawn", "anatomy"], ["picture"]),
        helper.make_node("Add", ["picture", "tongue"], ["summed"]),
        helper.make_node("Min", ["summed", "one"], [FRAMES_OUTPUT]),
    ]
    initializers = {
        "zero": np.array([0], np.int64), "one_i": np.array([1], np.int64), "two_i": np.array([2], np.int64),
        "axis1": np.array([1], np.int64), "lines": np.array([N_LINES], np.int64), "column": np.array([-1, 1, 1, 1], np.int64),
        "per_mm": np.float32(1.0 / TINY_OPEN_GAP_MM.max()), "pattern": pattern, "half": np.float32(0.5),
        "third": np.float32(0.3), "one": np.float32(1.0),
    }
    inputs = [helper.make_tensor_value_info(STATE_OUTPUT, TensorProto.FLOAT, ["batch", STATE_SIZE]),
              helper.make_tensor_value_info(FACE_INPUT, TensorProto.FLOAT, ["batch", 2, size, size])]
    return _tiny_model("tiny-renderer", nodes, inputs,
                       [helper.make_tensor_value_info(FRAMES_OUTPUT, TensorProto.FLOAT, ["batch", 1, size, size])], initializers)


def tiny_grid(size: int = TINY_SIZE) -> analysis_grid.AnalysisGrid:
    """The canonical grid scaled and moved to lie inside a size x size image."""
    canonical = analysis_grid.canonical_grid()
    points = np.concatenate([canonical.inner, canonical.outer])
    low, high = points.min(axis=0), points.max(axis=0)
    scale = (size - 1 - 2 * TINY_GRID_MARGIN_PX) / float((high - low).max())
    offset = TINY_GRID_MARGIN_PX - low * scale
    return canonical.transformed(np.eye(2) * scale, offset, source="tests/conftest.py tiny grid")


def tiny_articulatory_manifest(size: int = TINY_SIZE, columns: int = TINY_COLUMNS) -> Manifest:
    fields = {**tiny_manifest(size, face_input=True).to_dict(), "architecture": ARTICULATORY, "window_columns": columns,
              "renderer": {"onnx": "model.renderer.onnx", "state_size": STATE_SIZE},
              analysis_grid.MANIFEST_KEY: tiny_grid(size).to_json()}
    return Manifest.from_dict(fields, "tiny articulatory manifest")


@pytest.fixture
def make_tiny_articulatory_bundle(tmp_path):
    def make(size: int = TINY_SIZE, columns: int = TINY_COLUMNS):
        folder = tmp_path / f"articulatory{len(list(tmp_path.glob('articulatory*')))}"
        return write_bundle(folder, tiny_state_onnx(columns), tiny_articulatory_manifest(size, columns),
                            renderer_bytes=tiny_renderer_onnx(size))

    return make


def write_tiny_clip_dataset(root, image_size: int = 96, speakers=("spk01", "spk02"), clips_per_speaker: int = 4,
                            seconds: float = 2.0, seed: int = 0):
    """A small prepared dataset (rtmri.clips layout): a bright 'tongue' blob whose height
    follows the loudness of noise bursts, so audio and picture are linked as in rtMRI."""
    import json
    from pathlib import Path

    import soundfile

    from rtmri.alignment import FPS, SAMPLES_PER_FRAME
    from rtmri.audio import SAMPLE_RATE
    from rtmri.clips import write_filelist, write_header

    root = Path(root)
    rng = np.random.default_rng(seed)
    n_frames = int(seconds * FPS)
    yy, xx = np.mgrid[0:image_size, 0:image_size] / image_size
    ids = []
    for speaker in speakers:
        for c in range(clips_per_speaker):
            loud = rng.random(n_frames // 5 + 1) > 0.5
            envelope = np.repeat(loud, 5)[:n_frames].astype(np.float32)
            wav = (0.3 * rng.standard_normal(n_frames * SAMPLES_PER_FRAME) * np.repeat(envelope, SAMPLES_PER_FRAME)).astype(np.float32)
            smooth = np.convolve(envelope, np.ones(3) / 3, mode="same")
            # two acquisitions of the same articulation with independent noise (the noise ceiling)
            frames, repeat = (np.empty((n_frames, image_size, image_size), np.uint8) for _ in range(2))
            for k in range(n_frames):
                centre = 0.8 - 0.25 * smooth[k]
                blob = np.exp(-(((yy - centre) / 0.08) ** 2 + ((xx - 0.5) / 0.15) ** 2))
                clean = 40 + 60 * (yy < 0.3) + 180 * blob
                frames[k] = np.clip(clean + rng.normal(0, 4, blob.shape), 0, 255)
                repeat[k] = np.clip(clean + rng.normal(0, 4, blob.shape), 0, 255)
            clip_id = f"{speaker}/utt{c:02d}_c00"
            folder = root / "clips" / clip_id
            folder.mkdir(parents=True)
            np.save(folder / "frames.npy", frames)
            np.save(folder / "frames_repeat.npy", repeat)
            soundfile.write(folder / "audio.wav", wav, SAMPLE_RATE, subtype="PCM_16")
            (folder / "clip.json").write_text(json.dumps({
                "speaker": speaker, "recording": f"{speaker}/utt{c:02d}", "condition": "train",
                "start_s": 0.0, "n_frames": n_frames, "fps": FPS, "phones": [],
            }))
            ids.append(clip_id)
    splits = {"train": ids[::2] + ids[1::4], "val": ids[3::4]}
    for name, members in splits.items():
        write_filelist(root, name, members)
    write_header(root, {"image_size": image_size, "speakers": list(speakers), "heldout_speakers": [],
                        "source": "tests/conftest.py tiny dataset", "splits": {k: len(v) for k, v in splits.items()}})
    return root


@pytest.fixture(scope="session")
def tiny_clip_dataset(tmp_path_factory):
    return write_tiny_clip_dataset(tmp_path_factory.mktemp("clips"))


# One training speaker (27 fps) and one held-out speaker (14 fps), about 9 s of speech in
# all; the seed gives a training sentence with long (geminate) /k/ closures. Written by
# VocalTractLab once per session for the synth, prepare and eval tests.
SYNTH_SEED = 9
SYNTH_ARGS = ["--minutes", "0.05", "--speakers", "2", "--heldout-speakers", "1", "--eval-sentences", "1", "--workers", "2", "--quiet",
              "--types", "reference-male"]


@pytest.fixture(scope="session")
def synth_corpus(tmp_path_factory):
    from rtmri.cli import main as rtmri

    out = tmp_path_factory.mktemp("synth") / "corpus"
    assert rtmri(["synth", str(out), "--seed", str(SYNTH_SEED), *SYNTH_ARGS]) == 0
    return out


@pytest.fixture(scope="session")
def synth_clip_dataset(synth_corpus, tmp_path_factory):
    """The session's synthetic corpus prepared into 2 s clips (with outlines and grids); the
    training speaker's clips are also its test split, so every condition has clips."""
    from rtmri.clips import ClipDataset, write_filelist
    from rtmri.prepare.pipeline import Options, run

    out = tmp_path_factory.mktemp("synth_clips") / "data"
    run(Options(src=synth_corpus, out=out, clip_seconds=2.0, workers=1, progress=False))
    dataset = ClipDataset(out)
    write_filelist(out, "test", [c.clip_id for c in dataset.split("train") + dataset.split("val") + dataset.split("test")])
    return out
