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
from logo_tal.models.layers import AffineDropPath, masked_max_pool

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


def test_stem_drop_path_gives_the_stem_blocks_stochastic_depth_and_layer_scale():
    """ActionFormer's placement (recipe=actionformer): every block, the stem included."""
    enc = PyramidEncoder(8, 16, 4, LOGO, drop_path=0.1, stem_drop_path=0.1)
    for blk in [*enc.stem, *enc.branch]:
        scales = [m for m in blk.modules() if isinstance(m, AffineDropPath)]
        assert scales and all(m.drop_prob == 0.1 for m in scales)
        assert all(torch.all(m.scale == 1e-4) for m in scales)  # LayerScale starts at 1e-4


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


# ------------------------------------------------------- pool_first (docs/decisions.md D94)
def _pair(block, **kw):
    """Encoders built from the same seed with the two pooling orders."""
    torch.manual_seed(0)
    first = PyramidEncoder(8, 16, 4, block, **kw).eval()
    torch.manual_seed(0)
    after = PyramidEncoder(8, 16, 4, block, pool_first=False, **kw).eval()
    return first, after


def test_pool_first_is_the_default_and_the_block_order_of_before():
    enc, _ = _pair(LOGO)
    assert enc.pool_first is True and all(blk.stride == 2 for blk in enc.branch)
    x, mask = torch.randn(2, 8, 32), mask_of([32, 19], 32)
    feats, masks = enc(x, mask)
    # The pre-switch forward: every stride-2 block pools inside, nothing after it.
    y, m = feats[0], masks[0]
    for level, blk in enumerate(enc.branch, start=1):
        y, m = blk(y, m)
        assert torch.equal(y, feats[level]) and torch.equal(m, masks[level])


def test_pool_after_keeps_the_logo_weights_and_changes_only_the_levels():
    first, after = _pair(LOGO)
    assert all(blk.stride == 1 for blk in after.branch)
    sd_first, sd_after = first.state_dict(), after.state_dict()
    assert list(sd_first) == list(sd_after)
    assert all(torch.equal(sd_first[k], sd_after[k]) for k in sd_first)
    x, mask = torch.randn(2, 8, 32), mask_of([32, 19], 32)
    f1, m1 = first(x, mask)
    f2, m2 = after(x, mask)
    assert torch.equal(f1[0], f2[0])  # the stem is not affected
    assert all(torch.equal(a, b) for a, b in zip(m1, m2, strict=True))
    for a, b in zip(f1[1:], f2[1:], strict=True):
        assert a.shape == b.shape and not torch.allclose(a, b)
    # Eq. 1-3: level l = masked MaxPool1d(3, 2, 1) of the block run on level l - 1.
    for level, blk in enumerate(after.branch, start=1):
        want = masked_max_pool(*blk(f2[level - 1], m2[level - 1]))
        assert torch.equal(f2[level], want[0]) and torch.equal(m2[level], want[1])


def test_pool_after_is_a_no_op_for_temporal_maxer():
    first, after = _pair(MaxerBlock)
    x, mask = torch.randn(2, 8, 32), mask_of([32, 19], 32)
    for a, b in zip(first(x, mask)[0], after(x, mask)[0], strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("block", [LOGO, ConvBlock], ids=["logo", "conv"])
def test_pool_after_keeps_padding_invariance(block):
    _, enc = _pair(block)
    x = torch.randn(1, 8, 160)
    ref, _ = enc(x[:, :, :96] * mask_of([70], 96)[:, None], mask_of([70], 96))
    garbage = x.clone()
    garbage[:, :, 70:] = 7.0
    out, masks = enc(garbage, mask_of([70], 160))
    for a, b, m in zip(ref, out, masks, strict=True):
        torch.testing.assert_close(b[..., : a.shape[-1]], a, atol=1e-5, rtol=1e-5)
        assert (b.transpose(1, 2)[~m] == 0).all()


# ------------------------------------------------------ stem_kwargs (docs/decisions.md D97)
def test_stem_kwargs_reach_only_the_stem_blocks():
    torch.manual_seed(0)
    plain = PyramidEncoder(8, 16, 4, LOGO).eval()
    torch.manual_seed(0)
    tridet = PyramidEncoder(8, 16, 4, LOGO, stem_kwargs={"local_kernel": 1}).eval()
    assert [blk.mixer.local.kernel_size for blk in plain.stem] == [(3,), (3,)]
    assert [blk.mixer.local.kernel_size for blk in tridet.stem] == [(1,), (1,)]
    assert all(blk.mixer.local.kernel_size == (3,) for blk in tridet.branch)
    a, b = plain.state_dict(), tridet.state_dict()
    assert list(a) == list(b)
    changed = {k for k in a if a[k].shape != b[k].shape}
    assert changed == {"stem.0.mixer.local.weight", "stem.1.mixer.local.weight"}
    x, mask = torch.randn(2, 8, 32), mask_of([32, 19], 32)
    feats, _ = tridet(x, mask)
    assert not torch.allclose(feats[0], plain(x, mask)[0][0])
    # Padding invariance holds with the kernel-1 stem too.
    ref, _ = tridet(x[1:, :, :24] * mask_of([19], 24)[:, None], mask_of([19], 24))
    for r, f in zip(ref, feats, strict=True):
        torch.testing.assert_close(f[1:, :, : r.shape[-1]], r, atol=1e-5, rtol=1e-5)
