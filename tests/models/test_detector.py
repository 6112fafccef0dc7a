"""Detector: output contract, divisor check, padding invariance, no train/eval branching."""

from __future__ import annotations

import functools

import pytest
import torch

from logo_tal.models.blocks.logo import LoGoBlock
from logo_tal.models.detector import Detector
from logo_tal.models.encoder import PyramidEncoder
from logo_tal.models.heads.clff import CrossLevelFusion
from logo_tal.models.heads.cls import ClsHead
from logo_tal.models.heads.trident import TridentRegHead
from logo_tal.models.neck import LayerNormNeck
from logo_tal.models.outputs import DetectorOutput

IN, D, C, L = 12, 16, 4, 4


def make_detector(drop_path: float = 0.0) -> Detector:
    torch.manual_seed(0)
    block = functools.partial(LoGoBlock, mlp_hidden=24, gn_groups=4)
    return Detector(
        encoder=PyramidEncoder(IN, D, L, block, drop_path=drop_path),
        head=TridentRegHead(D, D, C, L, num_bins=4, centre_fusion=CrossLevelFusion()),
        cls_head=ClsHead(D, D, C),
        neck=LayerNormNeck(D, L),
        num_levels=L,
        input_dim=IN,
        num_classes=C,
    )


def mask_of(lengths, total):
    return torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]


def test_output_contract():
    det = make_detector().eval()
    out = det(torch.randn(2, IN, 64), mask_of([64, 41], 64))
    assert isinstance(out, DetectorOutput)
    assert out.strides == [1, 2, 4, 8] == det.spec.strides
    assert det.divisor == 8
    for level, (logits, offsets, mask) in enumerate(
        zip(out.cls_logits, out.offsets, out.masks, strict=True)
    ):
        t = 64 >> level
        assert logits.shape == (2, t, C) and offsets.shape == (2, t, C, 2)
        assert mask.shape == (2, t) and mask.dtype == torch.bool
    assert out.offsets[0].shape[2] == C > 1  # class-aware offsets
    flat = out.flat()
    assert flat.cls_logits.shape == (2, 120, C) and flat.offsets.shape == (2, 120, C, 2)


def test_length_not_multiple_of_divisor_is_a_clear_error():
    det = make_detector()
    with pytest.raises(
        ValueError,
        match="padded sequence length=60 is not a multiple of 8 .*num_levels=4.*use 56 or 64",
    ):
        det(torch.randn(1, IN, 60), torch.ones(1, 60, dtype=torch.bool))


def test_bad_inputs_are_reported():
    det = make_detector()
    with pytest.raises(ValueError, match="expects 12"):
        det(torch.randn(1, IN + 1, 64), torch.ones(1, 64, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be bool"):
        det(torch.randn(1, IN, 64), torch.ones(1, 64))
    with pytest.raises(ValueError, match="encoder has 4 levels"):
        Detector(make_detector().encoder, None, None, num_levels=5)


def test_detector_padding_invariance():
    det = make_detector().eval()
    torch.manual_seed(1)
    x = torch.randn(2, IN, 160)
    with torch.no_grad():
        ref = det(x[:1, :, :72], mask_of([70], 72))
        out = det(x, mask_of([70, 150], 160))
    for a, b in zip(ref.offsets + ref.cls_logits, out.offsets + out.cls_logits, strict=True):
        n = a.shape[1]
        torch.testing.assert_close(b[:1, :n], a, atol=1e-5, rtol=1e-5)


def test_train_and_eval_agree_without_stochastic_depth():
    det = make_detector(drop_path=0.0)
    x, mask = torch.randn(1, IN, 32), mask_of([30], 32)
    with torch.no_grad():
        a = det.train()(x, mask)
        b = det.eval()(x, mask)
    for u, v in zip(a.offsets + a.cls_logits, b.offsets + b.cls_logits, strict=True):
        assert torch.equal(u, v)
