"""The training loop shared by `rtmri train syncnet | generator | baseline` (``TrainingRun``).

A run folder holds::

    run.toml                 the resolved config (re-running with the same --out resumes)
    checkpoints/last.pt      resume checkpoint (written atomically every checkpoint_every)
    checkpoints/best.pt      weights of the best validation so far (the one to export)
    metrics.jsonl            one JSON line per training step and per validation
    tensorboard/             TensorBoard event files
    samples/                 validation sample images (generator)

Resume: weights, optimiser(s), gradient scaler, Python / numpy / torch RNG states and the
step are restored from last.pt; the data order is a function of (seed, step) (see
rtmri.training.data), so a resumed run continues the uninterrupted run's loss curve.
"""

from __future__ import annotations

import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from rtmri import RtmriError
from rtmri.clips import ClipDataset
from rtmri.files import atomic_write, file_sha256, remove_stale_temporaries
from rtmri.training.augment import Augmentation
from rtmri.training.config import CommonConfig, write_config
from rtmri.training.data import VAL_SEED_OFFSET, StepBatchSampler
from rtmri.training.models.checkpoints import (
    CheckpointError,
    atomic_save,
    check_compatible,
    is_ours,
    model_meta,
    new_checkpoint,
    read_checkpoint,
    rng_state,
    set_rng_state,
)
from rtmri.training.runtime import Runtime, setup_runtime

LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"


class TrainingError(RtmriError):
    """Training stopped on a diverged (NaN / exploding) loss or a run it cannot continue."""


@dataclass
class Hooks:
    """Where a caller steps into the loop: ``stop_after`` (``--stop-after``); tests
    subclass it to inject faults (a kill after a step, a NaN loss)."""

    stop_after: int | None = None  # stop cleanly (with a checkpoint) once this step is done

    def should_stop(self, step: int) -> bool:
        return self.stop_after is not None and step >= self.stop_after

    def loss(self, step: int, loss: torch.Tensor) -> torch.Tensor:
        """The loss of step ``step`` (1-based) as the loop will check and use it."""
        return loss

    def step_done(self, step: int) -> None:
        """Called once step ``step`` is done, its validation and checkpoint written."""


