"""add_input_noise: N(0, std^2) on valid steps only, drawn per video, so the padded length
changes neither the noise nor the random stream after it."""

from __future__ import annotations

import torch

from logo_tal.models.input_noise import add_input_noise


def _padded(feats: list[torch.Tensor], length: int) -> tuple[torch.Tensor, torch.Tensor]:
    out = torch.zeros(len(feats), feats[0].shape[0], length)
    masks = torch.zeros(len(feats), length, dtype=torch.bool)
    for i, f in enumerate(feats):
        out[i, :, : f.shape[1]] = f
        masks[i, : f.shape[1]] = True
    return out, masks


def test_the_noise_does_not_depend_on_the_padded_length():
    videos = [torch.rand(6, 37), torch.rand(6, 50)]
    results, after = [], []
    for length in (56, 64, 512):
        feats, masks = _padded(videos, length)
        torch.manual_seed(0)
        results.append(add_input_noise(feats, masks, 0.5))
        after.append(torch.rand(3))  # what drop path would draw next
    for noisy in results[1:]:
        assert torch.equal(noisy[:, :, :56], results[0])
        assert not noisy[:, :, 56:].any()
    assert all(torch.equal(a, after[0]) for a in after)
    noisy = results[0]
    assert not noisy[0, :, 37:].any()  # padded steps stay zero
    delta = noisy[1, :, :50] - videos[1]
    assert 0.35 < float(delta.std()) < 0.65 and (delta != 0).all()


def test_zero_std_returns_the_features_and_draws_nothing():
    feats, masks = _padded([torch.rand(4, 9)], 16)
    torch.manual_seed(0)
    assert add_input_noise(feats, masks, 0.0) is feats
    drawn = torch.rand(1)
    torch.manual_seed(0)
    assert torch.equal(torch.rand(1), drawn)
