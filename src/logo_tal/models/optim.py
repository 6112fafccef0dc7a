"""AdamW parameter groups and the learning-rate schedule (docs/decisions.md D42, D44)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

# Module types whose >= 2-d ``weight`` is a learned projection and gets decay (AF/TD
# ``make_optimizer``: Linear, Conv1d and its masked wrapper, which subclasses or wraps Conv1d).
DECAY_MODULES: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def param_groups(
    module: nn.Module, weight_decay: float, no_decay_names: tuple[str, ...] = ()
) -> list[dict]:
    """Split trainable parameters into a decay and a no-decay group.

    Decay: ``weight`` tensors (>= 2-d) owned directly by a Linear/ConvNd module. Everything else
    goes to no-decay: biases, LayerNorm/GroupNorm weights, ``Scale`` scales, ``AffineDropPath``
    scales, CLFF fusion weights w1/w2, and in general any 0-d/1-d parameter. A >= 2-d parameter
    owned by another module (e.g. a learned position table) also gets no decay, matching AF's
    treatment of position embeddings; AF instead asserts on unknown parameters, which would make
    every new scalar a crash. Names containing any of ``no_decay_names`` are forced to no-decay.

    Args:
        module: the model.
        weight_decay: decay of the first group.
        no_decay_names: substrings of parameter names to exclude from decay.

    Returns:
        ``[{"params", "names", "weight_decay"}, {...weight_decay 0.0}]``; every trainable
        parameter appears in exactly one group (shared parameters once). ``names`` is for
        logging and tests; pass the dicts to ``torch.optim.AdamW`` as they are (it keeps unknown
        keys).
    """
    decay_ids: set[int] = set()
    for mod in module.modules():
        if isinstance(mod, DECAY_MODULES):
            weight = getattr(mod, "weight", None)
            if isinstance(weight, nn.Parameter) and weight.ndim >= 2:
                decay_ids.add(id(weight))

    decay, decay_names, other, other_names = [], [], [], []
    for name, param in module.named_parameters():  # deduplicates shared parameters
        if not param.requires_grad:
            continue
        if id(param) in decay_ids and not any(s in name for s in no_decay_names):
            decay.append(param)
            decay_names.append(name)
        else:
            other.append(param)
            other_names.append(name)
    return [
        {"params": decay, "names": decay_names, "weight_decay": float(weight_decay)},
        {"params": other, "names": other_names, "weight_decay": 0.0},
    ]


class WarmupCosine:
    """Per-step LR factor: linear warm-up from 0, then cosine to ``eta_min``.

    docs/decisions.md D42, D44.

    ``lr(0) = 0``; ``lr(s) = base * s / (W - 1)`` for ``0 < s < W`` (base is reached at ``W - 1``);
    ``lr(s) = eta_min + (base - eta_min) * (1 + cos(pi * (s - W) / (M - W))) / 2`` for ``s >= W``.
    A class (not a closure) so that ``LambdaLR.state_dict`` saves it and DDP-spawn can pickle it.

    Args:
        warmup_steps: W.
        total_steps: M, the number of optimiser steps of the whole run.
        eta_min_ratio: ``eta_min / base``.
    """

    def __init__(self, warmup_steps: int, total_steps: int, eta_min_ratio: float = 0.0) -> None:
        self.warmup_steps = max(int(warmup_steps), 0)
        self.total_steps = max(int(total_steps), 1)
        self.eta_min_ratio = float(eta_min_ratio)

    def __call__(self, step: int) -> float:
        w = self.warmup_steps
        if step < w:
            return step / (w - 1) if w > 1 else 1.0
        span = max(self.total_steps - w, 1)
        progress = min(max(step - w, 0) / span, 1.0)
        return self.eta_min_ratio + (1.0 - self.eta_min_ratio) * 0.5 * (
            1.0 + math.cos(math.pi * progress)
        )


def warmup_cosine_schedule(
    optimizer: torch.optim.Optimizer,
    total_steps: int,
    max_epochs: int | None,
    warmup_epochs: float,
    eta_min: float,
) -> LambdaLR:
    """Per-step :class:`WarmupCosine` of ``optimizer`` over a run of ``total_steps`` optimiser
    steps in ``max_epochs`` epochs, ``warmup_epochs`` of them (possibly fractional) warm-up."""
    steps_per_epoch = total_steps / max_epochs if max_epochs and max_epochs > 0 else total_steps
    warmup = int(round(warmup_epochs * steps_per_epoch))
    base_lr = optimizer.param_groups[0]["lr"]
    ratio = eta_min / base_lr if base_lr > 0 else 0.0
    return LambdaLR(optimizer, WarmupCosine(warmup, total_steps, ratio))