class TrainingRun:
    """The loop shared by the SyncNet, the generator and the baseline; subclasses provide
    the networks, the step, the validation and what goes into a checkpoint."""

    kind = "common"
    early_stop_metric = "loss"

    def __init__(self, cfg: CommonConfig, out: str | Path, hooks: Hooks | None = None, log=None) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.hooks = hooks or Hooks()
        self._log = log or default_log
        self.rt: Runtime | None = None
        self.step = 0
        self.state = {"best": math.inf, "best_step": 0, "bad_evals": 0, "stop_reason": ""}
        self.last_saved: tuple[int, Path] | None = None
        self.init_source: dict | None = None
        self.tb = None
        self.history: list[dict] = []
        self._val_loader: DataLoader | None = None

    # ---- to override -----------------------------------------------------------------
    def build(self, train_clips, val_clips) -> None:
        raise NotImplementedError

    def init_weights(self) -> None:
        raise NotImplementedError

    def checkpoint_extra(self) -> dict:
        raise NotImplementedError

    def load_extra(self, ckpt: dict) -> None:
        raise NotImplementedError

    def train_step(self, batch) -> dict:
        """One optimisation step; returns float metrics including 'loss'. Must call
        ``self.guard(loss)`` before any optimiser step."""
        raise NotImplementedError

    def evaluate(self) -> dict:
        raise NotImplementedError

    def after_eval(self, metrics: dict) -> None:
        pass

    def after_step(self) -> None:
        pass

    @property
    def main_model(self) -> torch.nn.Module:
        raise NotImplementedError

    def modules_to_check(self) -> list[torch.nn.Module]:
        """Networks whose weights must be finite before a checkpoint is written."""
        return [self.unwrap(self.main_model)]

    # ---- helpers ---------------------------------------------------------------------
    def make_datasets(self, samples, train_clips, val_clips, **options) -> None:
        """``self.train_set`` (augmented as ``cfg.augment`` says) and ``self.val_set`` (a
        fixed set, never augmented) of the dataset class ``samples``."""
        cfg = self.cfg
        common = dict(image_size=cfg.image_size, channels=cfg.in_channels, lookahead_ms=cfg.lookahead_ms, **options)
        self.train_set = samples(train_clips, split="train", seed=cfg.seed, augmentation=Augmentation.from_spec(cfg.augment, cfg.seed),
                                 **common)
        self.val_set = samples(val_clips, split="val", seed=cfg.seed + VAL_SEED_OFFSET, **common)
        self.samples_per_epoch = len(self.train_set)

    def log(self, message: str) -> None:
        if self.rt is None or self.rt.main:
            self._log(f"[{self.kind} step {self.step}] {message}")

    @property
    def meta(self) -> dict:
        return model_meta(self.unwrap(self.main_model), self.cfg.image_size, self.cfg.lookahead_ms)

    @property
    def ckpt_dir(self) -> Path:
        return self.out / "checkpoints"

    @staticmethod
    def unwrap(module: torch.nn.Module) -> torch.nn.Module:
        return module.module if hasattr(module, "module") else module

    def autocast(self):
        return torch.autocast(device_type=self.rt.device.type, dtype=torch.float16, enabled=self.rt.amp)

    def to_device(self, batch):
        return [t.to(self.rt.device, non_blocking=True) for t in batch]

    def guard(self, loss: torch.Tensor, what: str = "loss") -> float:
        """The step's loss (mean over processes); stop before any update when it is not
        finite or above max_loss, leaving the last checkpoint as it is."""
        value = self.rt.all_mean(self.hooks.loss(self.step + 1, loss))
        if not math.isfinite(value) or value > self.cfg.max_loss:
            kind = "not finite" if not math.isfinite(value) else f"above max_loss {self.cfg.max_loss:g}"
            message = (
                f"training stopped at step {self.step + 1}: the {what} is {value} ({kind}); {self._kept()}. "
                f"Lower the learning rate (now {self.cfg.lr:g}) or check the data, then re-run with the same --out to resume."
            )
            self.record({"step": self.step + 1, "split": "train", "event": "diverged", "loss": None, "message": message})
            raise TrainingError(message)
        return value

    def _kept(self) -> str:
        if self.last_saved:
            return f"the last good checkpoint (step {self.last_saved[0]}) is intact: {self.last_saved[1]}"
        return "no checkpoint had been written yet"

    def record(self, entry: dict) -> None:
        if not self.rt.main:
            return
        self.history.append(entry)
        with open(self.out / METRICS, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def scalars(self, prefix: str, values: dict) -> None:
        if self.tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and value is not None and math.isfinite(value):
                    self.tb.add_scalar(f"{prefix}/{key}", value, self.step)

    def loader(self, dataset, start_step: int) -> DataLoader:
        sampler = StepBatchSampler(self.cfg.batch_size, start_step, self.rt.rank, self.rt.world_size)
        # Starting the iterator draws a seed from this generator (by default the global
        # torch RNG, which dropout draws from too): its own generator keeps a resumed run's
        # dropout masks those of the uninterrupted run. The samples never use the seed.
        return DataLoader(dataset, batch_sampler=sampler, num_workers=self.cfg.num_workers,
                          pin_memory=self.rt.device.type == "cuda", generator=torch.Generator().manual_seed(self.cfg.seed))

    @property
    def val_loader(self) -> DataLoader:
        """The validation loader over ``self.val_set``, made on first use."""
        if self._val_loader is None:
            self._val_loader = self.eval_loader(self.val_set)
        return self._val_loader

    def eval_loader(self, dataset) -> DataLoader:
        indices = list(range(self.rt.rank, self.cfg.eval_samples, self.rt.world_size))
        per_rank = max(1, self.cfg.batch_size // self.rt.world_size)
        return DataLoader(dataset, batch_size=per_rank, sampler=indices, num_workers=self.cfg.num_workers,
                          persistent_workers=self.cfg.num_workers > 0, pin_memory=self.rt.device.type == "cuda")

    # ---- checkpoints -----------------------------------------------------------------
    def save(self, name: str = LAST) -> Path:
        path = self.ckpt_dir / name
        bad = [
            k for module in self.modules_to_check() for k, v in module.state_dict().items()
            if v.is_floating_point() and not torch.isfinite(v).all()
        ]
        if bad:
            raise TrainingError(
                f"training stopped at step {self.step}: {len(bad)} weight tensor(s) are not finite (e.g. {bad[0]}); {self._kept()}. "
                f"Lower the learning rate (now {self.cfg.lr:g}) and re-run with the same --out to resume."
            )
        if self.rt.main:
            epoch = (self.step * self.cfg.batch_size) // max(1, self.samples_per_epoch)
            extra = self.checkpoint_extra()
            if name == LAST:  # the resume checkpoint; best.pt holds the weights only
                extra.update(rng=rng_state(), run_state=dict(self.state),
                             sampler={"seed": self.cfg.seed, "next_index": self.step * self.cfg.batch_size})
            else:
                extra = {k: v for k, v in extra.items() if not k.endswith("optimizer") and k != "scaler"}
            if self.init_source is not None:
                extra["init_source"] = self.init_source
            ckpt = new_checkpoint(self.kind, self.unwrap(self.main_model), self.meta, self.step, epoch,
                                  config=self.cfg.to_dict(), **extra)
            atomic_save(ckpt, path)
        self.rt.barrier()
        if name == LAST:
            self.last_saved = (self.step, path)
        return path

    def resume(self) -> bool:
        path = self.ckpt_dir / LAST
        if not path.is_file():
            return False
        ckpt = read_checkpoint(path)
        if not is_ours(ckpt) or ckpt.get("kind") != self.kind:
            raise CheckpointError(f"{path}: not a {self.kind} run checkpoint (kind {ckpt.get('kind')!r}); use another --out")
        check_compatible(ckpt["model"], self.meta, f"{path} (resuming {self.out})")
        self.unwrap(self.main_model).load_state_dict(ckpt["state_dict"])
        self.load_extra(ckpt)
        self.step = int(ckpt["global_step"])
        self.init_source = ckpt.get("init_source")
        self.state.update(ckpt.get("run_state", {}))
        set_rng_state(ckpt["rng"])
        self.last_saved = (self.step, path)
        return True

    def init_check(self, path: str, ckpt: dict) -> None:
        """--init from one of our checkpoints: refuse another width, channel count (unless
        colour into grey), image size or (without init_any_lookahead) lookahead."""
        if not is_ours(ckpt):
            # public wav2lip: full width; colour folds into grey; its lookahead (wav2lip's)
            # may be fine-tuned to another one
            check_compatible({"width": 1.0}, self.meta, f"--init {path} (a public wav2lip checkpoint)")
            return
        saved = dict(ckpt["model"])
        if saved.get("in_channels") == 3 and self.cfg.in_channels == 1:
            saved["in_channels"] = 1
        check_compatible(saved, self.meta, f"--init {path}", check_lookahead=not self.cfg.init_any_lookahead)

    # ---- the loop: set up, train, tear down --------------------------------------------
    def run(self) -> dict:
        """Train (or resume) until the last step, an early stop or ``Hooks.should_stop``;
        returns a summary."""
        resumed = self._set_up()
        if self.step >= self.cfg.steps or self._early_stopped():
            why = self.state["stop_reason"] or f"step {self.step} of {self.cfg.steps}"
            self.log(f"nothing to do: the run has finished ({why}); raise --steps to continue")
            return self.summary(0, 0.0)
        start_step, started = self.step, time.perf_counter()
        try:
            self._open_tensorboard(resumed)
            self._train()
        finally:
            self._tear_down()
        if self.state["stop_reason"]:
            self.log(self.state["stop_reason"])
        return self.summary(self.step - start_step, time.perf_counter() - started)

    def weights_ready(self) -> None:
        """Called once the weights are the initial or the resumed ones, before the first step."""

    def clips(self) -> tuple[list, list]:
        """The training and validation clips: DATA's."""
        dataset = ClipDataset(self.cfg.data)
        return dataset.require_split("train"), dataset.require_split("val")

    def _set_up(self) -> bool:
        """Runtime, data, networks, then the resume checkpoint or the initial weights;
        True when resumed."""
        self.rt = setup_runtime(self.cfg)
        train_clips, val_clips = self.clips()
        seed_everything(self.cfg.seed)
        self.build(train_clips, val_clips)
        if self.rt.main:
            self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume()
        if resumed:
            self.log(f"resuming {self.out} from step {self.step}")
            if self.state["stop_reason"] and not self._early_stopped():
                self.state["stop_reason"] = ""  # e.g. patience raised: go on
        else:
            self.init_weights()
            self.init_source = init_source(self.cfg)
        self.weights_ready()
        if self.rt.main:
            write_config(self.cfg, self.out)
            self._truncate_metrics()
            remove_stale_temporaries(self.ckpt_dir)  # a save interrupted by a kill
        return resumed

    def _open_tensorboard(self, resumed: bool) -> None:
        if self.rt.main and self.cfg.tensorboard:
            self.tb = _summary_writer(self.out / "tensorboard", self.step + 1 if resumed else None, self.log)

    def _train(self) -> None:
        progress = tqdm(total=self.cfg.steps, initial=self.step, desc=self.kind, dynamic_ncols=True, smoothing=0.05,
                        disable=not (self.cfg.progress and self.rt.main))
        batches = iter(self.loader(self.train_set, self.step))
        try:
            while True:
                values = self._take_step(next(batches))
                progress.update(1)
                progress.set_postfix({k: f"{v:.4f}" for k, v in values.items() if isinstance(v, float)}, refresh=False)
                if self._end_step():
                    break
        finally:
            progress.close()
            del batches  # its worker processes end before the process group does

    def _take_step(self, batch) -> dict:
        values = self.train_step(self.to_device(batch))
        self.step += 1
        self.record({"step": self.step, "split": "train", **values})
        if self.step % self.cfg.log_every == 0:
            self.scalars("train", values)
        self.after_step()
        return values

    def _end_step(self) -> bool:
        """Validation and checkpoint on their schedule after a step; True when the run stops here."""
        done = self.step >= self.cfg.steps
        if self.step % self.cfg.eval_every == 0 or done:
            self._validate()
        stopping = done or bool(self.state["stop_reason"]) or self.hooks.should_stop(self.step)
        if self.step % self.cfg.checkpoint_every == 0 or stopping:
            self.save(LAST)
        self.hooks.step_done(self.step)
        return stopping

    def _tear_down(self) -> None:
        if self.tb is not None:
            self.tb.close()
        self.rt.close()

    def _early_stopped(self) -> bool:
        return bool(self.state["stop_reason"]) and self.cfg.patience > 0 and self.state["bad_evals"] >= self.cfg.patience

    def _validate(self) -> None:
        metrics = self.evaluate()
        value = metrics[self.early_stop_metric]
        improved = value < self.state["best"] - self.cfg.min_delta
        if improved:
            self.state.update(best=value, best_step=self.step, bad_evals=0)
        else:
            self.state["bad_evals"] += 1
        self.record({"step": self.step, "split": "val", **metrics})
        self.scalars("val", metrics)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))
        self.log(f"validation: {shown}" + (" (best)" if improved else ""))
        if improved:
            self.save(BEST)
        self.after_eval(metrics)
        if self.cfg.patience and self.state["bad_evals"] >= self.cfg.patience:
            self.state["stop_reason"] = (
                f"early stopping at step {self.step}: validation {self.early_stop_metric} has not improved for "
                f"{self.state['bad_evals']} validations; best {self.state['best']:.5f} at step {self.state['best_step']} "
                f"({self.ckpt_dir / BEST})"
            )

    def _truncate_metrics(self) -> None:
        """Drop the metrics past the resumed step (and a diverged step's line)."""
        path = self.out / METRICS
        if not path.is_file():
            return
        kept = []
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line torn by a kill
            if entry.get("step", 0) <= self.step and entry.get("event") != "diverged":
                kept.append(json.dumps(entry))
        atomic_write(path, "".join(k + "\n" for k in kept))

    def summary(self, steps_run: int, seconds: float) -> dict:
        train = [e for e in self.history if e.get("split") == "train" and e.get("loss") is not None]
        val = [e for e in self.history if e.get("split") == "val"]
        return {
            "kind": self.kind,
            "out": str(self.out),
            "step": self.step,
            "steps_run": steps_run,
            "seconds": seconds,
            "steps_per_second": steps_run / seconds if seconds > 0 else 0.0,
            "last_train": train[-1] if train else None,
            "last_val": val[-1] if val else None,
            "best": self.state["best"],
            "best_step": self.state["best_step"],
            "stop_reason": self.state["stop_reason"],
            "device": str(self.rt.device) if self.rt else "",
        }


