"""Multi-scale pyramid encoder: projection convs, stem blocks, one stride-2 block per level."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from logo_tal.models.layers import LayerNormC, masked_max_pool, sinusoid_position_table

BlockFactory = Callable[..., nn.Module]


class PyramidEncoder(nn.Module):
    """``arch = (2, num_stem, num_levels - 1)`` encoder of ActionFormer / TriDet / LoGo.

    Two projection layers ``MaskedConv1d k3 (bias off) -> LN -> ReLU`` (paper: "two 1D
    convolutional layers as feature projection layers"), an optional absolute position
    embedding, ``num_stem`` stride-1 blocks (with ``stem_drop_path``: none by default, as
    TriDet's stem), then ``num_levels - 1`` stride-2 blocks (with ``drop_path``). Level 0 is
    the stem output, level l the output of stride-2 block l (docs/decisions.md D18).

    ``pool_first`` orders each level's downsampling (docs/decisions.md D94): True builds the
    level blocks with stride 2, so a LoGo block max-pools first and then runs at the coarser
    length (TriDet's code); False builds them with stride 1, runs each at the finer length and
    then applies the masked MaxPool1d(3, 2, 1) (the paper's eq. 1-3). For blocks that downsample
    by a strided conv (conv, transformer) False replaces that by the same max-pool.

    Args:
        input_dim: C, channels of the input features (I3D: 2048).
        embed_dim: D (THUMOS 512, ANet 256).
        num_levels: L, pyramid levels (paper: 6).
        block: factory ``block(dim, stride=s, drop_path=p) -> module`` with
            ``forward(x, mask) -> (x, mask)``; e.g. a Hydra ``_partial_`` of a block class.
        num_stem: stride-1 blocks before the pyramid (2; TemporalMaxer uses 0).
        drop_path: stochastic depth of the stride-2 blocks (TriDet: 0.1 on branch blocks).
        use_abs_pe: add the sinusoidal position table (ActionFormer/TriDet ANet).
        max_seq_len: length of the position table; longer inputs get it linearly interpolated.
        pool_first: True = stride-2 blocks (pool, then block: TriDet), False = stride-1 blocks
            followed by the masked max-pool (block, then pool: the paper's eq. 1-3).
        stem_drop_path: stochastic depth of the stem blocks (ActionFormer: ``drop_path`` on
            every block, which in its transformer blocks also adds the per-block LayerScale of
            ``AffineDropPath``; ``recipe=actionformer``, docs/decisions.md D124).
        stem_kwargs: extra keyword arguments of the stem blocks only, e.g.
            ``{"local_kernel": 1}`` for TriDet's kernel-1 stem (docs/decisions.md D97); None
            builds the stem blocks like the level blocks.
    """

    def __init__(
        self,
        input_dim: int,
        embed_dim: int,
        num_levels: int,
        block: BlockFactory,
        num_stem: int = 2,
        drop_path: float = 0.1,
        use_abs_pe: bool = False,
        max_seq_len: int = 2304,
        pool_first: bool = True,
        stem_kwargs: Mapping[str, Any] | None = None,
        stem_drop_path: float = 0.0,
    ) -> None:
        super().__init__()
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        if num_stem < 0:
            raise ValueError(f"num_stem must be >= 0, got {num_stem}")
        self.input_dim = input_dim
        self.embed_dim = embed_dim
        self.num_levels = num_levels
        self.pool_first = bool(pool_first)
        # Plain convs: LN -> ReLU -> mask follows each, so masking their output is redundant.
        self.proj = nn.ModuleList(
            [
                nn.Conv1d(input_dim, embed_dim, 3, padding=1, bias=False),
                nn.Conv1d(embed_dim, embed_dim, 3, padding=1, bias=False),
            ]
        )
        self.proj_norm = nn.ModuleList([LayerNormC(embed_dim), LayerNormC(embed_dim)])
        self.max_seq_len = max_seq_len
        if use_abs_pe:
            # Not persistent: a pure function of (max_seq_len, D) that would bloat checkpoints.
            table = sinusoid_position_table(max_seq_len, embed_dim).unsqueeze(0)
            self.register_buffer("pos_table", table, persistent=False)
        else:
            self.pos_table = None
        stem_kwargs = dict(stem_kwargs or {})
        self.stem = nn.ModuleList(
            [
                block(embed_dim, stride=1, drop_path=stem_drop_path, **stem_kwargs)
                for _ in range(num_stem)
            ]
        )
        # Same constructor calls in the same order either way: a block whose stride only
        # decides where it pools (LoGo, maxer) draws the same weights for both orders.
        stride = 2 if self.pool_first else 1
        self.branch = nn.ModuleList(
            [block(embed_dim, stride=stride, drop_path=drop_path) for _ in range(num_levels - 1)]
        )
        # ActionFormer/TriDet zero every backbone Conv1d/Linear bias at construction.
        for module in self.modules():
            if isinstance(module, (nn.Conv1d, nn.Linear)) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(
        self, feats: torch.Tensor, mask: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Encode a padded batch into a feature pyramid.

        Args:
            feats: (B, C, T) features; padded steps are ignored whatever they hold.
            mask: (B, T) bool, True on valid steps.

        Returns:
            list[L] of (B, D, T / 2^l) features, zero on padded steps, and list[L] of
            (B, T / 2^l) bool masks.
        """
        if feats.shape[1] != self.input_dim:
            raise ValueError(
                f"features have {feats.shape[1]} channels, the encoder expects {self.input_dim}"
            )
        m = mask.unsqueeze(1).to(feats.dtype)
        x = feats * m
        for conv, norm in zip(self.proj, self.proj_norm, strict=True):
            x = torch.relu(norm(conv(x))) * m
        if self.pos_table is not None:
            x = x + self._positions(x.shape[-1]).to(x.dtype) * m
        for blk in self.stem:
            x, mask = blk(x, mask)
        feats_out, masks_out = [x], [mask]
        for blk in self.branch:
            x, mask = blk(x, mask)
            if not self.pool_first:
                x, mask = masked_max_pool(x, mask)
            feats_out.append(x)
            masks_out.append(mask)
        return feats_out, masks_out

    def _positions(self, length: int) -> torch.Tensor:
        table = self.pos_table
        if length > self.max_seq_len:
            # ActionFormer's test-time rule for sequences longer than the table.
            return F.interpolate(table, size=length, mode="linear", align_corners=False)
        return table[:, :, :length]
