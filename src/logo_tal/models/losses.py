"""Eq. 7 of the LoGo paper as TriDet implements it (docs/decisions.md D37-D41).

All offsets are centre-anchored: a segment is ``(left, right)`` distances >= 0 from one shared
point, so the 1-D IoU needs no absolute positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from logo_tal.models.assigner import Targets
from logo_tal.models.outputs import FlatOutput

EPS = 1e-8  # AF/TD loss eps


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Elementwise sigmoid focal loss (Lin et al. 2017; alpha 0.25, gamma 2 in AF/TD).

    Args:
        logits: (...) pre-sigmoid scores.
        targets: (...) same shape, in [0, 1] (soft targets allowed, e.g. label smoothing).
        alpha: weight of the positive term; a negative value disables alpha weighting.
        gamma: focusing exponent.

    Returns:
        (...) unreduced loss.
    """
    targets = targets.to(logits.dtype)
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = prob * targets + (1.0 - prob) * (1.0 - targets)
    loss = ce * (1.0 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1.0 - alpha) * (1.0 - targets)) * loss
    return loss


def _parts(pred: torch.Tensor, target: torch.Tensor):
    lp, rp = pred[..., 0], pred[..., 1]
    lg, rg = target[..., 0], target[..., 1]
    inter = torch.minimum(lp, lg) + torch.minimum(rp, rg)
    union = (lp + rp) + (lg + rg) - inter
    return lp, rp, lg, rg, inter, union


