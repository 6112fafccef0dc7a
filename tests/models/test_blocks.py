"""Encoder blocks: shapes, padding invariance, zero padding, gradients, and the LoGo equations."""

from __future__ import annotations

import functools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from logo_tal.models.blocks.attention import TransformerBlock, global_attention, local_attention
from logo_tal.models.blocks.conv import ConvBlock
from logo_tal.models.blocks.logo import LoGoBlock, LoGoMixer
from logo_tal.models.blocks.maxer import MaxerBlock

DIM = 16

BLOCKS = {
    "conv": ConvBlock,
    "transformer": functools.partial(TransformerBlock, window_size=5),
    "transformer_w19": functools.partial(TransformerBlock, window_size=19),
    "transformer_global": functools.partial(TransformerBlock, window_size=None),
    "logo": functools.partial(LoGoBlock, mlp_hidden=24, gn_groups=4, mixer_init_std=0.2),
    "logo_depthwise": functools.partial(
        LoGoBlock, mlp_hidden=24, gn_groups=4, fc_mode="depthwise", local_kernel=15
    ),
    "logo_separable": functools.partial(
        LoGoBlock, mlp_hidden=24, gn_groups=4, local_path="separable"
    ),
    "maxer": MaxerBlock,
}


def make_block(name: str, stride: int, drop_path: float = 0.0) -> nn.Module:
    torch.manual_seed(0)
    block = BLOCKS[name](DIM, stride=stride, drop_path=drop_path)
    # Non-zero biases and norm affines, so that masking mistakes cannot hide behind zeros.
    with torch.no_grad():
        for pname, p in block.named_parameters():
            if pname.endswith("bias") or "norm" in pname or pname.startswith("gn"):
                p.add_(0.3 * torch.randn_like(p))
    return block.eval()


def pad_to(x: torch.Tensor, total: int) -> torch.Tensor:
    return F.pad(x, (0, total - x.shape[-1]))


def mask_of(lengths: list[int], total: int) -> torch.Tensor:
    return torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("name", list(BLOCKS))
@pytest.mark.parametrize("stride", [1, 2])
def test_block_shapes_and_padding_invariance(name, stride):
    block = make_block(name, stride)
    torch.manual_seed(1)
    x = torch.randn(1, DIM, 70)
    mate = torch.randn(1, DIM, 160)
    with torch.no_grad():
        ref, ref_mask = block(x, torch.ones(1, 70, dtype=torch.bool))
        assert ref.shape == (1, DIM, 70 // stride) and ref_mask.all()
        for total, mate_len in ((96, 96), (160, 131)):
            xb = torch.cat([pad_to(x, total), pad_to(mate[:, :, :mate_len], total)])
            mask = mask_of([70, mate_len], total)
            xb = xb * mask[:, None]
            out, out_mask = block(xb, mask)
            n = 70 // stride
            assert out.shape == (2, DIM, total // stride)
            assert out_mask.tolist() == mask[:, ::stride].tolist()
            torch.testing.assert_close(out[:1, :, :n], ref, atol=1e-5, rtol=1e-5)
            assert (out.transpose(1, 2)[~out_mask] == 0).all()


@pytest.mark.parametrize("name", [n for n in BLOCKS if n != "maxer"])
@pytest.mark.parametrize("stride", [1, 2])
def test_block_gradients_reach_every_parameter(name, stride):
    block = make_block(name, stride, drop_path=0.1 if stride == 2 else 0.0).train()
    torch.manual_seed(2)
    mask = mask_of([40, 64], 64)
    x = torch.randn(2, DIM, 64) * mask[:, None]
    out, _ = block(x, mask)
    (out * torch.randn_like(out)).sum().backward()
    for pname, p in block.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname


def test_maxer_block_has_no_parameters_and_is_identity_at_stride_1():
    block = MaxerBlock(DIM, stride=1)
    x, mask = torch.randn(1, DIM, 8), torch.ones(1, 8, dtype=torch.bool)
    assert list(block.parameters()) == []
    assert block(x, mask)[0] is x


def test_drop_path_only_when_requested():
    assert isinstance(LoGoBlock(DIM, drop_path=0.0).drop_mixer, nn.Identity)
    assert isinstance(TransformerBlock(DIM, drop_path=0.0).drop_mlp, nn.Identity)
    assert LoGoBlock(DIM, stride=2, drop_path=0.1).drop_mixer.scale.shape == (1, DIM, 1)


# --- attention ----------------------------------------------------------------------------


def dense_band_attention(q, k, v, key_mask, window):
    t = q.shape[2]
    pos = torch.arange(t)
    band = (pos[:, None] - pos[None, :]).abs() <= window // 2
    allowed = band[None, None] & key_mask[:, None, None, :]
    scores = (q @ k.transpose(-1, -2)).masked_fill(~allowed, float("-inf"))
    return scores.softmax(-1) @ v


@pytest.mark.parametrize("t,window", [(150, 19), (10, 19), (128, 5), (64, 1)])
def test_local_attention_matches_dense_band(t, window):
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, t, 4) for _ in range(3))
    key_mask = mask_of([t, max(1, t - 37)], t)
    out = local_attention(q, k, v, key_mask, window)
    ref = dense_band_attention(q, k, v, key_mask, window)
    valid = key_mask[:, None, :, None].expand_as(ref)
    torch.testing.assert_close(out[valid], ref[valid], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(out).all()


def test_global_attention_ignores_padded_keys():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 12, 4) for _ in range(3))
    key_mask = mask_of([7], 12)
    out = global_attention(q, k, v, key_mask)
    ref = (q @ k[:, :, :7].transpose(-1, -2)).softmax(-1) @ v[:, :, :7]
    torch.testing.assert_close(out, ref, atol=1e-6, rtol=1e-5)


