"""`rtmri train inverter` and `rtmri train renderer`: the two halves of the articulatory
model (rtmri.training.models.articulatory), trained apart on the prepared clips' states
(``state.npz``, the shared DESIGN.md §4b).

Inverter: runs of consecutive frames (rtmri.training.data.StateSamples), their windows with
0.8 s of past, augmented audio. Loss, in mm: L1 of the gaps on every line in the image, plus
``position_weight`` x L1 of where each gap begins, plus ``velocity_weight`` x L1 of the
frame-to-frame change of both (a model that moves too little pays here), plus
``closure_weight`` x the closure classification (binary cross-entropy at the lips, tongue
tip and dorsum, a closed frame weighted by how rare closures are at that place, so a stop
is not averaged away), plus ``phone_weight`` x a phone classification from the GRU's output
(a head of its own, trained with it and kept in the run's checkpoints, never exported: the
phones anchor the features to what is said rather than to who says it).

Renderer: one frame, its true state (with noise) drawn on its speaker's grid and a
reference frame of the same speaker (rtmri.training.data.RenderSamples); L1 to the frame,
the pixels on the gridlines of a closed place weighted 1 + ``closure_pixel_weight``
(with ``--teacher``, to the frame and to a teacher renderer's drawing of the same input:
rtmri.training.distill).
It needs no audio: every frame of every corpus with states serves.

The loop, checkpoints, resume, early stopping and logs are TrainingRun's (rtmri.training.loop).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rtmri.articulation import regions as R
from rtmri.articulation import state as S
from rtmri.audio import loud_columns
from rtmri.clips import ClipDataset, DatasetError
from rtmri.training.config import CLOSURES_ONLY, InverterConfig, RendererConfig, listed_paths
from rtmri.training.distill import Teacher, distill_loss, l1_target
from rtmri.training.data import NO_PHONE, PHONE_CLASSES, RenderSamples, StateSamples
from rtmri.training.loop import Hooks, OneOptimizerRun
from rtmri.training.models.articulatory import Inverter, Renderer
from rtmri.training.models.checkpoints import (
    INVERTER_KIND,
    RENDERER_KIND,
    CheckpointError,
    checkpoint_kind,
    is_ours,
    load_state_dict_checked,
    read_checkpoint,
)
from rtmri.training.models.widen_inverter import widened_inverter_state

MAX_CLOSURE_WEIGHT = 20.0
WIDENED = ("channels", "hidden")  # what --init-any-width may double
SCORED_CLOSURES = (R.LIPS, R.ALVEOLAR)
PRIOR_CLIPS = 400


def state_statistics(samples: StateSamples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per value mean and spread of the training states' gaps and positions, and the weight
    of a closed frame at each closure place ((1 - p) / p, capped)."""
    vectors = np.concatenate([samples.state(i) for i in range(len(samples.clips))])
    mm = vectors[:, : 2 * S.N_LINES]
    mean = np.nan_to_num(np.nanmean(mm, axis=0), nan=0.0)
    scale = np.nan_to_num(np.nanstd(mm, axis=0), nan=1.0)
    closed = vectors[:, S.CLOSED].mean(axis=0)
    weight = np.clip((1 - closed) / np.maximum(closed, 1e-3), 1.0, MAX_CLOSURE_WEIGHT)
    return mean.astype(np.float32), np.maximum(scale, 0.5).astype(np.float32), weight.astype(np.float32)


def speech_statistics(samples: StateSamples, max_clips: int = PRIOR_CLIPS) -> tuple[np.ndarray, np.ndarray]:
    """Each mel band's mean and spread over the speech of the training clips (up to
    ``max_clips`` of them, spread over the set): the session normalisation's prior."""
    picks = np.unique(np.linspace(0, len(samples.clips) - 1, min(max_clips, len(samples.clips))).astype(int))
    speech = np.concatenate([loud_columns(samples.cache.mel(int(i))) for i in picks], axis=1)
    return speech.mean(axis=1).astype(np.float32), speech.std(axis=1).astype(np.float32)


