"""Run configuration: a TOML file per run (``run.toml`` next to its checkpoints) and the
command-line options generated from the same fields.

Precedence, lowest first: defaults, the run folder's saved ``run.toml`` (a resume), a
``--config`` file, then options given on the command line.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from rtmri import RtmriError
from rtmri.alignment import DEFAULT_LOOKAHEAD_MS, AlignmentError, lookahead_samples
from rtmri.clips import IMAGE_SIZE
from rtmri.files import atomic_write
from rtmri.training.augment import AugmentError, canonical_spec

CONFIG_NAME = "run.toml"


class ConfigError(RtmriError, ValueError):
    """A run configuration that is invalid or cannot be read."""


def _opt(default, help_text: str, cli: bool = True):
    return field(default=default, metadata={"help": help_text, "cli": cli})


@dataclass
class CommonConfig:
    data: str = _opt("", "prepared clip dataset folder (rtmri prepare)", cli=False)
    width: float = _opt(1.0, "channel width multiplier (1.0 = wav2lip, e.g. 0.5, 0.25, 0.125)")
    in_channels: int = _opt(3, "image channels of the network: 3 (wav2lip, grey repeated) or 1")
    image_size: int = _opt(IMAGE_SIZE, "frame size in pixels (the wav2lip networks need 96)")
    lookahead_ms: float = _opt(DEFAULT_LOOKAHEAD_MS, "audio lookahead of a frame's mel window, ms (132.5 = wav2lip, 0 = causal)")
    init: str = _opt("scratch", "initial weights: 'scratch', a public wav2lip checkpoint or one of ours")
    init_any_lookahead: bool = _opt(False, "allow --init from a checkpoint of ours with another lookahead (fine-tune to a new one)")
    steps: int = _opt(100_000, "total training steps")
    batch_size: int = _opt(16, "batch size (all processes together)")
    lr: float = _opt(1e-4, "Adam learning rate")
    eval_every: int = _opt(1000, "validate every N steps")
    eval_samples: int = _opt(512, "validation samples (a fixed set)")
    checkpoint_every: int = _opt(1000, "write the resume checkpoint every N steps")
    log_every: int = _opt(10, "TensorBoard scalars every N steps")
    patience: int = _opt(10, "early stopping: validations without improvement before stopping (0 = never)")
    min_delta: float = _opt(0.0, "early stopping: smallest improvement that counts")
    seed: int = _opt(0, "random seed (data sampling and initial weights)")
    num_workers: int = _opt(2, "data loader worker processes")
    device: str = _opt("auto", "'auto' (CUDA when present), 'cpu', 'cuda' or 'cuda:N'")
    amp: bool = _opt(True, "mixed precision on CUDA (float16 with a gradient scaler)")
    max_loss: float = _opt(1000.0, "stop when the training loss exceeds this (exploding) or is not finite")
    progress: bool = _opt(True, "progress bar")
    tensorboard: bool = _opt(True, "TensorBoard logs in RUN_DIR/tensorboard")
    augment: str = _opt("default", "audio augmentation of the training samples (never validation's): 'none', 'default', or "
                        "KIND[=P],... of room, noise, babble, microphone, gain, vtlp; run.toml records the resolved list")

    kind = "common"

    def validate(self) -> None:
        if self.width <= 0 or not math.isfinite(self.width):
            raise ConfigError(f"width must be > 0, got {self.width}")
        if self.in_channels not in (1, 3):
            raise ConfigError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if self.image_size != IMAGE_SIZE:
            raise ConfigError(f"image_size {self.image_size}: the wav2lip networks take {IMAGE_SIZE} x {IMAGE_SIZE} frames")
        try:
            lookahead_samples(self.lookahead_ms)
        except AlignmentError as exc:
            raise ConfigError(str(exc)) from exc
        for name in ("steps", "batch_size", "eval_every", "eval_samples", "checkpoint_every", "log_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.patience < 0 or self.num_workers < 0:
            raise ConfigError("patience and num_workers must be >= 0")
        if not self.data:
            raise ConfigError("no dataset: give DATA (a folder written by `rtmri prepare`)")
        try:
            self.augment = canonical_spec(self.augment)
        except AugmentError as exc:
            raise ConfigError(str(exc)) from exc

    def to_dict(self) -> dict:
        return {"kind": self.kind, **dataclasses.asdict(self)}


@dataclass
class SyncNetConfig(CommonConfig):
    batch_size: int = _opt(64, "batch size (all processes together)")
    kind = "syncnet"


@dataclass
class DistillConfig(CommonConfig):
    """A run that draws frames and may learn them from a teacher of its kind (rtmri.training.distill)."""

    teacher: str = _opt("", "a checkpoint of this kind (any width; same channels, image size and lookahead) to distil: the L1 target "
                        "becomes (1 - W) L1(truth) + W L1(teacher's frames)")
    distill_weight: float = _opt(0.0, "weight W of the teacher's frames in the L1 target (with --teacher)")

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.distill_weight <= 1:
            raise ConfigError(f"distill_weight must be in [0, 1], got {self.distill_weight}")
        if bool(self.teacher) != (self.distill_weight > 0):
            raise ConfigError("distillation needs both --teacher CHECKPOINT and --distill-weight W > 0 "
                              f"(got teacher {self.teacher!r}, distill_weight {self.distill_weight})")


@dataclass
class GeneratorConfig(DistillConfig):
    syncnet: str = _opt("", "the SyncNet expert checkpoint (ours or wav2lip's lipsync_expert.pth)")
    init_disc: str = _opt("scratch", "initial quality discriminator: 'scratch' or a public wav2lip disc checkpoint")
    sync_weight: float = _opt(0.03, "weight s of the sync loss, once the validation sync loss is below sync_threshold")
    sync_threshold: float = _opt(0.75, "validation sync loss below which the sync loss is switched on")
    disc_weight: float = _opt(0.07, "weight d of the GAN loss (0 = no discriminator)")
    disc_lr: float = _opt(1e-4, "Adam learning rate of the discriminator")
    sample_every: int = _opt(1000, "validation sample images every N steps")
    sample_count: int = _opt(8, "validation samples in each image")
    masked_input: str = _opt("reference", "upper half of the masked face input: 'reference' (what streaming has) or 'target' (wav2lip's recipe)")
    init_any_width: bool = _opt(False, "allow --init from a generator checkpoint of ours at half this width: widened so that it computes the "
                                "same function (Net2WiderNet, each layer kept or doubled)")
    kind = "generator"

    def validate(self) -> None:
        super().validate()
        if not (0 <= self.sync_weight and 0 <= self.disc_weight and self.sync_weight + self.disc_weight < 1):
            raise ConfigError(f"need 0 <= sync_weight, disc_weight and their sum < 1; got {self.sync_weight}, {self.disc_weight}")
        if self.sync_weight > 0 and not self.syncnet:
            raise ConfigError("the generator needs a SyncNet expert: --syncnet CHECKPOINT (or --sync-weight 0)")
        if self.sample_every < 1 or self.sample_count < 0:
            raise ConfigError("sample_every must be >= 1 and sample_count >= 0")


@dataclass
class BaselineConfig(CommonConfig):
    """The FC-LSTM baseline (rtmri.training.models.baseline), trained with MSE and Adam. A
    small network: a larger batch and learning rate than the generator's."""

    width: float = _opt(1.0, "unused: the baseline has no width multiplier", cli=False)
    in_channels: int = _opt(1, "channels of the predicted frame: 1 (grayscale) or 3 (grey repeated)")
    init: str = _opt("scratch", "initial weights: 'scratch' or a baseline checkpoint of ours")
    batch_size: int = _opt(64, "batch size (all processes together)")
    lr: float = _opt(1e-3, "Adam learning rate")
    hidden: int = _opt(256, "units of each frame-wise fully connected layer and of each LSTM layer")
    fc_layers: int = _opt(2, "frame-wise fully connected layers (Linear + ReLU) on each mel column")
    lstm_layers: int = _opt(2, "LSTM layers over the window's 16 mel columns")
    dropout: float = _opt(0.2, "dropout after each fully connected layer and between the LSTM layers")
    kind = "baseline"

    def validate(self) -> None:
        super().validate()
        if min(self.hidden, self.fc_layers, self.lstm_layers) < 1:
            raise ConfigError(f"hidden, fc_layers and lstm_layers must be >= 1, got {self.hidden}, {self.fc_layers}, {self.lstm_layers}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout must be in [0, 1), got {self.dropout}")


