"""PyramidEncoder: level lengths and masks for 3..7 levels, stem options, PE, padding."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from torch import nn

from logo_tal.models.blocks.conv import ConvBlock
from logo_tal.models.blocks.logo import LoGoBlock
from logo_tal.models.blocks.maxer import MaxerBlock
from logo_tal.models.encoder import PyramidEncoder
from logo_tal.models.layers import AffineDropPath

LOGO = functools.partial(LoGoBlock, mlp_hidden=24, gn_groups=4)


def mask_of(lengths, total):
    return torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("num_levels", [3, 4, 5, 6, 7])
def test_level_lengths_and_masks(num_levels):
    torch.manual_seed(0)
    enc = PyramidEncoder(8, 16, num_levels, LOGO).eval()
    total = 2 ** (num_levels - 1) * 4
    lengths = [total, total - 2 ** (num_levels - 1) - 3]
    feats, masks = enc(torch.randn(2, 8, total), mask_of(lengths, total))
    assert len(feats) == len(masks) == num_levels
    for level, (x, m) in enumerate(zip(feats, masks, strict=True)):
        assert x.shape == (2, 16, total // 2**level)
        assert m.sum(1).tolist() == [math.ceil(n / 2**level) for n in lengths]
        assert (x.transpose(1, 2)[~m] == 0).all()


@pytest.mark.parametrize("num_stem", [0, 2])
def test_num_stem_and_drop_path_placement(num_stem):
    enc = PyramidEncoder(8, 16, 4, LOGO, num_stem=num_stem, drop_path=0.1)
    assert len(enc.stem) == num_stem and len(enc.branch) == 3
    # Stochastic depth on the stride-2 blocks only (TriDet).
    for blk in enc.stem:
        assert not any(isinstance(m, AffineDropPath) for m in blk.modules())
    for blk in enc.branch:
        assert any(isinstance(m, AffineDropPath) for m in blk.modules())
    feats, _ = enc(torch.randn(1, 8, 32), torch.ones(1, 32, dtype=torch.bool))
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]


def test_biases_zero_at_construction():
    enc = PyramidEncoder(8, 16, 3, ConvBlock)
    for module in enc.modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)) and module.bias is not None:
            assert (module.bias == 0).all()


@pytest.mark.parametrize("use_abs_pe", [False, True])
def test_padding_content_and_amount_do_not_matter(use_abs_pe):
    torch.manual_seed(0)
    enc = PyramidEncoder(8, 16, 4, LOGO, use_abs_pe=use_abs_pe, max_seq_len=160).eval()
    x = torch.randn(1, 8, 160)
    ref, _ = enc(x[:, :, :96] * mask_of([70], 96)[:, None], mask_of([70], 96))
    garbage = x.clone()
    garbage[:, :, 70:] = 7.0  # the encoder must ignore whatever the padding holds
    out, _ = enc(garbage, mask_of([70], 160))
    for a, b in zip(ref, out, strict=True):
        torch.testing.assert_close(b[..., : a.shape[-1]], a, atol=1e-5, rtol=1e-5)


def test_abs_pe_is_interpolated_beyond_max_seq_len():
    enc = PyramidEncoder(8, 16, 2, MaxerBlock, use_abs_pe=True, max_seq_len=32).eval()
    feats, _ = enc(torch.randn(1, 8, 64), torch.ones(1, 64, dtype=torch.bool))
    assert feats[0].shape == (1, 16, 64)
    assert "pos_table" not in enc.state_dict()


def test_wrong_input_dim_is_reported():
    enc = PyramidEncoder(8, 16, 2, MaxerBlock)
    with pytest.raises(ValueError, match="expects 8"):
        enc(torch.randn(1, 9, 8), torch.ones(1, 8, dtype=torch.bool))
