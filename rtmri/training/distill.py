"""Distillation of a teacher into the frame-drawing network being trained, a generator or a
renderer (``--teacher CKPT --distill-weight W``): the L1 target becomes (1 - W) L1(out,
truth) + W L1(out, teacher), the teacher's frames made from the same inputs.

The teacher may have any width (e.g. a wider network distilled into a narrower one),
but must see the same inputs and make the same frames: channel count, image size and
lookahead as the run's. It is loaded once, in eval mode (its batch norm uses its running
statistics, i.e. the function it was exported with), and never gets a gradient.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from rtmri.training.models.checkpoints import check_compatible, load_model

# What a teacher must share with the run (its width may differ).
SHARED_FIELDS = ("in_channels", "image_size", "lookahead_ms")


class Teacher:
    """A frozen network of the run's kind whose frames the student learns to reproduce."""

    def __init__(self, path: str | Path, run_meta: dict, device: str | torch.device = "cpu", kind: str = "generator") -> None:
        self.path = str(path)
        self.model, self.meta = load_model(path, kind, device)
        shared = {name: run_meta[name] for name in SHARED_FIELDS}
        check_compatible({name: self.meta[name] for name in SHARED_FIELDS}, shared, f"--teacher {path}")
        self.model.requires_grad_(False)

    @torch.no_grad()
    def __call__(self, driver: torch.Tensor, face: torch.Tensor) -> torch.Tensor:
        """driver: the audio windows (a generator) or the states (a renderer)."""
        return self.model(driver, face)

    def record(self) -> dict:
        """What a checkpoint keeps of the teacher."""
        return {"path": self.path, **self.meta}


def distill_loss(out: torch.Tensor, teacher_out: torch.Tensor) -> torch.Tensor:
    """L1 between the student's and the teacher's frames, in float32."""
    return F.l1_loss(out.float(), teacher_out.float())


def l1_target(l1: torch.Tensor, distill: torch.Tensor | None, weight: float) -> torch.Tensor:
    """(1 - W) L1(truth) + W L1(teacher); the plain L1 without a teacher."""
    return l1 if distill is None else (1 - weight) * l1 + weight * distill
