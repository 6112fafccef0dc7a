"""``model.compile``: a compiled detector computes what the eager one computes.

The equality runs use dynamo's ``aot_eager`` backend: the same capture, functionalisation and
autograd tracing as ``inductor``, without C++ code generation (which takes minutes on 2 cores;
``make bench`` measures inductor, docs/benchmarks.md).
"""

from __future__ import annotations

import copy

import pytest
import torch

from helpers.lit_config import (
    TINY,
    compose_config,
    one_torch_thread,  # noqa: F401  (autouse fixture)
    tiny_train_config,
)
from logo_tal.app.build import build_datamodule, build_detector
from logo_tal.models.compile import (
    COMPILED_TRAIN_LENGTHS,
    compile_detector,
    compile_options,
    training_pad_multiple,
)
from logo_tal.train import train


def _outputs(out) -> list[torch.Tensor]:
    return [*out.cls_logits, *out.offsets]


def _batch(t: int, valid: int) -> tuple[torch.Tensor, torch.Tensor]:
    feats = torch.randn(2, 32, t, generator=torch.Generator().manual_seed(t))
    mask = torch.ones(2, t, dtype=torch.bool)
    mask[1, valid:] = False
    return feats, mask


def test_compile_options_off_by_default_and_for_old_configs():
    cfg = compose_config("train", TINY)
    assert cfg.model.compile is False
    assert compile_options(cfg.model) is None
    assert compile_options({}) is None  # a run config written before the option


def test_compile_options_pass_backend_mode_dynamic():
    options = compile_options(
        {"compile": True, "compile_options": {"backend": "aot_eager", "mode": None}}
    )
    assert options == {"backend": "aot_eager", "mode": None, "dynamic": None}


def test_unknown_backend_is_a_one_line_error():
    with pytest.raises(ValueError, match=r"model.compile_options.backend: 'tensorrt'"):
        compile_options({"compile": True, "compile_options": {"backend": "tensorrt"}})


# Two levels keep the graphs small: compile time grows with the number of blocks, and the
# levels repeat the same block.
SMALL = [*TINY, "model.num_levels=2", "model.drop_path=0.3"]


@pytest.mark.slow
def test_compiled_detector_matches_eager():
    """Training forward + backward (drop-path on, the same RNG draws) and evaluation at two
    lengths (the second makes the length dynamic) equal the eager detector's."""
    eager = build_detector(compose_config("train", SMALL))
    compiled = compile_detector(copy.deepcopy(eager), backend="aot_eager")
    # Compiling in place keeps the state-dict keys: checkpoints are interchangeable.
    assert list(eager.state_dict()) == list(compiled.state_dict())

    feats, mask = _batch(128, 100)
    results = []
    for model in (compiled, eager):
        model.train()
        torch.manual_seed(7)  # the same drop-path draws in both
        out = _outputs(model(feats, mask))
        sum(o.square().sum() for o in out).backward()
        results.append((out, [p.grad for p in model.parameters()]))
    (out_c, grad_c), (out_e, grad_e) = results
    for c, e in zip(out_c + grad_c, out_e + grad_e, strict=True):
        torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)

    compiled.eval()
    eager.eval()
    with torch.no_grad():
        for t, valid in ((64, 50), (96, 96)):
            feats, mask = _batch(t, valid)
            for c, e in zip(
                _outputs(compiled(feats, mask)), _outputs(eager(feats, mask)), strict=True
            ):
                torch.testing.assert_close(c, e, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_train_with_compile_reports_its_cost(tmp_path):
    """``model.compile=true`` reaches the run's detector, and the run reports the compile time.
    Dynamo's ``eager`` backend: the capture without AOT tracing, fast enough for every run."""
    cfg = tiny_train_config(
        tmp_path,
        "debug=fast_dev_run",
        "logger=[]",
        "model.num_levels=2",
        "model.compile=true",
        "model.compile_options.backend=eager",
    )
    metrics, _ = train(cfg)
    assert metrics["compile/seconds"] > 0
    assert metrics["compile/graphs"] >= 1  # dynamo captured the run's detector
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_compiled_module_survives_deepcopy():
    """The EMA callback deep-copies the LightningModule; a compiled detector must copy."""
    detector = build_detector(
        compose_config(
            "train", [*TINY, "model.compile=true", "model.compile_options.backend=aot_eager"]
        )
    )
    clone = copy.deepcopy(detector)
    for a, b in zip(clone.state_dict().values(), detector.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("max_seq_len", "divisor", "multiple"),
    [(2304, 32, 288), (768, 32, 96), (512, 16, 64), (128, 8, 16), (64, 32, 32)],
)
def test_a_compiled_detector_sees_at_most_eight_training_lengths(max_seq_len, divisor, multiple):
    assert training_pad_multiple(max_seq_len, divisor) == multiple
    lengths = {min(-(-t // multiple) * multiple, max_seq_len) for t in range(1, max_seq_len + 1)}
    assert len(lengths) <= COMPILED_TRAIN_LENGTHS and all(n % divisor == 0 for n in lengths)


def test_build_pads_training_batches_coarser_only_when_compiled(tmp_path):
    eager = tiny_train_config(tmp_path)
    assert build_datamodule(eager, build_detector(eager)).train_pad_multiple is None
    compiled = tiny_train_config(tmp_path, "model.compile=true")
    # The datamodule needs only the pyramid: the uncompiled detector of the same config has it.
    detector = build_detector(eager)
    datamodule = build_datamodule(compiled, detector)
    assert datamodule.train_pad_multiple == training_pad_multiple(128, 8) == 16