def listed_paths(value: str) -> list[str]:
    """The paths of a comma-separated option (``also_data``), blanks left out."""
    return [part.strip() for part in value.split(",") if part.strip()]


TRAIN_ONLY = ("all", "closures")
CLOSURES_ONLY = "closures"


@dataclass
class InverterConfig(CommonConfig):
    """The articulatory model's audio-to-state network (rtmri.training.models.articulatory.Inverter)."""

    width: float = _opt(1.0, "unused: the inverter has no width multiplier", cli=False)
    in_channels: int = _opt(1, "unused: the inverter draws no image", cli=False)
    lookahead_ms: float = _opt(40.0, "audio lookahead of a frame's window, ms (the shipped default's 40)")
    init: str = _opt("scratch", "initial weights: 'scratch' or an inverter checkpoint of ours")
    init_any_width: bool = _opt(False, "allow --init from an inverter of ours with half these channels or GRU units: "
                                "widened so that it computes the same function (each kept or doubled)")
    batch_size: int = _opt(32, "batch size (runs of frames; all processes together)")
    lr: float = _opt(2e-3, "AdamW learning rate (cosine decay to a tenth over the steps)")
    eval_every: int = _opt(500, "validate every N steps")
    context_columns: int = _opt(64, "mel columns of a frame's window with its past (64 = 0.8 s; 16 = the per-frame window alone)")
    channels: int = _opt(128, "channels of the convolutional front end")
    hidden: int = _opt(128, "GRU units")
    input_norm: str = _opt("none", "input normalisation: 'none', 'window' (each mel band's mean over the window taken away) or "
                           "'session' (each band's mean and spread over the session so far, rtmri.audio.SessionNorm)")
    steps_per_sample: int = _opt(3, "consecutive frames per sample (for the velocity term)")
    position_weight: float = _opt(0.5, "weight of the position error (mm) against the gap error (mm)")
    closure_weight: float = _opt(2.0, "weight of the closure classification (BCE, positives weighted by their rarity)")
    velocity_weight: float = _opt(1.0, "weight of the frame-to-frame change error (mm), against over-smoothing")
    phone_weight: float = _opt(0.0, "weight of a phone-classification head on the GRU's output (cross-entropy against the "
                               "clips' phones; training only, never exported; 0 = none)")
    pause_share: float = _opt(0.0, "share of samples that are a session beginning in a room's noise alone, before a clip "
                              "that opens with a pause, labelled with that pause (the tract at rest): a quiet room is not "
                              "a stop's closure; 0 = none")
    phone_balance: float = _opt(0.0, "draw a frame by its phone's rarity in the training clips: weight (an even share among the "
                                "phones / its share) ** this, from 1 to 8 (rtmri.training.data.PHONE_BALANCE_CAP); "
                                "0 = every frame alike")
    also_data: str = _opt("", "more prepared datasets, comma-separated, whose train and val clips join DATA's (fine-tune "
                          "on a new corpus beside the one a model learnt from, so that it forgets nothing)")
    train_only: str = _opt("all", "'all', or 'closures': only the closure decision's output weights learn, the rest of the "
                           "--init inverter kept exactly (the same gaps and positions; new closure labels learnt)")
    kind = "inverter"

    def validate(self) -> None:
        super().validate()
        if self.context_columns < 16 or min(self.channels, self.hidden, self.steps_per_sample) < 1:
            raise ConfigError("context_columns must be >= 16 and channels, hidden, steps_per_sample >= 1")
        if self.phone_weight < 0:
            raise ConfigError(f"phone_weight must be >= 0, got {self.phone_weight}")
        if self.phone_balance < 0:
            raise ConfigError(f"phone_balance must be >= 0, got {self.phone_balance}")
        if not 0 <= self.pause_share < 1:
            raise ConfigError(f"pause_share must be in [0, 1), got {self.pause_share}")
        if self.input_norm not in ("none", "window", "session"):
            raise ConfigError(f"input_norm must be 'none', 'window' or 'session', got {self.input_norm!r}")
        if self.train_only not in TRAIN_ONLY:
            raise ConfigError(f"train_only must be {' or '.join(repr(t) for t in TRAIN_ONLY)}, got {self.train_only!r}")
        if self.train_only == CLOSURES_ONLY and (self.init == "scratch" or self.phone_weight > 0):
            raise ConfigError("train_only 'closures' keeps an --init inverter's features: it needs --init and no phone head")