class InverterRun(OneOptimizerRun):
    kind = INVERTER_KIND
    early_stop_metric = "loss"

    def clips(self) -> tuple[list, list]:
        """DATA's training and validation clips, and those of every --also-data dataset."""
        train_clips, val_clips = super().clips()
        for path in listed_paths(self.cfg.also_data):
            dataset = ClipDataset(path)
            train_clips, val_clips = train_clips + dataset.require_split("train"), val_clips + dataset.require_split("val")
        return train_clips, val_clips

    def build(self, train_clips, val_clips) -> None:
        cfg = self.cfg
        options = dict(columns=cfg.context_columns, steps=cfg.steps_per_sample)
        self.make_datasets(StateSamples, train_clips, val_clips, **options)
        self.train_set.pause_share = cfg.pause_share  # validation stays the clips as they are
        self.train_set.phone_balance = cfg.phone_balance
        self.net = Inverter(cfg.context_columns, cfg.channels, cfg.hidden, cfg.input_norm).to(self.rt.device)
        if cfg.input_norm == "session":
            band_mean, band_std = speech_statistics(self.train_set)
            self.net.session_mean.copy_(torch.from_numpy(band_mean))
            self.net.session_std.copy_(torch.from_numpy(band_std))
        mean, scale, closure_weight = state_statistics(self.train_set)
        self.net.target_mean.copy_(torch.from_numpy(mean))
        self.net.target_scale.copy_(torch.from_numpy(scale))
        self.closure_weight = torch.from_numpy(closure_weight).to(self.rt.device)
        self.model = self.rt.wrap(self.net)
        self.phone_head = None
        if cfg.train_only == CLOSURES_ONLY:
            self.optimizer = torch.optim.AdamW(self.closure_parameters(), lr=cfg.lr, weight_decay=0.0)
        else:
            parameters = list(self.net.parameters())
            if cfg.phone_weight > 0:
                self.train_set.with_phones = True
                self.phone_head = torch.nn.Linear(cfg.hidden, len(PHONE_CLASSES)).to(self.rt.device)
                parameters += list(self.phone_head.parameters())
            self.optimizer = torch.optim.AdamW(parameters, lr=cfg.lr, weight_decay=1e-4)
        self.scaler = torch.amp.GradScaler(self.rt.device.type, enabled=self.rt.amp)

    def closure_parameters(self) -> list[torch.nn.Parameter]:
        """Freeze the inverter but the output layer's closure rows (their gradient alone kept;
        no weight decay, so the other rows' Adam steps are exactly 0): the gaps and positions of
        the --init weights stay as they were."""
        self.net.requires_grad_(False)
        output = self.net.head[-1]
        output.requires_grad_(True)
        rows = torch.zeros(S.STATE_SIZE, device=output.weight.device)
        rows[S.CLOSED] = 1.0
        output.weight.register_hook(lambda grad: grad * rows[:, None])
        output.bias.register_hook(lambda grad: grad * rows)
        return [output.weight, output.bias]

    def train_mode(self) -> None:
        self.model.train()
        if self.cfg.train_only == CLOSURES_ONLY:
            self.net.front.eval()  # the frozen batch norms keep their statistics

    @property
    def meta(self) -> dict:
        return {**self.net.architecture(), "lookahead_ms": float(self.cfg.lookahead_ms)}

    def init_weights(self) -> None:
        if self.cfg.init == "scratch":
            return
        ckpt = read_checkpoint(self.cfg.init)
        if not is_ours(ckpt) or checkpoint_kind(ckpt) != INVERTER_KIND:
            raise CheckpointError(f"--init {self.cfg.init}: not an inverter checkpoint of ours")
        saved, wanted = ckpt["model"], self.net.architecture()
        if self.cfg.init_any_width and any(int(saved[k]) != wanted[k] for k in WIDENED):
            where = f"--init {self.cfg.init}"
            state = widened_inverter_state(ckpt["state_dict"], saved, wanted, where, seed=self.cfg.seed)
            ckpt = dict(ckpt, model={**saved, **{k: wanted[k] for k in WIDENED}}, state_dict=state)
            self.log(f"{self.cfg.init}: widened from {saved['channels']} channels / {saved['hidden']} GRU units "
                     f"to {wanted['channels']} / {wanted['hidden']}")
        self.init_check(self.cfg.init, ckpt)
        load_state_dict_checked(self.net, ckpt["state_dict"], self.cfg.init)
        self.log(f"initialised from {self.cfg.init}")

    def weights_ready(self) -> None:
        """The samples are normalised with the prior the network holds now: its --init's or its
        resumed checkpoint's, which the exported bundle will carry, not this corpus's."""
        if self.cfg.input_norm == "session":
            self.train_set.session_norm = self.val_set.session_norm = self.net.session_norm()

    def checkpoint_extra(self) -> dict:
        extra = super().checkpoint_extra()
        return extra if self.phone_head is None else {**extra, "phone_head": self.phone_head.state_dict()}

    def load_extra(self, ckpt: dict) -> None:
        super().load_extra(ckpt)
        if self.phone_head is not None:
            if "phone_head" not in ckpt:
                raise CheckpointError(f"{self.out}: its run was trained without a phone head; resume it with --phone-weight 0")
            self.phone_head.load_state_dict(ckpt["phone_head"])

    def losses(self, model, mels: torch.Tensor, truth: torch.Tensor, phones: torch.Tensor | None = None) -> dict:
        batch, steps = truth.shape[:2]
        features = self.unwrap(model).features(mels.reshape(batch * steps, *mels.shape[2:]))
        raw = self.unwrap(model).head(features).float()
        predicted = self.net.to_state(raw).reshape(batch, steps, -1)
        logits = raw[:, S.CLOSED].reshape(batch, steps, -1)
        known = torch.isfinite(truth)
        target = torch.nan_to_num(truth)

        def l1(part: slice, values: torch.Tensor, goal: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            mask = mask[..., part].float()
            return ((values[..., part] - goal[..., part]).abs() * mask).sum() / mask.sum().clamp(min=1)

        gap = l1(S.GAP, predicted, target, known)
        position = l1(S.POSITION, predicted, target, known)
        both = known[:, 1:] & known[:, :-1]
        velocity = l1(slice(0, 2 * S.N_LINES), predicted[:, 1:] - predicted[:, :-1], target[:, 1:] - target[:, :-1], both)
        closure = F.binary_cross_entropy_with_logits(logits, target[..., S.CLOSED], pos_weight=self.closure_weight)
        cfg = self.cfg
        loss = gap + cfg.position_weight * position + cfg.velocity_weight * velocity + cfg.closure_weight * closure
        parts = {"loss": loss, "gap_mm": gap, "position_mm": position, "velocity_mm": velocity, "closure_bce": closure,
                 "predicted": predicted, "truth": truth}
        if phones is not None and self.phone_head is not None and bool((phones != NO_PHONE).any()):
            parts["phone_ce"] = F.cross_entropy(self.phone_head(features).float(), phones.reshape(-1), ignore_index=NO_PHONE)
            parts["loss"] = loss + cfg.phone_weight * parts["phone_ce"]
        return parts

    def train_step(self, batch) -> dict:
        mels, truth, *phones = self.to_device(batch)
        self.train_mode()
        with self.autocast():
            parts = self.losses(self.model, mels, truth, *phones)
        value = self.guard(parts["loss"], "inverter loss")
        self.optimize(parts["loss"])
        self.set_learning_rate()
        logged = ("gap_mm", "position_mm", "velocity_mm", "closure_bce", "phone_ce")
        return {"loss": value, **{k: float(parts[k].detach()) for k in logged if k in parts}}

    def set_learning_rate(self) -> None:
        """Cosine decay from lr to lr / 10 over the run's steps."""
        progress = min(self.step / max(self.cfg.steps, 1), 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = self.cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.net.eval()
        sums: dict[str, float] = {}
        counts = {place: np.zeros(3) for place in SCORED_CLOSURES}  # tp, fp, fn
        batches = 0
        for batch in self.val_loader:
            mels, truth = self.to_device(batch)
            parts = self.losses(self.net, mels, truth)
            for key in ("loss", "gap_mm", "position_mm", "velocity_mm", "closure_bce"):
                sums[key] = sums.get(key, 0.0) + float(parts[key])
            said = parts["predicted"][..., S.CLOSED] > S.CLOSED_AT
            true = parts["truth"][..., S.CLOSED] > S.CLOSED_AT
            for place in SCORED_CLOSURES:
                i = S.CLOSURE_PLACES.index(place)
                counts[place] += [float((said[..., i] & true[..., i]).sum()), float((said[..., i] & ~true[..., i]).sum()),
                                  float((~said[..., i] & true[..., i]).sum())]
            batches += 1
        metrics = {k: v / max(batches, 1) for k, v in sums.items()}
        for place, (tp, fp, fn) in counts.items():
            metrics[f"{place}_closure_recall"] = tp / (tp + fn) if tp + fn else float("nan")
            metrics[f"{place}_closure_precision"] = tp / (tp + fp) if tp + fp else float("nan")
        return metrics


def renderer_l1(drawn: torch.Tensor, frames: torch.Tensor, closure_pixels: torch.Tensor,
                closure_pixel_weight: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(plain L1, L1 with the closure pixels weighing 1 + closure_pixel_weight): a weighted
    mean, so a batch without a closure, or weight 0, gives the plain L1."""
    error = (drawn - frames).abs()
    weight = 1.0 + closure_pixel_weight * closure_pixels
    return error.mean(), (error * weight).sum() / weight.sum()


class RendererRun(OneOptimizerRun):
    kind = RENDERER_KIND
    early_stop_metric = "l1"

    def build(self, train_clips, val_clips) -> None:
        cfg = self.cfg
        dataset = ClipDataset(cfg.data)
        speakers = {c.speaker for c in train_clips + val_clips}
        grids = {}
        for speaker in sorted(speakers):
            grid = dataset.grid(speaker)
            if grid is None:
                raise DatasetError(f"{dataset.root}: speaker {speaker} has no analysis grid (grids/{speaker}.json); "
                                   "the renderer draws states on it")
            grids[speaker] = grid if dataset.image_size == cfg.image_size else grid.resized(dataset.image_size, cfg.image_size)
        self.make_datasets(RenderSamples, train_clips, val_clips, grids=grids)
        self.train_set.state_noise_mm = cfg.state_noise_mm
        self.net = Renderer(cfg.width, cfg.in_channels).to(self.rt.device)
        self.model = self.rt.wrap(self.net)
        self.teacher = Teacher(cfg.teacher, self.meta, self.rt.device, RENDERER_KIND) if cfg.teacher else None
        self.make_optimizer()

    @property
    def meta(self) -> dict:
        return {**self.net.architecture(), "image_size": int(self.cfg.image_size), "lookahead_ms": float(self.cfg.lookahead_ms)}

    def init_weights(self) -> None:
        path = self.cfg.init
        if path == "scratch":
            return
        ckpt = read_checkpoint(path)
        kind = checkpoint_kind(ckpt)
        if kind not in (RENDERER_KIND, "generator") or not is_ours(ckpt):
            raise CheckpointError(f"--init {path}: a {kind or 'unrecognised'} checkpoint; the renderer starts from 'scratch', "
                                  "a renderer of ours or a generator of ours of the same width")
        saved = dict(ckpt["model"])
        if float(saved.get("width", -1)) != self.net.width or int(saved.get("in_channels", -1)) != self.net.in_channels:
            raise CheckpointError(f"--init {path}: width {saved.get('width')} / {saved.get('in_channels')} channels, "
                                  f"this run {self.net.width} / {self.net.in_channels}")
        weights = ckpt["state_dict"]
        if kind == "generator":  # the encoder-decoder only: the state embedding replaces the audio encoder
            own = self.net.state_dict()
            weights = {**{k: v for k, v in weights.items() if not k.startswith("audio_encoder.")},
                       **{k: v for k, v in own.items() if k.startswith("audio_encoder.")}}
        load_state_dict_checked(self.net, weights, path)
        self.log(f"initialised from {path} ({kind})")

    def train_step(self, batch) -> dict:
        face, states, frames, closure_pixels = self.to_device(batch)
        self.model.train()
        with self.autocast():
            drawn = self.model(states, face)
            distill = distill_loss(drawn, self.teacher(states, face)) if self.teacher is not None else None
        l1, weighted = renderer_l1(drawn.float(), frames, closure_pixels, self.cfg.closure_pixel_weight)
        loss = l1_target(weighted, distill, self.cfg.distill_weight)
        value = self.guard(loss, "renderer L1")
        self.optimize(loss)
        return {"loss": value, "l1": float(l1.detach()), **({} if distill is None else {"distill": float(distill.detach())})}

    def checkpoint_extra(self) -> dict:
        extra = super().checkpoint_extra()
        return extra if self.teacher is None else {**extra, "teacher": self.teacher.record()}

    @torch.no_grad()
    def evaluate(self) -> dict:
        self.net.eval()
        total, count, closed_total, closed_count = 0.0, 0, 0.0, 0.0
        for batch in self.val_loader:
            face, states, frames, closure_pixels = self.to_device(batch)
            error = (self.net(states, face) - frames).abs()
            total += float(error.sum())
            count += frames.numel()
            closed_total += float((error * closure_pixels).sum())
            closed_count += float(closure_pixels.sum())
        metrics = {"l1": total / max(count, 1)}
        if closed_count:  # L1 on the pixels of the closed places' gridlines
            metrics["closure_l1"] = closed_total / closed_count
        return metrics


def train(cfg: InverterConfig | RendererConfig, out: str | Path, hooks: Hooks | None = None, log=None) -> dict:
    run = InverterRun if isinstance(cfg, InverterConfig) else RendererRun
    return run(cfg, out, hooks, log).run()
