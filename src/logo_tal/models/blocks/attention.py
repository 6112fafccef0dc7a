"""ActionFormer's transformer block with local masked self-attention (paper Table 3, "SA")."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from logo_tal.models.layers import (
    MLP,
    AffineDropPath,
    LayerNormC,
    MaskedConv1d,
    PointwiseConv1d,
    masked_max_pool,
)

# Queries per banded block of the local attention. Each block scores its queries against
# chunk + window - 1 keys, so the dense work is (chunk + window - 1) / window times the exact
# band; 64 keeps that ratio near 4 for window 19 while the per-block matmuls stay large
# enough to run at BLAS speed.
_CHUNK = 64


def _neg_fill(dtype: torch.dtype) -> float:
    # A finite fill: a fully masked row (a padded query) then softmaxes to a uniform row instead
    # of NaN, and NaN would leak into the gradients of valid steps through 0 * NaN.
    return torch.finfo(dtype).min


def global_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor
) -> torch.Tensor:
    """Dense masked attention over all valid keys.

    Args:
        q: (B, H, Tq, E) queries, already scaled by 1/sqrt(E).
        k, v: (B, H, Tk, E).
        key_mask: (B, Tk) bool, True on keys that may be attended.

    Returns:
        (B, H, Tq, E).
    """
    scores = q @ k.transpose(-1, -2)
    scores = scores.masked_fill(~key_mask[:, None, None, :], _neg_fill(scores.dtype))
    return scores.softmax(dim=-1) @ v


def local_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor, window: int
) -> torch.Tensor:
    """Masked attention where query t sees the valid keys t - w//2 .. t + w//2 only.

    Banded-block implementation: queries are cut into blocks of ``_CHUNK``; each block is
    scored densely against the keys its band can reach, then the band and key masks are
    applied. Memory is O(T * (chunk + w)), never O(T^2). Keys outside the sequence are
    masked like padded keys, so a window running off either end sees nothing there.

    Args:
        q: (B, H, T, E) queries, already scaled by 1/sqrt(E).
        k, v: (B, H, T, E), same length as the queries.
        key_mask: (B, T) bool.
        window: odd window size w.

    Returns:
        (B, H, T, E).
    """
    b, h, t, e = q.shape
    half = window // 2
    chunk = min(_CHUNK, t)
    n_chunks = math.ceil(t / chunk)
    t_pad = n_chunks * chunk
    span = chunk + 2 * half
    # Key block n starts at key position n * chunk - half.
    pad = (half, t_pad - t + half)
    k_blocks = F.pad(k, (0, 0) + pad).unfold(2, span, chunk)  # (B, H, N, E, span)
    v_blocks = F.pad(v, (0, 0) + pad).unfold(2, span, chunk)  # (B, H, N, E, span)
    kmask_blocks = F.pad(key_mask, pad, value=False).unfold(1, span, chunk)  # (B, N, span)
    q_blocks = F.pad(q, (0, 0, 0, t_pad - t)).reshape(b, h, n_chunks, chunk, e)

    scores = q_blocks @ k_blocks  # (B, H, N, chunk, span)
    i = torch.arange(chunk, device=q.device).unsqueeze(1)
    j = torch.arange(span, device=q.device).unsqueeze(0)
    band = (j >= i) & (j <= i + 2 * half)  # key j of a block is query i's neighbour
    allowed = band & kmask_blocks[:, None, :, None, :]
    scores = scores.masked_fill(~allowed, _neg_fill(scores.dtype))
    out = scores.softmax(dim=-1) @ v_blocks.transpose(-1, -2)  # (B, H, N, chunk, E)
    return out.reshape(b, h, t_pad, e)[:, :, :t]


class MaskedMHA(nn.Module):
    """Multi-head self-attention of ActionFormer's ``LocalMaskedMHCA`` / ``MaskedMHCA``.

    q, k and v each come from a depthwise conv k3 (stride s; bias off) + LayerNorm, then a
    1x1 projection; the output goes through a 1x1 projection and is masked.

    Args:
        dim: D.
        num_heads: H (ActionFormer: 4); must divide D.
        stride: 1 or 2, applied to q, k and v alike.
        window_size: odd local window (ActionFormer THUMOS: 19), or None for global attention.
    """

    def __init__(self, dim: int, num_heads: int, stride: int, window_size: int | None) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        if window_size is not None and window_size % 2 != 1:
            raise ValueError(f"window_size must be odd or None, got {window_size}")
        self.num_heads = num_heads
        self.window_size = window_size
        self.q_conv = MaskedConv1d(dim, dim, 3, stride=stride, groups=dim, bias=False)
        self.k_conv = MaskedConv1d(dim, dim, 3, stride=stride, groups=dim, bias=False)
        self.v_conv = MaskedConv1d(dim, dim, 3, stride=stride, groups=dim, bias=False)
        self.q_norm = LayerNormC(dim)
        self.k_norm = LayerNormC(dim)
        self.v_norm = LayerNormC(dim)
        self.q_proj = PointwiseConv1d(dim, dim)
        self.k_proj = PointwiseConv1d(dim, dim)
        self.v_proj = PointwiseConv1d(dim, dim)
        self.out_proj = PointwiseConv1d(dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, d, t = x.shape
        return x.reshape(b, self.num_heads, d // self.num_heads, t).transpose(-1, -2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, D, T / stride) zero on padding, and the (B, T / stride) mask.
        """
        q, out_mask = self.q_conv(x, mask)
        k, _ = self.k_conv(x, mask)
        v, _ = self.v_conv(x, mask)
        q = self._heads(self.q_proj(self.q_norm(q)))
        k = self._heads(self.k_proj(self.k_norm(k)))
        v = self._heads(self.v_proj(self.v_norm(v)))
        q = q * (q.shape[-1] ** -0.5)
        if self.window_size is None:
            out = global_attention(q, k, v, out_mask)
        else:
            out = local_attention(q, k, v, out_mask, self.window_size)
        b, h, t, e = out.shape
        out = self.out_proj(out.transpose(-1, -2).reshape(b, h * e, t))
        return out * out_mask.unsqueeze(1).to(out.dtype), out_mask


