"""TALLitModule: schedule, optimiser groups, input noise, logging, fusion, checkpoint payload."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from types import SimpleNamespace

import hydra
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from helpers.lit_config import (
    one_torch_thread,  # noqa: E402,F401  (autouse fixture)
    tiny_train_config,  # noqa: E402
)
from logo_tal.data.batch import Batch  # noqa: E402
from logo_tal.lit_module import TALLitModule, WarmupCosine  # noqa: E402
from logo_tal.models.outputs import Detections  # noqa: E402
from logo_tal.utils.fusion import ExternalScores, write_synthetic_scores  # noqa: E402

C, T, B = 32, 64, 2


def _module(tmp_path, *overrides, **kwargs) -> TALLitModule:
    cfg = tiny_train_config(tmp_path, *overrides)
    detector = hydra.utils.instantiate(cfg.model)
    return hydra.utils.instantiate(cfg.module, detector=detector, **kwargs)


def _batch(lengths=(64, 40)) -> Batch:
    feats = torch.rand(B, C, T)
    masks = torch.zeros(B, T, dtype=torch.bool)
    for i, n in enumerate(lengths):
        masks[i, :n] = True
    feats = feats * masks[:, None]
    seg = torch.tensor([[10.0, 20.0], [30.0, 36.0]])
    return Batch(
        feats=feats,
        masks=masks,
        segments=[seg, seg[:1]],
        labels=[torch.tensor([0, 1]), torch.tensor([2])],
        video_ids=["a", "b"],
        video_index=torch.tensor([0, 1]),
        durations=torch.tensor([10.0, 7.0], dtype=torch.float64),
        fps=torch.full((B,), 30.0, dtype=torch.float64),
        feat_stride=torch.full((B,), 4.0, dtype=torch.float64),
        num_frames=torch.full((B,), 16.0, dtype=torch.float64),
        gt_segments=[torch.tensor([[1.0, 3.0], [4.0, 5.0]]), torch.tensor([[4.0, 5.5]])],
        gt_labels=[torch.tensor([0, 1]), torch.tensor([2])],
    )


def test_warmup_cosine_matches_ancestor_schedule():
    sched = WarmupCosine(warmup_steps=5, total_steps=15, eta_min_ratio=0.01)
    assert sched(0) == 0.0  # the first optimiser step runs at lr 0 (ancestors.md 3.4)
    assert sched(2) == pytest.approx(0.5)
    assert sched(4) == pytest.approx(1.0)  # base reached at W - 1
    assert sched(5) == pytest.approx(1.0)
    assert sched(10) == pytest.approx(0.01 + 0.99 * 0.5)
    assert sched(15) == pytest.approx(0.01)
    values = [sched(s) for s in range(5, 16)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert WarmupCosine(0, 10)(0) == 1.0  # no warm-up: start at base


def test_configure_optimizers_groups_and_per_step_schedule(tmp_path):
    module = _module(tmp_path, "module.warmup_epochs=2", "module.optimizer.lr=0.01")
    module._trainer = SimpleNamespace(estimated_stepping_batches=40, max_epochs=4)
    conf = module.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]
    assert conf["lr_scheduler"]["interval"] == "step"
    decays = sorted(g["weight_decay"] for g in opt.param_groups)
    assert decays == [0.0, 0.025]
    no_decay = next(g for g in opt.param_groups if g["weight_decay"] == 0.0)["names"]
    assert any(n.endswith("bias") for n in no_decay)
    assert opt.param_groups[0]["lr"] == 0.0  # LambdaLR applied factor(0)
    warmup = sched["scheduler"].lr_lambdas[0]
    assert warmup.warmup_steps == 20 and warmup.total_steps == 40
    assert warmup.eta_min_ratio == pytest.approx(1e-8 / 0.01)


def test_input_noise_only_in_training_and_only_on_valid_steps(tmp_path):
    module = _module(tmp_path, "model.input_noise=0.5")
    assert module.input_noise == 0.5  # taken from the detector config (model.input_noise)
    seen = []
    forward = module.detector.forward

    def spy(feats, masks):
        seen.append(feats.detach().clone())
        return forward(feats, masks)

    module.detector.forward = spy
    module.log = lambda *args, **kwargs: None
    batch = _batch()
    loss = module.training_step(batch, 0)
    assert torch.isfinite(loss)
    noisy = seen[-1]
    assert not torch.equal(noisy[0], batch.feats[0])
    assert torch.equal(noisy[1, :, 40:], torch.zeros_like(noisy[1, :, 40:]))  # padding untouched
    module.eval()
    module.detect(batch)
    assert torch.equal(seen[-1], batch.feats)  # no noise at inference


def test_training_step_logs_namespaced_losses(tmp_path):
    module = _module(tmp_path)
    logged = {}

    def fake_log(name, value, **kwargs):
        assert kwargs.get("batch_size") == B
        logged[name] = value

    module.log = fake_log
    module.training_step(_batch(), 0)
    assert {"train/loss", "train/loss_cls", "train/loss_reg"} <= set(logged)


def test_test_epoch_collects_records_with_class_names(tmp_path):
    module = _module(tmp_path, class_names=["x", "y", "z"]).eval()
    module.log_dict = lambda *a, **k: None
    module.on_test_epoch_start()
    with torch.no_grad():
        module.test_step(_batch(), 0)
    module.on_test_epoch_end()
    assert set(module.test_detections) == {"a", "b"}
    entries = module.test_detections["a"]
    assert entries and {e["label"] for e in entries} <= {"x", "y", "z"}
    s, e = entries[0]["segment"]
    assert 0.0 <= s <= e <= 10.0
    assert module.test_results["test/mAP_avg"] >= 0.0
    assert module.test_report.class_names == ("x", "y", "z")


def test_checkpoint_payload_roundtrip(tmp_path):
    module = _module(tmp_path, class_names=["x", "y", "z"])
    module.run_record = {"config_raw": {"seed": 1}, "config": {"seed": 1}, "paths": {}}
    ckpt = {}
    module.on_save_checkpoint(ckpt)
    assert ckpt["logo_tal"]["class_names"] == ["x", "y", "z"]
    fresh = _module(tmp_path)
    fresh.on_load_checkpoint(ckpt)
    assert fresh.class_names == ["x", "y", "z"]
    assert fresh.run_record["config_raw"] == {"seed": 1}


def test_external_scores_map_classes_by_name(tmp_path):
    path = write_synthetic_scores(
        tmp_path / "s.json", {"v1": ["b"], "v2": ["a"]}, ["a", "b", "c"], accuracy=1.0
    )
    scores = ExternalScores(path, ["a", "b", "c"])
    assert int(scores.get("v1").argmax()) == 1  # file lists classes reversed; mapped by name
    assert int(scores.get("v_v2").argmax()) == 0  # ActivityNet "v_" prefix tolerated
    with pytest.raises(KeyError, match="no video-level scores"):
        scores.get("missing")
    with pytest.raises(ValueError, match="dataset classes have no score"):
        ExternalScores(path, ["a", "zzz"])


def test_fusion_relabels_detections_with_top_video_classes(tmp_path):
    path = write_synthetic_scores(
        tmp_path / "s.json", {"a": ["z"], "b": ["y"]}, ["x", "y", "z"], accuracy=1.0
    )
    module = _module(
        tmp_path,
        "module.fusion=external",
        f"module.fusion_file={path}",
        "module.fusion_topk=1",
        class_names=["x", "y", "z"],
    ).eval()
    module.setup("test")
    with torch.no_grad():
        dets = module.detect(_batch())
    assert set(dets[0].labels.tolist()) <= {2} and set(dets[1].labels.tolist()) <= {1}


def test_missing_fusion_file_is_a_start_up_error(tmp_path):
    with pytest.raises(Exception, match="module.fusion_file"):
        _module(tmp_path, "module.fusion=external", f"module.fusion_file={tmp_path}/nope.json")


def test_unknown_fusion_mode_rejected(tmp_path):
    with pytest.raises(Exception, match="module.fusion must be one of"):
        _module(tmp_path, "module.fusion=learned")


def test_records_are_activitynet_entries(tmp_path):
    module = _module(tmp_path, class_names=["x", "y", "z"])
    dets = Detections(
        segments=torch.tensor([[1.0, 2.0]]), scores=torch.tensor([0.5]), labels=torch.tensor([1])
    )
    records = module.to_records(["v"], [dets])
    assert records == {"v": [{"segment": [1.0, 2.0], "label": "y", "score": 0.5}]}
    assert not math.isnan(records["v"][0]["score"])


def test_ema_callback_is_picklable_and_matches_lightning():
    import pickle

    from torch.optim.swa_utils import get_ema_avg_fn

    from logo_tal.callbacks import EMA

    ema = pickle.loads(pickle.dumps(EMA(decay=0.9)))
    a, b = torch.randn(5), torch.randn(5)
    expected = get_ema_avg_fn(0.9)(a, b, torch.tensor(1))
    assert torch.allclose(ema._kwargs["avg_fn"](a, b, torch.tensor(1)), expected)
