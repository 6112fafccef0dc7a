"""param_groups (no decay on 0-d / 1-d parameters) and the warm-up + cosine schedule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from logo_tal.models.optim import WarmupCosine, param_groups


class Scale(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(1.0))


class AffineDropPath(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.scale = nn.Parameter(torch.full((1, dim, 1), 1e-4))  # 3-d but not a projection


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(4, 8, 3, padding=1)
        self.ln = nn.LayerNorm(8)
        self.gn = nn.GroupNorm(2, 8)
        self.fc = nn.Linear(8, 8)
        self.shared = self.fc  # shared module: its parameters must appear once
        self.scale = Scale()
        self.drop = AffineDropPath(8)
        self.w1 = nn.Parameter(torch.ones(()))  # CLFF fusion weights
        self.w2 = nn.Parameter(torch.ones(()))
        self.pos = nn.Parameter(torch.zeros(1, 8, 16))  # learned table: no decay
        self.frozen = nn.Parameter(torch.ones(3), requires_grad=False)
        self.dw = nn.Conv1d(8, 8, 3, groups=8, bias=False)


def test_partition_and_rules():
    model = Toy()
    decay, no_decay = param_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert sorted(decay["names"]) == ["conv.weight", "dw.weight", "fc.weight"]
    ids = [id(p) for g in (decay, no_decay) for p in g["params"]]
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(ids) == len(set(ids)) == len(trainable)
    assert set(ids) == {id(p) for p in trainable}
    assert all(p.ndim >= 2 for p in decay["params"])
    for p in model.parameters():
        if p.requires_grad and p.ndim <= 1:
            assert any(p is q for q in no_decay["params"])
    assert {
        "w1",
        "w2",
        "scale.scale",
        "drop.scale",
        "ln.weight",
        "gn.weight",
        "conv.bias",
        "pos",
    } <= set(no_decay["names"])
    forced = param_groups(model, 0.05, no_decay_names=("dw.",))
    assert "dw.weight" in forced[1]["names"]
    torch.optim.AdamW(param_groups(model, 0.05), lr=1e-3).step()


def test_warmup_cosine_matches_ancestor_schedule():
    sched = WarmupCosine(warmup_steps=5, total_steps=15, eta_min_ratio=0.01)
    assert sched(0) == 0.0  # the first optimiser step runs at lr 0 (docs/decisions.md D44)
    assert sched(2) == pytest.approx(0.5)
    assert sched(4) == pytest.approx(1.0)  # base reached at W - 1
    assert sched(5) == pytest.approx(1.0)
    assert sched(10) == pytest.approx(0.01 + 0.99 * 0.5)
    assert sched(15) == pytest.approx(0.01)
    values = [sched(s) for s in range(5, 16)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert WarmupCosine(0, 10)(0) == 1.0  # no warm-up: start at base
