"""Cross-level feature fusion, the part that turns the Trident head into the CLFF head.

Paper section 3.3: the centre-offset branch of level l sees
``F~^l = w1_hat * F^l + w2_hat * MaxPool(F^(l-1))``; the start/end heads still use ``F^l``.
The CLFF head is ``TridentRegHead(..., centre_fusion=CrossLevelFusion())``
(``conf/model/head/clff.yaml``); the "TriDet head" ablation (Table 4 row 2) is the same head
without the fusion part. Weight sharing and normalisation: docs/decisions.md D31-D35.
"""

from __future__ import annotations

import torch
from torch import nn

from logo_tal.models.layers import masked_max_pool

# BiFPN's fast normalised fusion epsilon.
FUSION_EPS = 1e-4


class CrossLevelFusion(nn.Module):
    """``F~^l = w1_hat * F^l + w2_hat * MaxPool(F^(l-1))`` for every level but the first.

    The previous level l-1 is the finer one that produced level l; the masked
    MaxPool1d(3, 2, 1) brings it to level l's length, centred on the same grid points
    (point i of level l sits at point 2i of level l-1). The first level has no previous level
    and keeps ``F~ = F``. ``w1`` and ``w2`` are two scalars shared by all levels, initialised
    to 1 and normalised BiFPN-style: ``w_hat_i = ReLU(w_i) / (ReLU(w1) + ReLU(w2) + 1e-4)``
    (the paper says only "learnable weights ... fusion ratios"). They are 0-d parameters, so
    ``optim.param_groups`` exempts them from weight decay.
    """

    def __init__(self) -> None:
        super().__init__()
        self.w1 = nn.Parameter(torch.tensor(1.0))
        self.w2 = nn.Parameter(torch.tensor(1.0))

    def weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised (w1_hat, w2_hat), 0-d tensors."""
        w1, w2 = torch.relu(self.w1), torch.relu(self.w2)
        total = w1 + w2 + FUSION_EPS
        return w1 / total, w2 / total

    def forward(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Args: feats list[L] of (B, D, T_l) zero on padding; masks list[L] of (B, T_l) bool.

        Returns:
            list[L] of fused (B, D, T_l) features, zero on padding.
        """
        w1, w2 = self.weights()
        fused = [feats[0]]
        for level in range(1, len(feats)):
            pooled, _ = masked_max_pool(feats[level - 1], masks[level - 1])
            fused.append(w1 * feats[level] + w2 * pooled)
        return fused
