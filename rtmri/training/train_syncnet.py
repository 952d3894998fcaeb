"""`rtmri train syncnet`: the SyncNet expert on rtMRI lower halves (cosine similarity +
BCE), wav2lip's recipe. The loop, checkpoints, resume, AMP and DDP are TrainingRun's
(rtmri.training.loop)."""

from __future__ import annotations

from pathlib import Path

import torch

from rtmri.training.config import SyncNetConfig
from rtmri.training.data import SyncNetSamples
from rtmri.training.loop import Hooks, OneOptimizerRun
from rtmri.training.models import SyncNet, cosine_loss
from rtmri.training.models.checkpoints import load_weights, read_checkpoint


class SyncNetRun(OneOptimizerRun):
    kind = "syncnet"
    early_stop_metric = "loss"

    def build(self, train_clips, val_clips) -> None:
        cfg = self.cfg
        self.make_datasets(SyncNetSamples, train_clips, val_clips)
        self.net = SyncNet(cfg.width, cfg.in_channels).to(self.rt.device)
        self.model = self.rt.wrap(self.net)
        self.make_optimizer()

    def init_weights(self) -> None:
        if self.cfg.init == "scratch":
            return
        ckpt = read_checkpoint(self.cfg.init)
        self.init_check(self.cfg.init, ckpt)
        load_weights(self.net, "syncnet", self.cfg.init, ckpt)
        self.log(f"initialised from {self.cfg.init}")

    def train_step(self, batch) -> dict:
        x, mel, y = batch
        self.model.train()
        with self.autocast():
            a, v = self.model(mel, x)
        loss = cosine_loss(a, v, y)
        value = self.guard(loss, "sync loss")
        self.optimize(loss)
        return {"loss": value}

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.net.eval()
        totals = torch.zeros(3, dtype=torch.float64, device=self.rt.device)  # loss sum, correct, n
        for batch in self.val_loader:
            x, mel, y = self.to_device(batch)
            with self.autocast():
                a, v = self.net(mel, x)
            loss = cosine_loss(a, v, y)
            similarity = torch.nn.functional.cosine_similarity(a.float(), v.float())
            correct = ((similarity > 0.5).float() == y.reshape(-1)).sum()
            totals += torch.stack([loss.double() * len(y), correct.double(), torch.tensor(float(len(y)), device=self.rt.device, dtype=torch.float64)])
        loss_sum, correct, n = self.rt.all_sum(totals).tolist()
        return {"loss": loss_sum / n, "accuracy": correct / n}


def train(cfg: SyncNetConfig, out: str | Path, hooks: Hooks | None = None, log=None) -> dict:
    """Train (or resume) a SyncNet expert run in ``out``; returns a summary dict."""
    return SyncNetRun(cfg, out, hooks, log).run()
