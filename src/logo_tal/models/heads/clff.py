"""Cross-level feature fusion, the part that turns the Trident head into the CLFF head.

Paper section 3.3: the centre-offset branch of level l sees
``F~^l = w1_hat * F^l + w2_hat * MaxPool(F^(l-1))``; the start/end heads still use ``F^l``.
The CLFF head is ``TridentRegHead(..., centre_fusion=CrossLevelFusion())``
(``conf/model/head/clff.yaml``); the "TriDet head" ablation (Table 4 row 2) is the same head
without the fusion part. Weight sharing and normalisation: docs/decisions.md D31-D35; the
other readings of the weights and of "the previous layer": docs/decisions.md D96.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from logo_tal.models.layers import masked_max_pool

# BiFPN's fast normalised fusion epsilon.
FUSION_EPS = 1e-4

FusionWeights = Literal["normalised", "raw", "per_level"]
FusionSource = Literal["finer", "coarser"]


def upsample_coarser(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Level l+1 brought to level l's length by nearest-neighbour repeat, masked.

    Point i of level l sits at grid ``i * 2^l``; the nearest coarser point at or before it is
    point ``i // 2`` of level l+1 (grid ``(i // 2) * 2^(l+1)``), so every coarser step is
    repeated twice. A valid step i of level l maps to step i // 2 of level l+1, which is valid
    too (the masks are nearest-downsampled, docs/decisions.md D17).

    Args:
        x: (B, D, T_(l+1)) coarser features, zero on padding.
        mask: (B, 2 T_(l+1)) bool mask of level l.

    Returns:
        (B, D, 2 T_(l+1)), zero on level l's padded steps.
    """
    return x.repeat_interleave(2, dim=-1) * mask.unsqueeze(1).to(x.dtype)


class CrossLevelFusion(nn.Module):
    """``F~^l = w1_hat * F^l + w2_hat * S^l``, where ``S^l`` is another level at level l's length.

    ``source="finer"`` (default, docs/decisions.md D34): ``S^l = MaxPool(F^(l-1))``, the finer
    level that produced level l, brought to level l's length by the masked MaxPool1d(3, 2, 1)
    centred on the same grid points (point i of level l sits at point 2i of level l-1); the
    first level has no finer level and keeps ``F~ = F``. ``source="coarser"``: ``S^l`` is level
    l+1 repeated to level l's length (:func:`upsample_coarser`); the last level keeps ``F``.

    ``weights`` (docs/decisions.md D96):

    - ``"normalised"`` (default): two scalars shared by all levels, initialised to 1 and
      normalised BiFPN-style, ``w_hat_i = ReLU(w_i) / (ReLU(w1) + ReLU(w2) + 1e-4)``;
    - ``"raw"``: the same two scalars used as they are (``w_hat_i = w_i``);
    - ``"per_level"``: one normalised pair per fused level (``num_levels - 1`` pairs, ``w1`` and
      ``w2`` of shape (L - 1,), every entry initialised to 1).

    The weights are 0-d or 1-d parameters, so ``optim.param_groups`` exempts them from weight
    decay. No option draws random numbers, so none changes the rest of the model's init.

    Args:
        weights: "normalised", "raw" or "per_level".
        source: "finer" (the previous, finer level: the paper's reading) or "coarser".
        num_levels: L; required by ``"per_level"``, checked against the inputs when given.
    """

    def __init__(
        self,
        weights: FusionWeights = "normalised",
        source: FusionSource = "finer",
        num_levels: int | None = None,
    ) -> None:
        super().__init__()
        if weights not in ("normalised", "raw", "per_level"):
            raise ValueError(
                f"weights must be 'normalised', 'raw' or 'per_level', got {weights!r}"
            )
        if source not in ("finer", "coarser"):
            raise ValueError(f"source must be 'finer' or 'coarser', got {source!r}")
        if weights == "per_level" and (num_levels is None or num_levels < 2):
            raise ValueError(f"per_level weights need num_levels >= 2, got {num_levels}")
        self.mode = weights
        self.source = source
        self.num_levels = num_levels
        shape = (num_levels - 1,) if weights == "per_level" else ()
        self.w1 = nn.Parameter(torch.ones(shape))
        self.w2 = nn.Parameter(torch.ones(shape))

    def extra_repr(self) -> str:
        return f"weights={self.mode}, source={self.source}, num_levels={self.num_levels}"

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(w1_hat, w2_hat): 0-d tensors, or (L - 1,) for ``"per_level"``."""
        if self.mode == "raw":
            return self.w1, self.w2
        w1, w2 = torch.relu(self.w1), torch.relu(self.w2)
        total = w1 + w2 + FUSION_EPS
        return w1 / total, w2 / total

    def forward(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Args: feats list[L] of (B, D, T_l) zero on padding; masks list[L] of (B, T_l) bool.

        Returns:
            list[L] of fused (B, D, T_l) features, zero on padding.
        """
        if self.num_levels is not None and len(feats) != self.num_levels:
            raise ValueError(f"fusion built for {self.num_levels} levels, got {len(feats)}")
        w1, w2 = self.weights()
        if self.source == "finer":
            fused = [feats[0]]
            for level in range(1, len(feats)):
                pooled, _ = masked_max_pool(feats[level - 1], masks[level - 1])
                fused.append(self._mix(w1, w2, level - 1, feats[level], pooled))
            return fused
        fused = []
        for level in range(len(feats) - 1):
            upsampled = upsample_coarser(feats[level + 1], masks[level])
            fused.append(self._mix(w1, w2, level, feats[level], upsampled))
        return [*fused, feats[-1]]

    @staticmethod
    def _mix(
        w1: torch.Tensor, w2: torch.Tensor, pair: int, own: torch.Tensor, other: torch.Tensor
    ) -> torch.Tensor:
        if w1.ndim:  # one pair per fused level
            w1, w2 = w1[pair], w2[pair]
        return w1 * own + w2 * other
