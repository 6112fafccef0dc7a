#!/usr/bin/env bash
# Train one configuration over several seeds and print mean ± std (docs/decisions.md D78).
#   scripts/run_seeds.sh experiment=thumos paths.data_dir=DIR [more overrides]
#   SEEDS=1,2,3 scripts/run_seeds.sh experiment=synthetic model/encoder=conv
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEEDS=${SEEDS:-1,2,3,4,5}
STAMP=$(date +%Y-%m-%d_%H-%M-%S)
OUT="logs/seeds/multiruns/${STAMP}"
"$PY" -m logo_tal.train sweep=seeds "hydra.sweeper.params.seed=${SEEDS}" \
  "hydra.sweep.dir=${OUT}" "$@"
"$PY" scripts/summarize_runs.py "${OUT}"