# --- LoGo equations -----------------------------------------------------------------------


def set_params(conv: nn.Conv1d, weight, bias) -> None:
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weight, dtype=torch.float32).view_as(conv.weight))
        conv.bias.copy_(torch.tensor(bias, dtype=torch.float32))


def test_logo_mixer_equations_4_to_6_by_hand():
    """Eq. 4-6 on a 2-channel, 3-valid-step example computed with plain Python numbers."""
    mixer = LoGoMixer(2, local_kernel=3, fc_mode="full")
    w_loc, b_loc = [[0.5, 1.0, -1.0], [1.0, 0.0, 2.0]], [0.1, -0.1]
    w_a, b_a = [[1.0, -1.0], [0.5, 0.5]], [0.5, -0.2]
    w_m, b_m = [[-1.0, 0.5], [0.2, 0.3]], [0.0, 0.1]
    w_f, b_f = [[2.0, 0.0], [1.0, -1.0]], [0.5, 0.0]
    set_params(mixer.local, w_loc, b_loc)
    set_params(mixer.fc_avg, w_a, b_a)
    set_params(mixer.fc_max, w_m, b_m)
    set_params(mixer.fc_lin, w_f, b_f)
    xs = [[1.0, 2.0, -1.0], [0.5, -1.0, 3.0]]  # (D=2, valid T=3); one padded step follows

    def at(c, t):
        return xs[c][t] if 0 <= t < 3 else 0.0

    avg = [sum(row) / 3 for row in xs]
    mx = [max(row) for row in xs]
    f_avg = [max(0.0, sum(w_a[c][d] * avg[d] for d in range(2)) + b_a[c]) for c in range(2)]
    f_max = [max(0.0, sum(w_m[c][d] * mx[d] for d in range(2)) + b_m[c]) for c in range(2)]
    assert f_max[0] == 0.0 and f_avg[0] > 0  # the example exercises both sides of the ReLU
    expected = [
        [
            (sum(w_loc[c][k] * at(c, t + k - 1) for k in range(3)) + b_loc[c]) * f_avg[c]
            + f_max[c] * (sum(w_f[c][d] * xs[d][t] for d in range(2)) + b_f[c])
            + xs[c][t]
            for t in range(3)
        ]
        for c in range(2)
    ]
    x = torch.tensor([[row + [0.0] for row in xs]])
    mask = torch.tensor([[True, True, True, False]])
    out = mixer(x, mask)
    torch.testing.assert_close(out[0, :, :3], torch.tensor(expected), atol=1e-6, rtol=1e-6)


def test_logo_mixer_depthwise_fcs_are_per_channel():
    mixer = LoGoMixer(2, local_kernel=3, fc_mode="depthwise")
    set_params(mixer.local, [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]], [0.0, 0.0])
    set_params(mixer.fc_avg, [2.0, 1.0], [0.0, 0.0])
    set_params(mixer.fc_max, [1.0, 3.0], [0.0, 0.0])
    set_params(mixer.fc_lin, [1.0, -1.0], [0.0, 1.0])
    x = torch.tensor([[[1.0, 3.0, 0.0, 0.0], [2.0, 4.0, 0.0, 0.0]]])
    mask = torch.tensor([[True, True, False, False]])
    out = mixer(x, mask)[0, :, :2]
    f_avg = torch.tensor([2.0 * 2.0, 1.0 * 3.0])  # means (2, 3)
    f_max = torch.tensor([1.0 * 3.0, 3.0 * 4.0])  # maxima (3, 4)
    lin = torch.stack([x[0, 0, :2], -x[0, 1, :2] + 1.0])
    expected = x[0, :, :2] * f_avg[:, None] + f_max[:, None] * lin + x[0, :, :2]
    torch.testing.assert_close(out, expected)


