"""`rtmri train syncnet`: the SyncNet expert on rtMRI lower halves (cosine similarity +
BCE), wav2lip's recipe. The loop, checkpoints, resume, AMP and DDP are TrainingRun's
(rtmri.training.loop)."""

from __future__ import annotations

from pathlib import Path

import torch

from rtmri.training.augment import Augmentation
from rtmri.training.config import SyncNetConfig
from rtmri.training.data import VAL_SEED_OFFSET, SyncNetSamples
from rtmri.training.loop import Hooks, OneOptimizerRun
from rtmri.training.models import SyncNet, cosine_loss
from rtmri.training.models.checkpoints import load_weights, read_checkpoint


class SyncNetRun(OneOptimizerRun):
    kind = "syncnet"
    early_stop_metric = "loss"

    def build(self, train_clips, val_clips) -> None:
        cfg = self.cfg
        common = dict(image_size=cfg.image_size, channels=cfg.in_channels, lookahead_ms=cfg.lookahead_ms)
        augmentation = Augmentation.from_spec(cfg.augment, cfg.seed)  # training samples only
        self.train_set = SyncNetSamples(train_clips, split="train", seed=cfg.seed, augmentation=augmentation, **common)
        self.val_set = SyncNetSamples(val_clips, split="val", seed=cfg.seed + VAL_SEED_OFFSET, **common)
        self.samples_per_epoch = len(self.train_set)
        self.net = SyncNet(cfg.width, cfg.in_channels).to(self.rt.device)
        self.model = self.rt.wrap(self.net)
        self.make_optimizer()

    @property
    def main_model(self) -> torch.nn.Module:
        return self.net

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
