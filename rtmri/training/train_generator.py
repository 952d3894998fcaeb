"""`rtmri train generator`: wav2lip's generator training on the prepared rtMRI clips.

loss = (1 - s - d) L1 + s sync + d GAN, with s = sync_weight (0.03) once the validation
sync loss (of the frozen SyncNet expert on generated frames) drops below sync_threshold
(0.75) and 0 before, d = disc_weight (0.07); Adam 1e-4 for the generator, Adam 1e-4
betas (0.5, 0.999) for the quality discriminator, batch 16. Early stopping on the
validation L1; sample images every sample_every steps. The loop, checkpoints, resume,
AMP and DDP are TrainingRun's (rtmri.training.loop). With a teacher (--teacher,
--distill-weight W) the L1 term is (1 - W) L1(truth) + W L1(teacher) (rtmri.training.distill).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from rtmri.training.config import GeneratorConfig
from rtmri.training.data import GeneratorSamples
from rtmri.training.distill import Teacher, distill_loss, l1_target
from rtmri.training.loop import Hooks, TrainingRun, load_optimizer
from rtmri.training.models import Generator, QualityDiscriminator
from rtmri.training.models.checkpoints import (
    CheckpointError,
    is_ours,
    load_model,
    load_weights,
    read_checkpoint,
)
from rtmri.training.models.discriminator import bce
from rtmri.training.models.widen import widened_checkpoint


class GeneratorRun(TrainingRun):
    kind = "generator"
    early_stop_metric = "l1"

    def build(self, train_clips, val_clips) -> None:
        cfg, device = self.cfg, self.rt.device
        self.syncnet = None
        self.syncnet_meta = None
        sync_lookahead = cfg.lookahead_ms
        if cfg.syncnet:
            self.syncnet, self.syncnet_meta = load_model(cfg.syncnet, "syncnet", device)
            if self.syncnet_meta["image_size"] != cfg.image_size:
                raise CheckpointError(
                    f"--syncnet {cfg.syncnet}: image_size {self.syncnet_meta['image_size']} px in the checkpoint, "
                    f"{cfg.image_size} px in this run"
                )
            self.syncnet.requires_grad_(False)
            sync_lookahead = self.syncnet_meta["lookahead_ms"]  # where the expert's 0.2 s window lies
        self.make_datasets(GeneratorSamples, train_clips, val_clips, sync_lookahead_ms=sync_lookahead, masked_input=cfg.masked_input)

        self.gen = Generator(cfg.width, cfg.in_channels).to(device)
        self.model = self.rt.wrap(self.gen)
        self.optimizer = torch.optim.Adam(self.gen.parameters(), lr=cfg.lr)
        self.disc = self.disc_model = self.disc_optimizer = None
        if cfg.disc_weight > 0:
            self.disc = QualityDiscriminator(cfg.width, cfg.in_channels).to(device)
            self.disc_model = self.rt.wrap(self.disc)
            self.disc_optimizer = torch.optim.Adam(self.disc.parameters(), lr=cfg.disc_lr, betas=(0.5, 0.999))
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.rt.amp)
        self.state["sync_active"] = False
        self.teacher = Teacher(cfg.teacher, self.meta, device) if cfg.teacher else None

    @property
    def main_model(self) -> torch.nn.Module:
        return self.gen

    def modules_to_check(self) -> list[torch.nn.Module]:
        return [self.gen] + ([self.disc] if self.disc is not None else [])

    # ---- weights -----------------------------------------------------------------------
    def init_weights(self) -> None:
        cfg = self.cfg
        if cfg.init != "scratch":
            ckpt = read_checkpoint(cfg.init)
            if cfg.init_any_width:
                narrow, ckpt = ckpt, widened_checkpoint(ckpt, cfg.width, f"--init {cfg.init}", seed=cfg.seed)
                if ckpt is not narrow:
                    self.log(f"{cfg.init}: widened from width {narrow['model']['width']:g} to {cfg.width:g}")
            self.init_check(cfg.init, ckpt)
            load_weights(self.gen, "generator", cfg.init, ckpt)
            self.log(f"generator initialised from {cfg.init}")
            if self.disc is not None and cfg.init_disc == "scratch" and is_ours(ckpt) and "disc_state_dict" in ckpt:
                load_weights(self.disc, "quality_discriminator", cfg.init, ckpt, key="disc_state_dict")
                self.log(f"discriminator initialised from {cfg.init}")
        if self.disc is not None and cfg.init_disc != "scratch":
            ckpt = read_checkpoint(cfg.init_disc)
            self.init_check(cfg.init_disc, ckpt)
            load_weights(self.disc, "quality_discriminator", cfg.init_disc, ckpt)
            self.log(f"discriminator initialised from {cfg.init_disc}")

    def checkpoint_extra(self) -> dict:
        extra = {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}
        if self.disc is not None:
            extra["disc_state_dict"] = {k: v.detach().cpu() for k, v in self.disc.state_dict().items()}
            extra["disc_optimizer"] = self.disc_optimizer.state_dict()
        if self.syncnet_meta is not None:
            extra["syncnet"] = {"path": str(self.cfg.syncnet), **self.syncnet_meta}
        if self.teacher is not None:
            extra["teacher"] = self.teacher.record()
        return extra

    def load_extra(self, ckpt: dict) -> None:
        load_optimizer(self.optimizer, ckpt["optimizer"], self.cfg.lr)
        self.scaler.load_state_dict(ckpt["scaler"])
        if self.disc is not None:
            if "disc_state_dict" not in ckpt:
                raise CheckpointError(f"{self.ckpt_dir}: the run was trained without a discriminator; keep --disc-weight 0")
            self.disc.load_state_dict(ckpt["disc_state_dict"])
            load_optimizer(self.disc_optimizer, ckpt["disc_optimizer"], self.cfg.disc_lr)

    # ---- training ------------------------------------------------------------------------
    @property
    def sync_weight(self) -> float:
        return self.cfg.sync_weight if (self.state.get("sync_active") and self.syncnet is not None) else 0.0

    def _sync_loss(self, mel: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        return self.syncnet.sync_loss(mel, frames)

    def train_step(self, batch) -> dict:
        x, mels, mel, y = batch
        cfg = self.cfg
        s, d = self.sync_weight, (cfg.disc_weight if self.disc is not None else 0.0)
        self.model.train()
        out = {}
        with self.autocast():
            g = self.model(mels, x)  # (B, C, T, S, S)
            l1 = F.l1_loss(g.float(), y)
            distill = distill_loss(g, self.teacher(mels, x)) if self.teacher is not None else None
            loss = (1 - s - d) * l1_target(l1, distill, cfg.distill_weight)
            if distill is not None:
                out["distill"] = distill
            if self.syncnet is not None:
                if s > 0:
                    sync = self._sync_loss(mel, g)
                    loss = loss + s * sync
                else:
                    with torch.no_grad():
                        sync = self._sync_loss(mel, g.detach())
                out["sync"] = sync
            if self.disc is not None:
                self.disc.requires_grad_(False)  # the generator step only needs d/dg
                perceptual = self.disc.perceptual_loss(g)
                self.disc.requires_grad_(True)
                loss = loss + d * perceptual
                out["perceptual"] = perceptual
        value = self.guard(loss, "generator loss")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)

        if self.disc is not None:
            self.disc_model.train()
            self.disc_optimizer.zero_grad(set_to_none=True)
            n_real = y.shape[0] * y.shape[2]
            with self.autocast():
                pred = self.disc_model(torch.cat([y, g.detach()], dim=0))  # one forward (DDP)
            disc_loss = (bce(pred[:n_real], 1.0) + bce(pred[n_real:], 0.0)) / 2
            out["disc"] = disc_loss
            self.scaler.scale(disc_loss).backward()
            self.scaler.step(self.disc_optimizer)
        self.scaler.update()
        values = {"loss": value, "l1": l1.item()}
        values.update({k: float(v.item()) for k, v in out.items()})
        values["sync_weight"] = s
        return values

    # ---- validation ----------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self) -> dict:
        self.gen.eval()
        dev = self.rt.device
        totals = torch.zeros(5, dtype=torch.float64, device=dev)  # l1, sync, perceptual, distill, n
        for batch in self.val_loader:
            x, mels, mel, y = self.to_device(batch)
            with self.autocast():
                g = self.gen(mels, x)
                sync = self._sync_loss(mel, g) if self.syncnet is not None else torch.zeros((), device=dev)
                perceptual = self.disc.perceptual_loss(g) if self.disc is not None else torch.zeros((), device=dev)
                distill = distill_loss(g, self.teacher(mels, x)) if self.teacher is not None else torch.zeros((), device=dev)
            n = float(len(y))
            l1 = F.l1_loss(g.float(), y)
            terms = [l1, sync, perceptual, distill]
            totals += torch.stack([t.double() * n for t in terms] + [torch.tensor(n, device=dev, dtype=torch.float64)])
        l1, sync, perceptual, distill, n = self.rt.all_sum(totals).tolist()
        metrics = {"l1": l1 / n}
        if self.syncnet is not None:
            metrics["sync"] = sync / n
        if self.disc is not None:
            metrics["perceptual"] = perceptual / n
        if self.teacher is not None:
            metrics["distill"] = distill / n
        return metrics

    def after_eval(self, metrics: dict) -> None:
        if self.syncnet is not None and not self.state.get("sync_active") and metrics["sync"] < self.cfg.sync_threshold:
            self.state["sync_active"] = True
            self.log(f"validation sync loss {metrics['sync']:.4f} < {self.cfg.sync_threshold}: sync loss on (weight {self.cfg.sync_weight})")

    def after_step(self) -> None:
        if self.rt.main and self.cfg.sample_count and self.step % self.cfg.sample_every == 0:
            self.write_samples()

    @torch.no_grad()
    def write_samples(self) -> Path:
        """PNG grid of fixed validation samples (middle frame): reference, masked target,
        generated, target, |difference| x 4."""
        n = min(self.cfg.sample_count, self.cfg.eval_samples)
        batch = [self.val_set[i] for i in range(n)]
        x, mels, _, y = (torch.stack(t).to(self.rt.device) for t in zip(*batch))
        self.gen.eval()
        g = self.gen(mels, x).float()
        t = y.shape[2] // 2
        c = y.shape[1]
        grey = lambda a: a[:, :, t].mean(dim=1).clamp(0, 1).cpu().numpy()  # noqa: E731
        columns = [grey(x[:, c:]), grey(x[:, :c]), grey(g), grey(y), np.clip(4 * np.abs(grey(g) - grey(y)), 0, 1)]
        size, pad = y.shape[-1], 2
        grid = np.ones(((size + pad) * n + pad, (size + pad) * len(columns) + pad), np.float32)
        for row in range(n):
            for col, images in enumerate(columns):
                top, left = pad + row * (size + pad), pad + col * (size + pad)
                grid[top : top + size, left : left + size] = images[row]
        image = (grid * 255).round().astype(np.uint8)
        path = self.out / "samples" / f"step_{self.step:08d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(path)
        if self.tb is not None:
            self.tb.add_image("val/samples (ref, masked, generated, target, 4|diff|)", image, self.step, dataformats="HW")
        return path


def train(cfg: GeneratorConfig, out: str | Path, hooks: Hooks | None = None, log=None) -> dict:
    """Train (or resume) a generator run in ``out``; returns a summary dict."""
    return GeneratorRun(cfg, out, hooks, log).run()
