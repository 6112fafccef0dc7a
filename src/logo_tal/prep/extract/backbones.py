"""Video backbones as clip embedders, with their own preprocessing.

Each backbone returns its pooled pre-classifier embedding: the classification layer is replaced
by the identity, everything before it (including the global pooling) is kept.

Two implementations (``--implementation``, recorded in ``extraction.json``):

* ``torchvision``: ``torchvision.models.video.<name>`` and torchvision's preset. Every backbone.
* ``builtin``: :mod:`logo_tal.prep.extract.r2plus1d`, R(2+1)D-18 written in plain PyTorch with
  torchvision's parameter names (so the same Kinetics-400 file loads) and the same
  preprocessing. Only ``r2plus1d_18``; needs nothing but torch.
* ``auto`` (default): torchvision when it imports, else the built-in network for
  ``r2plus1d_18`` (other backbones then stop with a one-line error). Reproducing a record
  (predict, resuming) uses the record's implementation.

The backbone name stays ``r2plus1d_18`` for both: same network, same weights, same input; the
record's ``implementation`` field tells them apart and is one of the settings two feature
directories must share (docs/decisions.md, issue 12).

| name          | dim  | Kinetics-400 preprocessing (resize -> centre crop)  | clip length   |
| ------------- | ---- | --------------------------------------------------- | ------------- |
| r2plus1d_18   | 512  | 128x171 -> 112x112                                   | any           |
| s3d           | 1024 | 256x256 -> 224x224                                   | >= 14 frames  |
| mvit_v2_s     | 768  | short side 256 -> 224x224                            | 16 exactly    |
| swin3d_t      | 768  | short side 256 -> 224x224                            | any           |

``--weights none`` builds the same network with random weights (tests, speed checks); the
preprocessing is still the Kinetics one. torchvision is imported on first use.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

KINETICS = "KINETICS400_V1"
NO_WEIGHTS = "none"
KINETICS_ALIASES = ("default", "kinetics400", KINETICS.lower())
AUTO, TORCHVISION, BUILTIN = "auto", "torchvision", "builtin"
IMPLEMENTATIONS = (AUTO, TORCHVISION, BUILTIN)
# Backbones that logo_tal.prep.extract.r2plus1d implements without torchvision.
BUILTIN_BACKBONES = ("r2plus1d_18",)


class BackboneError(ValueError):
    """A backbone that cannot be built as asked (unknown name, weights, clip size)."""


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one torchvision video model and where its classifier sits.

    Attributes:
        name: the torchvision builder (``torchvision.models.video.<name>``).
        weights_enum: the builder's weights enum.
        feature_dim: size of the pooled pre-classifier embedding.
        head: attribute holding the classifier, replaced by the identity.
        fixed_frames: clip length the model requires (MViT's position embedding), or None.
        min_frames: shortest clip the model accepts.
        min_crop: smallest crop side (S3D pools a fixed 7x7 map at the end).
    """

    name: str
    weights_enum: str
    feature_dim: int
    head: str
    fixed_frames: int | None = None
    min_frames: int = 1
    min_crop: int = 1


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("r2plus1d_18", "R2Plus1D_18_Weights", 512, "fc"),
        BackboneSpec("s3d", "S3D_Weights", 1024, "classifier", min_frames=14, min_crop=224),
        BackboneSpec("mvit_v2_s", "MViT_V2_S_Weights", 768, "head", fixed_frames=16, min_crop=224),
        BackboneSpec("swin3d_t", "Swin3D_T_Weights", 768, "head"),
    )
}


def import_torchvision(name: str | None = None):
    """``torchvision``, or an ImportError that says what to install."""
    try:
        import torchvision
    except ImportError:
        what = f"the {name} backbone" if name else "this backbone"
        raise ImportError(
            f"torchvision is needed for {what} (only {', '.join(BUILTIN_BACKBONES)} runs "
            "without it): pip install torchvision (the build matching your torch)"
        ) from None
    except Exception as exc:  # e.g. a CUDA torchvision wheel on a CPU torch: ops fail to load
        raise ImportError(
            f"torchvision is installed but cannot be imported with torch {torch.__version__} "
            f"({type(exc).__name__}: {exc}); install the torchvision build made for this torch"
        ) from None
    return torchvision


def _spec(name: str) -> BackboneSpec:
    if name not in BACKBONES:
        raise BackboneError(f"unknown backbone {name!r}: choose one of {', '.join(BACKBONES)}")
    return BACKBONES[name]


