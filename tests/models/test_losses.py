"""Losses against hand-computed values (docs/decisions.md D37-D41)."""

from __future__ import annotations

import math

import pytest
import torch

from logo_tal.models.assigner import Targets
from logo_tal.models.losses import (
    DetectionLoss,
    diou_loss_1d,
    giou_loss_1d,
    iou_1d,
    sigmoid_focal_loss,
)
from logo_tal.models.outputs import FlatOutput


def test_focal_hand_values():
    logits = torch.tensor([0.0, 0.0, 2.0])
    targets = torch.tensor([1.0, 0.0, 0.0])
    got = sigmoid_focal_loss(logits, targets)
    p = 1 / (1 + math.exp(-2.0))
    want = [
        0.25 * 0.25 * math.log(2),  # p_t = 0.5, alpha on positives
        0.75 * 0.25 * math.log(2),
        0.75 * p**2 * -math.log(1 - p),
    ]
    assert got.tolist() == pytest.approx(want, rel=1e-5)
    # alpha < 0 disables the weighting; gamma 0 is plain BCE.
    plain = sigmoid_focal_loss(logits, targets, alpha=-1, gamma=0.0)
    assert plain.tolist() == pytest.approx([math.log(2), math.log(2), -math.log(1 - p)], rel=1e-5)


def test_iou_diou_giou_hand_values():
    pred = torch.tensor([[1.0, 3.0], [2.0, 2.0], [0.0, 0.0]])
    target = torch.tensor([[2.0, 2.0], [2.0, 2.0], [1.0, 1.0]])
    # inter = min(1,2) + min(3,2) = 3, union = 4 + 4 - 3 = 5.
    assert iou_1d(pred, target).tolist() == pytest.approx([0.6, 1.0, 0.0])
    # enclosing = 2 + 3 = 5, rho = ((3-1) - (2-2)) / 2 = 1 -> 1 - 0.6 + (1/5)^2.
    assert diou_loss_1d(pred, target).tolist() == pytest.approx([0.44, 0.0, 1.0])
    assert giou_loss_1d(pred, target).tolist() == pytest.approx([0.4, 0.0, 1.0])
    # broadcasting (Npos, K, 2) vs (Npos, 1, 2)
    assert iou_1d(pred[None], target[:, None]).shape == (3, 3)


def flat_output(logits, offsets, masks):
    b, p, _ = logits.shape
    return FlatOutput(
        cls_logits=logits,
        offsets=offsets,
        masks=masks,
        points=torch.arange(p, dtype=torch.float32),
        point_strides=torch.ones(p),
        level_sizes=[p],
    )


def hand_case(class_aware: bool):
    # 3 points, 2 classes; point 0 positive (class 0, or classes 0+1), point 1 negative,
    # point 2 padding (huge logits that must not count).
    logits = torch.tensor([[[0.5, -1.0], [-2.0, 0.3], [9.0, 9.0]]], requires_grad=True)
    if class_aware:
        off = torch.tensor([[[[1.0, 3.0], [2.0, 2.0]], [[1.0, 1.0]] * 2, [[5.0, 5.0]] * 2]])
    else:
        off = torch.tensor([[[[1.0, 3.0]], [[1.0, 1.0]], [[5.0, 5.0]]]])
    off.requires_grad_(True)
    masks = torch.tensor([[True, True, False]])
    cls = torch.tensor([[[1.0, 1.0 if class_aware else 0.0], [0.0, 0.0], [0.0, 0.0]]])
    reg = torch.tensor([[[2.0, 2.0], [0.0, 0.0], [0.0, 0.0]]])
    pos = torch.tensor([[True, False, False]])
    return flat_output(logits, off, masks), Targets(cls=cls, reg=reg, pos=pos)


def test_iou_weighted_focal_and_regression_class_agnostic():
    flat, targets = hand_case(class_aware=False)
    loss_fn = DetectionLoss(num_classes=2, iou_weight_power=0.2)
    out = loss_fn(flat, targets)
    norm = 0.9 * 100 + 0.1 * 1
    f = sigmoid_focal_loss
    t = torch.tensor
    cls = (
        f(t(0.5), t(1.0)) * 0.6**0.2 + f(t(-1.0), t(0.0)) + f(t(-2.0), t(0.0)) + f(t(0.3), t(0.0))
    ) / norm
    assert out["loss_cls"].item() == pytest.approx(float(cls), rel=1e-5)
    assert out["loss_reg"].item() == pytest.approx(0.44 / norm, rel=1e-5)
    assert out["loss"].item() == pytest.approx(float(cls) + 0.44 / norm, rel=1e-5)
    assert out["num_pos"].item() == 1.0
    out["loss"].backward()
    # Padding gets no gradient; the IoU weight is not detached, so it reaches the offsets.
    assert flat.cls_logits.grad[0, 2].abs().sum() == 0
    assert flat.offsets.grad[0, 0].abs().sum() > 0


