"""What a person looks at: the Markdown table, example videos, the SSIM-over-time plot."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rtmri.alignment import FPS
from rtmri.articulation.regions import REGIONS
from rtmri.video.compose import side_by_side, upscale
from rtmri.video.write import write_video

STUDY = {  # DESIGN §1, mean over 5 videos each
    "test": (0.9074, 0.0146),
    "unseen_ja": (0.8256, 0.0187),
    "unseen_nonja": (0.8154, 0.0165),
}
EXAMPLE_SIZE = 192
STRIP_FRAMES = 8
STRIP_SIZE = 128


def table_markdown(rows: list[dict]) -> str:
    lines = [
        "| condition | system | videos | SSIM | NMSE | study SSIM | study NMSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        study = STUDY.get(r["split"])  # the robustness conditions have no study figures
        study_cells = f"{study[0]:.4f} | {study[1]:.4f}" if study else "– | –"
        lines.append(
            f"| {r['condition']} | {r['system']} | {r['videos']} | {r['ssim_mean']:.4f} ± {r['ssim_std']:.4f} | "
            f"{r['nmse_mean']:.4f} ± {r['nmse_std']:.4f} | {study_cells} |"
        )
    lines.append("")
    lines.append("SSIM and NMSE on the lower half of each frame (DESIGN §5), mean ± std over videos. "
                 "The study's figures are on real rtMRI of Japanese speakers, for orientation only. "
                 "The noise ceiling scores a second acquisition of the same articulation with independent "
                 "scanner noise (synthetic corpora only): the best any model can score.")
    return "\n".join(lines) + "\n"


def write_example_video(path: Path, clip, original: np.ndarray, generated: np.ndarray) -> None:
    """original | generated | |difference|, with the clip's audio."""
    n = min(len(original), len(generated))
    rows = (side_by_side([original[k], generated[k], _difference(original[k], generated[k])], EXAMPLE_SIZE, gap=0)
            for k in range(n))
    write_video(path, rows, FPS, audio=clip.audio())


def _difference(original: np.ndarray, generated: np.ndarray) -> np.ndarray:
    return np.abs(original.astype(int) - generated.astype(int)).astype(np.uint8)


def plot_ssim_over_time(path: Path, clip, ssim: np.ndarray) -> None:
    import matplotlib  # matplotlib: the eval extra, not the runtime core

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = np.arange(len(ssim)) / FPS
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.plot(times, ssim, color="tab:blue")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("SSIM (lower half)")
    ax.set_title(f"{clip.clip_id}: SSIM per frame, with the phones")
    low, high = float(np.min(ssim)), float(np.max(ssim))
    for phone in clip.info.get("phones") or []:
        ax.axvline(phone["start"], color="0.85", linewidth=0.6)
        ax.text((phone["start"] + phone["end"]) / 2, high + 0.01 * (high - low + 1e-3), phone["phone"],
                ha="center", va="bottom", fontsize=7)
    ax.set_xlim(0, times[-1] if len(times) else 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_strip(path: Path, clip, original: np.ndarray, generated: np.ndarray) -> None:
    """PNG: evenly spaced frames of the clip, the true rtMRI above, the generated below,
    each labelled with its time and the phone being said."""
    n = min(len(original), len(generated))
    picks = np.linspace(0, n - 1, STRIP_FRAMES).round().astype(int)
    label_h = 16
    canvas = Image.new("L", (STRIP_FRAMES * STRIP_SIZE, 2 * STRIP_SIZE + 2 * label_h), 0)
    draw = ImageDraw.Draw(canvas)
    phones = clip.info.get("phones") or []
    for column, k in enumerate(picks):
        x = column * STRIP_SIZE
        t = k / FPS
        phone = next((p["phone"] for p in phones if p["start"] <= t < p["end"]), "")
        draw.text((x + 4, 2), f"{t:.2f} s {phone}", fill=255)
        canvas.paste(Image.fromarray(upscale(original[k], STRIP_SIZE)), (x, label_h))
        canvas.paste(Image.fromarray(upscale(generated[k], STRIP_SIZE)), (x, 2 * label_h + STRIP_SIZE))
    draw.text((4, label_h + STRIP_SIZE + 2), "above: true rtMRI   below: generated from the audio", fill=255)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)


# ---------------------------------------------------------------- articulation (DESIGN §5b)

