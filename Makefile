# Set-up and day-to-day commands. `make install` builds .venv from nothing.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: help install test test-fast lint format bench synthetic train-synthetic ablate-encoder ablate-head ablate-levels ablate-paper clean

help:
	@grep -E '^[a-z-]+:' Makefile | cut -d: -f1

install:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	# The CPU build of torch 2.13.0 may lie on this machine's disk; an open range could pull a
	# multi-GB CUDA build, so try the pinned one first and fall back to the package's range.
	$(BIN)/pip install "torch==2.13.0" || $(BIN)/pip install "torch>=2.4"
	# torchvision (logo-tal-extract's backbones) is not installed here: a wheel built for another
	# torch (the registry's CUDA wheel next to a CPU torch) breaks every import of lightning.
	# Install the build that matches your torch yourself (docs/own_data.md).
	# sweeps: the Hydra launcher/sweeper plugins (submitit, joblib, Optuna; docs/clusters.md);
	# tensorboard: logger=tensorboard.
	$(BIN)/pip install -e ".[dev,video,sweeps,tensorboard]"

# Tests run in parallel processes (pytest-xdist): one per core, at most 4 (each holds torch and
# Lightning; the tests pin torch to one thread, so a second core is otherwise idle). worksteal
# keeps both cores busy to the end although single tests take from milliseconds to a minute.
# TEST_WORKERS=0 runs everything in one process (for pdb).
TEST_WORKERS ?= auto
XDIST = -n $(TEST_WORKERS) --maxprocesses 4 --dist worksteal

# The whole suite, slow tests included (DDP on 2 CPU processes, sweeps through the launchers,
# Optuna, W&B offline runs, kill-and-resume, full THUMOS dimensions, video extraction, compile):
# 1040 tests, 476 s on the idle 2-core VM with 2 workers and the local SLURM cluster up
# (2026-12-07; without the cluster its tests skip and the suite takes 4-5 minutes).
test:
	$(BIN)/python -m pytest -q $(XDIST) $(PYTEST_ARGS)

# Without the slow tests: 851 tests, 53 s on the idle 2-core VM with 2 workers (2026-12-07).
test-fast:
	$(BIN)/python -m pytest -m "not slow" -q $(XDIST) $(PYTEST_ARGS)

lint:
	$(BIN)/ruff check src tests scripts notebooks
	$(BIN)/ruff format --check src tests scripts notebooks/build_notebooks.py

format:
	$(BIN)/ruff format src tests scripts notebooks/build_notebooks.py
	$(BIN)/ruff check --fix src tests scripts

bench:
	$(BIN)/python scripts/benchmark.py

synthetic:
	$(BIN)/python -m logo_tal.synthetic --out data/synthetic

train-synthetic:
	$(BIN)/python -m logo_tal.train experiment=synthetic

# The paper's ablation tables on the synthetic data; each sweep dir ends with summary.md/.csv/.png.
# More seeds or any override: make ablate-encoder ABLATE_ARGS="seed=1,2,3".
ABLATE_ARGS ?=

ablate-encoder:
	$(BIN)/python -m logo_tal.train experiment=synthetic sweep=ablate_encoder $(ABLATE_ARGS)

ablate-head:
	$(BIN)/python -m logo_tal.train experiment=synthetic sweep=ablate_head $(ABLATE_ARGS)

ablate-levels:
	$(BIN)/python -m logo_tal.train experiment=synthetic sweep=ablate_levels $(ABLATE_ARGS)

ablate-paper:
	$(BIN)/python -m logo_tal.train experiment=synthetic sweep=paper $(ABLATE_ARGS)
	$(BIN)/python -m logo_tal.train experiment=synthetic sweep=ablate_levels $(ABLATE_ARGS)

clean:
	rm -rf logs outputs multirun .pytest_cache .ruff_cache