def iou_1d(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """IoU of centre-anchored segments.

    Args:
        pred: (..., 2) (left, right) distances >= 0.
        target: (..., 2) broadcastable to ``pred``.

    Returns:
        (...) IoU in [0, 1].
    """
    *_, inter, union = _parts(pred, target)
    return inter / union.clamp(min=eps)


def giou_loss_1d(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Elementwise GIoU loss of centre-anchored segments, which here equals ``1 - IoU``.

    Both segments contain the shared anchor point, so they always intersect (or touch) and
    their smallest enclosing interval is exactly their union: the GIoU penalty
    ``(|C| - |union|) / |C|`` is zero. The AF/TD "giou" functions return ``1 - IoU`` for the
    same reason.

    Args:
        pred: (..., 2), target: (..., 2) (left, right) distances.

    Returns:
        (...) loss.
    """
    return 1.0 - iou_1d(pred, target, eps)


def diou_loss_1d(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Elementwise DIoU loss (Zheng et al. 2020) of centre-anchored segments.

    ``1 - IoU + (rho / c)^2`` with ``rho`` the distance between the two segment centres and
    ``c`` the enclosing length; the AF/TD default regression loss.

    Args:
        pred: (..., 2), target: (..., 2) (left, right) distances.

    Returns:
        (...) loss.
    """
    lp, rp, lg, rg, inter, union = _parts(pred, target)
    iou = inter / union.clamp(min=eps)
    enclosing = torch.maximum(lp, lg) + torch.maximum(rp, rg)
    rho = 0.5 * ((rp - lp) - (rg - lg))
    return 1.0 - iou + (rho / enclosing.clamp(min=eps)) ** 2


_REG_LOSSES = {"diou": diou_loss_1d, "giou": giou_loss_1d}


class DetectionLoss(nn.Module):
    """IoU-weighted focal classification loss + DIoU/GIoU regression loss (eq. 7).

    Both terms are summed and divided by ``N``, an exponential moving average of the number of
    positive points (AF/TD; the paper's 1/N_neg is not what any ancestor does,
    docs/decisions.md D37).
    ``N <- m * N + (1 - m) * max(#pos, 1)`` is applied **only in training mode**, before the
    division (as AF/TD, whose loss only runs in training): a validation loss computed in eval
    mode divides by the current ``N`` and leaves it untouched, so validation never changes what
    a checkpoint resumes with. ``N`` is a persistent buffer and therefore checkpointed. Under
    DDP, #pos is the local count (as AF/TD), so each rank's ``N`` follows its own batches.

    Args:
        num_classes: C.
        reg_loss: ``"diou"`` (AF/TD default) or ``"giou"`` (the paper's wording; here 1 - IoU).
        iou_weight_power: exponent of the IoU weight on positive classification entries
            (TD ``iou_weight_power``: 0.2 THUMOS, 1 ANet); 0 disables the weighting.
        alpha, gamma: focal-loss parameters.
        label_smoothing: eps; targets become ``t * (1 - eps) + eps / (C + 1)`` (TD; ANet 0.1).
        init_loss_norm: initial ``N`` (100 THUMOS; AF ANet 200, TD ANet 400).
        norm_momentum: EMA momentum m (0.9).
        loss_weight: weight of the regression term; <= 0 auto-balances it to
            ``loss_cls / max(loss_reg, 0.01)`` (AF's convention for ``loss_weight=-1``).
        detach_iou_weight: stop gradients through the IoU weight (TD does not; the project's
            ablation, docs/decisions.md D99).
        iou_weight: apply the IoU weight at all. The configs take it from the head
            (``model.iou_weight``): TriDet's Trident/CLFF losses have it, ActionFormer's has not
            (docs/decisions.md D99). False equals ``iou_weight_power=0``.
    """

    def __init__(
        self,
        num_classes: int,
        reg_loss: str = "diou",
        iou_weight_power: float = 0.2,
        alpha: float = 0.25,
        gamma: float = 2.0,
        label_smoothing: float = 0.0,
        init_loss_norm: float = 100.0,
        norm_momentum: float = 0.9,
        loss_weight: float = 1.0,
        detach_iou_weight: bool = False,
        iou_weight: bool = True,
    ) -> None:
        super().__init__()
        if reg_loss not in _REG_LOSSES:
            raise ValueError(f"reg_loss must be one of {sorted(_REG_LOSSES)}, got {reg_loss!r}")
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.num_classes = int(num_classes)
        self.reg_loss = reg_loss
        self.iou_weight_power = float(iou_weight_power)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.label_smoothing = float(label_smoothing)
        self.norm_momentum = float(norm_momentum)
        self.loss_weight = float(loss_weight)
        self.detach_iou_weight = bool(detach_iou_weight)
        self.iou_weight = bool(iou_weight)
        self.register_buffer("loss_norm", torch.tensor(float(init_loss_norm)))

    def extra_repr(self) -> str:
        return (
            f"num_classes={self.num_classes}, reg_loss={self.reg_loss}, "
            f"iou_weight={self.iou_weight}, iou_weight_power={self.iou_weight_power}, "
            f"detach_iou_weight={self.detach_iou_weight}, label_smoothing={self.label_smoothing}"
        )

    def forward(self, flat: FlatOutput, targets: Targets) -> dict[str, torch.Tensor]:
        """Compute the loss.

        Args:
            flat: cls_logits (B, P, C), offsets (B, P, K, 2) with K in {1, C}, masks (B, P).
            targets: from :class:`~logo_tal.models.assigner.PointAssigner`.

        Returns:
            dict with ``loss``, ``loss_cls``, ``loss_reg`` (scalars) and ``num_pos`` (detached
            float count of positive points in the batch).
        """
        logits = flat.cls_logits.float()
        offsets = flat.offsets.float()
        num_classes = logits.shape[-1]
        if num_classes != self.num_classes:
            raise ValueError(f"logits have {num_classes} classes, loss expects {self.num_classes}")
        if offsets.shape[2] not in (1, num_classes):
            raise ValueError(f"offsets have K={offsets.shape[2]}; expected 1 or C={num_classes}")

        valid = flat.masks
        pos = targets.pos & valid
        num_pos = pos.sum()
        if self.training:
            self.loss_norm.mul_(self.norm_momentum).add_(
                (1.0 - self.norm_momentum) * num_pos.clamp(min=1).to(self.loss_norm.dtype)
            )
        norm = self.loss_norm.clamp(min=1.0)

        floor = self.label_smoothing / (num_classes + 1)
        gt = targets.cls.to(logits.dtype) * (1.0 - self.label_smoothing) + floor
        # Positive (point, class) entries and their offsets: for K = C each entry uses its own
        # class's decoded offsets (one term per entry, TriDet); for K = 1 all share one row.
        pos_gt = gt[pos] > floor  # (Npos, C)
        pred = offsets[pos]  # (Npos, K, 2)
        reg_target = targets.reg[pos].to(pred.dtype)[:, None, :]  # (Npos, 1, 2)

        cls_loss = sigmoid_focal_loss(logits[valid], gt[valid], self.alpha, self.gamma)  # (V, C)
        if self.iou_weight and self.iou_weight_power > 0 and pos_gt.any():
            # Rows of cls_loss are the valid points in order; positives are a subset of them.
            pos_rows = pos[valid]
            cls_loss = cls_loss.clone()
            cls_loss[pos_rows] = cls_loss[pos_rows] * self._iou_weight(pred, reg_target, pos_gt)
        loss_cls = cls_loss.sum() / norm
        loss_reg = self._regression_loss(pred, reg_target, pos_gt, norm)

        if self.loss_weight > 0:
            weight_reg = self.loss_weight
        else:
            weight_reg = loss_cls.detach() / max(float(loss_reg.detach()), 0.01)
        return {
            "loss": loss_cls + weight_reg * loss_reg,
            "loss_cls": loss_cls,
            "loss_reg": loss_reg,
            "num_pos": num_pos.detach().float(),
        }

    def _iou_weight(
        self, pred: torch.Tensor, reg_target: torch.Tensor, pos_gt: torch.Tensor
    ) -> torch.Tensor:
        """``IoU ** power`` of each positive (point, class) entry, 1 for the point's other
        classes: (Npos, C)."""
        iou = iou_1d(pred, reg_target).expand(-1, pos_gt.shape[1])  # (Npos, C)
        if self.detach_iou_weight:
            iou = iou.detach()
        # x**p has an infinite slope at 0: keep both the value and the gradient finite there.
        safe = iou > EPS
        weight = torch.where(safe, iou.clamp(min=EPS) ** self.iou_weight_power, 0.0)
        return torch.where(pos_gt, weight, 1.0)

    def _regression_loss(
        self,
        pred: torch.Tensor,
        reg_target: torch.Tensor,
        pos_gt: torch.Tensor,
        norm: torch.Tensor,
    ) -> torch.Tensor:
        """DIoU/GIoU over the positive entries, normalised like the classification loss."""
        if pred.shape[0] == 0:
            # Keeps the offset branch in the graph (DDP unused-parameter checks) with zero grad.
            return 0.0 * pred.sum()
        if pred.shape[1] == 1:
            pred_rows, target_rows = pred[:, 0], reg_target[:, 0]
        else:
            pred_rows = pred[pos_gt]  # (#entries, 2)
            target_rows = reg_target.expand(-1, pos_gt.shape[1], -1)[pos_gt]
        return _REG_LOSSES[self.reg_loss](pred_rows, target_rows).sum() / norm
