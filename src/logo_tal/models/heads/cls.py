"""Classification head shared across pyramid levels (paper section 3.3, docs/decisions.md D29)."""

from __future__ import annotations

import torch
from torch import nn

from logo_tal.models.heads.base import ConvStack, prior_bias


class ClsHead(nn.Module):
    """Three k3 convs (LN + ReLU on the first two) -> per-class logits, shared by all levels.

    Logits are for independent per-class sigmoids (focal loss), not a softmax. The final bias
    starts at ``-log((1 - p) / p)`` so every class starts at probability ``prior_prob``
    (ActionFormer/TriDet ``prior_prob`` 0.01).

    Args:
        in_dim: channels of the pyramid features.
        head_dim: hidden width (THUMOS and TriDet ANet: 512).
        num_classes: C.
        prior_prob: initial class probability.
        kernel_size: temporal kernel (3).
        num_layers: conv layers (3).
    """

    def __init__(
        self,
        in_dim: int,
        head_dim: int,
        num_classes: int,
        prior_prob: float = 0.01,
        kernel_size: int = 3,
        num_layers: int = 3,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stack = ConvStack(in_dim, head_dim, num_classes, kernel_size, num_layers)
        nn.init.constant_(self.stack.final.bias, prior_bias(prior_prob))

    def forward(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Args: feats list[L] of (B, D, T_l); masks list[L] of (B, T_l) bool.

        Returns:
            list[L] of (B, T_l, C) logits, zero on padded steps.
        """
        return [self.stack(x, m).transpose(1, 2) for x, m in zip(feats, masks, strict=True)]
