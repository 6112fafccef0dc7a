"""R(2+1)D-18 and its Kinetics-400 preprocessing in plain PyTorch (no torchvision needed).

The network of Tran et al. 2018, "A Closer Look at Spatiotemporal Convolutions for Action
Recognition" (https://arxiv.org/abs/1711.11248): a ResNet-18 whose 3x3x3 convolutions are
factorised into a 1x3x3 spatial convolution, batch norm, ReLU and a 3x1x1 temporal convolution,
with the intermediate width chosen so that the factorised pair has about as many parameters as
the full 3D kernel. Module and parameter names follow torchvision's ``r2plus1d_18``
(https://github.com/pytorch/vision/blob/main/torchvision/models/video/resnet.py), so the
Kinetics-400 weights torchvision publishes load with ``load_state_dict(strict=True)``; the code
here is written from the architecture, not taken from there (docs/decisions.md, issue 12).

Why it exists: torchvision's wheels must match the installed torch build exactly, and next to a
CPU-only torch the registry's wheel fails at import (``operator torchvision::nms does not
exist``). ``logo-tal-extract --backbone r2plus1d_18`` then runs on this module instead
(:mod:`logo_tal.prep.extract.backbones`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

# torchvision's R2Plus1D_18_Weights.KINETICS400_V1 file (the hash prefix in the name is checked
# by torch.hub); the same URL torchvision downloads, so both share the hub cache.
KINETICS400_URL = "https://download.pytorch.org/models/r2plus1d_18-91a641e6.pth"
# torchvision's video classification preset for this model (transforms/_presets.py,
# VideoClassification; R2Plus1D_18_Weights.KINETICS400_V1.transforms).
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
KINETICS_RESIZE = (128, 171)
KINETICS_CROP = (112, 112)
FEATURE_DIM = 512
NUM_CLASSES = 400
STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
BLOCKS_PER_STAGE = 2


def mid_channels(in_channels: int, out_channels: int) -> int:
    """Width between the spatial and the temporal convolution of a block.

    Chosen (paper, section 3.5) so that ``in*mid*3*3 + mid*out*3`` is about the
    ``in*out*3*3*3`` parameters of a full 3x3x3 kernel. A block computes it once from its own
    input and output widths and uses it for both of its factorised convolutions.
    """
    return (in_channels * out_channels * 27) // (in_channels * 9 + 3 * out_channels)


class SpatioTemporalConv(nn.Sequential):
    """A factorised 3x3x3 convolution: 1x3x3 spatial, BN, ReLU, then 3x1x1 temporal.

    The stride applies spatially in the first convolution and temporally in the second.
    Children ``0``, ``1``, ``2``, ``3`` keep the state-dict names of torchvision's layout.
    """

    def __init__(self, in_channels: int, out_channels: int, mid: int, stride: int = 1):
        super().__init__(
            nn.Conv3d(
                in_channels,
                mid,
                kernel_size=(1, 3, 3),
                stride=(1, stride, stride),
                padding=(0, 1, 1),
                bias=False,
            ),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(
                mid,
                out_channels,
                kernel_size=(3, 1, 1),
                stride=(stride, 1, 1),
                padding=(1, 0, 0),
                bias=False,
            ),
        )


class ResidualBlock(nn.Module):
    """Two factorised convolutions with a shortcut (ResNet's basic block).

    Attributes:
        conv1: factorised conv (with the block's stride), BN, ReLU.
        conv2: factorised conv, BN.
        downsample: 1x1x1 conv + BN on the shortcut when the shape changes, else None.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        mid = mid_channels(in_channels, out_channels)
        self.conv1 = nn.Sequential(
            SpatioTemporalConv(in_channels, out_channels, mid, stride),
            nn.BatchNorm3d(out_channels),
            nn.ReLU(inplace=True),
        )
        self.conv2 = nn.Sequential(
            SpatioTemporalConv(out_channels, out_channels, mid),
            nn.BatchNorm3d(out_channels),
        )
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv3d(in_channels, out_channels, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm3d(out_channels),
            )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + shortcut)


class R2Plus1D18(nn.Module):
    """R(2+1)D-18: clips ``(N, 3, T, H, W)`` -> Kinetics-400 logits ``(N, 400)``.

    ``features`` gives the 512-d globally pooled embedding that feeds ``fc``; replacing ``fc``
    by the identity (as :mod:`~logo_tal.prep.extract.backbones` does) makes ``forward`` return it.
    Any ``T >= 1`` and ``H, W >= 1`` work (the convolutions pad; the pooling is adaptive).
    """

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv3d(3, 45, (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(45),
            nn.ReLU(inplace=True),
            nn.Conv3d(45, 64, (3, 1, 1), stride=1, padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        )
        width = 64
        for i, (out, stride) in enumerate(zip(STAGE_WIDTHS, STAGE_STRIDES, strict=True)):
            blocks = [ResidualBlock(width, out, stride)]
            blocks += [ResidualBlock(out, out) for _ in range(BLOCKS_PER_STAGE - 1)]
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
            width = out
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(FEATURE_DIM, num_classes)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation of the convolutions (fan-out, as ResNets do), BN at identity,
        a small Gaussian classifier: random features with a usable scale (``--weights none``)."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.01)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled embedding ``(N, 512)``."""
        x = self.stem(x)
        for i in range(len(STAGE_WIDTHS)):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def load_kinetics400(model: R2Plus1D18, progress: bool = False) -> R2Plus1D18:
    """Load torchvision's Kinetics-400 weights (downloaded once into the torch hub cache)."""
    state = torch.hub.load_state_dict_from_url(
        KINETICS400_URL, map_location="cpu", progress=progress, check_hash=True
    )
    model.load_state_dict(state, strict=True)
    return model


def resized_size(height: int, width: int, size: Sequence[int]) -> tuple[int, int]:
    """Output ``(h, w)`` of a resize to ``size``: ``[h, w]``, or ``[n]`` for the short side.

    One number scales the short side to ``n`` and the long side to ``int(n * long / short)``
    (truncated), the rule of torchvision's ``transforms.functional.resize``.
    """
    if len(size) == 2:
        return int(size[0]), int(size[1])
    if len(size) != 1:
        raise ValueError(f"resize size must be [n] or [h, w], got {list(size)}")
    short, long = min(height, width), max(height, width)
    new_short, new_long = int(size[0]), int(int(size[0]) * long / short)
    return (new_short, new_long) if height <= width else (new_long, new_short)


def center_crop(frames: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Centre crop ``(..., H, W)`` to ``size`` ``(h, w)``; zero-pads a side that is too small.

    The offset is ``round((H - h) / 2)`` with Python's rounding (half to even), as torchvision's
    ``center_crop`` computes it, so both pick the same pixels.
    """
    crop_h, crop_w = int(size[0]), int(size[-1])
    height, width = frames.shape[-2:]
    if crop_h > height or crop_w > width:
        pad_w, pad_h = max(crop_w - width, 0), max(crop_h - height, 0)
        frames = F.pad(frames, (pad_w // 2, (pad_w + 1) // 2, pad_h // 2, (pad_h + 1) // 2))
        height, width = frames.shape[-2:]
    top = int(round((height - crop_h) / 2.0))
    left = int(round((width - crop_w) / 2.0))
    return frames[..., top : top + crop_h, left : left + crop_w]


class VideoPreset:
    """Kinetics preprocessing of a video batch, torchvision's ``VideoClassification`` preset.

    ``(N, T, C, H, W)`` uint8 -> ``(N, C, T, h, w)`` float32, per frame: bilinear resize with
    ``align_corners=False`` and no antialiasing (the preset passes ``antialias=False``), the
    resized uint8 frame rounded back to uint8 (torchvision resizes integer images in float and
    rounds), centre crop, ``/ 255``, then ``(x - mean) / std`` per channel.

    Attributes:
        resize_size: ``[h, w]`` or ``[short side]``.
        crop_size: ``[h, w]``.
        mean, std: per-channel normalisation.
    """

    def __init__(
        self,
        resize_size: Sequence[int] = KINETICS_RESIZE,
        crop_size: Sequence[int] = KINETICS_CROP,
        mean: Sequence[float] = KINETICS_MEAN,
        std: Sequence[float] = KINETICS_STD,
    ):
        self.resize_size = [int(x) for x in resize_size]
        self.crop_size = [int(x) for x in crop_size]
        if len(self.crop_size) == 1:
            self.crop_size = self.crop_size * 2
        self.mean = [float(x) for x in mean]
        self.std = [float(x) for x in std]

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        n, t, c, h, w = video.shape
        frames = video.reshape(n * t, c, h, w)
        size = resized_size(h, w, self.resize_size)
        integer = not frames.is_floating_point()
        x = F.interpolate(
            frames.float(), size=size, mode="bilinear", align_corners=False, antialias=False
        )
        if integer:
            x = x.round().to(frames.dtype)
        x = center_crop(x, self.crop_size)
        x = x.float() / 255.0 if integer else x.float()
        mean = torch.tensor(self.mean, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=x.dtype, device=x.device).view(-1, 1, 1)
        x = (x - mean) / std
        crop_h, crop_w = self.crop_size
        return x.view(n, t, c, crop_h, crop_w).permute(0, 2, 1, 3, 4)
