"""TriDet's Trident regression head (paper Table 4 row 2; docs/decisions.md D31-D35).

With a ``centre_fusion`` part (:class:`~logo_tal.models.heads.clff.CrossLevelFusion`) it is the
paper's CLFF head: the fusion changes only what the centre-offset branch sees.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from logo_tal.models.heads.base import ConvStack, prior_bias
from logo_tal.models.layers import Scale

BoundaryInit = Literal["paper", "default"]

# Paper section 3.3 (via TriDet's text): boundary-head conv weights ~ N(0, 0.1); absent from
# TriDet's code, which keeps PyTorch's default init (docs/decisions.md D33).
PAPER_BOUNDARY_STD = 0.1


def decode(left_logits: torch.Tensor, right_logits: torch.Tensor) -> torch.Tensor:
    """Expected distances of the two bin distributions.

    Left bin j stands for distance B - j (its boundary logit sits at t - B + j), right bin j
    for distance j (boundary logit at t + j).

    Args:
        left_logits, right_logits: (..., B + 1).

    Returns:
        (..., 2) (left, right) distances in [0, B], level-stride units.
    """
    num_bins = left_logits.shape[-1] - 1
    dist = torch.arange(num_bins + 1, device=left_logits.device, dtype=left_logits.dtype)
    left = (left_logits.softmax(dim=-1) * (num_bins - dist)).sum(dim=-1)
    right = (right_logits.softmax(dim=-1) * dist).sum(dim=-1)
    return torch.stack((left, right), dim=-1)


def encode(
    distances: torch.Tensor, num_bins: int, floor: float = 1e-8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose :func:`decode` gives ``distances``: log of a two-bin linear interpolation.

    Args:
        distances: (..., 2) (left, right) in [0, num_bins].
        num_bins: B.
        floor: probability given to the other bins (keeps the log finite).

    Returns:
        left_logits, right_logits: (..., B + 1) each, in :func:`decode`'s bin order.
    """
    d = distances.clamp(0.0, float(num_bins))
    lo = d.floor().clamp_max(num_bins - 1)
    frac = d - lo
    idx = torch.arange(num_bins + 1, device=d.device, dtype=d.dtype)
    # Probability of bin-distance k: (1 - frac) at lo, frac at lo + 1.
    probs = (1.0 - frac).unsqueeze(-1) * (idx == lo.unsqueeze(-1)) + frac.unsqueeze(-1) * (
        idx == lo.unsqueeze(-1) + 1
    )
    logits = torch.log(probs + floor)
    # Left bins run from distance B down to 0.
    return logits[..., 0, :].flip(-1), logits[..., 1, :]


