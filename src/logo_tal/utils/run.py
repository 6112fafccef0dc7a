"""Run bookkeeping: environment record, rank-zero logging, a wrapper that closes loggers."""

from __future__ import annotations

import functools
import json
import logging
import platform
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from logo_tal.utils.hparams import hparams_for

# Libraries whose versions change numbers (results move between environments: docs/decisions.md
# D78).
TRACKED_PACKAGES = (
    "logo-tal",
    "torch",
    "lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "numpy",
    "h5py",
    "wandb",
)


def get_logger(name: str = __name__) -> logging.Logger:
    """A logger whose info/warning/error calls only emit on global rank zero.

    Args:
        name: logger name.

    Returns:
        The wrapped logger (its level methods are no-ops on other ranks).
    """
    logger = logging.getLogger(name)
    for level in ("debug", "info", "warning", "error", "exception", "critical"):
        setattr(logger, level, rank_zero_only(getattr(logger, level)))
    return logger


log = get_logger(__name__)


def git_revision(cwd: str | Path | None = None) -> dict[str, Any]:
    """Commit hash and dirty flag of the source tree, or ``None`` values outside a git checkout.

    Args:
        cwd: directory inside the checkout; defaults to this package's directory.

    Returns:
        ``{"commit": str | None, "dirty": bool | None}``.
    """
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parent

    def _git(*args: str) -> str | None:
        try:
            out = subprocess.run(
                ["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=True
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip()

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def library_versions() -> dict[str, str | None]:
    """Versions of the packages in :data:`TRACKED_PACKAGES` plus Python, CUDA and cuDNN."""
    import torch

    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    versions["cuda"] = torch.version.cuda
    versions["cudnn"] = (
        str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    )
    return versions


def run_info(cfg: DictConfig | None = None, seed: int | None = None) -> dict[str, Any]:
    """Everything needed to tell two runs apart besides their config.

    Args:
        cfg: the run config (only ``seed`` and ``task_name`` are read).
        seed: the seed actually used (overrides ``cfg.seed``).

    Returns:
        A JSON-serialisable dict: seed, git revision, library versions, host and command line.
    """
    import torch

    if seed is None and cfg is not None:
        seed = cfg.get("seed")
    devices = (
        [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if torch.cuda.is_available()
        else []
    )
    return {
        "task_name": None if cfg is None else cfg.get("task_name"),
        "seed": seed,
        "git": git_revision(),
        "versions": library_versions(),
        "platform": platform.platform(),
        "host": platform.node(),
        "gpus": devices,
        "argv": list(sys.argv),
    }


def config_to_dict(cfg: DictConfig) -> dict[str, Any]:
    """Resolved plain-dict copy of a run config, without Hydra's own ``hydra`` node."""
    raw = OmegaConf.to_container(cfg, resolve=False)
    assert isinstance(raw, dict)
    # Hydra's node (present with return_hydra_config) needs the Hydra runtime to resolve.
    raw.pop("hydra", None)
    container = OmegaConf.to_container(OmegaConf.create(raw), resolve=True, throw_on_missing=False)
    assert isinstance(container, dict)
    return container


@rank_zero_only
def write_run_record(cfg: DictConfig, output_dir: str | Path, info: dict[str, Any]) -> None:
    """Write ``config.yaml`` (resolved) and ``run_info.json`` into the run directory.

    Args:
        cfg: the run config.
        output_dir: the run directory.
        info: the result of :func:`run_info`.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(config_to_dict(cfg))))
    (out / "run_info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")


def log_run_to_loggers(trainer, cfg: DictConfig, info: dict[str, Any], module=None) -> None:
    """Send the config, run info and parameter counts to every attached Lightning logger.

    Args:
        trainer: the ``lightning.Trainer``.
        cfg: the run config.
        info: the result of :func:`run_info`.
        module: the LightningModule, for parameter counts.
    """
    if not trainer.loggers:
        return
    hparams: dict[str, Any] = {"cfg": config_to_dict(cfg), "run": info}
    if module is not None:
        hparams["params/total"] = sum(p.numel() for p in module.parameters())
        hparams["params/trainable"] = sum(
            p.numel() for p in module.parameters() if p.requires_grad
        )
    for logger in trainer.loggers:
        # W&B gets flat dotted keys, one config column each (docs/decisions.md D114).
        logger.log_hyperparams(hparams_for(logger, hparams))


def close_loggers() -> None:
    """Finish an open W&B run so that the next multirun job starts a fresh one."""
    if "wandb" in sys.modules:
        import wandb

        if wandb.run is not None:
            wandb.finish()


def task_wrapper(
    task: Callable[[DictConfig], Any] | None = None,
    *,
    expected: Callable[[BaseException], object] | None = None,
) -> Any:
    """Run ``task(cfg)``, log failures with the run directory, and always close loggers.

    A crashing multirun job must not leave a W&B run open, or the next job would log into it.
    Usable bare (``@task_wrapper``) or with arguments (``@task_wrapper(expected=...)``).

    Args:
        task: the function to wrap (``train``, ``evaluate`` or ``predict``).
        expected: says whether an exception is bad input (logged in one line, no traceback;
            the entry points pass ``logo_tal.core.errors.expected_error``); others are logged with
            their traceback.

    Returns:
        The wrapped function with the same signature (or a decorator, without ``task``).
    """
    if task is None:
        return functools.partial(task_wrapper, expected=expected)

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except Exception as exc:
            try:
                output_dir = OmegaConf.select(cfg, "paths.output_dir", default=None)
            except Exception:  # an unresolvable path must not hide the original error
                output_dir = None
            message = f"{task.__name__} failed (run directory: {output_dir})"
            if expected is not None and expected(exc):
                log.error(f"{message}: {exc}")
            else:
                log.exception(message)
            raise
        finally:
            close_loggers()

    return wrapped
