"""`rtmri train syncnet`: the SyncNet expert on rtMRI lower halves (cosine similarity +
BCE), and the training loop it shares with `rtmri train generator` (``TrainingRun``).

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

from rtmri import RtmriError
from rtmri.clips import ClipDataset
from rtmri.training.config import CommonConfig, Runtime, SyncNetConfig, setup_runtime, write_config
from rtmri.training.data import StepBatchSampler, SyncNetSamples
from rtmri.training.models import SyncNet, cosine_loss
from rtmri.training.models.checkpoints import (
    CheckpointError,
    atomic_save,
    check_compatible,
    is_ours,
    load_weights,
    model_meta,
    new_checkpoint,
    read_checkpoint,
    rng_state,
    set_rng_state,
)

LAST = "last.pt"
BEST = "best.pt"
METRICS = "metrics.jsonl"
VAL_SEED_OFFSET = 1_000_003  # validation samples use seed + this: a fixed set, apart from training's


class TrainingError(RtmriError):
    """Training stopped on a diverged (NaN / exploding) loss or a run it cannot continue."""


class SimulatedKill(Exception):
    """Test hook: the process 'dies' here, after a step, without writing anything."""


@dataclass
class Hooks:
    stop_after: int | None = None  # stop cleanly (with a checkpoint) once this step is done
    kill_after: int | None = None  # test: die abruptly once this step is done (no checkpoint)
    nan_at_step: int | None = None  # test: the loss of this step (1-based) becomes NaN


class TrainingRun:
    """The loop shared by the SyncNet and the generator; subclasses provide the networks,
    the step, the validation and what goes into a checkpoint."""

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

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if not self.rt.distributed:
            return module
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def autocast(self):
        return torch.autocast(device_type=self.rt.device.type, dtype=torch.float16, enabled=self.rt.amp)

    def to_device(self, batch):
        return [t.to(self.rt.device, non_blocking=True) for t in batch]

    def all_mean(self, value: torch.Tensor) -> float:
        value = value.detach().float().reshape(1).clone()
        if self.rt.distributed:
            import torch.distributed as dist

            dist.all_reduce(value)
            value /= self.rt.world_size
        return float(value.item())

    def all_sum(self, values: torch.Tensor) -> torch.Tensor:
        if self.rt.distributed:
            import torch.distributed as dist

            dist.all_reduce(values)
        return values

    def guard(self, loss: torch.Tensor, what: str = "loss") -> float:
        """The step's loss (mean over processes); stop before any update when it is not
        finite or above max_loss, leaving the last checkpoint as it is."""
        if self.hooks.nan_at_step is not None and self.step + 1 == self.hooks.nan_at_step:
            loss = loss + float("nan")
        value = self.all_mean(loss)
        if not math.isfinite(value) or value > self.cfg.max_loss:
            kind = "not finite" if not math.isfinite(value) else f"above max_loss {self.cfg.max_loss:g}"
            if self.last_saved:
                kept = f"the last good checkpoint (step {self.last_saved[0]}) is intact: {self.last_saved[1]}"
            else:
                kept = "no checkpoint had been written yet"
            message = (
                f"training stopped at step {self.step + 1}: the {what} is {value} ({kind}); {kept}. "
                f"Lower the learning rate (now {self.cfg.lr:g}) or check the data, then re-run with the same --out to resume."
            )
            self.record({"step": self.step + 1, "split": "train", "event": "diverged", "loss": None, "message": message})
            raise TrainingError(message)
        return value

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
            kept = f"the last good checkpoint (step {self.last_saved[0]}) is intact: {self.last_saved[1]}" if self.last_saved else "no checkpoint had been written yet"
            raise TrainingError(
                f"training stopped at step {self.step}: {len(bad)} weight tensor(s) are not finite (e.g. {bad[0]}); {kept}. "
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
            ckpt = new_checkpoint(self.kind, self.unwrap(self.main_model), self.meta, self.step, epoch,
                                  config=self.cfg.to_dict(), **extra)
            atomic_save(ckpt, path)
        if self.rt.distributed:
            import torch.distributed as dist

            dist.barrier()
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

    def _truncate_metrics(self) -> None:
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
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text("".join(k + "\n" for k in kept))
        tmp.replace(path)

    # ---- the loop --------------------------------------------------------------------
    def run(self) -> dict:
        cfg = self.cfg
        self.rt = setup_runtime(cfg)
        dataset = ClipDataset(cfg.data)
        train_clips, val_clips = dataset.require_split("train"), dataset.require_split("val")
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)
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
        if self.rt.main:
            write_config(cfg, self.out)
            self._truncate_metrics()
            for stale in self.ckpt_dir.glob(".*.tmp"):  # a save interrupted by a kill
                stale.unlink(missing_ok=True)
        if self.step >= cfg.steps or self._early_stopped():
            why = self.state["stop_reason"] or f"step {self.step} of {cfg.steps}"
            self.log(f"nothing to do: the run has finished ({why}); raise --steps to continue")
            return self.summary(0, 0.0)
        if self.rt.main and cfg.tensorboard:
            self.tb = _summary_writer(self.out / "tensorboard", self.step + 1 if resumed else None, self.log)

        start_step, started = self.step, time.perf_counter()
        progress = _progress(cfg.steps, self.step, enabled=cfg.progress and self.rt.main, desc=self.kind)
        batches = iter(self.loader(self.train_set, self.step))
        try:
            while True:
                batch = next(batches)
                values = self.train_step(self.to_device(batch))
                self.step += 1
                self.record({"step": self.step, "split": "train", **values})
                if self.step % cfg.log_every == 0:
                    self.scalars("train", values)
                progress.update(1)
                progress.set_postfix({k: f"{v:.4f}" for k, v in values.items() if isinstance(v, float)}, refresh=False)
                self.after_step()

                done = self.step >= cfg.steps
                if self.step % cfg.eval_every == 0 or done:
                    self._validate()
                stopping = done or bool(self.state["stop_reason"]) or (
                    self.hooks.stop_after is not None and self.step >= self.hooks.stop_after
                )
                if self.step % cfg.checkpoint_every == 0 or stopping:
                    self.save(LAST)
                if self.hooks.kill_after is not None and self.step >= self.hooks.kill_after:
                    raise SimulatedKill(f"killed after step {self.step}")
                if stopping:
                    break
        finally:
            progress.close()
            del batches
            if self.tb is not None:
                self.tb.close()
            if self.rt.distributed:
                import torch.distributed as dist

                if dist.is_initialized():
                    dist.destroy_process_group()
        elapsed = time.perf_counter() - started
        if self.state["stop_reason"]:
            self.log(self.state["stop_reason"])
        return self.summary(self.step - start_step, elapsed)

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


def load_optimizer(optimizer: torch.optim.Optimizer, state: dict, lr: float) -> None:
    """Restore an optimiser's state with the run's current learning rate (a resume may
    lower it, e.g. after a diverged loss)."""
    optimizer.load_state_dict(state)
    for group in optimizer.param_groups:
        group["lr"] = lr


def default_log(message: str) -> None:
    """Print above the progress bar."""
    from tqdm import tqdm

    tqdm.write(message)


def _summary_writer(folder: Path, purge_step: int | None, log):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(log_dir=str(folder), purge_step=purge_step)


class _NoProgress:
    def update(self, n):
        pass

    def set_postfix(self, *args, **kwargs):
        pass

    def close(self):
        pass


def _progress(total: int, initial: int, enabled: bool, desc: str):
    if not enabled:
        return _NoProgress()
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, desc=desc, dynamic_ncols=True, smoothing=0.05)


# ---- the SyncNet expert ----------------------------------------------------------------


class OneOptimizerRun(TrainingRun):
    """A run that trains ``self.net`` with one Adam optimizer and the AMP gradient scaler
    (the SyncNet expert, the baseline); the generator's run has a discriminator as well."""

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


class SyncNetRun(OneOptimizerRun):
    kind = "syncnet"
    early_stop_metric = "loss"

    def build(self, train_clips, val_clips) -> None:
        cfg = self.cfg
        common = dict(image_size=cfg.image_size, channels=cfg.in_channels, lookahead_ms=cfg.lookahead_ms)
        self.train_set = SyncNetSamples(train_clips, split="train", seed=cfg.seed, **common)
        self.val_set = SyncNetSamples(val_clips, split="val", seed=cfg.seed + VAL_SEED_OFFSET, **common)
        self.samples_per_epoch = len(self.train_set)
        self.net = SyncNet(cfg.width, cfg.in_channels).to(self.rt.device)
        self.model = self.wrap(self.net)
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
        loss_sum, correct, n = self.all_sum(totals).tolist()
        return {"loss": loss_sum / n, "accuracy": correct / n}


def train(cfg: SyncNetConfig, out: str | Path, hooks: Hooks | None = None, log=None) -> dict:
    """Train (or resume) a SyncNet expert run in ``out``; returns a summary dict."""
    return SyncNetRun(cfg, out, hooks, log).run()
