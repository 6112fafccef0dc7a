"""Centre-sampling point assignment (ActionFormer / TriDet ``label_points_single_video``).

Every point of every pyramid level is matched against every ground-truth segment of its video;
the rules are those of docs/decisions.md D36, reproduced exactly because LoGo's numbers
are compared with models trained under them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from logo_tal.core.pyramid import PyramidSpec
from logo_tal.models.outputs import FlatOutput

# Length slack under which two GT count as equally short (AF/TD ``min_len + 1e-3``); this is what
# makes identically-bounded instances (THUMOS CliffDiving + Diving) a multi-hot target.
TIE_SLACK = 1e-3


@dataclass
class Targets:
    """Training targets for all points of a batch (levels concatenated, as in ``FlatOutput``).

    Attributes:
        cls: (B, P, C) float multi-hot class targets (all zero on background and padding).
        reg: (B, P, 2) (left, right) distances to the assigned GT, in units of the point's stride
            (zero where ``pos`` is False).
        pos: (B, P) bool, True on valid points assigned to at least one GT.
    """

    cls: torch.Tensor
    reg: torch.Tensor
    pos: torch.Tensor


class PointAssigner:
    """Assigns GT segments to pyramid points.

    Args:
        num_levels: pyramid depth; regression ranges come from ``PyramidSpec(num_levels)``.
        num_classes: C, width of the multi-hot class target.
        center_radius: half-width of the centre-sampling region in units of the level stride
            (1.5 in AF/TD configs, ``center_sample_radius``).
    """

    def __init__(self, num_levels: int, num_classes: int, center_radius: float = 1.5) -> None:
        self.spec = PyramidSpec(num_levels)
        self.num_classes = int(num_classes)
        self.center_radius = float(center_radius)

    def _point_ranges(self, flat: FlatOutput) -> tuple[torch.Tensor, torch.Tensor]:
        if len(flat.level_sizes) != self.spec.num_levels:
            raise ValueError(
                f"output has {len(flat.level_sizes)} levels, "
                f"assigner expects {self.spec.num_levels}"
            )
        device = flat.points.device
        sizes = torch.tensor(flat.level_sizes, device=device)
        ranges = torch.tensor(self.spec.regression_ranges, device=device, dtype=torch.float32)
        per_point = ranges.repeat_interleave(sizes, dim=0)  # (P, 2)
        return per_point[:, 0], per_point[:, 1]

    @torch.no_grad()
    def __call__(
        self,
        flat: FlatOutput,
        segments: list[torch.Tensor],
        labels: list[torch.Tensor],
    ) -> Targets:
        """Build targets.

        Args:
            flat: concatenated detector output; only ``points``, ``point_strides``, ``masks``,
                ``level_sizes`` and the batch size are used.
            segments: list[B] of (N_i, 2) GT (start, end) in level-0 grid units.
            labels: list[B] of (N_i,) int64 class indices in [0, C).

        Returns:
            ``Targets`` with cls (B, P, C), reg (B, P, 2), pos (B, P).
        """
        batch = flat.masks.shape[0]
        if len(segments) != batch or len(labels) != batch:
            raise ValueError(
                f"got {len(segments)} segment lists and {len(labels)} label lists for a batch "
                f"of {batch}"
            )
        lo, hi = self._point_ranges(flat)
        cls, reg = [], []
        for segs, labs in zip(segments, labels, strict=True):
            c, r = self._assign_video(flat.points, flat.point_strides, lo, hi, segs, labs)
            cls.append(c)
            reg.append(r)
        cls_t = torch.stack(cls) * flat.masks[..., None]
        pos = (cls_t.sum(-1) > 0) & flat.masks
        reg_t = torch.stack(reg) * pos[..., None]
        return Targets(cls=cls_t, reg=reg_t, pos=pos)

    def _assign_video(
        self,
        points: torch.Tensor,
        strides: torch.Tensor,
        lo: torch.Tensor,
        hi: torch.Tensor,
        segs: torch.Tensor,
        labs: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(P,) points vs (N, 2) GT -> cls (P, C), reg (P, 2)."""
        num_points, device = points.shape[0], points.device
        segs = torch.as_tensor(segs, device=device, dtype=torch.float32).reshape(-1, 2)
        labs = torch.as_tensor(labs, device=device, dtype=torch.long).reshape(-1)
        if segs.shape[0] != labs.shape[0]:
            raise ValueError(f"{segs.shape[0]} GT segments but {labs.shape[0]} labels")
        if segs.shape[0] == 0:
            return (
                points.new_zeros(num_points, self.num_classes),
                points.new_zeros(num_points, 2),
            )
        if labs.min() < 0 or labs.max() >= self.num_classes:
            raise ValueError(
                f"GT label out of range [0, {self.num_classes}): {labs.min()}..{labs.max()}"
            )

        start, end = segs[:, 0], segs[:, 1]  # (N,)
        t = points[:, None]  # (P, 1)
        left = t - start  # (P, N)
        right = end - t
        centre = 0.5 * (start + end)
        radius = self.center_radius * strides[:, None]  # (P, 1)
        region_lo = torch.maximum(centre - radius, start)
        region_hi = torch.minimum(centre + radius, end)
        # Strict on both sides (AF: min over the two distances > 0).
        inside = (t - region_lo > 0) & (region_hi - t > 0)
        reach = torch.maximum(left, right)
        in_range = (reach >= lo[:, None]) & (reach <= hi[:, None])

        length = (end - start).expand(num_points, -1)
        length = torch.where(inside & in_range, length, torch.full_like(length, float("inf")))
        min_len, best = length.min(dim=1)  # first index among exact ties
        matched = torch.isfinite(min_len)
        ties = (length <= min_len[:, None] + TIE_SLACK) & torch.isfinite(length)
        one_hot = F.one_hot(labs, self.num_classes).to(points.dtype)  # (N, C)
        cls = (ties.to(points.dtype) @ one_hot).clamp_(max=1.0)

        rows = torch.arange(num_points, device=device)
        reg = torch.stack((left[rows, best], right[rows, best]), dim=-1) / strides[:, None]
        reg = reg * matched[:, None]
        return cls, reg
