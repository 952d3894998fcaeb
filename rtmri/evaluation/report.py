"""What a person looks at: the Markdown table, example videos, the SSIM-over-time plot."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rtmri.alignment import FPS

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
        study_ssim, study_nmse = STUDY[r["split"]]
        lines.append(
            f"| {r['condition']} | {r['system']} | {r['videos']} | {r['ssim_mean']:.4f} ± {r['ssim_std']:.4f} | "
            f"{r['nmse_mean']:.4f} ± {r['nmse_std']:.4f} | {study_ssim:.4f} | {study_nmse:.4f} |"
        )
    lines.append("")
    lines.append("SSIM and NMSE on the lower half of each frame (DESIGN §5), mean ± std over videos. "
                 "The study's figures are on real rtMRI of Japanese speakers, for orientation only. "
                 "The noise ceiling scores a second acquisition of the same articulation with independent "
                 "scanner noise (synthetic corpora only): the best any model can score.")
    return "\n".join(lines) + "\n"


def write_example_video(path: Path, clip, original: np.ndarray, generated: np.ndarray) -> None:
    """original | generated | |difference|, with the clip's audio."""
    import av

    from rtmri.audio import SAMPLE_RATE
    from rtmri.streamer.mp4 import upscale

    path.parent.mkdir(parents=True, exist_ok=True)
    n = min(len(original), len(generated))
    wav = clip.audio()
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=FPS, options={"crf": "18"})
        video.width, video.height, video.pix_fmt = 3 * EXAMPLE_SIZE, EXAMPLE_SIZE, "yuv420p"
        audio = container.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
        for k in range(n):
            diff = np.abs(original[k].astype(int) - generated[k].astype(int)).astype(np.uint8)
            row = np.concatenate([upscale(x, EXAMPLE_SIZE) for x in (original[k], generated[k], diff)], axis=1)
            container.mux(video.encode(av.VideoFrame.from_ndarray(row, format="gray")))
        container.mux(video.encode(None))
        frame = av.AudioFrame.from_ndarray(wav[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        container.mux(audio.encode(frame))
        container.mux(audio.encode(None))


def plot_ssim_over_time(path: Path, clip, ssim: np.ndarray) -> None:
    import matplotlib

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
    from PIL import Image, ImageDraw

    from rtmri.streamer.mp4 import upscale

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
