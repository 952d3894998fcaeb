"""Faults the training tests inject into the loop through its Hooks: a process killed after
a step (nothing written past the last checkpoint) and a loss that turns NaN."""

from __future__ import annotations

from rtmri.training.loop import Hooks


class SimulatedKill(Exception):
    """The process 'dies' here, after a step, without writing anything."""


class KillAfter(Hooks):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.kill_step = step

    def step_done(self, step: int) -> None:
        if step >= self.kill_step:
            raise SimulatedKill(f"killed after step {step}")


class NanAt(Hooks):
    def __init__(self, step: int) -> None:
        super().__init__()
        self.nan_step = step

    def loss(self, step: int, loss):
        return loss + float("nan") if step == self.nan_step else loss
