"""AdamW parameter groups: which parameters get weight decay (notes/ancestors.md 3.3)."""

from __future__ import annotations

from torch import nn

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
