"""The training order: which video when, as ``(epoch, index)`` keys.

Both samplers make the order of epoch ``e`` a function of ``(seed, e)`` and hand the dataset
``(epoch, index)`` keys, from which it seeds the video's crop: the epoch's batches and crops do
not depend on the DataLoader's workers or on where a run was resumed (docs/decisions.md D101).
Both are :class:`~torch.utils.data.DistributedSampler` subclasses, so that Lightning neither
replaces them nor forgets to call ``set_epoch``, under DDP or not.

:class:`ShuffledOrder` is the default: a random permutation per epoch, split over DDP ranks as
``DistributedSampler`` does.

:class:`LengthGroupedSampler` is ``data.bucket_by_length``: a training order that batches
videos of similar length together.

With ``data.train_padding=batch`` a batch costs its longest video times its size; batching a
90-step video with a 2,000-step one wastes most of the compute. This sampler shuffles the
training videos, sorts each pool of ``pool_batches`` batches by length, cuts the pools into
batches and shuffles the batches, so every batch holds neighbours in length while the epoch's
order stays random (docs/decisions.md D122).

Under DDP every rank computes the same epoch order from ``(seed, epoch)`` and takes every
``num_replicas``-th batch. The DataLoader's own batching (batch
size ``batch_size``, no ``drop_last``) then cuts exactly these batches back out of the index
stream, since a short batch, if any, comes last on its rank.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from torch.utils.data import DistributedSampler

log = logging.getLogger(__name__)

# Batches per sorted pool. A simulation with the real ActivityNet-1.3 training durations (batch
# 16, 768 steps) gives 5.1x fewer padded steps than max_seq_len padding with pools of 4 batches,
# 5.9x with 64 and 6.1x with the whole epoch sorted (docs/decisions.md D122): 64 keeps nearly
# all of the gain while each pool still mixes ~1,000 videos anew every epoch.
POOL_BATCHES = 64


class ShuffledOrder(DistributedSampler):
    """A new random order every epoch, from ``(seed, epoch)``, as ``(epoch, index)`` keys.

    Args:
        num_videos: the training set's size.
        seed: the run's seed.
        num_replicas, rank: DDP world size and this process's rank.
    """

    def __init__(self, num_videos: int, seed: int = 0, num_replicas: int = 1, rank: int = 0):
        super().__init__(
            range(num_videos), num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed
        )

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for index in super().__iter__():
            yield epoch, index


class LengthGroupedSampler(DistributedSampler):
    """Indices of one rank's training batches, grouped by length, reshuffled every epoch.

    Args:
        lengths: one length per video of the dataset (steps after the crop cap).
        batch_size: videos per batch on one rank.
        seed: the run's seed; the order of epoch ``e`` is a function of ``(seed, e)`` alone.
        drop_last: drop the ``len % (batch_size * num_replicas)`` videos of the epoch's random
            order that do not fill a batch on every rank; otherwise the last batch may be short
            and ranks with fewer batches repeat the first ones, so every rank steps equally.
        num_replicas: DDP world size.
        rank: this process's rank.
        pool_batches: batches per sorted pool.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int = 1,
        rank: int = 0,
        pool_batches: int = POOL_BATCHES,
    ) -> None:
        if batch_size < 1 or pool_batches < 1:
            raise ValueError(
                f"batch_size and pool_batches must be >= 1: {batch_size}, {pool_batches}"
            )
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        super().__init__(
            self.lengths, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed,
            drop_last=drop_last,
        )  # fmt: skip
        self.batch_size = int(batch_size)
        self.pool_batches = int(pool_batches)
        if drop_last and len(self.lengths) < self.batch_size * num_replicas:
            raise ValueError(
                f"{len(self.lengths)} training videos cannot fill one batch of {batch_size} on "
                f"each of {num_replicas} rank(s) with drop_last"
            )

    def batches(self) -> list[list[int]]:
        """This rank's batches of the current epoch, in order."""
        n, size, world = len(self.lengths), self.batch_size, self.num_replicas
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n)
        if self.drop_last:
            order = order[: n - n % (size * world)]
        pool = size * self.pool_batches
        grouped = [
            chunk[np.argsort(self.lengths[chunk], kind="stable")]
            for chunk in (order[i : i + pool] for i in range(0, len(order), pool))
        ]
        flat = np.concatenate(grouped) if grouped else order
        cut = [flat[i : i + size].tolist() for i in range(0, len(flat), size)]
        short = [cut.pop()] if cut and len(cut[-1]) < size else []
        cut = [cut[i] for i in rng.permutation(len(cut))] + short
        missing = -len(cut) % world
        cut += [cut[i % len(cut)] for i in range(missing)] if cut else []
        return cut[self.rank :: world]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        for batch in self.batches():
            for index in batch:
                yield epoch, index

    def __len__(self) -> int:
        # Counted from the order itself (milliseconds for 10,000 videos): the short batch and
        # the repeated ones make a closed form error-prone.
        return sum(len(batch) for batch in self.batches())

    def state_dict(self) -> dict[str, Any]:
        """What fixes the order: saved in the datamodule's part of every checkpoint."""
        return {
            "seed": int(self.seed),
            "epoch": int(self.epoch),
            "num_videos": len(self.lengths),
            "batch_size": self.batch_size,
            "num_replicas": self.num_replicas,
            "pool_batches": self.pool_batches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue at the saved epoch; a checkpoint of another setting says what differs."""
        differs = {
            key: (state[key], value)
            for key, value in self.state_dict().items()
            if key != "epoch" and key in state and state[key] != value
        }
        if differs:
            log.warning(
                "bucket_by_length: the checkpoint's sampler had %s; this run's order differs "
                "from the interrupted one's",
                ", ".join(f"{k}={old} (now {new})" for k, (old, new) in differs.items()),
            )
        self.set_epoch(int(state.get("epoch", 0)))