ARTICULATION_COLUMNS = (  # (key, heading, format)
    ("df_rmse_mm", "DF RMSE mm", "{:.2f}"),
    ("cd_rmse_mm", "CD RMSE mm", "{:.2f}"),
    ("cd_r", "CD r", "{:.2f}"),
    ("closure_lips_precision", "lips P", "{:.2f}"),
    ("closure_lips_recall", "lips R", "{:.2f}"),
    ("closure_alveolar_precision", "tip P", "{:.2f}"),
    ("closure_alveolar_recall", "tip R", "{:.2f}"),
    ("closure_alveolar_outside_speech", "tip shut in pauses", "{:.2f}"),
    ("roi_r", "ROI r", "{:.2f}"),
    ("amplitude_ratio", "motion ratio", "{:.2f}"),
    ("df_rmse_vs_geometry_mm", "DF vs geometry mm", "{:.2f}"),
)
ARTICULATION_NOTE = (
    "Measured on each speaker's analysis grid (DESIGN §5b), generated against the true frames. DF: distance function "
    "(air gap along every gridline, glottis to lips); CD: constriction degree (smallest gap) per region, RMSE and "
    "Pearson r over time, mean over lips, alveolar, palatal, velar, pharyngeal and the velopharyngeal port; lips/tip "
    "R: recall of full closure (at most one pixel) during the stops and nasals made there, P: precision over every "
    "frame of speech (a frame early or late is timing); shut in pauses: the share of the frames outside speech shown "
    "closed where the truth is open; ROI r: "
    "correlation of region-of-interest intensity (Lammert et al. 2010); motion ratio: generated over true "
    "standard deviation of the constriction degree (below 1: under-articulated); DF vs geometry: against the "
    "synthesizer's true outlines. A still picture follows nothing: its r is 0. Anchor: audio-to-contour RMSE "
    "1.48 mm (Azzouz et al. 2026, one speaker, real rtMRI)."
)


STATE_COLUMNS = (  # (key, heading, format): each system against the true articulatory state
    ("state_df_rmse_mm", "DF RMSE mm", "{:.2f}"),
    ("state_cd_rmse_mm", "CD RMSE mm", "{:.2f}"),
    ("state_cd_r", "CD r", "{:.2f}"),
    ("state_closure_lips_precision", "lips P", "{:.2f}"),
    ("state_closure_lips_recall", "lips R", "{:.2f}"),
    ("state_closure_alveolar_precision", "tip P", "{:.2f}"),
    ("state_closure_alveolar_recall", "tip R", "{:.2f}"),
    ("state_closure_lips_outside_speech", "lips shut in pauses", "{:.2f}"),
    ("state_closure_alveolar_outside_speech", "tip shut in pauses", "{:.2f}"),
    ("state_amplitude_ratio", "motion ratio", "{:.2f}"),
)
STATE_NOTE = (
    "Against the true articulatory state (the shared DESIGN.md §4b, from the synthesizer's outlines): the model's own "
    "state where its bundle gives one, else what the image measure reads from its frames. CD over the tract regions "
    "(lips to pharynx); closures recalled during the stops and nasals made there, precise over the speech; shut in "
    "pauses: the share of the frames outside speech said closed where the truth is open."
)


def state_markdown(articulation: dict) -> list[str]:
    rows = [r for r in articulation["table"] if r.get("state_source", "n/a") != "n/a"]
    if not rows:
        return ["Articulatory state: not available (the clips carry no state.npz: prepare a corpus with outlines again).", ""]
    heads = ["condition", "system", "state from"] + [h for _, h, _ in STATE_COLUMNS]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in rows:
        lines.append("| " + " | ".join([r["condition"], r["system"], r["state_source"]]
                                       + [cell(r[k], f) for k, _, f in STATE_COLUMNS]) + " |")
    return lines + ["", STATE_NOTE, ""]


def cell(value, fmt: str = "{:.2f}") -> str:
    if value is None or isinstance(value, str):
        return value or "n/a"
    return "n/a" if not np.isfinite(value) else fmt.format(value)


