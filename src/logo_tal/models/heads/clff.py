"""The paper's Cross-Level Feature Fusion regression head (section 3.3, ancestors.md G6).

A :class:`TridentRegHead` whose centre-offset branch sees
``F~^l = w1_hat * F^l + w2_hat * MaxPool(F^(l-1))``; the start/end heads still use ``F^l``.
The "TriDet head" ablation (Table 4 row 2) is the base class: the same forward with no fusion.
"""

from __future__ import annotations

import torch
from torch import nn

from logo_tal.models.heads.trident import TridentRegHead, decode, encode
from logo_tal.models.layers import masked_max_pool

__all__ = ["CLFFRegHead", "decode", "encode"]

# BiFPN's fast normalised fusion epsilon.
FUSION_EPS = 1e-4


class CLFFRegHead(TridentRegHead):
    """Trident head with cross-level fusion in the centre-offset branch.

    The previous level l-1 is the finer one that produced level l; the masked
    MaxPool1d(3, 2, 1) brings it to level l's length, centred on the same grid points
    (point i of level l sits at point 2i of level l-1). The first level has no previous level
    and keeps ``F~ = F``. ``w1`` and ``w2`` are two scalars shared by all levels, initialised
    to 1 and normalised BiFPN-style: ``w_hat_i = ReLU(w_i) / (ReLU(w1) + ReLU(w2) + 1e-4)``
    (the paper says only "learnable weights ... fusion ratios"; G6). They are 0-d parameters,
    so ``optim.param_groups`` exempts them from weight decay.

    Args: as :class:`TridentRegHead`.
    """

    def __init__(
        self,
        in_dim: int,
        head_dim: int,
        num_classes: int,
        num_levels: int,
        num_bins: int = 16,
        boundary_kernel: int = 3,
        boundary_init: str = "paper",
        boundary_prior: float = 0.01,
        kernel_size: int = 3,
        num_layers: int = 3,
    ) -> None:
        super().__init__(
            in_dim,
            head_dim,
            num_classes,
            num_levels,
            num_bins=num_bins,
            boundary_kernel=boundary_kernel,
            boundary_init=boundary_init,  # type: ignore[arg-type]
            boundary_prior=boundary_prior,
            kernel_size=kernel_size,
            num_layers=num_layers,
        )
        self.w1 = nn.Parameter(torch.tensor(1.0))
        self.w2 = nn.Parameter(torch.tensor(1.0))

    def fusion_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The normalised (w1_hat, w2_hat), 0-d tensors."""
        w1, w2 = torch.relu(self.w1), torch.relu(self.w2)
        total = w1 + w2 + FUSION_EPS
        return w1 / total, w2 / total

    def centre_inputs(
        self, feats: list[torch.Tensor], masks: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Args: feats list[L] of (B, D, T_l) zero on padding; masks list[L] of (B, T_l) bool.

        Returns:
            list[L] of fused (B, D, T_l) features, zero on padding.
        """
        w1, w2 = self.fusion_weights()
        fused = [feats[0]]
        for level in range(1, len(feats)):
            pooled, _ = masked_max_pool(feats[level - 1], masks[level - 1])
            fused.append(w1 * feats[level] + w2 * pooled)
        return fused
