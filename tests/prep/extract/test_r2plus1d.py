"""The built-in R(2+1)D-18 (logo_tal.prep.extract.r2plus1d): torchvision's state-dict layout, the
pooled 512-d embedding, determinism, and the Kinetics preprocessing on hand-made frames.

Small clips (8 frames, 32x32) keep each test around a second on a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from logo_tal.prep.extract import backbones
from logo_tal.prep.extract.backbones import BackboneError, build_backbone
from logo_tal.prep.extract.r2plus1d import (
    KINETICS_MEAN,
    KINETICS_STD,
    R2Plus1D18,
    VideoPreset,
    center_crop,
    mid_channels,
    resized_size,
)

# torchvision's r2plus1d_18, frozen: (block, input width, output width, mid width, downsample).
# mid = in*out*27 // (in*9 + 3*out), computed once per block from its own in/out widths.
BLOCKS = [
    ("layer1.0", 64, 64, 144, False),
    ("layer1.1", 64, 64, 144, False),
    ("layer2.0", 64, 128, 230, True),
    ("layer2.1", 128, 128, 288, False),
    ("layer3.0", 128, 256, 460, True),
    ("layer3.1", 256, 256, 576, False),
    ("layer4.0", 256, 512, 921, True),
    ("layer4.1", 512, 512, 1152, False),
]
BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
NUM_PARAMETERS = 31_505_325  # torchvision's documented size of r2plus1d_18


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.{k}": () if k == "num_batches_tracked" else (channels,) for k in BN}


def expected_state() -> dict[str, tuple[int, ...]]:
    shapes = {"stem.0.weight": (45, 3, 1, 7, 7), "stem.3.weight": (64, 45, 3, 1, 1)}
    shapes |= _bn("stem.1", 45) | _bn("stem.4", 64)
    for block, cin, cout, mid, downsample in BLOCKS:
        for conv, width_in in (("conv1", cin), ("conv2", cout)):
            shapes[f"{block}.{conv}.0.0.weight"] = (mid, width_in, 1, 3, 3)
            shapes |= _bn(f"{block}.{conv}.0.1", mid)
            shapes[f"{block}.{conv}.0.3.weight"] = (cout, mid, 3, 1, 1)
            shapes |= _bn(f"{block}.{conv}.1", cout)
        if downsample:
            shapes[f"{block}.downsample.0.weight"] = (cout, cin, 1, 1, 1)
            shapes |= _bn(f"{block}.downsample.1", cout)
    shapes |= {"fc.weight": (400, 512), "fc.bias": (400,)}
    return shapes


@pytest.fixture(scope="module")
def model() -> R2Plus1D18:
    torch.manual_seed(0)
    return R2Plus1D18().eval()


def test_state_dict_keys_and_shapes_are_torchvisions(model):
    state = model.state_dict()
    expected = expected_state()
    assert len(expected) == 224
    assert sorted(state) == sorted(expected)
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert state["layer4.1.conv2.0.1.weight"].shape == (1152,)
    assert sum(p.numel() for p in model.parameters()) == NUM_PARAMETERS
    assert [mid_channels(cin, cout) for _, cin, cout, _, _ in BLOCKS] == [b[3] for b in BLOCKS]


def test_pooled_embedding_shape_and_determinism(model):
    clips = torch.randn(2, 3, 8, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        a = model.features(clips)
        b = model.features(clips)
        alone = model.features(clips[1:])
        logits = model(clips)
    assert a.shape == (2, 512) and logits.shape == (2, 400)
    assert torch.equal(a, b)  # eval mode: no dropout, BN uses its running statistics
    torch.testing.assert_close(alone, a[1:], rtol=1e-4, atol=1e-5)  # clips do not interact
    assert (a >= 0).all() and a.std() > 0  # pooled after a ReLU; random init is not degenerate


def test_backbone_wrapper_drops_the_classifier(monkeypatch):
    monkeypatch.setattr(backbones, "import_torchvision", _missing)
    backbone = build_backbone("r2plus1d_18", "none")  # auto -> built-in without torchvision
    assert backbone.implementation == "builtin" and backbone.weights == "none"
    assert backbone.preprocessing() == {
        "resize_size": [128, 171],
        "crop_size": [112, 112],
        "mean": list(KINETICS_MEAN),
        "std": list(KINETICS_STD),
    }
    frames = torch.full((8, 90, 120, 3), 77, dtype=torch.uint8)
    clip = backbone.preprocess(frames)
    assert clip.shape == (3, 8, 112, 112)
    small = torch.nn.functional.interpolate(clip.unsqueeze(0), size=(8, 56, 56))
    assert backbone(small).shape == (1, 512)


def _missing(name=None):
    raise ImportError("no torchvision here")


def test_constant_frame_preprocesses_to_the_normalised_colour():
    colour = (10, 128, 250)
    frames = torch.tensor(colour, dtype=torch.uint8).expand(3, 40, 50, 3)  # (T, H, W, C)
    out = VideoPreset()(frames.permute(0, 3, 1, 2).unsqueeze(0))  # (1, T, C, H, W)
    assert out.shape == (1, 3, 3, 112, 112) and out.dtype == torch.float32
    for c in range(3):
        want = (np.float32(colour[c]) / np.float32(255) - np.float32(KINETICS_MEAN[c])) / (
            np.float32(KINETICS_STD[c])
        )
        assert torch.all(out[0, c] == torch.tensor(want, dtype=torch.float32)), c


def test_resize_sizes_and_crop_offsets():
    assert resized_size(240, 320, [128, 171]) == (128, 171)
    assert resized_size(48, 40, [36]) == (43, 36)  # short side 36, long int(36 * 48 / 40)
    assert resized_size(40, 50, [32]) == (32, 40)
    # A 128x171 frame is not resized; the 112x112 crop starts at row 8 and column
    # round(29.5) = 30 (half to even, as torchvision).
    frame = torch.arange(128 * 171, dtype=torch.float32).view(1, 128, 171)
    crop = center_crop(frame, [112, 112])
    assert crop[0, 0, 0] == frame[0, 8, 30] and crop.shape == (1, 112, 112)
    ramp = (torch.arange(171) % 256).to(torch.uint8).expand(1, 1, 3, 128, 171)
    out = VideoPreset()(ramp)
    want = (30 / 255 - KINETICS_MEAN[0]) / KINETICS_STD[0]
    assert abs(float(out[0, 0, 0, 0, 0]) - want) < 1e-6
    # Bilinear, no antialiasing, rounded back to uint8: 2x2 -> 4x4 of [[0, 100], [200, 60]]
    # gives 25 at (0, 1): 0.75 * 0 + 0.25 * 100 (align_corners=False).
    tiny = torch.tensor([[0, 100], [200, 60]], dtype=torch.uint8).expand(1, 1, 3, 2, 2)
    out = VideoPreset(resize_size=[4, 4], crop_size=[4, 4], mean=(0, 0, 0), std=(1, 1, 1))(tiny)
    assert round(float(out[0, 0, 0, 0, 1]) * 255, 4) == 25.0
    padded = center_crop(torch.ones(1, 2, 2), [4, 4])  # too small: zero-padded, centred
    assert padded.shape == (1, 4, 4) and padded.sum() == 4 and padded[0, 1:3, 1:3].all()


def test_state_dict_round_trip_strict(model, tmp_path, monkeypatch):
    path = tmp_path / "r2plus1d.pth"
    torch.save(model.state_dict(), path)
    other = R2Plus1D18()
    other.load_state_dict(torch.load(path, weights_only=True), strict=True)
    other.eval()
    clips = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        assert torch.equal(other.features(clips), model.features(clips))
    backbone = build_backbone("r2plus1d_18", str(path), implementation="builtin")
    assert backbone.weights == str(path)
    with torch.inference_mode():
        assert torch.equal(backbone(clips), model.features(clips))
    bad = tmp_path / "bad.pth"
    torch.save({"fc.weight": torch.zeros(400, 512)}, bad)
    with pytest.raises(BackboneError, match="bad.pth: not a state dict of the built-in"):
        build_backbone("r2plus1d_18", str(bad), implementation="builtin")


def test_kinetics_weights_offline_is_one_line(monkeypatch):
    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(BackboneError) as err:
        build_backbone("r2plus1d_18", "kinetics400", implementation="builtin")
    message = str(err.value)
    assert "\n" not in message and "network is unreachable" in message
    assert "checkpoints" in message and "--weights none/FILE" in message
