"""A dataset's evaluation protocol as one object: tIoU thresholds and optional score fusion.

Built once per run from ``conf/protocol/<dataset>.yaml`` (``protocol.*``) and used alike by
``train``, ``evaluate`` and ``predict`` (``logo_tal.app.build``): it says which classes are scored
(the training classes, or with fusion the annotation file's real classes), and makes the
post-processing step that labels class-agnostic detections with video-level class scores
(ActivityNet; docs/decisions.md D52-D55).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from logo_tal.core.errors import UserInputError
from logo_tal.core.protocol import THUMOS_TIOU
from logo_tal.data.video_scores import ExternalScores
from logo_tal.models.score_fusion import ScoreFusion


@dataclass(frozen=True)
class FusionSettings:
    """Video-level score fusion: the top ``topk`` classes of ``scores_file`` label the best
    ``max_dets`` class-agnostic detections of each video."""

    scores_file: str
    topk: int = 2
    max_dets: int = 200

    @classmethod
    def parse(cls, fusion: Mapping[str, Any] | None) -> FusionSettings | None:
        if not fusion:
            return None
        unknown = set(fusion) - {"scores_file", "topk", "max_dets"}
        if unknown or not fusion.get("scores_file"):
            raise UserInputError(
                "protocol.fusion must be null or {scores_file: PATH, topk: 2, max_dets: 200}, "
                f"got {dict(fusion)}"
            )
        return cls(
            str(fusion["scores_file"]),
            int(fusion.get("topk", 2)),
            int(fusion.get("max_dets", 200)),
        )


def threshold_problem(thresholds: Sequence[float]) -> str | None:
    """What is wrong with ``protocol.tiou_thresholds``, or None (the config check and the
    protocol both ask here)."""
    if not thresholds:
        return "protocol.tiou_thresholds is empty"
    bad = [float(t) for t in thresholds if not 0.0 < float(t) <= 1.0]
    return f"protocol.tiou_thresholds contains {bad}, outside (0, 1]" if bad else None


class EvaluationProtocol:
    """How a dataset's detections are scored.

    Args:
        tiou_thresholds: the mAP's tIoU thresholds (THUMOS14 0.3:0.1:0.7, ActivityNet
            0.5:0.05:0.95).
        fusion: ``{scores_file, topk, max_dets}`` or None (the training classes are scored as
            the detector labels them).
    """

    def __init__(
        self,
        tiou_thresholds: Sequence[float] = THUMOS_TIOU,
        fusion: Mapping[str, Any] | None = None,
    ) -> None:
        self.tiou_thresholds = [float(t) for t in tiou_thresholds]
        problem = threshold_problem(self.tiou_thresholds)
        if problem:
            raise UserInputError(problem)
        self.fusion = FusionSettings.parse(fusion)

    @property
    def scores_real_classes(self) -> bool:
        """With fusion, the annotation file's real classes are scored, whatever the detector
        was trained on (ActivityNet trains class-agnostic)."""
        return self.fusion is not None

    def fusion_step(
        self, class_names: Sequence[str], evaluated: Mapping[str, Sequence[str]] | None = None
    ) -> ScoreFusion | None:
        """The score-fusion post-processing step in ``class_names`` order, or None.

        Args:
            class_names: the scored vocabulary.
            evaluated: split -> video ids that will be evaluated: each must have video-level
                scores, checked now rather than after training.

        Raises:
            MissingScoresError: an evaluated video without scores.
        """
        if self.fusion is None:
            return None
        scores = ExternalScores(self.fusion.scores_file, class_names)
        for split, videos in (evaluated or {}).items():
            scores.require(videos, f"the {split} split")
        return ScoreFusion(scores, topk=self.fusion.topk, max_dets=self.fusion.max_dets)