def neighbour_windows(
    start: torch.Tensor, end: torch.Tensor, num_bins: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boundary logits around every point, within one level.

    Positions before the start or after the end of the level hold logit 0, as padded steps
    do (the boundary heads output 0 there), following TriDet.

    Args:
        start, end: (B, C, T) boundary logits, zero on padded steps.
        num_bins: B.

    Returns:
        left (B, C, T, B + 1) with ``left[..., t, j] = start[..., t - B + j]`` and
        right (B, C, T, B + 1) with ``right[..., t, j] = end[..., t + j]``.
    """
    left = F.pad(start, (num_bins, 0)).unfold(-1, num_bins + 1, 1)
    right = F.pad(end, (0, num_bins)).unfold(-1, num_bins + 1, 1)
    return left, right


class TridentRegHead(nn.Module):
    """Start, end and centre-offset branches combined into per-class bin distributions.

    Start and end heads are class-aware and see *detached* features (TriDet), so the backbone
    is trained through the centre-offset branch and the classification head only. The
    centre-offset head gives 2 (B + 1) logits per step, scaled per level and ReLU-ed
    (docs/decisions.md D31).
    For point t and class c:
    ``p_L(j) = softmax_j(start[c, t - B + j] + ctr_left[t, j])``, distance B - j;
    ``p_R(j) = softmax_j(end[c, t + j] + ctr_right[t, j])``, distance j; offsets are the
    expectations.

    Args:
        in_dim: channels of the pyramid features.
        head_dim: hidden width of the three branches.
        num_classes: C.
        num_levels: L (one Scale per level for the centre branch).
        num_bins: B (TriDet: 16 THUMOS, 12 ANet); max distance B level strides.
        boundary_kernel: temporal kernel of the start/end heads (TriDet: 3).
        boundary_init: "paper" = N(0, 0.1) conv weights in the start/end heads, "default" =
            PyTorch's init (TriDet's code). Both start the final bias at the prior.
        boundary_prior: prior probability of the boundary logits' final bias (0.01 -> -4.595).
        kernel_size: temporal kernel of the centre branch (3).
        num_layers: conv layers per branch (3).
        centre_fusion: ``(feats, masks) -> feats`` applied to the centre branch's input (CLFF);
            None feeds every level its own features (TriDet).
    """

    def __init__(
        self,
        in_dim: int,
        head_dim: int,
        num_classes: int,
        num_levels: int,
        num_bins: int = 16,
        boundary_kernel: int = 3,
        boundary_init: BoundaryInit = "paper",
        boundary_prior: float = 0.01,
        kernel_size: int = 3,
        num_layers: int = 3,
        centre_fusion: nn.Module | None = None,
    ) -> None:
        super().__init__()
        if boundary_init not in ("paper", "default"):
            raise ValueError(f"boundary_init must be 'paper' or 'default', got {boundary_init!r}")
        if num_bins < 1:
            raise ValueError(f"num_bins must be >= 1, got {num_bins}")
        self.num_classes = num_classes
        self.num_levels = num_levels
        self.num_bins = num_bins
        # First, so that the fusion weights lead the parameter order (as 0-d parameters of the
        # head did): the optimiser and the gradient-norm clipping see the same sequence.
        self.centre_fusion = centre_fusion
        self.start = ConvStack(in_dim, head_dim, num_classes, boundary_kernel, num_layers)
        self.end = ConvStack(in_dim, head_dim, num_classes, boundary_kernel, num_layers)
        self.centre = ConvStack(in_dim, head_dim, 2 * (num_bins + 1), kernel_size, num_layers)
        self.scales = nn.ModuleList([Scale() for _ in range(num_levels)])
        for stack in (self.start, self.end):
            if boundary_init == "paper":
                for conv in stack.convs():
                    nn.init.normal_(conv.weight, std=PAPER_BOUNDARY_STD)
            nn.init.constant_(stack.final.bias, prior_bias(boundary_prior))

    def forward(self, feats: list[torch.Tensor], masks: list[torch.Tensor]) -> list[torch.Tensor]:
        """Args: feats list[L] of (B, D, T_l) zero on padding; masks list[L] of (B, T_l) bool.

        Returns:
            list[L] of (B, T_l, C, 2) per-class (left, right) distances in [0, B] level-stride
            units, zero on padded steps.
        """
        if len(feats) != self.num_levels:
            raise ValueError(f"head built for {self.num_levels} levels, got {len(feats)}")
        ctr_feats = feats if self.centre_fusion is None else self.centre_fusion(feats, masks)
        out = []
        for x, xc, m, scale in zip(feats, ctr_feats, masks, self.scales, strict=True):
            detached = x.detach()
            left, right = neighbour_windows(
                self.start(detached, m), self.end(detached, m), self.num_bins
            )
            ctr = torch.relu(scale(self.centre(xc, m)))  # (B, 2 (B + 1), T)
            b, _, t = ctr.shape
            ctr = ctr.reshape(b, 2, 1, self.num_bins + 1, t).transpose(-1, -2)  # (B, 2, 1, T, B+1)
            offsets = decode(left + ctr[:, 0], right + ctr[:, 1])  # (B, C, T, 2)
            offsets = offsets.transpose(1, 2) * m[:, :, None, None].to(offsets.dtype)
            out.append(offsets)
        return out
