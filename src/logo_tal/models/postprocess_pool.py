"""Post-processing in persistent worker processes, beside the detector (issue 10).

Why: decode + Soft-NMS costs ~25 ms of CPU per THUMOS video (numpy, one thread) while the
detector on a GPU takes ~15 ms, so inline post-processing makes evaluation wait for NMS. With
``module.postprocess_workers = N > 0`` each evaluation batch's post-processing is submitted to N
worker processes and the main process runs the next batch's forward meanwhile; the results are
collected, in submission order, at the end of the epoch. On a CPU-only machine the workers
compete with the detector for the same cores, so the default is 0 (inline); the benchmark
decides (docs/decisions.md D120, docs/benchmarks.md "Whole-split evaluation").

How: a ``ProcessPoolExecutor`` with the ``spawn`` start method (forking a process in which
torch/OpenMP threads have run can hang the child), started on first use. Each worker receives
the post-processor once (the initializer: it must be picklable) and runs at one torch thread;
per batch only numpy arrays travel (a detached CPU copy of the ``DetectorOutput`` that keeps
each tensor's memory layout, the grids and durations there, the detections' arrays back), so
no shared-memory tensor handles are involved. The values are the inline ones on a CPU run: the
same ``PostProcessor`` on the same values in the same layout (with the detector on a GPU,
inline decoding runs there and may differ in the last bit).
A failure in a worker is raised in the main process naming the batch (a dead worker too), and
the pool is closed then; ``close`` shuts the processes down and is safe to call repeatedly.
Copies (``copy.deepcopy``, pickling) get an unstarted pool with the same settings.
"""

from __future__ import annotations

import multiprocessing
import pickle
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import torch

from logo_tal.core.detections import Detections
from logo_tal.core.grid import FeatureGrid
from logo_tal.models.outputs import DetectorOutput

PackedOutput = dict[str, Any]
PackedDetections = tuple[np.ndarray, np.ndarray, np.ndarray]

# The post-processor of this worker process (set once by the pool's initializer).
_WORKER: dict[str, Callable] = {}


def _array(tensor: torch.Tensor) -> tuple[np.ndarray, tuple[int, ...]]:
    """A CPU copy of ``tensor`` in its memory order, and the permutation that restores its
    layout. The layout matters: torch computes e.g. ``sigmoid`` with vector instructions on the
    contiguous runs of memory and scalar code on the rest, which can differ in the last bit, so
    a worker must see the same strides as the main process for the same values."""
    tensor = tensor.detach().cpu()
    # numpy has no bfloat16; the post-processor computes in float32 anyway (value-preserving).
    tensor = tensor.float() if tensor.dtype == torch.bfloat16 else tensor
    order = tuple(sorted(range(tensor.dim()), key=lambda d: (-tensor.stride(d), d)))
    return tensor.permute(order).contiguous().numpy().copy(), order


def _tensor(packed: tuple[np.ndarray, tuple[int, ...]]) -> torch.Tensor:
    array, order = packed
    return torch.from_numpy(array).permute(tuple(np.argsort(order).tolist()))


def pack_output(out: DetectorOutput) -> PackedOutput:
    """The detector output as CPU numpy arrays with their layouts (what travels to a worker)."""
    return {
        "cls_logits": [_array(t) for t in out.cls_logits],
        "offsets": [_array(t) for t in out.offsets],
        "masks": [_array(t) for t in out.masks],
        "strides": [int(s) for s in out.strides],
    }


def unpack_output(packed: PackedOutput) -> DetectorOutput:
    """:func:`pack_output` undone: the same values with the same strides."""
    return DetectorOutput(
        cls_logits=[_tensor(a) for a in packed["cls_logits"]],
        offsets=[_tensor(a) for a in packed["offsets"]],
        masks=[_tensor(a) for a in packed["masks"]],
        strides=list(packed["strides"]),
    )


def _init_worker(postprocess: Callable) -> None:
    # N workers at one thread each; PostProcessor() runs its ops at one thread anyway.
    torch.set_num_threads(1)
    _WORKER["postprocess"] = postprocess


def _run(
    packed: PackedOutput, grids: list[FeatureGrid], durations: list[float]
) -> tuple[list[PackedDetections], float]:
    """One batch in a worker: its detections as arrays, and the seconds it took there."""
    start = time.perf_counter()
    detections = _WORKER["postprocess"](unpack_output(packed), grids, durations)
    arrays = [(d.segments.numpy(), d.scores.numpy(), d.labels.numpy()) for d in detections]
    return arrays, time.perf_counter() - start


