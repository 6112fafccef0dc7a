"""The identity-with-LayerNorm neck of ActionFormer / TriDet (``fpn_type: identity``)."""

from __future__ import annotations

import torch
from torch import nn

from logo_tal.models.layers import LayerNormC


class LayerNormNeck(nn.Module):
    """A separate channel-first LayerNorm per pyramid level, re-masked (docs/decisions.md D27).

    Args:
        dim: D of every level.
        num_levels: L.
    """

    def __init__(self, dim: int, num_levels: int) -> None:
        super().__init__()
        self.norms = nn.ModuleList([LayerNormC(dim) for _ in range(num_levels)])

    def forward(
        self, feats: list[torch.Tensor], masks: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Args: feats list[L] of (B, D, T_l); masks list[L] of (B, T_l) bool.

        Returns:
            The normalised features (zero on padding) and the unchanged masks.
        """
        if len(feats) != len(self.norms):
            raise ValueError(f"neck built for {len(self.norms)} levels, got {len(feats)}")
        out = [
            norm(x) * m.unsqueeze(1).to(x.dtype)
            for norm, x, m in zip(self.norms, feats, masks, strict=True)
        ]
        return out, masks
