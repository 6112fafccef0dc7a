"""The paper's convolutional baseline block (Table 3 row 1): ActionFormer's ``ConvBlock``."""

from __future__ import annotations

import torch
from torch import nn

from logo_tal.models.layers import MaskedConv1d


class ConvBlock(nn.Module):
    """conv k3 (stride s, width 2D) -> ReLU -> conv k3 -> + shortcut -> ReLU, masked.

    The shortcut is the identity at stride 1 and a strided 1x1 conv at stride 2
    (ActionFormer ``ConvBlock``, expansion factor 2; docs/decisions.md D26).

    Args:
        dim: D, channels in and out.
        stride: 1 or 2.
        expansion: hidden width = ``expansion * D`` (ActionFormer: 2).
        kernel_size: odd temporal kernel (ActionFormer: 3).
        drop_path: accepted so every block shares the encoder's factory signature; unused,
            because ActionFormer's ConvBlock has no stochastic depth and the baseline keeps it so.
    """

    def __init__(
        self,
        dim: int,
        stride: int = 1,
        expansion: int = 2,
        kernel_size: int = 3,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        hidden = expansion * dim
        self.conv1 = MaskedConv1d(dim, hidden, kernel_size, stride=stride)
        self.conv2 = MaskedConv1d(hidden, dim, kernel_size)
        self.shortcut = MaskedConv1d(dim, dim, 1, stride=stride) if stride > 1 else None
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, D, T / stride) zero on padding, and the (B, T / stride) mask.
        """
        skip = x if self.shortcut is None else self.shortcut(x, mask)[0]
        out, out_mask = self.conv1(x, mask)
        out, _ = self.conv2(self.act(out), out_mask)
        # Both terms are zero on padding and ReLU(0) = 0, so no re-masking is needed.
        return self.act(out + skip), out_mask
