"""Heads: shapes for 3..7 levels, padding invariance, gradients, Trident decoding, CLFF fusion."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from logo_tal.models.heads import actionformer, trident
from logo_tal.models.heads.actionformer import ActionFormerRegHead
from logo_tal.models.heads.base import prior_bias
from logo_tal.models.heads.clff import CrossLevelFusion
from logo_tal.models.heads.cls import ClsHead
from logo_tal.models.heads.trident import TridentRegHead

D, H, C, BINS = 16, 12, 3, 4

HEADS = {
    "cls": lambda levels: ClsHead(D, H, C),
    "actionformer": lambda levels: ActionFormerRegHead(D, H, levels),
    "trident": lambda levels: TridentRegHead(D, H, C, levels, num_bins=BINS),
    "clff": lambda levels: TridentRegHead(
        D, H, C, levels, num_bins=BINS, centre_fusion=CrossLevelFusion()
    ),
    "trident_default_init": lambda levels: TridentRegHead(
        D, H, C, levels, num_bins=BINS, boundary_init="default", boundary_kernel=5
    ),
}
K = {"cls": None, "actionformer": 1, "trident": C, "clff": C, "trident_default_init": C}


def make_head(name, levels):
    torch.manual_seed(0)
    head = HEADS[name](levels)
    with torch.no_grad():
        for pname, p in head.named_parameters():
            if pname.endswith("bias") or "norms" in pname:
                p.add_(0.3 * torch.randn_like(p))
    return head.eval()


def make_pyramid(lengths, total, levels, seed=0):
    """Per level (B, D, T_l) features whose valid part does not depend on ``total``."""
    gen = torch.Generator().manual_seed(seed)
    base = [torch.randn(2, D, 1024 >> level, generator=gen) for level in range(levels)]
    feats, masks = [], []
    for level in range(levels):
        t = total >> level
        mask = (
            torch.arange(t)[None, :]
            < torch.tensor([math.ceil(n / 2**level) for n in lengths])[:, None]
        )
        feats.append(base[level][: len(lengths), :, :t] * mask[:, None])
        masks.append(mask)
    return feats, masks


@pytest.mark.parametrize("name", list(HEADS))
@pytest.mark.parametrize("levels", [3, 4, 5, 6, 7])
def test_head_shapes(name, levels):
    head = make_head(name, levels)
    total = 3 * 2 ** (levels - 1)
    feats, masks = make_pyramid([total, total - 5], total, levels)
    out = head(feats, masks)
    assert len(out) == levels
    for level, o in enumerate(out):
        t = total >> level
        if K[name] is None:
            assert o.shape == (2, t, C)
        else:
            assert o.shape == (2, t, K[name], 2)
            assert (o >= 0).all()
            if name != "actionformer":
                assert (o <= BINS + 1e-5).all()


@pytest.mark.parametrize("name", list(HEADS))
def test_head_padding_invariance_and_zero_padding(name):
    head = make_head(name, 6)
    ref_feats, ref_masks = make_pyramid([70], 96, 6, seed=1)
    with torch.no_grad():
        ref = head(ref_feats, ref_masks)
        for total, mate in ((96, 96), (160, 140)):
            feats, masks = make_pyramid([70, mate], total, 6, seed=1)
            # Batch-mate with different content.
            other, _ = make_pyramid([70, mate], total, 6, seed=2)
            feats = [torch.cat([f[:1], o[1:]]) for f, o in zip(feats, other, strict=True)]
            out = head(feats, masks)
            for r, o, m in zip(ref, out, masks, strict=True):
                n = int(m[0].sum())
                torch.testing.assert_close(o[:1, :n], r[:, :n], atol=1e-5, rtol=1e-5)
                assert (o[~m] == 0).all()


@pytest.mark.parametrize("name", list(HEADS))
def test_head_gradients_reach_every_parameter(name):
    head = make_head(name, 4).train()
    feats, masks = make_pyramid([48, 30], 48, 4)
    feats = [f.requires_grad_() for f in feats]
    out = head(feats, masks)
    sum((o * torch.randn_like(o)).sum() for o in out).backward()
    for pname, p in head.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, pname
    assert all(f.grad is not None and f.grad.abs().sum() > 0 for f in feats)


@pytest.mark.parametrize("name", ["trident", "clff"])
def test_boundary_heads_see_detached_features(name):
    head = make_head(name, 3)
    seen = []
    for stack in (head.start, head.end):
        stack.register_forward_pre_hook(lambda mod, args: seen.append(args[0].requires_grad))
    feats, masks = make_pyramid([12], 12, 3)
    head([f.requires_grad_() for f in feats], masks)
    assert seen == [False] * 6


def test_trident_forward_matches_naive_windows():
    """Left bin j <-> start[t - B + j], right bin j <-> end[t + j], logit 0 outside."""
    head = make_head("trident", 2)
    captured = {}
    for key in ("start", "end", "centre"):
        getattr(head, key).register_forward_hook(
            lambda mod, args, out, key=key: captured.setdefault(key, []).append(out)
        )
    feats, masks = make_pyramid([13, 9], 16, 2)
    with torch.no_grad():
        out = head(feats, masks)
    for level in range(2):
        start, end = captured["start"][level], captured["end"][level]
        ctr = torch.relu(head.scales[level].scale * captured["centre"][level]).detach()
        t_len = start.shape[-1]
        for b in range(2):
            valid = int(masks[level][b].sum())
            for t in range(valid):
                for c in range(C):
                    left = torch.tensor(
                        [
                            (start[b, c, t - BINS + j] if t - BINS + j >= 0 else 0.0)
                            + ctr[b, j, t]
                            for j in range(BINS + 1)
                        ]
                    )
                    right = torch.tensor(
                        [
                            (end[b, c, t + j] if t + j < t_len else 0.0) + ctr[b, BINS + 1 + j, t]
                            for j in range(BINS + 1)
                        ]
                    )
                    d_left = (left.softmax(0) * torch.arange(BINS, -1, -1)).sum()
                    d_right = (right.softmax(0) * torch.arange(BINS + 1)).sum()
                    torch.testing.assert_close(out[level][b, t, c, 0], d_left, atol=1e-5, rtol=0)
                    torch.testing.assert_close(out[level][b, t, c, 1], d_right, atol=1e-5, rtol=0)


def test_actionformer_encode_decode_roundtrip():
    d = torch.rand(5, 7, 2) * 30
    assert torch.equal(actionformer.decode(actionformer.encode(d)), d)


def test_trident_encode_decode_roundtrip():
    d = torch.cat([torch.rand(50, 2) * BINS, torch.tensor([[0.0, BINS], [BINS, 0.0], [1.0, 2.0]])])
    left, right = trident.encode(d, BINS)
    assert left.shape == right.shape == (53, BINS + 1)
    torch.testing.assert_close(trident.decode(left, right), d, atol=1e-5, rtol=0)


def test_boundary_init():
    paper = TridentRegHead(64, 64, C, 2, boundary_init="paper")
    default = TridentRegHead(64, 64, C, 2, boundary_init="default")
    for head in (paper, default):
        for stack in (head.start, head.end):
            assert torch.allclose(stack.final.bias, torch.full((C,), prior_bias(0.01)))
    assert abs(paper.start.hidden[0].weight.std().item() - 0.1) < 0.01
    assert default.start.hidden[0].weight.std().item() < 0.07
    assert math.isclose(prior_bias(0.01), -4.59511985, rel_tol=1e-6)
    with pytest.raises(ValueError, match="boundary_init"):
        TridentRegHead(8, 8, C, 2, boundary_init="zeros")


def test_cls_head_prior():
    head = ClsHead(D, H, C, prior_prob=0.01)
    assert torch.allclose(head.stack.final.bias, torch.full((C,), -math.log(99.0)))


def test_clff_fusion_formula():
    fusion = make_head("clff", 3).centre_fusion
    with torch.no_grad():
        fusion.w1.fill_(2.0)
        fusion.w2.fill_(-1.0)  # ReLU -> 0
    feats, masks = make_pyramid([24], 24, 3)
    w1, w2 = fusion.weights()
    assert math.isclose(w1.item(), 2.0 / (2.0 + 1e-4), rel_tol=1e-6) and w2.item() == 0.0
    with torch.no_grad():
        fusion.w2.fill_(3.0)
    fused = fusion(feats, masks)
    assert fused[0] is feats[0]  # the first level has no previous level
    w1, w2 = 2.0 / 5.0001, 3.0 / 5.0001
    for level in (1, 2):
        pooled = F.max_pool1d(feats[level - 1], 3, 2, 1)
        torch.testing.assert_close(fused[level], w1 * feats[level] + w2 * pooled)


def test_clff_init_and_no_fusion_equals_trident():
    clff_head = make_head("clff", 4)
    fusion = clff_head.centre_fusion
    assert fusion.w1.item() == fusion.w2.item() == 1.0
    assert fusion.w1.ndim == 0  # 0-d: no weight decay in optim.param_groups
    tri = make_head("trident", 4)
    tri.load_state_dict(clff_head.state_dict(), strict=False)
    with torch.no_grad():
        fusion.w2.fill_(-1.0)
    feats, masks = make_pyramid([40, 33], 48, 4)
    with torch.no_grad():
        for a, b in zip(clff_head(feats, masks), tri(feats, masks), strict=True):
            torch.testing.assert_close(a, b, atol=1e-3, rtol=0)


# ------------------------------------------ CLFF weights and source (docs/decisions.md D96)
def clff_with(levels=4, **kw):
    torch.manual_seed(0)
    return TridentRegHead(
        D, H, C, levels, num_bins=BINS, centre_fusion=CrossLevelFusion(num_levels=levels, **kw)
    ).eval()


def test_clff_defaults_are_the_shared_normalised_finer_fusion():
    fusion = CrossLevelFusion()
    assert (fusion.mode, fusion.source) == ("normalised", "finer")
    assert fusion.w1.shape == fusion.w2.shape == ()
    # Same parameters and draws as before the options: the head's weights are unchanged.
    plain, configured = make_head("clff", 4), clff_with(4)
    assert list(plain.state_dict()) == list(configured.state_dict())
    for key, value in plain.state_dict().items():
        assert value.shape == configured.state_dict()[key].shape
    assert next(iter(dict(configured.named_parameters()))) == "centre_fusion.w1"


def test_clff_raw_weights_are_used_as_they_are():
    fusion = CrossLevelFusion(weights="raw")
    with torch.no_grad():
        fusion.w1.fill_(2.0)
        fusion.w2.fill_(-0.5)
    feats, masks = make_pyramid([24, 17], 24, 3)
    fused = fusion(feats, masks)
    assert fused[0] is feats[0]
    for level in (1, 2):
        pooled = F.max_pool1d(
            feats[level - 1].masked_fill(~masks[level - 1][:, None], -1e9), 3, 2, 1
        )
        pooled = pooled * masks[level][:, None]
        torch.testing.assert_close(fused[level], 2.0 * feats[level] - 0.5 * pooled)
    # At init (w = 1) raw sums the two, normalised averages them.
    fresh_raw, fresh_norm = CrossLevelFusion(weights="raw"), CrossLevelFusion()
    a, b = fresh_raw(feats, masks), fresh_norm(feats, masks)
    torch.testing.assert_close(a[1], b[1] * 2 * (1 + 0.5e-4))


def test_clff_per_level_pairs():
    fusion = CrossLevelFusion(weights="per_level", num_levels=4)
    assert fusion.w1.shape == fusion.w2.shape == (3,)
    with torch.no_grad():
        fusion.w1.copy_(torch.tensor([1.0, 2.0, 3.0]))
        fusion.w2.copy_(torch.tensor([1.0, -1.0, 1.0]))
    feats, masks = make_pyramid([40, 33], 48, 4)
    fused = fusion(feats, masks)
    shared = CrossLevelFusion()
    for level, (w1, w2) in enumerate([(1.0, 1.0), (2.0, 0.0), (3.0, 1.0)], start=1):
        with torch.no_grad():
            shared.w1.fill_(w1)
            shared.w2.fill_(w2)
        torch.testing.assert_close(fused[level], shared(feats, masks)[level])
    with pytest.raises(ValueError, match="num_levels"):
        CrossLevelFusion(weights="per_level")
    with pytest.raises(ValueError, match="4 levels"):
        fusion(feats[:3], masks[:3])


def test_clff_coarser_source_upsamples_the_next_level():
    fusion = CrossLevelFusion(source="coarser")
    feats, masks = make_pyramid([40, 33], 48, 4)
    fused = fusion(feats, masks)
    w1, w2 = fusion.weights()
    assert fused[-1] is feats[-1]  # the last level has no coarser level
    for level in range(3):
        up = torch.zeros_like(feats[level])
        for i in range(feats[level].shape[-1]):
            up[..., i] = feats[level + 1][..., i // 2]
        up = up * masks[level][:, None]
        torch.testing.assert_close(fused[level], w1 * feats[level] + w2 * up)
        assert (fused[level].transpose(1, 2)[~masks[level]] == 0).all()


@pytest.mark.parametrize(
    "kw", [{"weights": "raw"}, {"weights": "per_level"}, {"source": "coarser"}]
)
def test_clff_options_change_only_the_centre_branch_and_keep_padding_invariance(kw):
    default, other = clff_with(6), clff_with(6, **kw)
    # The fusion draws no random numbers: every other weight is the same draw.
    theirs = other.state_dict()
    for key, value in default.state_dict().items():
        assert key.startswith("centre_fusion.") or torch.equal(value, theirs[key]), key
    with torch.no_grad():
        fusion = other.centre_fusion
        fusion.w1.copy_(torch.linspace(2.0, 1.0, fusion.w1.numel()).reshape(fusion.w1.shape))
        fusion.w2.copy_(torch.linspace(0.5, 1.5, fusion.w2.numel()).reshape(fusion.w2.shape))
    feats, masks = make_pyramid([70, 51], 96, 6, seed=1)
    with torch.no_grad():
        a, b = default(feats, masks), other(feats, masks)
    assert any(not torch.allclose(x, y) for x, y in zip(a, b, strict=True))
    # Padding invariance: the first video alone, with less padding, gives the same offsets.
    ref_feats, ref_masks = make_pyramid([70], 96, 6, seed=1)
    with torch.no_grad():
        ref = other(ref_feats, ref_masks)
        longer_feats, longer_masks = make_pyramid([70, 140], 160, 6, seed=1)
        out = other(longer_feats, longer_masks)
    for r, o, m in zip(ref, out, longer_masks, strict=True):
        n = int(m[0].sum())
        torch.testing.assert_close(o[:1, :n], r[:, :n], atol=1e-5, rtol=1e-5)
        assert (o[~m] == 0).all()