def check_clip_settings(name: str, num_frames: int, crop_size: Sequence[int] | None) -> None:
    """Raise :class:`BackboneError` when a backbone cannot take clips of this size."""
    spec = _spec(name)
    if spec.fixed_frames is not None and num_frames != spec.fixed_frames:
        raise BackboneError(
            f"{name} takes clips of exactly {spec.fixed_frames} frames, not --num-frames "
            f"{num_frames}"
        )
    if num_frames < spec.min_frames:
        raise BackboneError(
            f"{name} needs clips of at least {spec.min_frames} frames, not --num-frames "
            f"{num_frames}"
        )
    if crop_size is not None and min(crop_size) < spec.min_crop:
        raise BackboneError(
            f"{name} needs a crop of at least {spec.min_crop} pixels, not {list(crop_size)}"
        )


def resolve_implementation(name: str, implementation: str = AUTO) -> str:
    """``torchvision`` or ``builtin``: which code builds backbone ``name``.

    Raises:
        BackboneError: unknown implementation, or ``builtin`` for a backbone it lacks.
        ImportError: torchvision is asked for (or is the only option) and does not import.
    """
    _spec(name)
    if implementation not in IMPLEMENTATIONS:
        raise BackboneError(
            f"unknown implementation {implementation!r}: choose one of "
            f"{', '.join(IMPLEMENTATIONS)}"
        )
    if implementation == BUILTIN:
        if name not in BUILTIN_BACKBONES:
            raise BackboneError(
                f"{name} has no built-in implementation (only {', '.join(BUILTIN_BACKBONES)}): "
                "use --implementation torchvision"
            )
        return BUILTIN
    if implementation == AUTO and name in BUILTIN_BACKBONES:
        try:
            import_torchvision(name)
        except ImportError:
            return BUILTIN
        return TORCHVISION
    import_torchvision(name)
    return TORCHVISION


class Backbone(nn.Module):
    """A video model without its classifier, plus its frame preprocessing.

    Attributes:
        spec: what was built.
        weights: ``KINETICS400_V1``, ``none`` or the weights file.
        transform: the ``VideoClassification`` preset (torchvision's, or
            :class:`~logo_tal.prep.extract.r2plus1d.VideoPreset`): resize, crop, normalise.
        implementation: ``torchvision`` or ``builtin``.
        feature_dim: embedding size.
    """

    def __init__(
        self,
        spec: BackboneSpec,
        model: nn.Module,
        transform,
        weights: str,
        implementation: str = TORCHVISION,
    ):
        super().__init__()
        self.spec = spec
        self.model = model
        self.transform = transform
        self.weights = weights
        self.implementation = implementation
        self.feature_dim = spec.feature_dim

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """uint8 frames ``(N, H, W, 3)`` -> model input frames ``(C, N, h, w)`` float32.

        The preset treats each frame alike (resize, centre crop, normalise), so frames can be
        preprocessed once and shared by the clips that contain them.
        """
        video = frames.to(self.device).permute(0, 3, 1, 2).unsqueeze(0)  # (1, N, C, H, W)
        return self.transform(video).squeeze(0)

    @torch.inference_mode()
    def forward(self, clips: torch.Tensor) -> torch.Tensor:
        """Clips ``(B, C, T, h, w)`` -> embeddings ``(B, feature_dim)`` float32."""
        out = self.model(clips.to(self.device))
        if out.ndim != 2 or out.shape[1] != self.feature_dim:
            raise BackboneError(
                f"{self.spec.name}: expected embeddings (B, {self.feature_dim}), got "
                f"{tuple(out.shape)}"
            )
        return out.float()

    def preprocessing(self) -> dict[str, list]:
        """The preset's numbers, for the extraction record."""
        t = self.transform
        return {
            "resize_size": [int(x) for x in t.resize_size],
            "crop_size": [int(x) for x in t.crop_size],
            "mean": [float(x) for x in t.mean],
            "std": [float(x) for x in t.std],
        }


def _sizes(value: int | Sequence[int] | None) -> list[int] | None:
    if value is None:
        return None
    if isinstance(value, int):
        return [value]
    return [int(v) for v in value]


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _download_failed(name: str, exc: BaseException) -> BackboneError:
    hub = torch.hub.get_dir()
    return BackboneError(
        f"cannot load the Kinetics-400 weights of {name} ({_one_line(exc)}); they are "
        f"downloaded once into {hub}/checkpoints; offline, copy the file there or use "
        "--weights none/FILE"
    )


