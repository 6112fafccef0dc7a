"""Video-level classifier scores for ActivityNet score fusion (docs/decisions.md D53-D55).

The file format is the one ActionFormer / TriDet read (``cuhk_val_simp_share.json``)::

    {"results": {video_id: [C floats]}, "class": [C class names]}

Classes are mapped to the dataset's classes **by name**, never by position: the ancestors index
the score vector with the dataset's label ids and silently rely on both orders agreeing.

Policies (docs/decisions.md D55, D74):

* the file's class list must be the annotation's class list as a set: a class on one side only
  is an error (a file class the dataset lacks would silently change the top-k choice);
* every video that will be evaluated must have scores: a missing one is an error raised at
  start-up (:meth:`ExternalScores.require`), not a warning, because a fused evaluation without
  the video's classes would under-count it and the ancestors would crash there after training;
* ids match with or without the ``v_`` prefix of ActivityNet feature files.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from logo_tal.core.anet_json import read_json
from logo_tal.core.errors import UserInputError


class MissingScoresError(UserInputError, KeyError):
    """Videos to evaluate that the score file does not cover."""

    def __str__(self) -> str:
        # KeyError's str() is the repr of its argument: quotes around a sentence.
        return str(self.args[0]) if self.args else ""


class ExternalScores:
    """Per-video class scores re-ordered to the dataset's class order.

    Args:
        path: the JSON file.
        class_names: the dataset's class names; entry ``c`` of every returned vector is the
            score of ``class_names[c]``.

    Raises:
        FileNotFoundError: the file does not exist (with a hint on what the file is).
        ValueError: malformed file, or a dataset class the file does not score.
    """

    def __init__(self, path: str | Path, class_names: Sequence[str]) -> None:
        self.path = Path(path)
        check_score_file(self.path)
        raw = read_json(self.path)
        if not isinstance(raw, dict) or "results" not in raw or "class" not in raw:
            raise UserInputError(
                f"{self.path}: expected an object with keys 'results' and 'class', "
                f"got {sorted(raw) if isinstance(raw, dict) else type(raw).__name__}"
            )
        file_classes = [str(c) for c in raw["class"]]
        position = {name: i for i, name in enumerate(file_classes)}
        missing = [name for name in class_names if name not in position]
        if missing:
            raise UserInputError(
                f"{self.path}: {len(missing)} dataset classes have no score in the file's "
                f"'class' list, e.g. {missing[:3]}"
            )
        known = set(class_names)
        extra = [name for name in file_classes if name not in known]
        if extra:
            raise UserInputError(
                f"{self.path}: {len(extra)} classes of the file's 'class' list are not dataset "
                f"classes, e.g. {extra[:3]} (the annotation file has {len(known)}; pass the "
                "full list as data.annotations.class_names if the annotations cover only some "
                "classes)"
            )
        if len(set(file_classes)) != len(file_classes):
            raise UserInputError(f"{self.path}: the 'class' list has duplicate names")
        order = np.asarray([position[name] for name in class_names], dtype=np.int64)
        self.class_names = list(class_names)
        self._scores: dict[str, torch.Tensor] = {}
        for video, scores in raw["results"].items():
            vec = np.asarray(scores, dtype=np.float32)
            if vec.shape != (len(file_classes),):
                raise UserInputError(
                    f"{self.path}: video {video!r} has {vec.size} scores, "
                    f"the 'class' list has {len(file_classes)}"
                )
            self._scores[str(video)] = torch.from_numpy(vec[order])

    def __len__(self) -> int:
        return len(self._scores)

    def __contains__(self, video_id: str) -> bool:
        return self._key(video_id) is not None

    def _key(self, video_id: str) -> str | None:
        # ActivityNet ids appear with and without the "v_" prefix of the feature files.
        for key in (video_id, video_id.removeprefix("v_"), f"v_{video_id}"):
            if key in self._scores:
                return key
        return None

    def missing(self, video_ids: Sequence[str]) -> list[str]:
        """The ids of ``video_ids`` that have no scores in the file."""
        return [v for v in video_ids if self._key(str(v)) is None]

    def require(self, video_ids: Sequence[str], where: str = "") -> None:
        """Raise when any of ``video_ids`` has no scores (the start-up check of fusion).

        Raises:
            MissingScoresError: with the file, the count and the first few ids.
        """
        missing = self.missing(video_ids)
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            place = f" of {where}" if where else ""
            raise MissingScoresError(
                f"{self.path}: no video-level scores for {len(missing)} of {len(video_ids)} "
                f"video(s){place} ({shown}); every evaluated video needs an entry in 'results'"
            )

    def get(self, video_id: str) -> torch.Tensor:
        """Scores ``(C,)`` of one video in dataset class order.

        Raises:
            KeyError: the file has no entry for the video.
        """
        key = self._key(video_id)
        if key is None:
            raise KeyError(f"{self.path}: no video-level scores for video {video_id!r}")
        return self._scores[key]


def check_score_file(path: str | Path | None) -> Path:
    """Fail early, with a clear message, when fusion is on but the score file is absent.

    Args:
        path: the configured ``protocol.fusion.scores_file``.

    Returns:
        The path.

    Raises:
        FileNotFoundError: path is None or does not exist.
    """
    if path is None or str(path) == "":
        raise FileNotFoundError(
            "protocol.fusion needs scores_file: a JSON of video-level class scores "
            '{"results": {video_id: [C floats]}, "class": [names]} (ActionFormer/TriDet use '
            "cuhk_val_simp_share.json). Set protocol.fusion=null to evaluate without fusion."
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"protocol.fusion.scores_file={path} does not exist. It must hold video-level class "
            'scores {"results": {video_id: [C floats]}, "class": [names]}; a stand-in for fake '
            "data: `python scripts/make_layout.py --out DIR --dataset anet`; or set "
            "protocol.fusion=null."
        )
    return path
