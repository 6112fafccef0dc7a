"""Read an offline W&B run back: its group, config, logged keys and files, without a server.

``wandb`` (>= 0.18, wandb-core) writes ``<dir>/wandb/offline-run-*/run-<id>.wandb``: a LevelDB
log (32 KiB blocks of ``checksum u32, length u16, type u8`` records after a 7-byte ``:W&B``
header) of ``wandb_internal_pb2.Record`` protobufs, and no longer ships a Python reader for it.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BLOCK = 32768
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def _chunks(data: bytes):
    """The records of a LevelDB log, pieces of a record split across blocks joined."""
    if data[:4] != b":W&B":
        raise ValueError("not a W&B run file")
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        left = BLOCK - pos % BLOCK
        if left < HEADER:  # the block's tail is zero padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == FULL:
            yield chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pending + chunk


@dataclass
class OfflineRun:
    """What a test checks of one offline run."""

    path: Path
    group: str = ""
    job_type: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    logged: dict[str, Any] = field(default_factory=dict)  # last value per history key
    artifacts: list[tuple[str, str]] = field(default_factory=list)  # (type, name)

    def files(self, pattern: str) -> list[Path]:
        return sorted((self.path / "files").glob(pattern))

    def table(self, key: str) -> dict[str, Any]:
        """The JSON of a logged ``wandb.Table`` (``columns``, ``data``)."""
        path = self.logged[key]["path"]
        return json.loads((self.path / "files" / path).read_text())


def _nested(items) -> dict[str, Any]:
    """Config/history items -> a dict (``nested_key [a, b]`` becomes ``{"a": {"b": v}}``)."""
    out: dict[str, Any] = {}
    for item in items:
        keys = [item.key] if item.key else list(item.nested_key)
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = json.loads(item.value_json)
    return out


def read_run(run_dir: Path) -> OfflineRun:
    """Parse ``run_dir/run-*.wandb`` (``run_dir`` = ``.../wandb/offline-run-*``)."""
    from wandb.proto import wandb_internal_pb2 as pb

    (path,) = run_dir.glob("run-*.wandb")
    run = OfflineRun(run_dir)
    for chunk in _chunks(path.read_bytes()):
        record = pb.Record.FromString(chunk)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.group, run.job_type, run.name = r.run_group, r.job_type, r.display_name
            run.tags = list(r.tags)
            run.config.update(_nested(r.config.update))
        elif kind == "config":
            run.config.update(_nested(record.config.update))
        elif kind == "history":
            run.logged.update(_nested(record.history.item))
        elif kind == "artifact":
            run.artifacts.append((record.artifact.type, record.artifact.name))
    return run


def offline_runs(save_dir: Path) -> list[OfflineRun]:
    """Every offline run under ``save_dir`` (recursively), sorted by path."""
    return [read_run(p) for p in sorted(Path(save_dir).rglob("offline-run-*")) if p.is_dir()]
