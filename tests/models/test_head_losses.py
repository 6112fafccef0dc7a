"""Each head trains with its ancestor's loss (docs/decisions.md D99), through the real configs.

ActionFormer's classification loss has no IoU weight, so it does not depend on the regression
output; TriDet's (Trident, CLFF) multiplies the positives' focal loss by IoU^power without
detaching it, so the classification loss sends a gradient into the offsets and the regression
head. ``module.criterion.detach_iou_weight=true`` is the project's detached ablation.
"""

from __future__ import annotations

import pytest
import torch
from hydra.utils import instantiate

from helpers.lit_config import tiny_train_config
from logo_tal.app.build import build_detector

# Every head through the real configs, forward and backward: part of `make test`.
pytestmark = pytest.mark.slow

HEADS = ["actionformer", "trident", "clff"]


def build(tmp_path, head, *overrides):
    cfg = tiny_train_config(tmp_path, f"model/head={head}", *overrides)
    torch.manual_seed(0)
    # Eval mode: no stochastic depth, so repeated forwards are identical (gradients still flow).
    detector = build_detector(cfg).eval()
    assigner = instantiate(cfg.module.assigner)
    criterion = instantiate(cfg.module.criterion)
    return cfg, detector, assigner, criterion


def losses(detector, assigner, criterion, offsets_shift=0.0):
    """One forward on a fixed batch with two positive-making segments; the flat output is
    returned so gradients w.r.t. the offsets can be taken."""
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 32, 64, generator=gen)
    mask = torch.arange(64)[None, :] < torch.tensor([64, 50])[:, None]
    flat = detector(feats, mask).flat()
    if offsets_shift:
        flat.offsets = flat.offsets + offsets_shift
    segments = [torch.tensor([[10.0, 21.0], [30.0, 38.0]]), torch.tensor([[5.0, 30.0]])]
    labels = [torch.tensor([0, 2]), torch.tensor([1])]
    targets = assigner(flat, segments, labels)
    assert targets.pos.any()
    return flat, criterion(flat, targets)


@pytest.mark.parametrize("head", HEADS)
def test_head_configs_set_the_ancestors_iou_weight(head, tmp_path):
    cfg, _, _, criterion = build(tmp_path, head)
    assert cfg.model.iou_weight is (head != "actionformer")
    assert criterion.iou_weight is (head != "actionformer")
    assert criterion.detach_iou_weight is False
    # The detached ablation is one override away and changes nothing else.
    _, _, _, detached = build(tmp_path, head, "module.criterion.detach_iou_weight=true")
    assert detached.detach_iou_weight is True
    assert detached.iou_weight is criterion.iou_weight
    assert detached.iou_weight_power == criterion.iou_weight_power == 0.2


def test_actionformer_classification_loss_ignores_the_offsets(tmp_path):
    _, detector, assigner, criterion = build(tmp_path, "actionformer")
    flat, out = losses(detector, assigner, criterion)
    (grad,) = torch.autograd.grad(out["loss_cls"], flat.offsets, allow_unused=True)
    assert grad is None or grad.abs().sum() == 0
    criterion.eval()  # keep the loss normaliser fixed between the two evaluations
    _, before = losses(detector, assigner, criterion)
    _, shifted = losses(detector, assigner, criterion, offsets_shift=0.7)
    assert shifted["loss_cls"].item() == before["loss_cls"].item()
    assert shifted["loss_reg"].item() != before["loss_reg"].item()


@pytest.mark.parametrize("head", ["trident", "clff"])
def test_tridet_heads_send_classification_gradient_into_the_offsets(head, tmp_path):
    _, detector, assigner, criterion = build(tmp_path, head)
    flat, out = losses(detector, assigner, criterion)
    (grad,) = torch.autograd.grad(out["loss_cls"], flat.offsets, retain_graph=True)
    assert grad.abs().sum() > 0
    # ... and through them into the regression head's centre branch.
    centre = list(detector.head.centre.parameters())
    grads = torch.autograd.grad(out["loss_cls"], centre, allow_unused=True)
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    criterion.eval()
    _, before = losses(detector, assigner, criterion)
    _, shifted = losses(detector, assigner, criterion, offsets_shift=0.7)
    assert shifted["loss_cls"].item() != before["loss_cls"].item()


@pytest.mark.parametrize("head", ["trident", "clff"])
def test_detached_ablation_keeps_the_value_and_stops_the_gradient(head, tmp_path):
    _, detector, assigner, criterion = build(tmp_path, head)
    _, _, _, detached = build(tmp_path, head, "module.criterion.detach_iou_weight=true")
    _, out = losses(detector, assigner, criterion)
    flat, out_detached = losses(detector, assigner, detached)
    assert out_detached["loss_cls"].item() == out["loss_cls"].item()
    (grad,) = torch.autograd.grad(out_detached["loss_cls"], flat.offsets, allow_unused=True)
    assert grad is None or grad.abs().sum() == 0
