"""Training-time Gaussian noise on the valid input steps (TriDet's ``input_noise``).

The noise is drawn per video for its valid steps only, never for the padded batch: the values a
video receives, and the random stream after them (drop path draws next), are then the same
whatever length the batch is padded to, so ``data.train_padding=batch`` and ``max_seq_len``
train the same model (docs/decisions.md D122).
"""

from __future__ import annotations

import torch


def add_input_noise(feats: torch.Tensor, masks: torch.Tensor, std: float) -> torch.Tensor:
    """``feats`` plus N(0, std^2) noise on each video's valid steps; padded steps stay zero.

    Args:
        feats: (B, C, T) padded features.
        masks: (B, T) bool, True on the first ``T_i`` steps of video ``i`` (as collated).
        std: standard deviation; 0 returns ``feats`` itself.

    Returns:
        (B, C, T) tensor; row ``i`` uses ``C * T_i`` normal draws, in batch order.
    """
    if std <= 0:
        return feats
    noise = torch.zeros_like(feats)
    channels = feats.shape[1]
    for i, length in enumerate(masks.sum(dim=1).tolist()):
        draw = torch.randn(channels, int(length), dtype=feats.dtype, device=feats.device)
        noise[i, :, : int(length)] = draw * std
    return feats + noise
