"""TemporalMaxer's block: a parameter-free masked max-pool between pyramid levels."""

from __future__ import annotations

import torch
from torch import nn

from logo_tal.models.layers import masked_max_pool


class MaxerBlock(nn.Module):
    """MaxPool1d(3, 2, 1) over valid steps at stride 2; the identity at stride 1.

    TemporalMaxer uses no stem blocks (arch (2, 0, 5), docs/decisions.md D18); at stride 1
    the block is the identity so ``num_stem`` may be left at 2 without changing anything.

    Args:
        dim: D (unused: the block has no parameters; kept for the factory signature).
        stride: 1 or 2.
        drop_path: unused (nothing to drop); kept for the factory signature.
    """

    def __init__(self, dim: int, stride: int = 1, drop_path: float = 0.0) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"MaxerBlock supports stride 1 or 2, got {stride}")
        self.stride = stride

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, D, T / stride) zero on padding, and the (B, T / stride) mask.
        """
        if self.stride == 1:
            return x, mask
        return masked_max_pool(x, mask)
