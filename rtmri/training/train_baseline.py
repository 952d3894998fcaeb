"""`rtmri train baseline`: the FC-LSTM acoustic-to-rtMRI baseline (Csapó, Interspeech 2020;
rtmri.training.models.baseline) on the prepared clips.

One sample is one frame and its mel window (rtmri.training.data.FrameSamples), drawn as
the generator's samples are (a pure function of (seed, index), windows from
rtmri.alignment at the run's lookahead). Loss: MSE between the predicted and the recorded
frame (Csapó's), Adam; validation MSE (and L1) on a fixed set, early stopping on the
validation MSE. The loop, checkpoints, resume, AMP and DDP
are TrainingRun's (rtmri.training.loop).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from rtmri.training.config import BaselineConfig
from rtmri.training.data import FrameSamples
from rtmri.training.loop import Hooks, OneOptimizerRun
from rtmri.training.models.baseline import FcLstmBaseline
from rtmri.training.models.checkpoints import (
    BASELINE_KIND,
    CheckpointError,
    check_compatible,
    checkpoint_kind,
    load_weights,
    read_checkpoint,
)


class BaselineRun(OneOptimizerRun):
    kind = BASELINE_KIND
    early_stop_metric = "mse"

    def build(self, train_clips, val_clips) -> None:
        cfg = self.cfg
        self.make_datasets(FrameSamples, train_clips, val_clips)
        self.net = FcLstmBaseline(in_channels=cfg.in_channels, image_size=cfg.image_size, hidden=cfg.hidden, fc_layers=cfg.fc_layers,
                                  lstm_layers=cfg.lstm_layers, dropout=cfg.dropout).to(self.rt.device)
        self.model = self.rt.wrap(self.net)
        self.make_optimizer()

    @property
    def meta(self) -> dict:
        return {**self.net.architecture(), "lookahead_ms": float(self.cfg.lookahead_ms)}

    def init_weights(self) -> None:
        path = self.cfg.init
        if path == "scratch":
            return
        ckpt = read_checkpoint(path)
        found = checkpoint_kind(ckpt)
        if found != BASELINE_KIND:
            raise CheckpointError(f"--init {path}: a {found or 'unrecognised'} checkpoint; the baseline starts from "
                                  f"'scratch' or a baseline checkpoint of ours")
        check_compatible(ckpt["model"], self.meta, f"--init {path}", check_lookahead=not self.cfg.init_any_lookahead)
        load_weights(self.net, BASELINE_KIND, path, ckpt)
        self.log(f"initialised from {path}")

    def train_step(self, batch) -> dict:
        mel, frames = batch
        self.model.train()
        with self.autocast():
            predicted = self.model(mel)
        loss = F.mse_loss(predicted.float(), frames)
        value = self.guard(loss, "frame MSE")
        self.optimize(loss)
        return {"loss": value}

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.net.eval()
        dev = self.rt.device
        totals = torch.zeros(3, dtype=torch.float64, device=dev)  # squared error, absolute error, pixels
        for batch in self.val_loader:
            mel, frames = self.to_device(batch)
            with self.autocast():
                predicted = self.net(mel)
            error = predicted.float() - frames
            totals += torch.stack([error.square().sum().double(), error.abs().sum().double(),
                                   torch.tensor(float(error.numel()), device=dev, dtype=torch.float64)])
        squared, absolute, n = self.rt.all_sum(totals).tolist()
        return {"mse": squared / n, "l1": absolute / n}


def train(cfg: BaselineConfig, out: str | Path, hooks: Hooks | None = None, log=None) -> dict:
    """Train (or resume) a baseline run in ``out``; returns a summary dict."""
    return BaselineRun(cfg, out, hooks, log).run()