class OneOptimizerRun(TrainingRun):
    """A run that trains ``self.net`` with one Adam optimizer and the AMP gradient scaler
    (the SyncNet expert, the baseline); the generator's run has a discriminator as well."""

    @property
    def main_model(self) -> torch.nn.Module:
        return self.net

    def make_optimizer(self) -> None:
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=self.cfg.lr)
        self.scaler = torch.amp.GradScaler(self.rt.device.type, enabled=self.rt.amp)

    def checkpoint_extra(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict()}

    def load_extra(self, ckpt: dict) -> None:
        load_optimizer(self.optimizer, ckpt["optimizer"], self.cfg.lr)
        self.scaler.load_state_dict(ckpt["scaler"])

    def optimize(self, loss: torch.Tensor) -> None:
        """One step on a loss already passed through ``self.guard``."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()


def init_source(cfg: CommonConfig) -> dict | None:
    """Where a run's first weights came from: --init as given and the SHA-256 of the file then
    (a path alone stops saying which weights once the file is replaced, as a shipped one is)."""
    path = getattr(cfg, "init", "scratch")
    return None if path == "scratch" else {"path": str(path), "sha256": file_sha256(path)}


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict, lr: float) -> None:
    """Restore an optimiser's state with the run's current learning rate (a resume may
    lower it, e.g. after a diverged loss)."""
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        group["lr"] = lr


def default_log(message: str) -> None:
    """Print above the progress bar."""
    tqdm.write(message)


def _summary_writer(folder: Path, purge_step: int | None, log):
    try:
        from torch.utils.tensorboard import SummaryWriter  # tensorboard: optional
    except ImportError:
        log("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)
