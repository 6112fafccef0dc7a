"""Masked building blocks shared by the encoder blocks and the heads.

Every temporal operation here keeps docs/decisions.md D68: a padded step never changes a valid
output, and padded steps of an output are exactly zero. Masks are ``(B, T)`` bool, True = valid.
Sources of the numbers: docs/decisions.md D16, D17 (masks, MaskedConv1D, LN) and D25 (SGP).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "MLP",
    "AffineDropPath",
    "LayerNormC",
    "MaskedConv1d",
    "MaskedGroupNorm",
    "PointwiseConv1d",
    "Scale",
    "downsample_mask",
    "masked_max_pool",
    "sinusoid_position_table",
]


def downsample_mask(mask: torch.Tensor, stride: int) -> torch.Tensor:
    """Nearest downsampling of a mask: output step ``i`` keeps input step ``stride * i``.

    Args:
        mask: (B, T) bool.
        stride: 1 or 2 (any positive int works).

    Returns:
        (B, ceil(T / stride)) bool; a valid length L becomes ceil(L / stride).
    """
    return mask if stride == 1 else mask[:, ::stride]


class MaskedConv1d(nn.Conv1d):
    """``nn.Conv1d`` with 'same' padding whose output is zeroed on padded steps.

    The input must already be zero on padded steps (every layer here guarantees it), so the
    zero padding beyond the valid length is indistinguishable from the conv's own boundary
    padding: that is what makes the valid outputs independent of how much padding follows.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        kernel_size: odd kernel; padding is ``kernel_size // 2``.
        stride: 1 or 2; T must be divisible by it so every level length is exact.
        groups: as in ``nn.Conv1d`` (``groups == in_channels`` gives a depthwise conv).
        bias: add a bias (zero-initialised: ActionFormer/TriDet set every backbone bias to 0).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        if kernel_size % 2 != 1:
            raise ValueError(f"MaskedConv1d needs an odd kernel, got {kernel_size}")
        if stride not in (1, 2):
            raise ValueError(f"MaskedConv1d supports stride 1 or 2, got {stride}")
        super().__init__(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            groups=groups,
            bias=bias,
        )
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, C_in, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, C_out, T / stride) zero on padding, and the (B, T / stride) mask.
        """
        if x.shape[-1] % self.stride[0]:
            raise ValueError(f"length {x.shape[-1]} is not divisible by stride {self.stride[0]}")
        out_mask = downsample_mask(mask, self.stride[0])
        out = super().forward(x)
        return out * out_mask.unsqueeze(1).to(out.dtype), out_mask


class PointwiseConv1d(nn.Conv1d):
    """``nn.Conv1d`` with kernel 1, declared with dilation 2 so that CPU runs it on oneDNN.

    A kernel-1 conv covers one step whatever its dilation, so the output is the same. The
    dilation matters only to PyTorch's dispatcher: with one intra-op thread it sends an
    undilated, unstrided 1x1 conv on a batch below 16 to its generic GEMM path (forward and
    backward), which ran at about half of oneDNN's speed for (B, 512|768, 2304) inputs on
    the development machine; a dilated conv always goes to oneDNN. With more threads the
    dispatcher picks oneDNN anyway. Parameters and state-dict keys are those of ``nn.Conv1d``.

    Args:
        in_channels: C_in.
        out_channels: C_out.
        groups: as in ``nn.Conv1d``.
        bias: add a bias.
    """

    def __init__(
        self, in_channels: int, out_channels: int, groups: int = 1, bias: bool = True
    ) -> None:
        super().__init__(in_channels, out_channels, 1, dilation=2, groups=groups, bias=bias)


class LayerNormC(nn.Module):
    """LayerNorm over the channels of a channel-first ``(B, C, T)`` tensor.

    Per step statistics (biased variance, eps 1e-5) and an affine (1, C, 1) weight/bias, as in
    ActionFormer's LayerNorm. It acts on each step alone, so it needs no mask; callers re-mask
    when a temporal op follows (the bias makes padded steps non-zero).

    Args:
        num_channels: C.
        eps: added to the variance.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        return _ChannelLayerNorm.apply(x, self.weight, self.bias, self.eps)


