"""`rtmri train syncnet | generator | baseline | sizes`. Torch is imported only when a command runs."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from rtmri.training.config import add_config_arguments, listed_paths, overrides_from_args, resolve

# kind -> the module whose train(cfg, out, hooks) runs it
TRAINERS = {
    "syncnet": "rtmri.training.train_syncnet",
    "generator": "rtmri.training.train_generator",
    "baseline": "rtmri.training.train_baseline",
    "inverter": "rtmri.training.train_articulatory",
    "renderer": "rtmri.training.train_articulatory",
}

HELP = {
    "syncnet": "train the SyncNet expert on the dataset's lower halves (wav2lip's recipe)",
    "generator": "fine-tune (or train) the wav2lip generator with the SyncNet expert and the quality discriminator",
    "baseline": "train the FC-LSTM acoustic-to-rtMRI baseline (Csapó, Interspeech 2020) on the same mel windows",
    "inverter": "train the articulatory model's sound-to-state network (gaps, positions, closures in mm) on the clips' states",
    "renderer": "train the articulatory model's state-to-picture network on the clips' (state, frame) pairs",
    "sizes": "print parameters and FLOPs per frame of the networks at each width",
}


def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="train_command", required=True, metavar="WHAT")
    for kind in TRAINERS:
        p = sub.add_parser(kind, help=HELP[kind], description=HELP[kind] + ". Re-running with the same --out resumes.")
        p.add_argument("data", nargs="?", default=None, metavar="DATA", help="prepared clip dataset (rtmri prepare); may come from --config or the run's run.toml")
        p.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder: checkpoints, run.toml, logs")
        p.add_argument("--config", metavar="TOML", help="run config file (command-line options override it)")
        p.add_argument("--stop-after", type=int, metavar="STEP", help="stop cleanly once this step is done (resume later)")
        add_config_arguments(p, kind)
        p.add_argument("--no-augment", dest="augment", action="store_const", const="none", help="no audio augmentation (= --augment none)")
    p = sub.add_parser("sizes", help=HELP["sizes"], description=HELP["sizes"])
    p.add_argument("--widths", default="1,0.5,0.25,0.125", help="comma-separated width multipliers (default 1,0.5,0.25,0.125)")
    p.add_argument("--in-channels", type=int, choices=(1, 3), default=None, help="only this channel count (default: both)")
    p.add_argument("--time", action="store_true", help="also time one frame on this CPU")


def main(args) -> int:
    if args.train_command == "sizes":
        from rtmri.training.models.size_report import format_table, size_rows  # a subcommand's module, imported when it runs

        widths = [float(w) for w in args.widths.split(",") if w.strip()]
        for channels in ([args.in_channels] if args.in_channels else [3, 1]):
            print(format_table(size_rows(widths, channels, timing=args.time)))
            print()
        return 0

    kind = args.train_command
    overrides = overrides_from_args(args, kind)
    if args.data is not None:
        overrides["data"] = str(Path(args.data).resolve())
    if overrides.get("also_data"):
        overrides["also_data"] = ",".join(str(Path(part).resolve()) for part in listed_paths(overrides["also_data"]))
    for name in ("init", "syncnet", "init_disc", "teacher"):
        value = overrides.get(name)
        if value and value != "scratch":
            overrides[name] = str(Path(value).resolve())
    cfg = resolve(kind, out=args.out, config_file=args.config, overrides=overrides)

    from rtmri.training.loop import Hooks  # torch: `rtmri train --help` runs without it

    train = importlib.import_module(TRAINERS[kind]).train
    summary = train(cfg, args.out, Hooks(stop_after=args.stop_after))
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # torchrun: the first process reports
    last_val = summary["last_val"] or {}
    shown = ", ".join(f"{k} {v:.4f}" for k, v in last_val.items() if isinstance(v, float))
    print(
        f"{kind}: step {summary['step']} of {cfg.steps} ({summary['steps_run']} steps this run, "
        f"{summary['steps_per_second']:.2f} steps/s on {summary['device']})"
        + (f"; validation {shown}" if shown else "")
        + (f"; best {summary['best']:.5f} at step {summary['best_step']}" if summary["best_step"] else "")
    )
    print(f"checkpoints: {Path(args.out) / 'checkpoints'}")
    return 0
