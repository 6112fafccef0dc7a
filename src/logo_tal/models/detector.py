"""The detector: encoder -> (neck) -> classification and regression heads -> raw outputs."""

from __future__ import annotations

import torch
from torch import nn

from logo_tal.core.pyramid import PyramidSpec
from logo_tal.models.outputs import DetectorOutput


class Detector(nn.Module):
    """Single-stage anchor-free detector over a feature pyramid.

    ``forward`` returns raw per-level outputs only; assignment, losses and decoding to
    seconds live in their own modules (docs/design.md). It never branches on
    ``self.training`` (dropout-like layers inside still follow train/eval mode).

    Args:
        encoder: module ``(feats (B, C, T), mask (B, T)) -> (list[L] feats, list[L] masks)``,
            e.g. :class:`~logo_tal.models.encoder.PyramidEncoder`.
        head: regression head ``(feats, masks) -> list[L] of (B, T_l, K, 2)``.
        cls_head: classification head ``(feats, masks) -> list[L] of (B, T_l, C)``.
        neck: optional ``(feats, masks) -> (feats, masks)`` between encoder and heads.
        num_levels: L, the only pyramid knob (docs/decisions.md D69).
        input_dim: expected C of the input features, checked in ``forward`` when given.
        num_classes: C of the classification head.
    """

    def __init__(
        self,
        encoder: nn.Module,
        head: nn.Module,
        cls_head: nn.Module,
        neck: nn.Module | None = None,
        num_levels: int = 6,
        input_dim: int | None = None,
        num_classes: int | None = None,
    ) -> None:
        super().__init__()
        self.spec = PyramidSpec(num_levels)
        enc_levels = getattr(encoder, "num_levels", num_levels)
        if enc_levels != num_levels:
            raise ValueError(f"encoder has {enc_levels} levels but num_levels={num_levels}")
        self.encoder = encoder
        self.neck = neck
        self.cls_head = cls_head
        self.head = head
        self.input_dim = input_dim
        self.num_classes = num_classes

    @property
    def num_levels(self) -> int:
        return self.spec.num_levels

    @property
    def divisor(self) -> int:
        """Padded input lengths must be a multiple of this (the coarsest stride)."""
        return self.spec.divisor

    def forward(self, feats: torch.Tensor, mask: torch.Tensor) -> DetectorOutput:
        """Run the detector on a padded batch.

        Args:
            feats: (B, C, T) features; T a multiple of :attr:`divisor`.
            mask: (B, T) bool, True on valid steps.

        Returns:
            :class:`DetectorOutput` with list[L] of (B, T_l, C) logits, (B, T_l, K, 2)
            offsets in level-stride units, (B, T_l) masks, and the L strides.
        """
        if feats.ndim != 3:
            raise ValueError(f"expected features (B, C, T), got shape {tuple(feats.shape)}")
        b, c, t = feats.shape
        self.spec.check_length(t, "padded sequence length")
        if self.input_dim is not None and c != self.input_dim:
            raise ValueError(f"features have {c} channels, the model expects {self.input_dim}")
        if mask.shape != (b, t) or mask.dtype != torch.bool:
            raise ValueError(
                f"mask must be bool (B, T) = {(b, t)}, got {mask.dtype} {tuple(mask.shape)}"
            )
        levels, masks = self.encoder(feats, mask)
        if self.neck is not None:
            levels, masks = self.neck(levels, masks)
        return DetectorOutput(
            cls_logits=self.cls_head(levels, masks),
            offsets=self.head(levels, masks),
            masks=masks,
            strides=self.spec.strides,
        )
