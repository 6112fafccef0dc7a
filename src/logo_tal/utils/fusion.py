"""Video-level classifier scores for ActivityNet score fusion (notes/ancestors.md 1.7).

The file format is the one ActionFormer / TriDet read (``cuhk_val_simp_share.json``)::

    {"results": {video_id: [C floats]}, "class": [C class names]}

Classes are mapped to the dataset's classes **by name**, never by position: the ancestors index
the score vector with the dataset's label ids and silently rely on both orders agreeing.

Policies (DESIGN principle 10, users.md row 7):

* the file's class list must be the annotation's class list as a set: a class on one side only
  is an error (a file class the dataset lacks would silently change the top-k choice);
* every video that will be evaluated must have scores: a missing one is an error raised at
  start-up (:meth:`ExternalScores.require`), not a warning, because a fused evaluation without
  the video's classes would under-count it and the ancestors would crash there after training;
* ids match with or without the ``v_`` prefix of ActivityNet feature files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch


class MissingScoresError(KeyError):
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
        try:
            raw = json.loads(self.path.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.path}: not valid JSON ({err})") from err
        if not isinstance(raw, dict) or "results" not in raw or "class" not in raw:
            raise ValueError(
                f"{self.path}: expected an object with keys 'results' and 'class', "
                f"got {sorted(raw) if isinstance(raw, dict) else type(raw).__name__}"
            )
        file_classes = [str(c) for c in raw["class"]]
        position = {name: i for i, name in enumerate(file_classes)}
        missing = [name for name in class_names if name not in position]
        if missing:
            raise ValueError(
                f"{self.path}: {len(missing)} dataset classes have no score in the file's "
                f"'class' list, e.g. {missing[:3]}"
            )
        known = set(class_names)
        extra = [name for name in file_classes if name not in known]
        if extra:
            raise ValueError(
                f"{self.path}: {len(extra)} classes of the file's 'class' list are not dataset "
                f"classes, e.g. {extra[:3]} (the annotation file has {len(known)}; pass the "
                "full list as data.class_names if the annotations cover only some classes)"
            )
        if len(set(file_classes)) != len(file_classes):
            raise ValueError(f"{self.path}: the 'class' list has duplicate names")
        order = np.asarray([position[name] for name in class_names], dtype=np.int64)
        self.class_names = list(class_names)
        self._scores: dict[str, torch.Tensor] = {}
        for video, scores in raw["results"].items():
            vec = np.asarray(scores, dtype=np.float32)
            if vec.shape != (len(file_classes),):
                raise ValueError(
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
        path: the configured ``module.fusion_file``.

    Returns:
        The path.

    Raises:
        FileNotFoundError: path is None or does not exist.
    """
    if path is None or str(path) == "":
        raise FileNotFoundError(
            "module.fusion=external needs module.fusion_file: a JSON of video-level class scores "
            '{"results": {video_id: [C floats]}, "class": [names]} (ActionFormer/TriDet use '
            "cuhk_val_simp_share.json). Set module.fusion=none to evaluate without fusion."
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"module.fusion_file={path} does not exist. It must hold video-level class scores "
            '{"results": {video_id: [C floats]}, "class": [names]}; generate a stand-in with '
            "`python -m logo_tal.utils.fusion OUT.json --annotations ANNOTATIONS.json`, "
            "or set module.fusion=none."
        )
    return path


def write_synthetic_scores(
    path: str | Path,
    video_labels: Mapping[str, Sequence[str]],
    class_names: Sequence[str],
    accuracy: float = 0.8,
    seed: int = 0,
) -> Path:
    """Write a stand-in classifier file in the CUHK format, for tests and synthetic runs.

    Each video's true classes get a high score with probability ``accuracy`` (else a random
    class is boosted instead); the rest is a softmax of Gaussian noise. The class list is written
    in reversed order so that anything that maps classes by position instead of by name breaks.

    Args:
        path: where to write the JSON.
        video_labels: video id -> names of the classes it contains.
        class_names: all class names.
        accuracy: chance that a video's true classes are the boosted ones.
        seed: random seed.

    Returns:
        The path written.
    """
    rng = np.random.default_rng(seed)
    names = list(class_names)[::-1]
    index = {name: i for i, name in enumerate(names)}
    results = {}
    for video, labels in video_labels.items():
        logits = rng.normal(0.0, 1.0, size=len(names))
        targets = [index[name] for name in labels if name in index]
        if not targets or rng.random() > accuracy:
            targets = [int(rng.integers(len(names)))]
        logits[targets] += 6.0
        probs = np.exp(logits - logits.max())
        results[str(video)] = (probs / probs.sum()).round(6).tolist()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "class": names}))
    return out


def video_labels_from_annotations(
    path: str | Path, subsets: Sequence[str] | None = None
) -> tuple[dict[str, list[str]], list[str]]:
    """Video -> class names from an ActivityNet-style annotation JSON.

    Args:
        path: ``{"classes"?, "database": {video: {"subset", "annotations": [{"label"}]}}}``.
        subsets: keep only the videos of these subsets (case-insensitive); all when None.

    Returns:
        (video id -> sorted unique labels, sorted class names). The classes are those of the
        whole file (its ``classes`` list, else every label of every subset), because a score
        file must cover the dataset's vocabulary even when it scores only the validation videos.
    """
    data = json.loads(Path(path).read_text())
    database = data["database"]
    wanted = None if subsets is None else {s.lower() for s in subsets}
    videos: dict[str, list[str]] = {}
    classes: set[str] = {str(c) for c in data.get("classes") or []}
    for video, entry in database.items():
        labels = sorted({str(a["label"]) for a in entry.get("annotations", [])})
        classes.update(labels)
        if wanted is not None and str(entry.get("subset", "")).lower() not in wanted:
            continue
        videos[str(video)] = labels
    return videos, sorted(classes)


def main(argv: Sequence[str] | None = None) -> None:
    """CLI: write a synthetic CUHK-format score file for the videos of an annotation file."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("out", help="output JSON path")
    parser.add_argument("--annotations", required=True, help="ActivityNet-style annotation JSON")
    parser.add_argument("--subset", action="append", help="subset(s) to include (default: all)")
    parser.add_argument("--accuracy", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    videos, classes = video_labels_from_annotations(args.annotations, args.subset)
    write_synthetic_scores(args.out, videos, classes, args.accuracy, args.seed)
    print(f"wrote scores for {len(videos)} videos x {len(classes)} classes to {args.out}")


if __name__ == "__main__":
    main()
