"""The LoGo block (paper section 3.2, eq. 1-6; docs/decisions.md D18, D21, D22, D23, D24)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from logo_tal.models.layers import (
    MLP,
    AffineDropPath,
    LayerNormC,
    MaskedGroupNorm,
    PointwiseConv1d,
    masked_max_pool,
)

FcMode = Literal["full", "depthwise"]
LocalPath = Literal["depthwise", "separable"]


class LoGoMixer(nn.Module):
    """Local-global mixer, eq. 4-6: ``DWConv(x) * f_avg + f_max * FC_f(x) + x``.

    ``f_avg = ReLU(FC_a(mean_t x))`` and ``f_max = ReLU(FC_m(max_t x))`` are (B, D, 1) channel
    gates computed over the valid steps only (docs/decisions.md D22: over the padded tensor the
    mean would shrink with the amount of padding). The three FCs are full D x D maps by default
    ("channel attention" is cross-channel, as in SE); ``fc_mode="depthwise"`` gives TriDet
    SGP's per-channel scale-and-bias variant (docs/decisions.md D21).

    Init (docs/decisions.md D24): PyTorch default weights and zero biases, or N(0, ``init_std``)
    weights when given (TriDet ANet used 0.2). TriDet's THUMOS zero init is not offered: products
    of zero weights get zero gradient and the mixer would never train.

    Args:
        dim: D.
        local_kernel: odd kernel of the depthwise temporal conv (docs/decisions.md D21: 3 THUMOS,
            15 ANet).
        fc_mode: "full" (D x D) or "depthwise" (per-channel) for FC_a, FC_m and FC_f.
        init_std: if set, std of the normal init of every mixer weight.
        local_path: "depthwise" (eq. 4's depth-wise conv) or "separable" (the prose's depthwise
            separable conv: the depthwise conv followed by a pointwise D x D conv,
            docs/decisions.md D95).
    """

    def __init__(
        self,
        dim: int,
        local_kernel: int = 3,
        fc_mode: FcMode = "full",
        init_std: float | None = None,
        local_path: LocalPath = "depthwise",
    ) -> None:
        super().__init__()
        if local_path not in ("depthwise", "separable"):
            raise ValueError(f"local_path must be 'depthwise' or 'separable', got {local_path!r}")
        if local_kernel % 2 != 1:
            raise ValueError(f"local_kernel must be odd, got {local_kernel}")
        if fc_mode not in ("full", "depthwise"):
            raise ValueError(f"fc_mode must be 'full' or 'depthwise', got {fc_mode!r}")
        groups = 1 if fc_mode == "full" else dim
        self.local = nn.Conv1d(dim, dim, local_kernel, padding=local_kernel // 2, groups=dim)
        # 1x1 convs on (B, D, 1) pooled vectors and on (B, D, T): one code path for both modes.
        # Only FC_f gets PointwiseConv1d: on the (B, D, 1) gate vectors its dilated conv is
        # not sent to oneDNN but to a slow per-element loop.
        self.fc_avg = nn.Conv1d(dim, dim, 1, groups=groups)
        self.fc_max = nn.Conv1d(dim, dim, 1, groups=groups)
        self.fc_lin = PointwiseConv1d(dim, dim, groups=groups)
        convs = [self.local, self.fc_avg, self.fc_max, self.fc_lin]
        # Built only for the separable path: the depthwise path keeps its parameters and draws.
        self.local_pointwise = None
        if local_path == "separable":
            self.local_pointwise = PointwiseConv1d(dim, dim)
            convs.append(self.local_pointwise)
        for conv in convs:
            if init_std is not None:
                nn.init.normal_(conv.weight, std=init_std)
            nn.init.zeros_(conv.bias)

    def gates(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 5-6. Args: x (B, D, T) zero on padding; mask (B, T) bool with >= 1 valid step.

        Returns:
            f_avg, f_max: (B, D, 1) each.
        """
        m = mask.unsqueeze(1)
        avg = x.sum(dim=-1, keepdim=True) / m.sum(dim=-1, keepdim=True).clamp_min(1).to(x.dtype)
        mx = x.masked_fill(~m, float("-inf")).amax(dim=-1, keepdim=True)
        return torch.relu(self.fc_avg(avg)), torch.relu(self.fc_max(mx))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Eq. 4. Args: x (B, D, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, D, T); padded steps are not zeroed here (the block masks the residual branch).
        """
        f_avg, f_max = self.gates(x, mask)
        local = self.local(x)
        if self.local_pointwise is not None:
            local = self.local_pointwise(local)
        return local * f_avg + f_max * self.fc_lin(x) + x


class LoGoBlock(nn.Module):
    """Pool (stride 2) -> Z + DP(LoGoMixer(LN(Z))) -> + DP(MLP(GN(.))), all masked.

    Eq. 1-3 with the pool moved to the front of the stride-2 blocks, as TriDet's SGP
    pyramid does (docs/decisions.md D18; the encoder's ``pool_first=False`` builds the block at
    stride 1 and pools after it instead, D94): Z_bar = Z + DP(mixer(LN(Z)) * mask),
    Z_hat = Z_bar + DP(MLP(MaskedGN(Z_bar)) * mask).

    Args:
        dim: D.
        stride: 1 or 2; stride 2 max-pools first (masked MaxPool1d(3, 2, 1)).
        mlp_hidden: MLP width H (TriDet: 768 THUMOS, 2048 ANet).
        local_kernel: depthwise kernel of the mixer (3 THUMOS, 15 ANet; docs/decisions.md D21).
        fc_mode: "full" or "depthwise" mixer FCs (docs/decisions.md D21).
        mixer_init_std: optional normal-init std of the mixer weights (docs/decisions.md D24).
        gn_groups: GroupNorm groups (16, TriDet SGP).
        local_path: "depthwise" or "separable" local conv of the mixer (docs/decisions.md D95).
        drop_path: stochastic-depth probability; > 0 adds AffineDropPath (scale init 1e-4) to
            both residual branches, 0 makes them plain (TriDet: 0.1 on stride-2 blocks only).
    """

    def __init__(
        self,
        dim: int,
        stride: int = 1,
        mlp_hidden: int = 768,
        local_kernel: int = 3,
        fc_mode: FcMode = "full",
        mixer_init_std: float | None = None,
        gn_groups: int = 16,
        drop_path: float = 0.0,
        local_path: LocalPath = "depthwise",
    ) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"LoGoBlock supports stride 1 or 2, got {stride}")
        self.stride = stride
        self.norm = LayerNormC(dim)
        self.mixer = LoGoMixer(dim, local_kernel, fc_mode, mixer_init_std, local_path)
        self.gn = MaskedGroupNorm(gn_groups, dim)
        self.mlp = MLP(dim, mlp_hidden)
        nn.init.zeros_(self.mlp.fc1.bias)
        nn.init.zeros_(self.mlp.fc2.bias)
        self.drop_mixer = AffineDropPath(dim, drop_path) if drop_path > 0 else nn.Identity()
        self.drop_mlp = AffineDropPath(dim, drop_path) if drop_path > 0 else nn.Identity()

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Args: x (B, D, T) zero on padding; mask (B, T) bool.

        Returns:
            (B, D, T / stride) zero on padding, and the (B, T / stride) mask.
        """
        if self.stride == 2:
            x, mask = masked_max_pool(x, mask)
        m = mask.unsqueeze(1).to(x.dtype)
        # LN turns padded zeros into its bias; re-mask before the temporal conv and pooling.
        x = x + self.drop_mixer(self.mixer(self.norm(x) * m, mask) * m)
        x = x + self.drop_mlp(self.mlp(self.gn(x, mask)) * m)
        return x, mask