def test_class_aware_one_term_per_positive_entry():
    flat, targets = hand_case(class_aware=True)
    out = DetectionLoss(num_classes=2, iou_weight_power=1.0, reg_loss="giou")(flat, targets)
    norm = 90.1
    f = sigmoid_focal_loss
    t = torch.tensor
    # class 0 uses offsets (1, 3): IoU 0.6; class 1 uses (2, 2): IoU 1.
    cls = (f(t(0.5), t(1.0)) * 0.6 + f(t(-1.0), t(1.0)) * 1.0 + f(t(-2.0), t(0.0))) + f(
        t(0.3), t(0.0)
    )
    assert out["loss_cls"].item() == pytest.approx(float(cls) / norm, rel=1e-5)
    assert out["loss_reg"].item() == pytest.approx((0.4 + 0.0) / norm, rel=1e-5)


def test_detach_iou_weight_and_power_zero():
    flat, targets = hand_case(class_aware=False)
    loss = DetectionLoss(num_classes=2, detach_iou_weight=True)
    out = loss(flat, targets)
    out["loss_cls"].backward()
    assert flat.offsets.grad is None or flat.offsets.grad.abs().sum() == 0
    flat, targets = hand_case(class_aware=False)
    plain = DetectionLoss(num_classes=2, iou_weight_power=0.0)(flat, targets)
    f = sigmoid_focal_loss
    t = torch.tensor
    cls = f(t(0.5), t(1.0)) + f(t(-1.0), t(0.0)) + f(t(-2.0), t(0.0)) + f(t(0.3), t(0.0))
    assert plain["loss_cls"].item() == pytest.approx(float(cls) / 90.1, rel=1e-5)


def test_label_smoothing_targets_and_positive_entries():
    flat, targets = hand_case(class_aware=False)
    eps = 0.1
    out = DetectionLoss(num_classes=2, label_smoothing=eps, iou_weight_power=1.0)(flat, targets)
    lo, hi = eps / 3, 1 - eps + eps / 3
    f = sigmoid_focal_loss
    t = torch.tensor
    cls = f(t(0.5), t(hi)) * 0.6 + f(t(-1.0), t(lo)) + f(t(-2.0), t(lo)) + f(t(0.3), t(lo))
    assert out["loss_cls"].item() == pytest.approx(float(cls) / 90.1, rel=1e-5)


def test_normaliser_ema_buffer_and_modes():
    flat, targets = hand_case(class_aware=False)
    loss = DetectionLoss(num_classes=2, init_loss_norm=100.0)
    assert "loss_norm" in loss.state_dict()
    loss(flat, targets)
    assert float(loss.loss_norm) == pytest.approx(90.1)
    loss(flat, targets)
    assert float(loss.loss_norm) == pytest.approx(0.9 * 90.1 + 0.1)
    loss.eval()
    before = float(loss.loss_norm)
    out = loss(flat, targets)
    assert float(loss.loss_norm) == before  # eval mode reads N but never updates it
    assert out["loss_reg"].item() == pytest.approx(0.44 / before, rel=1e-5)
    fresh = DetectionLoss(num_classes=2)
    fresh.load_state_dict(loss.state_dict())
    assert float(fresh.loss_norm) == before


def test_no_positives_keeps_graph_and_counts_one():
    flat, targets = hand_case(class_aware=True)
    targets = Targets(
        cls=torch.zeros_like(targets.cls),
        reg=torch.zeros_like(targets.reg),
        pos=torch.zeros_like(targets.pos),
    )
    loss = DetectionLoss(num_classes=2)
    out = loss(flat, targets)
    assert float(loss.loss_norm) == pytest.approx(90.1)  # max(#pos, 1)
    assert out["loss_reg"].item() == 0.0 and out["loss_reg"].requires_grad
    assert out["num_pos"].item() == 0.0
    out["loss"].backward()
    assert torch.isfinite(flat.offsets.grad).all() and flat.offsets.grad.abs().sum() == 0


def test_zero_iou_is_finite():
    # Zero-length prediction: IoU 0, x^0.2 would have an infinite slope there.
    flat, targets = hand_case(class_aware=False)
    flat.offsets = torch.zeros_like(flat.offsets, requires_grad=True)
    out = DetectionLoss(num_classes=2)(flat, targets)
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and torch.isfinite(flat.offsets.grad).all()


def test_bad_config():
    with pytest.raises(ValueError):
        DetectionLoss(num_classes=2, reg_loss="l1")
    flat, targets = hand_case(class_aware=False)
    with pytest.raises(ValueError, match="classes"):
        DetectionLoss(num_classes=3)(flat, targets)


def test_iou_weight_off_is_actionformers_plain_focal_loss():
    """``iou_weight=False`` (the ActionFormer head, docs/decisions.md D99) equals power 0, and
    its classification loss does not depend on the offsets at all."""
    flat, targets = hand_case(class_aware=False)
    out = DetectionLoss(num_classes=2, iou_weight=False)(flat, targets)
    plain = DetectionLoss(num_classes=2, iou_weight_power=0.0)(flat, targets)
    assert out["loss_cls"].item() == plain["loss_cls"].item()
    (grad,) = torch.autograd.grad(out["loss_cls"], flat.offsets, allow_unused=True)
    assert grad is None or grad.abs().sum() == 0
    # The default (TriDet's) weight is not detached: the offsets get a gradient from loss_cls.
    flat, targets = hand_case(class_aware=False)
    weighted = DetectionLoss(num_classes=2)(flat, targets)
    (grad,) = torch.autograd.grad(weighted["loss_cls"], flat.offsets)
    assert grad[0, 0].abs().sum() > 0
