"""ActionFormer's class-agnostic regression head (paper Table 4 row 1; docs/decisions.md D30)."""

from __future__ import annotations

import torch
from torch import nn

from logo_tal.models.heads.base import ConvStack
from logo_tal.models.layers import Scale


def decode(raw: torch.Tensor) -> torch.Tensor:
    """Raw (scaled) head output -> distances: ``ReLU``. (..., 2) -> (..., 2)."""
    return torch.relu(raw)


def encode(distances: torch.Tensor) -> torch.Tensor:
    """A raw output that decodes to ``distances`` (>= 0): the distances themselves."""
    return distances.clamp_min(0.0)


class ActionFormerRegHead(nn.Module):
    """Three k3 convs -> 2 channels, a learnable ``Scale`` per level, ReLU.

    Args:
        in_dim: channels of the pyramid features.
        head_dim: hidden width.
        num_levels: L (one Scale per level).
        kernel_size: temporal kernel (3).
        num_layers: conv layers (3).
    """

    def __init__(
        self,
        in_dim: int,
        head_dim: int,
        num_levels: int,
        kernel_size: int = 3,
        num_layers: int = 3,
    ) -> None:
        super().__init__()
        self.stack = ConvStack(in_dim, head_dim, 2, kernel_size, num_layers)
        self.scales = nn.ModuleList([Scale() for _ in range(num_levels)])

    def forward(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Args: feats list[L] of (B, D, T_l); masks list[L] of (B, T_l) bool.

        Returns:
            list[L] of (B, T_l, 1, 2) (left, right) distances >= 0 in level-stride units,
            zero on padded steps.
        """
        if len(feats) != len(self.scales):
            raise ValueError(f"head built for {len(self.scales)} levels, got {len(feats)}")
        return [
            decode(scale(self.stack(x, m))).transpose(1, 2).unsqueeze(2)
            for x, m, scale in zip(feats, masks, self.scales, strict=True)
        ]