def articulation_markdown(articulation: dict) -> str:
    if not articulation["table"]:
        return ("Articulation: not available (the dataset has no analysis grids: prepare it again with this version, "
                "with --landmarks for real recordings).\n")
    heads = ["condition", "system", "videos"] + [h for _, h, _ in ARTICULATION_COLUMNS]
    lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    for r in articulation["table"]:
        lines.append("| " + " | ".join([r["condition"], r["system"], str(r["videos"])]
                                       + [cell(r[k], f) for k, _, f in ARTICULATION_COLUMNS]) + " |")
    lines += ["", ARTICULATION_NOTE, ""]
    lines += state_markdown(articulation)
    if articulation["geometry_check"]:
        lines += ["Image measure on the true frames against the synthesizer's geometry (distance function, all gridlines):", "",
                  "| condition | clips | measurements | RMSE mm | mm per px |", "|---|---|---|---|---|"]
        lines += [f"| {g['condition']} | {g['clips']} | {g['measurements']} | {cell(g['rmse_mm'])} | {g['mm_per_px']} |"
                  for g in articulation["geometry_check"]]
        lines.append("")
    else:
        lines += ["Geometry check: not available (the clips carry no synthesizer outlines).", ""]
    lines += phone_markdown(articulation["phones"])
    return "\n".join(lines) + "\n"


def phone_markdown(rows: list[dict], system: str = "model") -> list[str]:
    """The model's constriction-degree error at each phone's place, per condition; in condition 3
    the phones Japanese lacks apart."""
    lines = []
    for split in dict.fromkeys(r["split"] for r in rows):
        chosen = [r for r in rows if r["split"] == split and r["system"] == system]
        if not chosen:
            continue
        groups = [("", chosen)]
        if split == "unseen_nonja":
            groups = [("phones Japanese has", [r for r in chosen if r["japanese"]]),
                      ("phones Japanese lacks", [r for r in chosen if not r["japanese"]])]
        for title, group in groups:
            if group:
                lines.append(f"Per phone, {chosen[0]['condition']}{' - ' + title if title else ''} ({system}): "
                             "constriction-degree error at the phone's place, mm (frames)")
                lines.append("")
                lines.append(", ".join(f"{r['phone']} [{r['place']}] {r['cd_error_mm']:.2f} ({r['frames']})" for r in group))
                lines.append("")
    return lines


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as handle:
        if not rows:
            return
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_constriction_over_time(path: Path, clip, truth: dict, generated: dict) -> None:
    """One panel per region: the constriction degree over time, true and generated, with the phones."""
    import matplotlib  # matplotlib: the eval extra, not the runtime core

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(REGIONS), 1, figsize=(10, 1.6 * len(REGIONS)), sharex=True)
    phones = clip.info.get("phones") or []
    for ax, region in zip(axes, REGIONS):
        times = np.arange(len(truth[region])) / FPS
        ax.plot(times, truth[region], color="black", linewidth=1.2, label="true")
        ax.plot(times, generated[region][: len(times)], color="tab:red", linewidth=1.0, label="generated")
        ax.set_ylabel(f"{region}\nmm", fontsize=8)
        top = float(np.nanmax(np.concatenate([truth[region], generated[region]]))) if np.isfinite(truth[region]).any() else 1.0
        for phone in phones:
            ax.axvline(phone["start"], color="0.88", linewidth=0.6)
            if ax is axes[0]:
                ax.text((phone["start"] + phone["end"]) / 2, top, phone["phone"], ha="center", va="bottom", fontsize=7)
    axes[0].legend(loc="upper right", fontsize=7)
    axes[0].set_title(f"{clip.clip_id}: constriction degree per region, true vs generated", pad=14)
    axes[-1].set_xlabel("time (s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_phone_errors(path: Path, rows: list[dict]) -> None:
    """Bars: the constriction-degree error at each phone's place, one panel per condition;
    the phones Japanese lacks in orange."""
    import matplotlib  # matplotlib: the eval extra, not the runtime core

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(r["split"] for r in rows))
    fig, axes = plt.subplots(len(splits), 1, figsize=(10, 2.6 * len(splits)), squeeze=False)
    for ax, split in zip(axes[:, 0], splits):
        chosen = [r for r in rows if r["split"] == split]
        ax.bar(range(len(chosen)), [r["cd_error_mm"] for r in chosen],
               color=["tab:blue" if r["japanese"] else "tab:orange" for r in chosen])
        ax.set_xticks(range(len(chosen)), [f"{r['phone']}\n{r['place'][:4]}" for r in chosen], fontsize=7)
        ax.set_ylabel("error mm")
        ax.set_title(f"{chosen[0]['condition']}: constriction-degree error at the phone's place (orange: not Japanese)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