class TransformerBlock(nn.Module):
    """ActionFormer's pre-LN transformer block, masked.

    ``y = skip(x) + DP(MHA(LN(x)))``, ``z = y + DP(MLP(LN(y)) * mask)``; the skip is the
    identity at stride 1 and a masked MaxPool1d(3, 2, 1) at stride 2 (docs/decisions.md D26).

    Args:
        dim: D.
        stride: 1 or 2.
        num_heads: attention heads (ActionFormer: 4).
        window_size: odd local window (ActionFormer THUMOS: 19; ANet 7 with the last level
            global), or None for global attention.
        mlp_ratio: MLP width = ``mlp_ratio * D`` (ActionFormer: 4).
        drop_path: > 0 adds AffineDropPath (scale init 1e-4) to both residual branches.
    """

    def __init__(
        self,
        dim: int,
        stride: int = 1,
        num_heads: int = 4,
        window_size: int | None = 19,
        mlp_ratio: int = 4,
        drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"TransformerBlock supports stride 1 or 2, got {stride}")
        self.stride = stride
        self.norm1 = LayerNormC(dim)
        self.attn = MaskedMHA(dim, num_heads, stride, window_size)
        self.norm2 = LayerNormC(dim)
        self.mlp = MLP(dim, mlp_ratio * dim)
        self.drop_attn = AffineDropPath(dim, drop_path) if drop_path > 0 else nn.Identity()
        self.drop_mlp = AffineDropPath(dim, drop_path) if drop_path > 0 else nn.Identity()
        for module in self.modules():
            if isinstance(module, nn.Conv1d) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, D, T / stride) zero on padding, and the (B, T / stride) mask.
        """
        m = mask.unsqueeze(1).to(x.dtype)
        # LN turns padded zeros into its bias; re-mask before the depthwise q/k/v convs.
        attn, out_mask = self.attn(self.norm1(x) * m, mask)
        skip = x if self.stride == 1 else masked_max_pool(x, mask)[0]
        y = skip + self.drop_attn(attn)
        m = out_mask.unsqueeze(1).to(y.dtype)
        return y + self.drop_mlp(self.mlp(self.norm2(y)) * m), out_mask
