"""Start-up checks of a run config, with messages that say which key to change (users.md row 6).

A mistake here otherwise surfaces hours later as a shape error deep in the pyramid, a silently
empty pyramid level, or a crash when the first feature file is read.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from logo_tal.models.pyramid import PyramidSpec
from logo_tal.utils.fusion import check_score_file


class ConfigError(ValueError):
    """The config cannot work; the message names the keys involved."""


def _get(cfg: DictConfig, key: str, default: Any = None) -> Any:
    return OmegaConf.select(cfg, key, default=default, throw_on_missing=False)


def validate_config(cfg: DictConfig) -> list[str]:
    """Check the composed config before anything is built.

    Checks: ``data.max_seq_len`` divisible by ``2**(model.num_levels - 1)``; every pyramid level's
    regression range reachable inside a ``max_seq_len`` window; the data and model agreeing on
    ``num_levels`` / ``input_dim`` / ``num_classes``; tIoU thresholds in (0, 1]; the external
    score file when ``module.fusion=external``; epochs vs warm-up.

    Args:
        cfg: the full run config (``data``, ``model``, ``module``, ``trainer`` nodes).

    Returns:
        Warnings (the run can go on).

    Raises:
        ConfigError: with every problem found, one per line.
    """
    errors: list[str] = []
    warnings: list[str] = []
    levels = _get(cfg, "model.num_levels")
    max_len = _get(cfg, "data.max_seq_len")
    if levels is not None:
        try:
            spec = PyramidSpec(int(levels))
        except ValueError as err:
            errors.append(f"model.num_levels: {err}")
            spec = None
        if spec is not None and max_len is not None:
            max_len = int(max_len)
            if max_len % spec.divisor:
                lower = max_len // spec.divisor * spec.divisor
                errors.append(
                    f"data.max_seq_len={max_len} is not divisible by 2**(model.num_levels-1)="
                    f"{spec.divisor} (model.num_levels={levels}); use a multiple such as "
                    f"{lower or spec.divisor} or {lower + spec.divisor}"
                )
            for level, (lo, _hi) in enumerate(spec.regression_ranges):
                if lo >= max_len:
                    errors.append(
                        f"pyramid level {level} (model.num_levels={levels}) regresses distances "
                        f">= {lo:g} grid steps, but training windows are data.max_seq_len="
                        f"{max_len} steps: it can never be assigned an action; lower "
                        "model.num_levels or raise data.max_seq_len"
                    )
                    break
        data_levels = _get(cfg, "data.num_levels")
        if data_levels is not None and int(data_levels) != int(levels):
            errors.append(
                f"data.num_levels={data_levels} but model.num_levels={levels}: the padding "
                "divisor must match the detector (interpolate ${model.num_levels})"
            )
    for key in ("input_dim", "num_classes"):
        data_value, model_value = _get(cfg, f"data.{key}"), _get(cfg, f"model.{key}")
        if None not in (data_value, model_value) and int(data_value) != int(model_value):
            errors.append(f"data.{key}={data_value} but model.{key}={model_value}")
    for t in _get(cfg, "module.tiou_thresholds", []) or []:
        if not 0.0 < float(t) <= 1.0:
            errors.append(f"module.tiou_thresholds contains {t}, outside (0, 1]")
    if _get(cfg, "module.fusion") == "external":
        try:
            check_score_file(_get(cfg, "module.fusion_file"))
        except FileNotFoundError as err:
            errors.append(str(err))
    warmup = _get(cfg, "module.warmup_epochs")
    epochs = _get(cfg, "trainer.max_epochs")
    if warmup is not None and epochs is not None and 0 < int(epochs) <= float(warmup):
        warnings.append(
            f"trainer.max_epochs={epochs} <= module.warmup_epochs={warmup}: the learning rate "
            "never leaves the warm-up ramp"
        )
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))
    return warnings


def validate_features(datamodule: Any, input_dim: int, split: str = "train") -> None:
    """Read one feature file of ``split`` and compare its width to ``input_dim``.

    Args:
        datamodule: a ``TALDataModule`` (its ``store`` and ``videos(split)`` are used).
        input_dim: the model's ``input_dim``.
        split: which split's first video to read.

    Raises:
        ConfigError: the features are not ``(T, input_dim)``.
    """
    videos = datamodule.videos(split)
    if not videos:
        return
    video = videos[0]
    feats = datamodule.store.load(video)
    if feats.ndim != 2 or feats.shape[1] != int(input_dim):
        raise ConfigError(
            f"features of video {video!r} have shape {tuple(feats.shape)} but the model expects "
            f"(T, {input_dim}) (data.input_dim / model.input_dim); check data.features and "
            "data.input_dim"
        )