@pytest.mark.parametrize("stride", [1, 2])
def test_logo_block_composition_matches_equations_1_to_3(stride):
    """Z_bar = Z + mixer(LN(Z)); Z_hat = Z_bar + MLP(GN(Z_bar)); pool first at stride 2."""
    block = make_block("logo", stride)
    torch.manual_seed(3)
    z = torch.randn(1, DIM, 40)
    out, _ = block(pad_to(z, 64), mask_of([40], 64))
    if stride == 2:
        z = F.max_pool1d(z, 3, 2, 1)
    ln = F.layer_norm(
        z.transpose(1, 2), (DIM,), block.norm.weight.view(-1), block.norm.bias.view(-1)
    ).transpose(1, 2)
    z_bar = z + block.mixer(ln, torch.ones(1, z.shape[-1], dtype=torch.bool))
    gn = F.group_norm(z_bar, 4, block.gn.weight.view(-1), block.gn.bias.view(-1), 1e-5)
    z_hat = z_bar + block.mlp(gn)
    torch.testing.assert_close(out[:, :, : z.shape[-1]], z_hat, atol=1e-5, rtol=1e-5)


def test_logo_mixer_default_init_is_trainable():
    """PyTorch default weights, zero biases; not TriDet's frozen all-zero THUMOS init."""
    mixer = LoGoMixer(DIM)
    for conv in (mixer.local, mixer.fc_avg, mixer.fc_max, mixer.fc_lin):
        assert conv.weight.abs().sum() > 0 and (conv.bias == 0).all()
    assert torch.allclose(
        LoGoMixer(DIM, init_std=0.2).fc_avg.weight.std(), torch.tensor(0.2), atol=0.03
    )


# --------------------------------------------------------- local_path (docs/decisions.md D95)
def test_separable_local_path_adds_only_a_pointwise_conv():
    torch.manual_seed(0)
    dw = LoGoBlock(DIM, mlp_hidden=24, gn_groups=4).eval()
    torch.manual_seed(0)
    sep = LoGoBlock(DIM, mlp_hidden=24, gn_groups=4, local_path="separable").eval()
    assert dw.mixer.local_pointwise is None  # the default builds what it built before
    extra = set(sep.state_dict()) - set(dw.state_dict())
    assert extra == {"mixer.local_pointwise.weight", "mixer.local_pointwise.bias"}
    count = sum(p.numel() for p in sep.parameters()) - sum(p.numel() for p in dw.parameters())
    assert count == DIM * DIM + DIM
    assert sep.mixer.local.groups == DIM and sep.mixer.local_pointwise.kernel_size == (1,)
    torch.manual_seed(3)
    mask = mask_of([40, 64], 64)
    x = torch.randn(2, DIM, 64) * mask[:, None]
    sep.load_state_dict(dw.state_dict(), strict=False)
    with torch.no_grad():
        assert not torch.allclose(sep(x, mask)[0], dw(x, mask)[0])
        # With an identity pointwise conv the separable path is the depthwise one.
        sep.mixer.local_pointwise.weight.copy_(torch.eye(DIM)[:, :, None])
        sep.mixer.local_pointwise.bias.zero_()
        torch.testing.assert_close(sep(x, mask)[0], dw(x, mask)[0], atol=1e-6, rtol=1e-6)


def test_separable_mixer_is_pointwise_after_depthwise():
    torch.manual_seed(0)
    mixer = LoGoMixer(DIM, local_kernel=5, local_path="separable")
    x, mask = torch.randn(2, DIM, 20), torch.ones(2, 20, dtype=torch.bool)
    f_avg, f_max = mixer.gates(x, mask)
    local = F.conv1d(mixer.local(x), mixer.local_pointwise.weight, mixer.local_pointwise.bias)
    want = local * f_avg + f_max * mixer.fc_lin(x) + x
    torch.testing.assert_close(mixer(x, mask), want)
    with pytest.raises(ValueError, match="local_path"):
        LoGoMixer(DIM, local_path="pointwise")
