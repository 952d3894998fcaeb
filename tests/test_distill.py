"""Distillation (`rtmri train generator --teacher CKPT --distill-weight W`): the L1 target
mixes the truth and the teacher's frames, the teacher may have another width but must
share the run's channels, image size and lookahead, and the run records it."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from rtmri.cli import main as cli_main  # noqa: E402
from rtmri.training.config import ConfigError, read_toml, resolve  # noqa: E402
from rtmri.training.distill import Teacher, distill_loss, l1_target  # noqa: E402
from rtmri.training.models import Generator  # noqa: E402
from rtmri.training.models.checkpoints import (  # noqa: E402
    CheckpointError,
    atomic_save,
    model_meta,
    new_checkpoint,
    read_checkpoint,
)
from rtmri.training.models.widen import widen_state_dict  # noqa: E402

LOOKAHEAD_MS = 40.0
RUN_META = {"width": 0.125, "in_channels": 1, "image_size": 96, "lookahead_ms": LOOKAHEAD_MS}


def _save(model: Generator, path, lookahead_ms: float = LOOKAHEAD_MS):
    atomic_save(new_checkpoint("generator", model, model_meta(model, 96, lookahead_ms), 0, 0), path)
    return path


def _student(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(0.125, 1).eval()


def _inputs():
    g = torch.Generator().manual_seed(1)
    return torch.rand(2, 1, 80, 16, generator=g), torch.rand(2, 2, 96, 96, generator=g)


def test_a_student_that_is_its_teacher_has_no_distill_loss(tmp_path):
    student = _student()
    teacher = Teacher(_save(student, tmp_path / "self.pt"), RUN_META)
    audio, face = _inputs()
    with torch.no_grad():
        out = student(audio, face)
    distill = distill_loss(out, teacher(audio, face))
    assert float(distill) == 0.0
    assert not teacher.model.training and not any(p.requires_grad for p in teacher.model.parameters())
    # the target: W = 1 is the teacher alone, W = 0 the truth alone, and in between a mix
    truth = torch.rand_like(out)
    l1 = torch.nn.functional.l1_loss(out, truth)
    assert float(l1_target(l1, distill, 1.0)) == 0.0
    assert float(l1_target(l1, distill, 0.0)) == float(l1) > 0
    other = Teacher(_save(_student(seed=1), tmp_path / "other.pt"), RUN_META)
    apart = distill_loss(out, other(audio, face))
    assert float(apart) > 0
    assert torch.isclose(l1_target(l1, apart, 0.25), 0.75 * l1 + 0.25 * apart)


def test_a_teacher_that_makes_other_frames_is_refused(tmp_path):
    student = _student()
    with pytest.raises(CheckpointError, match=r"--teacher .*early\.pt does not fit this run: lookahead_ms 132.5 ms in the checkpoint, 40 ms"):
        Teacher(_save(student, tmp_path / "early.pt", lookahead_ms=132.5), RUN_META)
    with pytest.raises(CheckpointError, match=r"--teacher .*colour\.pt does not fit this run: in_channels 3 in the checkpoint, 1 in this run"):
        Teacher(_save(Generator(0.125, 3), tmp_path / "colour.pt"), RUN_META)
    Teacher(_save(Generator(0.25, 1), tmp_path / "wide.pt"), RUN_META)  # another width is fine


def test_config_needs_a_teacher_and_a_weight_together():
    base = {"data": "/d", "sync_weight": 0.0, "disc_weight": 0.0}
    with pytest.raises(ConfigError, match="both --teacher CHECKPOINT and --distill-weight"):
        resolve("generator", overrides={**base, "distill_weight": 0.5})
    with pytest.raises(ConfigError, match="both --teacher CHECKPOINT and --distill-weight"):
        resolve("generator", overrides={**base, "teacher": "t.pt"})
    with pytest.raises(ConfigError, match=r"distill_weight must be in \[0, 1\], got 1.5"):
        resolve("generator", overrides={**base, "teacher": "t.pt", "distill_weight": 1.5})


def _train_args(data, out, *extra):
    return ["train", "generator", str(data), "--out", str(out), "--width", "0.125", "--in-channels", "1", "--lookahead-ms", "40",
            "--sync-weight", "0", "--disc-weight", "0", "--steps", "2", "--batch-size", "2", "--eval-every", "2", "--eval-samples", "2",
            "--lr", "1e-12", "--num-workers", "0", "--no-progress", "--no-tensorboard", "--no-augment", *extra]


def test_cli_distils_a_wider_teacher_and_records_it(tiny_clip_dataset, tmp_path, capsys):
    student = _student()
    narrow = _save(student, tmp_path / "narrow.pt")
    # the teacher: the student widened to 0.25 without noise, the same function at twice the width
    wide = Generator(0.25, 1)
    wide.load_state_dict(widen_state_dict(student.state_dict(), "generator", 1, 0.125, 0.25, noise=0.0))
    teacher = _save(wide, tmp_path / "wide.pt")

    early = _save(Generator(0.25, 1), tmp_path / "early.pt", lookahead_ms=132.5)
    assert cli_main(_train_args(tiny_clip_dataset, tmp_path / "refused", "--teacher", str(early), "--distill-weight", "1")) == 2
    assert "lookahead_ms 132.5 ms in the checkpoint, 40 ms in this run" in capsys.readouterr().err

    out = tmp_path / "run"
    assert cli_main(_train_args(tiny_clip_dataset, out, "--init", str(narrow), "--teacher", str(teacher), "--distill-weight", "1")) == 0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    val = [r for r in records if r["split"] == "val"]
    # W = 1: the loss is the distill term alone, not the L1 to the truth
    assert [r["loss"] for r in train] == [r["distill"] for r in train]
    assert all(r["loss"] != r["l1"] for r in train)
    # in eval mode, after two steps at a rate that changes nothing but the batch-norm
    # statistics, the student still makes its teacher's frames
    assert val[-1]["distill"] < 0.01 * val[-1]["l1"]
    config = read_toml(out / "run.toml", "generator")
    assert (config["teacher"], config["distill_weight"]) == (str(teacher.resolve()), 1.0)
    recorded = read_checkpoint(out / "checkpoints" / "last.pt")["teacher"]
    assert (recorded["path"], recorded["width"], recorded["lookahead_ms"]) == (str(teacher.resolve()), 0.25, LOOKAHEAD_MS)