def _load_weights_file(model: nn.Module, path: str, name: str, implementation: str) -> None:
    """Load a state dict of the 400-class model (optionally under ``state_dict``)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        model.load_state_dict(state)
    except Exception as exc:
        owner = "torchvision's" if implementation == TORCHVISION else "the built-in"
        raise BackboneError(
            f"{path}: not a state dict of {owner} {name} ({_one_line(exc)})"
        ) from None


def _weights_kind(weights: str) -> str:
    """``none``, ``kinetics`` or ``file``; BackboneError for anything else."""
    key = str(weights)
    if key.lower() == NO_WEIGHTS:
        return "none"
    if key.lower() in KINETICS_ALIASES:
        return "kinetics"
    if os.path.isfile(key):
        return "file"
    raise BackboneError(f"--weights {key!r}: use kinetics400, none, or the path of a weights file")


def _torchvision_parts(spec: BackboneSpec, weights: str, resize, crop):
    """(model, transform, weights label) built by torchvision."""
    from torchvision.models import video as video_models
    from torchvision.transforms._presets import VideoClassification

    enum = getattr(video_models, spec.weights_enum)
    preset = enum.DEFAULT.transforms()
    transform = VideoClassification(
        crop_size=crop or list(preset.crop_size),
        resize_size=resize or list(preset.resize_size),
        mean=preset.mean,
        std=preset.std,
    )
    builder = getattr(video_models, spec.name)
    kind = _weights_kind(weights)
    if kind == "kinetics":
        try:
            return builder(weights=enum.DEFAULT), transform, enum.DEFAULT.name
        except Exception as exc:  # no network, corrupt cache, ...
            raise _download_failed(spec.name, exc) from None
    model = builder(weights=None)
    if kind == "file":
        _load_weights_file(model, str(weights), spec.name, TORCHVISION)
    return model, transform, NO_WEIGHTS if kind == "none" else str(weights)


def _builtin_parts(spec: BackboneSpec, weights: str, resize, crop):
    """(model, transform, weights label) of :mod:`logo_tal.prep.extract.r2plus1d`."""
    from logo_tal.prep.extract import r2plus1d

    transform = r2plus1d.VideoPreset(
        resize or r2plus1d.KINETICS_RESIZE, crop or r2plus1d.KINETICS_CROP
    )
    model = r2plus1d.R2Plus1D18()
    kind = _weights_kind(weights)
    if kind == "kinetics":
        try:
            r2plus1d.load_kinetics400(model)
        except Exception as exc:  # no network, corrupt cache, ...
            raise _download_failed(spec.name, exc) from None
        return model, transform, KINETICS
    if kind == "file":
        _load_weights_file(model, str(weights), spec.name, BUILTIN)
    return model, transform, NO_WEIGHTS if kind == "none" else str(weights)


def build_backbone(
    name: str = "r2plus1d_18",
    weights: str = KINETICS,
    device: str | torch.device = "cpu",
    resize_size: int | Sequence[int] | None = None,
    crop_size: int | Sequence[int] | None = None,
    implementation: str = AUTO,
) -> Backbone:
    """Build a backbone in eval mode on ``device``.

    Args:
        name: one of :data:`BACKBONES`.
        weights: ``KINETICS400_V1`` (alias ``kinetics400``, ``default``: torchvision's weights,
            downloaded once into the torch hub cache), ``none`` (random init), or a file
            holding a state dict of the 400-class model.
        device: ``cpu`` or ``cuda[:i]``.
        resize_size, crop_size: override the preset's sizes (a smaller input for quick runs;
            one number resizes the short side). Features then differ from the default ones.
        implementation: ``auto``, ``torchvision`` or ``builtin`` (module docstring).

    Raises:
        BackboneError: unknown name, implementation or weights, weights that cannot be
            loaded, or sizes the model cannot take.
        ImportError: torchvision needed but missing or not matching torch.
    """
    spec = _spec(name)
    resize = _sizes(resize_size)
    crop = _sizes(crop_size)
    if crop is not None and len(crop) == 1:
        crop = crop * 2
    check_clip_settings(name, spec.fixed_frames or spec.min_frames, crop)
    _weights_kind(weights)  # a bad --weights is named before torchvision is looked for
    impl = resolve_implementation(name, implementation)
    parts = _builtin_parts if impl == BUILTIN else _torchvision_parts
    model, transform, label = parts(spec, weights, resize, crop)
    check_clip_settings(name, spec.fixed_frames or spec.min_frames, list(transform.crop_size))
    setattr(model, spec.head, nn.Identity())
    model.eval().to(device)
    return Backbone(spec, model, transform, label, impl)