class PostprocessPool:
    """Runs ``postprocess(out, grids, durations)`` for each submitted batch in worker processes.

    Args:
        postprocess: a picklable ``(DetectorOutput, grids, durations) -> list[Detections]``
            (``PostProcessor``).
        workers: number of worker processes (>= 1).
        max_pending: unfinished batches allowed before ``submit`` waits for the oldest (bounds
            the memory of queued outputs when the detector outruns the workers); default
            4 x ``workers``.
        context: multiprocessing start method (``spawn`` or ``forkserver``; not ``fork``).

    Attributes:
        worker_seconds: post-processing time measured inside the workers since creation.
        wait_seconds: time the main process was blocked waiting for results since creation.
    """

    def __init__(
        self,
        postprocess: Callable,
        workers: int,
        max_pending: int | None = None,
        context: str = "spawn",
    ) -> None:
        if int(workers) < 1:
            raise ValueError(f"a post-processing pool needs workers >= 1, got {workers}")
        if context == "fork":
            raise ValueError("fork after torch has started threads can hang: use spawn")
        self.postprocess = postprocess
        self.workers = int(workers)
        self.max_pending = int(max_pending) if max_pending else 4 * self.workers
        self.context = context
        self.worker_seconds = 0.0
        self.wait_seconds = 0.0
        self._executor: ProcessPoolExecutor | None = None
        self._pending: list[tuple[Any, Future]] = []
        self._checked = 0  # pending[:checked] finished without error

    @property
    def started(self) -> bool:
        return self._executor is not None

    @property
    def processes(self) -> list[multiprocessing.Process]:
        """The live worker processes (empty before the first batch and after ``close``)."""
        executor = self._executor
        return list((getattr(executor, "_processes", None) or {}).values())

    def _start(self) -> ProcessPoolExecutor:
        try:
            pickle.dumps(self.postprocess)
        except Exception as exc:
            raise TypeError(
                "module.postprocess_workers > 0 needs a picklable post-processor: "
                f"{type(self.postprocess).__name__} is not ({exc}); set it to 0"
            ) from exc
        self._executor = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context(self.context),
            initializer=_init_worker,
            initargs=(self.postprocess,),
        )
        return self._executor

    def submit(
        self,
        out: DetectorOutput,
        grids: Sequence[FeatureGrid],
        durations: Sequence[float],
        meta: Any = None,
    ) -> None:
        """Queue one batch; ``meta`` comes back with its detections from :meth:`collect`."""
        executor = self._executor or self._start()
        args = (pack_output(out), list(grids), [float(d) for d in durations])
        self._pending.append((meta, executor.submit(_run, *args)))
        while self._checked < len(self._pending) and self._pending[self._checked][1].done():
            self._result(self._checked, unpack=False)  # an early failure is raised now
            self._checked += 1
        unfinished = len(self._pending) - self._checked
        if unfinished > self.max_pending:
            self._result(self._checked, unpack=False)

    def collect(self) -> list[tuple[Any, list[Detections]]]:
        """Every queued batch's ``(meta, detections)``, in submission order; the queue empties."""
        try:
            return [(meta, self._result(i)) for i, (meta, _) in enumerate(self._pending)]
        finally:
            self._pending, self._checked = [], 0

    def _result(self, index: int, unpack: bool = True) -> list[Detections]:
        """Wait for batch ``index`` (of the current queue); close the pool if it failed."""
        future = self._pending[index][1]
        start = time.perf_counter()
        try:
            arrays, seconds = future.result()
        except BrokenProcessPool as exc:
            self.close()
            raise RuntimeError(
                f"a post-processing worker process died (batch {index} of this epoch): "
                f"{str(exc).rstrip('.')}; module.postprocess_workers=0 post-processes in the "
                "main process"
            ) from exc
        except Exception as exc:
            self.close()
            raise RuntimeError(
                f"post-processing failed in a worker process (batch {index} of this epoch): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            self.wait_seconds += time.perf_counter() - start
        if not unpack:
            return []
        self.worker_seconds += seconds
        return [Detections(*(torch.from_numpy(a) for a in triple)) for triple in arrays]

    def close(self) -> None:
        """Cancel what is queued and shut the worker processes down (waits for them)."""
        executor, self._executor = self._executor, None
        self._pending, self._checked = [], 0
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.update(_executor=None, _pending=[], _checked=0)
        return state


class InlinePostprocess:
    """:class:`PostprocessPool`'s calls, run at once in this process (``postprocess_workers=0``),
    so that the LightningModule drives both alike.

    Args:
        postprocess: ``(DetectorOutput, grids, durations) -> list[Detections]``.
    """

    workers = 0
    worker_seconds = 0.0  # nothing runs in a worker
    wait_seconds = 0.0
    started = False
    processes: list = []

    def __init__(self, postprocess: Callable) -> None:
        self.postprocess = postprocess
        self._done: list[tuple[Any, list[Detections]]] = []

    def submit(
        self,
        out: DetectorOutput,
        grids: Sequence[FeatureGrid],
        durations: Sequence[float],
        meta: Any = None,
    ) -> None:
        """Post-process one batch now; ``meta`` comes back with it from :meth:`collect`."""
        self._done.append(
            (meta, self.postprocess(out, list(grids), [float(d) for d in durations]))
        )

    def collect(self) -> list[tuple[Any, list[Detections]]]:
        """Every submitted batch's ``(meta, detections)``, in submission order."""
        done, self._done = self._done, []
        return done

    def close(self) -> None:
        self._done = []


def postprocessing(postprocess: Callable, workers: int) -> PostprocessPool | InlinePostprocess:
    """The evaluation post-processing of ``module.postprocess_workers``: inline for 0, else a
    pool of that many worker processes (the same results, docs/decisions.md D120)."""
    workers = int(workers)
    if workers < 0:
        raise ValueError(f"module.postprocess_workers must be >= 0: {workers}")
    return PostprocessPool(postprocess, workers) if workers else InlinePostprocess(postprocess)


__all__ = [
    "InlinePostprocess",
    "PostprocessPool",
    "pack_output",
    "postprocessing",
    "unpack_output",
]
