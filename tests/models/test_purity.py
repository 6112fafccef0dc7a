"""logo_tal.models stays pure PyTorch: importing it loads neither Lightning nor Hydra."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Each check starts a fresh interpreter: part of `make test`, not test-fast.
pytestmark = pytest.mark.slow

MODEL_MODULES = [
    "logo_tal.models",
    "logo_tal.models.layers",
    "logo_tal.models.blocks.conv",
    "logo_tal.models.blocks.attention",
    "logo_tal.models.blocks.logo",
    "logo_tal.models.blocks.maxer",
    "logo_tal.models.encoder",
    "logo_tal.models.neck",
    "logo_tal.models.heads.base",
    "logo_tal.models.heads.cls",
    "logo_tal.models.heads.actionformer",
    "logo_tal.models.heads.trident",
    "logo_tal.models.heads.clff",
    "logo_tal.models.detector",
]

CHECK = """
import importlib, pkgutil, sys
names = sys.argv[1:]
if not names:
    import logo_tal.models as pkg
    names = [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]
for name in names:
    importlib.import_module(name)
banned = ("lightning", "pytorch_lightning", "hydra")
bad = sorted(m for m in sys.modules if m.split(".")[0] in banned)
print(len(names), "modules")
assert not bad, f"imported {bad}"
"""


def run_check(*modules: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHECK, *modules], capture_output=True, text=True, timeout=120
    )


def test_model_modules_do_not_import_lightning_or_hydra():
    result = run_check(*MODEL_MODULES)
    assert result.returncode == 0, result.stderr


def test_whole_models_package_is_pure():
    """Every module under logo_tal.models, including those other files add later."""
    result = run_check()
    assert result.returncode == 0, result.stderr
