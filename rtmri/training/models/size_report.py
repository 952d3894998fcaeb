"""Parameters and FLOPs per frame of the three networks at each width (`rtmri train sizes`).

FLOPs are 2 x the multiply-accumulates of the convolutions (transposed included); batch
norms, activations and the additions of residuals are left out (batch norm folds into the
convolution at export). Per frame: the generator makes one frame from one mel window and
one face input; "decode" is its cost with the face encoder run once for a fixed reference
(streaming). The discriminator judges one frame; the SyncNet one 5-frame window.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from rtmri.alignment import SYNC_FRAMES
from rtmri.clips import IMAGE_SIZE
from rtmri.training.models.discriminator import QualityDiscriminator
from rtmri.training.models.generator import Generator, face_input_for_reference
from rtmri.training.models.syncnet import SyncNet

DEFAULT_WIDTHS = (1.0, 0.5, 0.25, 0.125)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_flops(model: nn.Module, fn) -> int:
    """2 x conv multiply-accumulates while ``fn()`` runs ``model``."""
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        w = module.weight
        if isinstance(module, nn.ConvTranspose2d):
            # every input element is multiplied into cout/groups * k*k outputs
            macs += inputs[0].numel() * w.shape[1] * w.shape[2] * w.shape[3]
        else:
            macs += output.numel() * w.shape[1] * w.shape[2] * w.shape[3]

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            fn()
    finally:
        for h in handles:
            h.remove()
    return 2 * macs


def _cpu_ms(fn, repeats: int = 20) -> float:
    with torch.no_grad():
        for _ in range(3):
            fn()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
    return (time.perf_counter() - start) * 1000 / repeats


def size_rows(widths=DEFAULT_WIDTHS, in_channels: int = 3, timing: bool = False) -> list[dict]:
    """One row per width. Counting runs on the 'meta' device (shapes only, no arithmetic);
    ``timing`` also times one frame on the CPU."""
    rows = []
    for width in widths:
        with torch.device("meta"):
            row = _measure(width, in_channels, timing=False)
        if timing:
            row.update(_measure(width, in_channels, timing=True))
        rows.append(row)
    return rows


def _measure(width: float, in_channels: int, timing: bool) -> dict:
    s = IMAGE_SIZE
    gen = Generator(width, in_channels).eval()
    mel = torch.zeros(1, 1, 80, 16)
    face = face_input_for_reference(torch.rand(1, in_channels, s, s))
    with torch.no_grad():
        features = gen.encode_face(face)
    if timing:
        return {"generator_cpu_ms": _cpu_ms(lambda: gen(mel, face)), "decode_cpu_ms": _cpu_ms(lambda: gen.decode(mel, features))}
    disc = QualityDiscriminator(width, in_channels).eval()
    sync = SyncNet(width, in_channels).eval()
    frame = torch.rand(1, in_channels, s, s)
    window = torch.rand(1, SYNC_FRAMES * in_channels, s // 2, s)
    return {
        "width": width,
        "in_channels": in_channels,
        "generator_params": count_params(gen),
        "generator_flops": count_flops(gen, lambda: gen(mel, face)),
        "decode_flops": count_flops(gen, lambda: gen.decode(mel, features)),
        "disc_params": count_params(disc),
        "disc_flops": count_flops(disc, lambda: disc(frame)),
        "syncnet_params": count_params(sync),
        "syncnet_flops": count_flops(sync, lambda: sync(mel, window)),
    }


def format_table(rows: list[dict]) -> str:
    timing = rows and "generator_cpu_ms" in rows[0]
    header = ["width", "ch", "gen params", "gen GFLOP/frame", "decode GFLOP/frame", "disc params", "disc GFLOP/frame", "sync params", "sync GFLOP/window"]
    if timing:
        header += ["gen CPU ms", "decode CPU ms"]
    lines = []
    for r in rows:
        line = [
            f"{r['width']:g}", str(r["in_channels"]),
            f"{r['generator_params'] / 1e6:.2f} M", f"{r['generator_flops'] / 1e9:.3f}", f"{r['decode_flops'] / 1e9:.3f}",
            f"{r['disc_params'] / 1e6:.2f} M", f"{r['disc_flops'] / 1e9:.3f}",
            f"{r['syncnet_params'] / 1e6:.2f} M", f"{r['syncnet_flops'] / 1e9:.3f}",
        ]
        if timing:
            line += [f"{r['generator_cpu_ms']:.2f}", f"{r['decode_cpu_ms']:.2f}"]
        lines.append(line)
    widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
    fmt = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    out = [fmt(header), fmt(["-" * w for w in widths])] + [fmt(l) for l in lines]
    out.append(f"FLOPs = 2 x conv multiply-accumulates at {IMAGE_SIZE} x {IMAGE_SIZE}; decode = generator with the reference's face features cached (streaming).")
    return "\n".join(out)
