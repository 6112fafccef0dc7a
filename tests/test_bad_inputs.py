"""docs/bad_inputs.md, row by row: each bad input through the public command.

Every expected error ends with exit status 2 and one line on standard error naming the file,
video or key (docs/decisions.md D74, D94); a documented repair runs and logs its counted
warning. The Hydra commands run in-process through ``main(argv)`` (the same code path as the
console scripts, without a second interpreter start), the scorer and validator through their
``main(argv)``; one test starts the real interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.lit_config import TINY, one_torch_thread  # noqa: F401  (autouse fixture)
from logo_tal import evaluate, train
from logo_tal.data import synthetic

REPO_ROOT = Path(__file__).resolve().parents[1]


def error_line(capsys, prog: str) -> str:
    """The one line on stderr; fails when there is more (a traceback, a second message)."""
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{prog}: error: "), lines
    return lines[0]


@pytest.fixture
def root(tmp_path, monkeypatch) -> Path:
    """Run directories (Hydra's logs/) under tmp_path."""
    monkeypatch.setenv("LOGO_TAL_ROOT", str(tmp_path))
    monkeypatch.delenv("LOGO_TAL_DEBUG", raising=False)
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    return tmp_path


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """The tiny synthetic benchmark (npy), shared by the rows that corrupt a copy of it."""
    out = tmp_path_factory.mktemp("bad_inputs_data") / "synthetic"
    synthetic.generate(out, preset="tiny", seed=0, format="npy")
    return out


def tiny_train(data: Path | None, *extra: str) -> list[str]:
    """``train`` overrides: the tiny run, on ``data`` (a synthetic layout) when given."""
    args = [*TINY, "logger=[]", "trainer.max_epochs=1", "trainer.limit_train_batches=1"]
    if data is not None:
        args += [
            f"data.annotation_file={data / synthetic.ANNOTATION_FILE}",
            f"data.features={data / synthetic.NPY_DIR}",
            "data.generate_synthetic=false",
        ]
    return [*args, *extra]


# ----------------------------------------------------------------------------- configs and data


def test_thumos_without_data_is_one_line_exit_2(tmp_path):
    """The issue's example, through the real interpreter."""
    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "LOGO_TAL_DEBUG")}
    env.update(LOGO_TAL_ROOT=str(tmp_path), PYTHONPATH=str(REPO_ROOT / "src"))
    cmd = [
        sys.executable,
        "-m",
        "logo_tal.train",
        "experiment=thumos",
        "paths.data_dir=/nonexistent",
    ]
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "/nonexistent/thumos/annotations/thumos14.json" in lines[0]
    assert "/nonexistent/thumos/i3d_features" in lines[0]
    assert "README.md, section 'Data'" in lines[0]


def test_anet_without_data_names_the_expected_paths(root, capsys):
    assert train.main(["experiment=anet", "paths.data_dir=/nonexistent", "data.fusion=null"]) == 2
    line = error_line(capsys, "logo-tal-train")
    assert "/nonexistent/anet_1.3/annotations/anet1.3_tsp_filtered.json" in line
    assert "README.md" in line


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("experiment=thumoss", "Could not find 'experiment/thumoss'"),
        ("trainer.max_epoch=3", "Could not override 'trainer.max_epoch'"),
        ("model.num_levels=[", "override 'model.num_levels=['"),
    ],
)
def test_config_that_does_not_compose(root, capsys, override, expected):
    assert train.main([override]) == 2
    line = error_line(capsys, "logo-tal-train")
    assert expected in line
    assert "Config search path" not in line


def test_config_that_does_not_validate_lists_every_problem_in_one_line(root, capsys):
    args = [*TINY, "data.max_seq_len=100", "data.tiou_thresholds=[0.5,1.5]"]
    assert train.main(args) == 2
    line = error_line(capsys, "logo-tal-train")
    assert "invalid config: " in line and "data.max_seq_len" in line and "1.5" in line


def test_missing_mandatory_value(root, capsys):
    assert evaluate.main([]) == 2
    assert "ckpt_path" in error_line(capsys, "logo-tal-evaluate")


def test_debug_shows_the_traceback(root, monkeypatch):
    monkeypatch.setenv("LOGO_TAL_DEBUG", "1")
    with pytest.raises(Exception, match="experiment/thumoss"):
        train.main(["experiment=thumoss"])


def test_a_bug_keeps_its_traceback(root, monkeypatch):
    def broken(cfg):
        raise RuntimeError("a bug")

    monkeypatch.setattr(train, "train", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        train.main(TINY)
