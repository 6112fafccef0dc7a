"""The issue-9 switches leave every default detector exactly as it was.

``default_fingerprints.json`` was written by this file's ``__main__`` from the code *before* the
switches existed (pool-first encoder, depthwise LoGo local path, normalised finer-level CLFF,
stem blocks at ``model.local_kernel``). For every ``model/encoder`` x ``model/head`` of conf/ it
holds, at seed 0 and tiny widths:

- ``structure``: sha256 of the parameter names and shapes in registration order;
- ``params``: ``sum_i (i + 1) * sum(p_i) + sum(p_i ** 2)`` in float64, which moves if any random
  draw lands in another tensor (the init order) or changes value;
- ``outputs``: per level, sum and sum of squares of the eval-mode class logits and offsets on a
  fixed padded batch.

The parameters must match to 1e-9 (they are bit-identical draws); the outputs to 1e-5 (conv
reductions may differ in the last bits across CPUs and thread counts, nothing more).
Regenerate only for an intended change of a default:
``PYTHONPATH=src python tests/models/test_default_paths.py``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

# 15 detectors compared with their fingerprints: part of `make test`, not test-fast.
pytestmark = pytest.mark.slow

CONF = Path(__file__).resolve().parents[2] / "conf"
GOLDEN = Path(__file__).with_name("default_fingerprints.json")
TINY = ["model.embed_dim=32", "model.head_dim=32", "model.mlp_hidden=48", "model.num_bins=4"]
DATA = ["+data.features.input_dim=24", "+data.annotations.num_classes=5"]
# The ActivityNet shape of the LoGo encoder too: a wider local kernel and the position table.
VARIANTS = {
    "thumos": [],
    "anet": ["model.local_kernel=5", "model.use_abs_pe=true", "model.max_seq_len=64"],
}
CASES = [
    (encoder, head, variant)
    for encoder in ("conv", "logo", "maxer", "transformer")
    for head in ("actionformer", "clff", "trident")
    for variant in VARIANTS
    if variant == "thumos" or encoder == "logo"
]


def build(encoder: str, head: str, variant: str) -> torch.nn.Module:
    overrides = ["+model=default", *DATA, *TINY, f"model/encoder={encoder}", f"model/head={head}"]
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=None, overrides=[*overrides, *VARIANTS[variant]])
    torch.manual_seed(0)
    return instantiate(cfg.model.detector).eval()


def fingerprint(det: torch.nn.Module) -> dict:
    named = list(det.named_parameters())
    structure = ";".join(f"{name}:{tuple(p.shape)}" for name, p in named)
    params = sum(
        (i + 1) * p.double().sum().item() + (p.double() ** 2).sum().item()
        for i, (_, p) in enumerate(named)
    )
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(2, 24, 64, generator=gen)
    mask = torch.arange(64)[None, :] < torch.tensor([64, 41])[:, None]
    with torch.no_grad():
        out = det(feats, mask)
    outputs = [
        stat
        for level in zip(out.cls_logits, out.offsets, strict=True)
        for t in level
        for stat in (t.double().sum().item(), (t.double() ** 2).sum().item())
    ]
    return {
        "structure": hashlib.sha256(structure.encode()).hexdigest(),
        "params": params,
        "outputs": outputs,
    }


@pytest.mark.parametrize("encoder,head,variant", CASES)
def test_default_detector_unchanged(encoder, head, variant):
    want = json.loads(GOLDEN.read_text())[f"{encoder}/{head}/{variant}"]
    got = fingerprint(build(encoder, head, variant))
    assert got["structure"] == want["structure"], "parameter names, shapes or order changed"
    assert got["params"] == pytest.approx(want["params"], rel=1e-9), "initial weights changed"
    assert got["outputs"] == pytest.approx(want["outputs"], rel=1e-5, abs=1e-6)


if __name__ == "__main__":
    torch.set_num_threads(1)
    table = {f"{e}/{h}/{v}": fingerprint(build(e, h, v)) for e, h, v in CASES}
    GOLDEN.write_text(json.dumps(table, indent=1) + "\n")
