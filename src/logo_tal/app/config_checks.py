"""Start-up checks of a run config, with messages that say which key to change.

A mistake here otherwise surfaces hours later as a shape error deep in the pyramid, a silently
empty pyramid level, or a crash when the first feature file is read.
"""

from __future__ import annotations

from omegaconf import DictConfig

from logo_tal.core.errors import UserInputError
from logo_tal.core.pyramid import PyramidSpec
from logo_tal.data.video_scores import check_score_file
from logo_tal.evaluation.protocol import threshold_problem
from logo_tal.utils.config_access import select


class ConfigError(UserInputError):
    """The config cannot work; the message names the keys involved."""


def validate_config(cfg: DictConfig) -> list[str]:
    """Check the composed config before anything is built.

    Checks: ``data.max_seq_len`` a multiple of the pyramid's divisor; every pyramid level's
    regression range reachable inside a ``max_seq_len`` window; tIoU thresholds in (0, 1]; the
    video-level score file when ``protocol.fusion`` is set; epochs vs warm-up.

    Args:
        cfg: the full run config (``data``, ``model``, ``module``, ``trainer`` nodes).

    Returns:
        Warnings (the run can go on).

    Raises:
        ConfigError: with every problem found, one per line.
    """
    errors: list[str] = []
    warnings: list[str] = []
    levels = select(cfg, "model.num_levels")
    max_len = select(cfg, "data.max_seq_len")
    if levels is not None:
        try:
            spec = PyramidSpec(int(levels))
        except ValueError as err:
            errors.append(f"model.num_levels: {err}")
            spec = None
        if spec is not None and max_len is not None:
            errors.extend(_pyramid_problems(spec, int(max_len)))
    thresholds = select(cfg, "protocol.tiou_thresholds")
    problem = threshold_problem(list(thresholds)) if thresholds is not None else None
    if problem:
        errors.append(problem)
    fusion = select(cfg, "protocol.fusion")
    if fusion:
        try:
            check_score_file(fusion.get("scores_file"))
        except FileNotFoundError as err:
            errors.append(str(err))
    warmup = select(cfg, "module.warmup_epochs")
    epochs = select(cfg, "trainer.max_epochs")
    if warmup is not None and epochs is not None and 0 < int(epochs) <= float(warmup):
        warnings.append(
            f"trainer.max_epochs={epochs} <= module.warmup_epochs={warmup}: the learning rate "
            "never leaves the warm-up ramp"
        )
    if errors:
        raise ConfigError("invalid config:\n  - " + "\n  - ".join(errors))
    return warnings


def _pyramid_problems(spec: PyramidSpec, max_len: int) -> list[str]:
    """A training window that the pyramid cannot pad to, or a level it can never assign."""
    problems = []
    try:
        spec.check_length(max_len, "data.max_seq_len")
    except ValueError as err:
        problems.append(str(err))
    for level, (lo, _hi) in enumerate(spec.regression_ranges):
        if lo >= max_len:
            problems.append(
                f"pyramid level {level} (model.num_levels={spec.num_levels}) regresses distances "
                f">= {lo:g} grid steps, but training windows are data.max_seq_len={max_len} "
                "steps: it can never be assigned an action; lower model.num_levels or raise "
                "data.max_seq_len"
            )
            break
    return problems
