"""Function-preserving widening of an inverter's weights (Net2WiderNet, as
``rtmri.training.models.widen`` does for the generator).

The front end's channels and the GRU's units are each kept or doubled. A new channel or
unit copies old one j // 2 (its weights, bias, batch-norm statistics; a GRU unit its row in
each of the three gates), and every layer that reads a doubled group halves its weights on
both copies, so their sum is unchanged. A GRU's gates act per unit and read the input and
the hidden state linearly, so a copied unit follows the unit it copies step for step; GELU
and batch norm act per channel. The targets' and the session's statistics are kept as
they are. ``noise`` (relative to each layer's weight spread, seeded) perturbs the second
copies so that they can learn apart.
"""

from __future__ import annotations

import torch

from rtmri.training.models.checkpoints import strip_module_prefix
from rtmri.training.models.widen import BATCH_NORM_STATS, DEFAULT_NOISE, channel_map, jitter_copies, second_copies

GRU_GATES = 3  # reset, update, new: stacked row blocks of the GRU's weights
FRONT_CONVS = (("front.0", "front.1"), ("front.3", "front.4"))  # (conv, its batch norm)


def widened_inverter_state(state_dict: dict, old: dict, new: dict, where: str, noise: float = DEFAULT_NOISE,
                           seed: int = 0) -> dict:
    """The state dict of an inverter of ``old``'s channels and hidden units (architecture
    dicts, ``Inverter.architecture()``) as one of ``new``'s, computing the same function up
    to ``noise``."""
    sd = strip_module_prefix(state_dict)
    old_channels, old_hidden = int(old["channels"]), int(old["hidden"])
    new_channels, new_hidden = int(new["channels"]), int(new["hidden"])
    c_index, c_scale = channel_map(old_channels, new_channels, f"{where}: the front end's channels")
    h_index, h_scale = channel_map(old_hidden, new_hidden, f"{where}: the GRU's units")
    channel_copies, unit_copies = second_copies(old_channels, new_channels), second_copies(old_hidden, new_hidden)
    rng = torch.Generator().manual_seed(seed)
    out = {name: value.clone() for name, value in sd.items()
           if not name.startswith(("front.", "gru.", "head."))}  # target and session statistics

    def spread(name: str) -> float:
        return float(sd[name].float().std()) or 1.0

    inputs = [(torch.arange(sd["front.0.weight"].shape[1]), None), (c_index, c_scale)]
    for (conv, norm), (in_index, in_scale) in zip(FRONT_CONVS, inputs):
        weight = sd[f"{conv}.weight"][c_index][:, in_index]
        if in_scale is not None:
            weight = weight * in_scale[None, :, None]
        out[f"{conv}.weight"], out[f"{conv}.bias"] = jitter_copies(
            weight, sd[f"{conv}.bias"][c_index], channel_copies, spread(f"{conv}.weight"),
            noise, rng)
        for stat in BATCH_NORM_STATS:
            out[f"{norm}.{stat}"] = sd[f"{norm}.{stat}"][c_index].clone()
        out[f"{norm}.num_batches_tracked"] = sd[f"{norm}.num_batches_tracked"].clone()

    rows = torch.cat([gate * old_hidden + h_index for gate in range(GRU_GATES)])
    for kind, (in_index, in_scale) in (("ih", (c_index, c_scale)), ("hh", (h_index, h_scale))):
        weight = sd[f"gru.weight_{kind}_l0"][rows][:, in_index] * in_scale[None, :]
        out[f"gru.weight_{kind}_l0"], out[f"gru.bias_{kind}_l0"] = jitter_copies(
            weight, sd[f"gru.bias_{kind}_l0"][rows], unit_copies.repeat(GRU_GATES), spread(f"gru.weight_{kind}_l0"), noise, rng)

    weight = sd["head.0.weight"][h_index][:, h_index] * h_scale[None, :]
    out["head.0.weight"], out["head.0.bias"] = jitter_copies(
        weight, sd["head.0.bias"][h_index], unit_copies, spread("head.0.weight"), noise, rng)
    out["head.2.weight"] = sd["head.2.weight"][:, h_index] * h_scale[None, :]
    out["head.2.bias"] = sd["head.2.bias"].clone()
    return {name: value.contiguous() for name, value in out.items()}
