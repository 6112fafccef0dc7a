"""The convolution stack shared by every head (ActionFormer / TriDet head layout)."""

from __future__ import annotations

import math

import torch
from torch import nn

from logo_tal.models.layers import LayerNormC, MaskedConv1d


def prior_bias(prior_prob: float) -> float:
    """Bias whose sigmoid is ``prior_prob`` (RetinaNet/ActionFormer: 0.01 -> -4.595)."""
    if not 0.0 < prior_prob < 1.0:
        raise ValueError(f"prior_prob must be in (0, 1), got {prior_prob}")
    return -math.log((1.0 - prior_prob) / prior_prob)


class ConvStack(nn.Module):
    """``(num_layers - 1) x [conv (bias off) -> LN -> ReLU -> mask]`` then ``MaskedConv1d``.

    The hidden convs have no bias because LayerNorm follows; the final bias starts at 0
    (ActionFormer/TriDet heads; docs/decisions.md D29). Shared across pyramid levels by its owner.

    Args:
        in_dim: input channels.
        hidden_dim: width of the hidden layers.
        out_dim: output channels.
        kernel_size: odd temporal kernel of every layer (3).
        num_layers: total conv layers (3).
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        kernel_size: int = 3,
        num_layers: int = 3,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if kernel_size % 2 != 1:
            raise ValueError(f"ConvStack needs an odd kernel, got {kernel_size}")
        dims = [in_dim] + [hidden_dim] * (num_layers - 1)
        # Hidden convs skip MaskedConv1d's output mask: LN -> ReLU -> mask follows anyway, and
        # their inputs are zero on padding, which is all padding invariance needs.
        self.hidden = nn.ModuleList(
            [
                nn.Conv1d(d_in, hidden_dim, kernel_size, padding=kernel_size // 2, bias=False)
                for d_in in dims[:-1]
            ]
        )
        self.norms = nn.ModuleList([LayerNormC(hidden_dim) for _ in dims[:-1]])
        self.final = MaskedConv1d(dims[-1], out_dim, kernel_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: x (B, in_dim, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, out_dim, T), zero on padded steps.
        """
        m = mask.unsqueeze(1).to(x.dtype)
        for conv, norm in zip(self.hidden, self.norms, strict=True):
            x = torch.relu(norm(conv(x))) * m
        return self.final(x, mask)[0]

    def convs(self) -> list[nn.Conv1d]:
        return [*self.hidden, self.final]