class _ChannelLayerNorm(torch.autograd.Function):
    """LayerNorm over dim 1 of (B, C, T) with a hand-written backward.

    A mean over the channel axis of a (B, C, T) tensor is a cheap vectorised reduction (the
    contiguous T axis is the inner loop); it is ``var_mean`` (Welford) that is slow there.
    Two plain means plus in-place elementwise passes beat ``F.layer_norm`` on the transposed
    view and its two transposing copies by about 4x forward and 3x forward + backward on CPU
    (1 thread, (2, 512, 2304)). Only the normalised input and the per-step inverse std are
    kept for backward, as the fused kernel does.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, eps):  # type: ignore[override]
        centred = x - x.mean(dim=1, keepdim=True)
        rstd = torch.rsqrt((centred * centred).mean(dim=1, keepdim=True).add_(eps))
        xhat = centred.mul_(rstd)
        ctx.save_for_backward(xhat, rstd, weight)
        return torch.addcmul(bias, xhat, weight)

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        xhat, rstd, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            g = grad * weight
            # d xhat / d x projects out the mean and the xhat direction of g, per step.
            proj = (g * xhat).mean(dim=1, keepdim=True)
            grad_x = g.sub_(g.mean(dim=1, keepdim=True)).sub_(xhat * proj).mul_(rstd)
        if ctx.needs_input_grad[1]:
            grad_w = (grad * xhat).sum(dim=(0, 2)).view_as(weight)
        if ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 2)).view_as(weight)
        return grad_x, grad_w, grad_b, None


class MaskedGroupNorm(nn.Module):
    """GroupNorm whose statistics are taken over valid steps only.

    TriDet's SGP block uses a plain ``nn.GroupNorm(16, D)`` over the padded tensor. The zeros
    of the padding then enter each group's mean and variance, so a video padded to 2304 steps
    in training and to the next multiple of 32 at test time is normalised differently, and a
    batch-mate's length changes the padding. Restricting the statistics to valid steps makes
    the block exactly padding-invariant (docs/decisions.md D23, D68) and is identical to
    ``nn.GroupNorm`` on an unpadded sequence.

    Args:
        num_groups: G (16 in TriDet's SGP block); must divide C.
        num_channels: C.
        eps: added to the variance.
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        if num_channels % num_groups:
            raise ValueError(f"{num_channels} channels cannot form {num_groups} groups")
        self.num_groups = num_groups
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(1, num_channels, 1))
        self.bias = nn.Parameter(torch.zeros(1, num_channels, 1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Args: x (B, C, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, C, T), zero on padded steps.
        """
        b, c, t = x.shape
        g = self.num_groups
        m = mask.to(x.dtype).view(b, 1, 1, t)
        xg = x.reshape(b, g, c // g, t)
        count = m.sum(dim=(2, 3), keepdim=True).clamp_min(1.0) * (c // g)
        mean = (xg * m).sum(dim=(2, 3), keepdim=True) / count
        centred = (xg - mean) * m
        var = centred.pow(2).sum(dim=(2, 3), keepdim=True) / count
        out = (centred * torch.rsqrt(var + self.eps)).reshape(b, c, t)
        return (out * self.weight + self.bias) * m.view(b, 1, t)


class Scale(nn.Module):
    """A learnable scalar (init 1.0), one per pyramid level in the regression heads (FCOS,
    ActionFormer), so the shared head can serve levels of different strides."""

    def __init__(self, init_value: float = 1.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_value)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class AffineDropPath(nn.Module):
    """Stochastic depth on a residual branch with a learnable per-channel scale (LayerScale).

    The scale starts at 1e-4 (TriDet/ActionFormer ``AffineDropPath``), so each block starts
    close to the identity. Samples are dropped whole and survivors rescaled by 1 / (1 - p).

    Args:
        num_channels: C.
        drop_prob: probability of dropping the branch of a sample in training.
        init_scale: initial value of the per-channel scale.
    """

    def __init__(self, num_channels: int, drop_prob: float = 0.0, init_scale: float = 1e-4):
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            raise ValueError(f"drop_prob must be in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob
        self.scale = nn.Parameter(torch.full((1, num_channels, 1), float(init_scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, C, T)."""
        x = x * self.scale
        if not self.training or self.drop_prob == 0.0:
            return x
        keep = 1.0 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        survive = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * survive / keep


class MLP(nn.Module):
    """Pointwise two-layer MLP: 1x1 conv D->H, GELU, 1x1 conv H->D (no dropout, as TriDet).

    Acts on each step alone, so it needs no mask: callers mask its output.

    Args:
        dim: D.
        hidden: H (TriDet: 768 on THUMOS, 2048 on ANet; ActionFormer: 4D).
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = PointwiseConv1d(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = PointwiseConv1d(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, D, T) -> (B, D, T)."""
        return self.fc2(self.act(self.fc1(x)))


def masked_max_pool(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Stride-2 ``MaxPool1d(3, 2, 1)`` that ignores padded steps.

    Padded steps are filled with -inf before pooling, exactly like the pool's own boundary
    padding, so the last valid window never sees a padding zero and the result does not depend
    on how much padding follows (TriDet/TemporalMaxer pool the zero-padded tensor instead).
    Output step i covers input steps 2i-1..2i+1 and is valid iff input step 2i is.

    Args:
        x: (B, D, T) features, T even.
        mask: (B, T) bool.

    Returns:
        (B, D, T/2) pooled features, zero on padded steps, and the (B, T/2) mask.
    """
    if x.shape[-1] % 2:
        raise ValueError(f"masked_max_pool needs an even length, got {x.shape[-1]}")
    out_mask = downsample_mask(mask, 2)
    filled = x.masked_fill(~mask.unsqueeze(1), float("-inf"))
    out = F.max_pool1d(filled, kernel_size=3, stride=2, padding=1)
    # masked_fill, not a product: the fully padded windows hold -inf and -inf * 0 is NaN.
    return out.masked_fill(~out_mask.unsqueeze(1), 0.0), out_mask


def sinusoid_position_table(length: int, dim: int) -> torch.Tensor:
    """Absolute sinusoidal position embedding of ActionFormer/TriDet (used on ANet).

    Sine on even channels, cosine on odd channels, angle ``pos / 10000^(2 floor(j/2) / D)``,
    divided by sqrt(D) so it stays small next to the LayerNorm-ed embedding.

    Args:
        length: number of positions T.
        dim: number of channels D.

    Returns:
        (D, T) float32 table.
    """
    pos = torch.arange(length, dtype=torch.float64).unsqueeze(0)
    j = torch.arange(dim, dtype=torch.float64).unsqueeze(1)
    angle = pos / torch.pow(10000.0, 2.0 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, torch.sin(angle), torch.cos(angle))
    return (table / math.sqrt(dim)).to(torch.float32)