@dataclass
class RendererConfig(DistillConfig):
    """The articulatory model's state-to-picture network (rtmri.training.models.articulatory.Renderer)."""

    width: float = _opt(0.125, "channel width multiplier of the encoder-decoder")
    in_channels: int = _opt(1, "image channels (the drawn state is one channel: 1)")
    lookahead_ms: float = _opt(40.0, "unused by the renderer; recorded with its checkpoint", cli=False)
    init: str = _opt("scratch", "initial weights: 'scratch', a renderer checkpoint of ours, or a generator of ours of the same width "
                     "(its encoder-decoder; the state embedding starts fresh)")
    batch_size: int = _opt(16, "batch size (all processes together)")
    lr: float = _opt(1e-3, "Adam learning rate")
    state_noise_mm: float = _opt(0.7, "Gaussian noise (mm) added to the training states' gaps and positions")
    closure_pixel_weight: float = _opt(0.0, "extra L1 weight of the pixels on a place's gridlines in the frames where that "
                                       "place (lips, tongue tip, dorsum) is closed: a closure is a few pixels of a few frames")
    augment: str = _opt("none", "unused: the renderer hears no audio", cli=False)
    kind = "renderer"

    def validate(self) -> None:
        super().validate()
        if self.in_channels != 1:
            raise ConfigError("the renderer draws one channel: in_channels must be 1")


