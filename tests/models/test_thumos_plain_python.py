"""Issue "done when": every encoder x head builds from plain Python (no Hydra) at THUMOS14
dimensions (2048-d input, T = 2304, 6 levels, 20 classes) and runs forward, the real
assignment + eq. 7 loss, and backward on the CPU."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from logo_tal.models.assigner import PointAssigner
from logo_tal.models.blocks.attention import TransformerBlock
from logo_tal.models.blocks.conv import ConvBlock
from logo_tal.models.blocks.logo import LoGoBlock
from logo_tal.models.blocks.maxer import MaxerBlock
from logo_tal.models.detector import Detector
from logo_tal.models.encoder import PyramidEncoder
from logo_tal.models.heads.actionformer import ActionFormerRegHead
from logo_tal.models.heads.clff import CrossLevelFusion
from logo_tal.models.heads.cls import ClsHead
from logo_tal.models.heads.trident import TridentRegHead
from logo_tal.models.losses import DetectionLoss
from logo_tal.models.neck import LayerNormNeck

INPUT_DIM, LENGTH, LEVELS, CLASSES, DIM = 2048, 2304, 6, 20, 512  # docs/decisions.md D28

BLOCKS = {
    "logo": (partial(LoGoBlock, mlp_hidden=768, local_kernel=3), 2),
    "transformer": (partial(TransformerBlock, window_size=19), 2),
    "conv": (ConvBlock, 2),
    "maxer": (MaxerBlock, 0),
}
HEADS = {
    "actionformer": lambda: ActionFormerRegHead(DIM, DIM, LEVELS),
    "trident": lambda: TridentRegHead(DIM, DIM, CLASSES, LEVELS, num_bins=16),
    "clff": lambda: TridentRegHead(
        DIM, DIM, CLASSES, LEVELS, num_bins=16, centre_fusion=CrossLevelFusion()
    ),
}


def build(encoder: str, head: str) -> Detector:
    block, num_stem = BLOCKS[encoder]
    return Detector(
        encoder=PyramidEncoder(INPUT_DIM, DIM, LEVELS, block, num_stem=num_stem),
        head=HEADS[head](),
        cls_head=ClsHead(DIM, DIM, CLASSES),
        neck=LayerNormNeck(DIM, LEVELS),
        num_levels=LEVELS,
        input_dim=INPUT_DIM,
        num_classes=CLASSES,
    )


@pytest.mark.slow
@pytest.mark.parametrize("head", sorted(HEADS))
@pytest.mark.parametrize("encoder", sorted(BLOCKS))
def test_thumos_forward_loss_backward(encoder, head):
    torch.manual_seed(0)
    det = build(encoder, head).train()
    feats = torch.rand(1, INPUT_DIM, LENGTH)
    mask = torch.zeros(1, LENGTH, dtype=torch.bool)
    mask[0, :2000] = True  # a padded video, as in training batches
    feats[:, :, 2000:] = 0
    # Short, medium and long actions so that several pyramid levels get positives.
    segments = [torch.tensor([[10.0, 14.0], [100.0, 130.0], [400.0, 560.0], [900.0, 1500.0]])]
    labels = [torch.tensor([0, 3, 7, 19])]
    out = det(feats, mask)
    flat = out.flat()
    targets = PointAssigner(LEVELS, CLASSES)(flat, segments, labels)
    losses = DetectionLoss(CLASSES)(flat, targets)
    assert int(targets.pos.sum()) > 0
    assert torch.isfinite(losses["loss"]) and float(losses["loss_reg"]) > 0
    losses["loss"].backward()
    grads = [p.grad for p in det.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0
