"""Shared fixtures: a tiny ONNX bundle built with onnx.helper (no torch), whose lower half
brightens with the loudness of its mel window, so frames visibly follow the speech."""

from __future__ import annotations

import numpy as np
import pytest

from rtmri.bundle import FACE_INPUT, FRAMES_OUTPUT, MEL_INPUT, encode_png, new_manifest, write_bundle

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