CONFIGS = {"syncnet": SyncNetConfig, "generator": GeneratorConfig, "baseline": BaselineConfig,
           "inverter": InverterConfig, "renderer": RendererConfig}


def read_toml(path: str | Path, kind: str) -> dict:
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such config file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    found = raw.pop("kind", kind)
    if found != kind:
        raise ConfigError(f"{path}: a {found!r} run config, expected {kind!r}")
    known = {f.name: f for f in fields(CONFIGS[kind])}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown option(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return {name: _coerce(path, name, value, known[name].default) for name, value in raw.items()}


def _coerce(path, name, value, default):
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise ConfigError(f"{path}: {name} = {value!r}: expected a {type(default).__name__}")
    return value


def to_toml(values: dict) -> str:
    """A flat TOML document of str / int / float / bool values."""
    lines = ["# rtmri training run; edit and pass with --config, or re-run with --out to resume"]
    for key, value in values.items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
        return f'"{escaped}"'
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def write_config(cfg: CommonConfig, folder: str | Path) -> Path:
    path = Path(folder) / CONFIG_NAME
    atomic_write(path, to_toml(cfg.to_dict()))
    return path


def resolve(kind: str, out: str | Path | None = None, config_file: str | Path | None = None, overrides: dict | None = None) -> CommonConfig:
    """Defaults < out/run.toml < config_file < overrides (None values ignored)."""
    values: dict = {}
    if out is not None and (Path(out) / CONFIG_NAME).is_file():
        values["augment"] = "none"  # a run from before augmentation resumes without it
        values.update(read_toml(Path(out) / CONFIG_NAME, kind))
    if config_file:
        values.update(read_toml(config_file, kind))
    known = {f.name for f in fields(CONFIGS[kind])}
    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in known:
            raise ConfigError(f"unknown option {name!r}")
        values[name] = value
    cfg = CONFIGS[kind](**values)
    cfg.data = str(cfg.data)
    cfg.validate()
    return cfg


def add_config_arguments(parser, kind: str) -> None:
    """--option-name for every field of the kind's config (default None = not given)."""
    for f in fields(CONFIGS[kind]):
        if not f.metadata.get("cli", True):
            continue
        flag = "--" + f.name.replace("_", "-")
        default_text = f" (default {f.default})"
        if isinstance(f.default, bool):
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=f.metadata["help"] + default_text)
        else:
            parser.add_argument(flag, dest=f.name, type=type(f.default), default=None, metavar=f.name.upper(), help=f.metadata["help"] + default_text)


def overrides_from_args(args, kind: str) -> dict:
    return {f.name: getattr(args, f.name, None) for f in fields(CONFIGS[kind])}
