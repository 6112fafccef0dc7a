"""The one reader of ActivityNet-style JSON files (annotations, results, video-level scores).

Reading and the top-level shape are checked here, once; what a file's entries mean is decided by
its two users, with two deliberate policies (docs/decisions.md D7, D57):

* training (:mod:`logo_tal.data.annotations`) repairs what it can and counts every repair;
* scoring (:mod:`logo_tal.evaluation.io`) keeps the file exactly as written and rejects anything
  malformed, as the official evaluator does.

Imports nothing of the package and no numpy/torch, so the scorer stays light.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: Python's json keeps the last of repeated keys silently; a video id
    listed twice under ``database`` or ``results`` would lose one of its entries."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def read_json(path: str | os.PathLike, error: type[ValueError] = ValueError) -> Any:
    """Parse a UTF-8 JSON file (a leading byte-order mark is accepted).

    An object with a repeated key (e.g. a video id listed twice) is an error, not the silent
    "last one wins" of Python's json.

    Args:
        path: the file.
        error: exception class raised for every failure, with a one-line message that starts
            with the path.

    Raises:
        error: the file is missing or unreadable, not UTF-8, or not valid JSON.
    """
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: file not found") from None
    except OSError as err:
        raise error(f"{path}: cannot read file ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise error(f"{path}: not valid UTF-8 (byte {err.start})") from None
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as dup:
        raise error(
            f"{path}: key {dup.args[0]!r} appears twice in one JSON object (a video id listed "
            "twice?); merge or rename the entries"
        ) from None
    except json.JSONDecodeError as err:
        raise error(
            f"{path}: malformed JSON at line {err.lineno} column {err.colno}: {err.msg}"
        ) from None
    except RecursionError:
        raise error(f"{path}: malformed JSON: nested too deeply") from None


def read_database(
    path: str | os.PathLike, error: type[ValueError] = ValueError
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read an annotation file ``{"database": {video_id: entry}, ...}``.

    Returns:
        (the whole top-level object, its ``database`` object).

    Raises:
        error: unreadable file, or no ``database`` object at the top level.
    """
    data = read_json(path, error)
    if not isinstance(data, dict) or "database" not in data:
        raise error(f"{path}: not an annotation file: no top-level 'database' object")
    database = data["database"]
    if not isinstance(database, dict):
        kind = type(database).__name__
        raise error(f"{path}: 'database' must be an object of videos, got {kind}")
    return data, database
