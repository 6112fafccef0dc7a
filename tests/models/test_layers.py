"""Masked layers: each against its plain PyTorch counterpart on the unpadded sequence."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from logo_tal.models.layers import (
    MLP,
    AffineDropPath,
    LayerNormC,
    MaskedConv1d,
    MaskedGroupNorm,
    Scale,
    downsample_mask,
    masked_max_pool,
    sinusoid_position_table,
)


def padded(x: torch.Tensor, length: int, total: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Zero-pad (B, C, >= length) features after ``length`` steps to ``total`` steps."""
    out = torch.zeros(x.shape[0], x.shape[1], total)
    out[:, :, :length] = x[:, :, :length]
    mask = torch.zeros(x.shape[0], total, dtype=torch.bool)
    mask[:, :length] = True
    return out, mask


@pytest.mark.parametrize("stride", [1, 2])
def test_masked_conv_matches_conv_on_unpadded(stride):
    torch.manual_seed(0)
    conv = MaskedConv1d(4, 6, 3, stride=stride)
    nn.init.normal_(conv.bias)
    x = torch.randn(1, 4, 70)
    ref = F.conv1d(x, conv.weight, conv.bias, stride=stride, padding=1)
    for total in (96, 160):
        xp, mask = padded(x, 70, total)
        out, out_mask = conv(xp, mask)
        assert out.shape == (1, 6, total // stride)
        assert out_mask.sum() == math.ceil(70 / stride)
        assert torch.allclose(out[:, :, : ref.shape[-1]], ref, atol=1e-6)
        assert (out[:, :, ref.shape[-1] :] == 0).all()


def test_masked_conv_rejects_even_kernel_and_odd_length():
    with pytest.raises(ValueError, match="odd kernel"):
        MaskedConv1d(2, 2, 4)
    conv = MaskedConv1d(2, 2, 3, stride=2)
    with pytest.raises(ValueError, match="divisible"):
        conv(torch.zeros(1, 2, 7), torch.ones(1, 7, dtype=torch.bool))


def test_masked_conv_bias_starts_at_zero():
    assert (MaskedConv1d(3, 5, 3).bias == 0).all()


def test_downsample_mask_keeps_even_indices():
    mask = torch.tensor([[True, True, True, False, False, False]])
    assert downsample_mask(mask, 2).tolist() == [[True, True, False]]
    assert downsample_mask(mask, 1) is mask


def test_layernorm_c_matches_layer_norm():
    torch.manual_seed(0)
    ln = LayerNormC(8)
    nn.init.normal_(ln.weight)
    nn.init.normal_(ln.bias)
    x = torch.randn(2, 8, 11)
    ref = F.layer_norm(x.transpose(1, 2), (8,), ln.weight.view(8), ln.bias.view(8), 1e-5)
    assert torch.allclose(ln(x), ref.transpose(1, 2), atol=1e-5)


def test_masked_group_norm_matches_group_norm_on_unpadded():
    torch.manual_seed(0)
    gn = MaskedGroupNorm(4, 16)
    nn.init.normal_(gn.weight)
    nn.init.normal_(gn.bias)
    x = torch.randn(1, 16, 70)
    ref = F.group_norm(x, 4, gn.weight.view(16), gn.bias.view(16), 1e-5)
    for total in (96, 160):
        xp, mask = padded(x, 70, total)
        out = gn(xp, mask)
        assert torch.allclose(out[:, :, :70], ref, atol=1e-5)
        assert (out[:, :, 70:] == 0).all()


def test_scale_and_affine_drop_path():
    assert Scale().scale.item() == 1.0
    dp = AffineDropPath(4, drop_prob=0.5)
    assert torch.allclose(dp.scale, torch.full((1, 4, 1), 1e-4))
    x = torch.ones(64, 4, 3)
    dp.eval()
    assert torch.allclose(dp(x), x * 1e-4)
    dp.train()
    torch.manual_seed(0)
    out = dp(x) / 1e-4
    per_sample = out[:, 0, 0]
    # Whole samples are dropped or rescaled by 1 / keep.
    assert set(per_sample.unique().tolist()) <= {0.0, 2.0}
    assert (out == out[:, :1, :1]).all()
    assert 0 < (per_sample == 0).sum() < 64


def test_mlp_shape():
    assert MLP(8, 12)(torch.randn(2, 8, 5)).shape == (2, 8, 5)


@pytest.mark.parametrize("length", [70, 69])
def test_masked_max_pool_matches_pool_on_unpadded(length):
    torch.manual_seed(0)
    x = torch.randn(2, 3, length) - 5.0  # negative: a padding zero would win the max
    ref = F.max_pool1d(x, 3, 2, 1)
    for total in (96, 160):
        xp, mask = padded(x, length, total)
        out, out_mask = masked_max_pool(xp, mask)
        n = math.ceil(length / 2)
        assert out_mask.sum(1).tolist() == [n, n]
        assert torch.equal(out[:, :, :n], ref[:, :, :n])
        assert (out[:, :, n:] == 0).all()


def test_masked_max_pool_gradient_is_finite():
    x = torch.randn(1, 2, 8, requires_grad=True)
    mask = torch.tensor([[True] * 3 + [False] * 5])
    out, _ = masked_max_pool(x * mask, mask)
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_sinusoid_position_table():
    table = sinusoid_position_table(50, 8)
    assert table.shape == (8, 50)
    assert torch.allclose(table[0::2, 0], torch.zeros(4))
    assert torch.allclose(table[1::2, 0], torch.full((4,), 1 / math.sqrt(8)))
    # Channel pair (2, 3) uses angle pos / 10000^(2/8).
    angle = 7 / 10000 ** (2 / 8)
    assert math.isclose(table[2, 7].item(), math.sin(angle) / math.sqrt(8), rel_tol=1e-5)
    assert math.isclose(table[3, 7].item(), math.cos(angle) / math.sqrt(8), rel_tol=1e-5)
