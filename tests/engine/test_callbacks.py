"""Callbacks: the EMA that works under DDP-spawn."""

from __future__ import annotations

import torch


def test_ema_callback_is_picklable_and_matches_lightning():
    import pickle

    from torch.optim.swa_utils import get_ema_avg_fn

    from logo_tal.engine.callbacks import EMA, EMAUpdate

    ema = pickle.loads(pickle.dumps(EMA(decay=0.9)))  # ddp_spawn pickles every callback
    assert ema.decay == 0.9
    a, b = torch.randn(5), torch.randn(5)
    expected = get_ema_avg_fn(0.9)(a, b, torch.tensor(1))
    update = pickle.loads(pickle.dumps(EMAUpdate(0.9)))
    assert torch.allclose(update(a, b, torch.tensor(1)), expected)
