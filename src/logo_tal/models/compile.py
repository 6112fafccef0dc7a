"""``model.compile=true``: ``torch.compile`` of the detector's network, and what it cost.

Only the network (encoder, neck, heads) is compiled; label assignment, the losses and the
post-processing stay eager because their shapes depend on the annotations and the number of
candidates, which would recompile on every batch. The module is compiled in place
(``nn.Module.compile``), so its state-dict keys, checkpoints and the EMA copy are unchanged.

Shapes: training batches are padded to ``data.max_seq_len`` (one static shape) or, by default, to
their longest video; compiled, that length is rounded up to one of at most
:data:`COMPILED_TRAIN_LENGTHS` multiples (:func:`training_pad_multiple`) so that an epoch brings
few shapes. Evaluation lengths vary per video, and dynamo marks the length dynamic after the second
distinct length (its automatic dynamic shapes), so evaluation compiles about twice, not once
per video. Measured costs and the default: docs/benchmarks.md, docs/decisions.md D119.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

# "inductor" generates C++/OpenMP (CPU) or Triton (GPU) kernels; "aot_eager" traces and runs
# the same graphs with eager kernels (what the equality tests use: no code generation).
KNOWN_BACKENDS = ("inductor", "aot_eager", "eager", "cudagraphs")
# Distinct training lengths a compiled detector sees with data.train_padding=batch: dynamo's
# default recompile limit is 8 per frame, and 8 steps up to max_seq_len keep most of the saving.
COMPILED_TRAIN_LENGTHS = 8


def training_pad_multiple(max_seq_len: int, divisor: int) -> int:
    """The padding multiple that gives a compiled detector at most
    :data:`COMPILED_TRAIN_LENGTHS` training lengths: ``max_seq_len / 8`` rounded up to a
    multiple of the pyramid's ``divisor`` (THUMOS14: 2304 / 8 = 288)."""
    units = -(-(max_seq_len // divisor) // COMPILED_TRAIN_LENGTHS)
    return max(units, 1) * divisor


def compile_options(model_cfg: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``torch.compile`` keyword arguments of a ``model`` config, or None when it is off.

    Old run configs without the keys (checkpoints written before the option) mean off.
    """
    if not bool(model_cfg.get("compile", False)):
        return None
    options = dict(model_cfg.get("compile_options") or {})
    backend = options.get("backend", "inductor")
    if backend not in KNOWN_BACKENDS:
        raise ValueError(
            f"model.compile_options.backend: {backend!r} is not one of {', '.join(KNOWN_BACKENDS)}"
        )
    return {
        "backend": backend,
        "mode": options.get("mode"),
        "dynamic": options.get("dynamic"),
    }


def compile_detector(detector: nn.Module, **options: Any) -> nn.Module:
    """Compile ``detector``'s forward in place with ``torch.compile(**options)``; returns it.

    Compilation itself happens on the first call with each new input shape (lazily).
    """
    detector.compile(**options)
    return detector


def compile_seconds() -> float:
    """Wall seconds this process has spent compiling with dynamo so far (0.0 if none).

    Read from dynamo's own timers (every frame it compiled, forward and backward graphs).
    """
    from torch._dynamo import utils as dynamo_utils

    return float(dynamo_utils.calculate_time_spent().get("total_wall_time", 0.0))


def compiled_graphs() -> int:
    """Number of distinct graphs dynamo has compiled in this process (recompilations show here)."""
    from torch._dynamo import utils as dynamo_utils

    return int(dynamo_utils.counters["stats"].get("unique_graphs", 0))
