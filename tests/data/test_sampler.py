"""LengthGroupedSampler (data.bucket_by_length): every video once, similar lengths together, a
new reproducible order per epoch, the same batches through a DataLoader, DDP ranks that split
the epoch, and its checkpoint state."""

from __future__ import annotations

import numpy as np
import pytest
from torch.utils.data import DataLoader

from logo_tal.data.sampler import LengthGroupedSampler, ShuffledOrder

LENGTHS = np.random.default_rng(3).integers(20, 2304, size=203).tolist()


def _padded_steps(batches, lengths):
    return sum(max(lengths[i] for i in b) * len(b) for b in batches)


def test_every_video_once_per_epoch_in_batches_of_similar_length():
    sampler = LengthGroupedSampler(LENGTHS, batch_size=4, seed=0)
    batches = sampler.batches()
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(LENGTHS))) and len(sampler) == len(LENGTHS)
    assert [len(b) for b in batches[:-1]] == [4] * 50 and len(batches[-1]) == 3  # short last
    # Against a random order of the same batch size: far fewer padded steps.
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(LENGTHS)).tolist()
    random_batches = [shuffled[i : i + 4] for i in range(0, len(shuffled), 4)]
    assert _padded_steps(batches, LENGTHS) < 0.7 * _padded_steps(random_batches, LENGTHS)
    # The order of the batches is shuffled too, not sorted by length.
    longest = [max(LENGTHS[i] for i in b) for b in batches[:-1]]
    assert longest != sorted(longest) and longest != sorted(longest, reverse=True)


def test_order_depends_on_seed_and_epoch_only():
    a = LengthGroupedSampler(LENGTHS, 4, seed=7)
    b = LengthGroupedSampler(LENGTHS, 4, seed=7)
    assert a.batches() == b.batches()
    first = a.batches()
    a.set_epoch(1)
    assert a.batches() != first
    b.set_epoch(1)
    assert a.batches() == b.batches()
    assert LengthGroupedSampler(LENGTHS, 4, seed=8).batches() != first


class _Keys:
    """A dataset that returns the key it is indexed with: what the sampler hands out."""

    def __getitem__(self, key):
        return key


def test_a_dataloader_cuts_out_exactly_the_samplers_batches():
    sampler = LengthGroupedSampler(LENGTHS, batch_size=4, seed=1)
    sampler.set_epoch(3)
    loader = DataLoader(_Keys(), batch_size=4, sampler=sampler, collate_fn=list)
    batches = list(loader)
    assert [[i for _, i in b] for b in batches] == sampler.batches()
    assert {e for b in batches for e, _ in b} == {3}  # (epoch, index) keys: the dataset crops
    assert len(loader) == len(sampler.batches())


def test_the_shuffled_order_is_a_function_of_seed_and_epoch_and_splits_over_ranks():
    a, b = ShuffledOrder(50, seed=3), ShuffledOrder(50, seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) and {e for e, _ in a} == {2}
    assert sorted(i for _, i in a) == list(range(50))
    b.set_epoch(1)
    assert list(a) != list(b)
    ranks = [ShuffledOrder(50, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    shares = [{i for _, i in r} for r in ranks]
    assert shares[0] | shares[1] == set(range(50)) and not shares[0] & shares[1]


@pytest.mark.parametrize("drop_last", [False, True])
@pytest.mark.parametrize("world", [2, 3])
def test_ddp_ranks_split_the_epoch_and_step_equally(world, drop_last):
    ranks = [
        LengthGroupedSampler(LENGTHS, 4, seed=2, drop_last=drop_last, num_replicas=world, rank=r)
        for r in range(world)
    ]
    per_rank = [s.batches() for s in ranks]
    assert len({len(b) for b in per_rank}) == 1  # same number of optimiser steps everywhere
    seen = [i for batches in per_rank for b in batches for i in b]
    if drop_last:
        assert len(seen) == len(set(seen)) == len(LENGTHS) // (4 * world) * 4 * world
        assert all(len(b) == 4 for batches in per_rank for b in batches)
    else:
        assert set(seen) == set(range(len(LENGTHS)))  # repeats fill the last round only
        assert len(seen) - len(LENGTHS) < 4 * world
    for sampler, batches in zip(ranks, per_rank, strict=True):
        assert len(sampler) == sum(len(b) for b in batches)
        # a short batch, if any, is the last of its rank (the DataLoader must not straddle it)
        assert all(len(b) == 4 for b in batches[:-1])


def test_drop_last_drops_fewer_than_a_batch_of_random_videos():
    sampler = LengthGroupedSampler(LENGTHS, 4, seed=0, drop_last=True)
    kept = {i for b in sampler.batches() for i in b}
    assert len(kept) == 200 and all(len(b) == 4 for b in sampler.batches())
    sampler.set_epoch(1)
    assert {i for b in sampler.batches() for i in b} != kept
    with pytest.raises(ValueError, match="cannot fill one batch"):
        LengthGroupedSampler([5, 6, 7], 4, drop_last=True)


def test_state_dict_restores_the_epoch_and_warns_on_another_setting(caplog):
    sampler = LengthGroupedSampler(LENGTHS, 4, seed=5)
    sampler.set_epoch(3)
    state = sampler.state_dict()
    assert all(isinstance(v, int) for v in state.values())  # weights_only-loadable
    resumed = LengthGroupedSampler(LENGTHS, 4, seed=5)
    resumed.load_state_dict(state)
    assert resumed.epoch == 3 and resumed.batches() == sampler.batches()
    other = LengthGroupedSampler(LENGTHS, 2, seed=5)
    with caplog.at_level("WARNING"):
        other.load_state_dict(state)
    assert "batch_size=4 (now 2)" in caplog.text


def test_it_is_a_distributed_sampler_so_lightning_keeps_it():
    from torch.utils.data import DistributedSampler

    sampler = LengthGroupedSampler(LENGTHS, 4)
    assert isinstance(sampler, DistributedSampler)
    # Lightning's per-epoch hook is DistributedSampler.set_epoch.
    sampler.set_epoch(2)
    assert sampler.state_dict()["epoch"] == 2
