"""TALLitModule: optimiser groups and schedule, input noise, logging, test results to the writer,
the fusion step, checkpoint payload."""

from __future__ import annotations

import copy
import json
import multiprocessing
from types import SimpleNamespace

import pytest
import torch

from helpers.lit_config import (
    CONF_DIR,
    one_torch_thread,  # noqa: F401  (autouse fixture)
    tiny_train_config,
)
from logo_tal.app.build import build_detector, build_module
from logo_tal.core.grid import FeatureGrid
from logo_tal.core.protocol import THUMOS_TIOU
from logo_tal.data.batch import Batch
from logo_tal.data.collate import collate
from logo_tal.data.dataset import Sample
from logo_tal.data.video_scores import ExternalScores
from logo_tal.engine.callbacks import ClosePostprocessing
from logo_tal.engine.lit_module import TALLitModule
from logo_tal.evaluation.report import ResultsWriter
from logo_tal.models.score_fusion import ScoreFusion
from logo_tal.prep.synthetic.layouts import write_synthetic_scores
from logo_tal.train import train

C, T, B = 32, 64, 2


def _module(tmp_path, *overrides, class_names=None, **kwargs) -> TALLitModule:
    cfg = tiny_train_config(tmp_path, *overrides)
    return build_module(cfg, build_detector(cfg), class_names, THUMOS_TIOU, **kwargs)


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
        grids=[FeatureGrid(30.0, 4.0, 16.0)] * B,
        gt_segments=[torch.tensor([[1.0, 3.0], [4.0, 5.0]]), torch.tensor([[4.0, 5.5]])],
        gt_labels=[torch.tensor([0, 1]), torch.tensor([2])],
    )


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
    module = _module(tmp_path, "module.input_noise=0.5")
    assert module.input_noise == 0.5
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


def test_test_epoch_hands_report_and_records_to_the_writer(tmp_path):
    writer = ResultsWriter(tmp_path / "out", print_table=False)
    module = _module(tmp_path, class_names=["x", "y", "z"], writer=writer).eval()
    module._trainer = SimpleNamespace(is_global_zero=True, current_epoch=3, global_step=7)
    module.log_dict = lambda *a, **k: None
    module.on_test_epoch_start()
    with torch.no_grad():
        module.test_step(_batch(), 0)
    module.on_test_epoch_end()
    detections = json.loads((tmp_path / "out" / "detections.json").read_text())["results"]
    assert set(detections) == {"a", "b"}
    entries = detections["a"]
    assert entries and {e["label"] for e in entries} <= {"x", "y", "z"}
    s, e = entries[0]["segment"]
    assert 0.0 <= s <= e <= 10.0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (metrics["epoch"], metrics["global_step"], metrics["fusion"]) == (3, 7, "none")
    assert metrics["counts"]["videos"] == 2 and metrics["counts"]["gt_total"] == 3
    header = (tmp_path / "out" / "per_class_ap.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in header[1:]] == ['"x"', '"y"', '"z"']


def test_checkpoint_payload_roundtrip(tmp_path):
    record = {"config_raw": {"seed": 1}, "config": {"seed": 1}, "paths": {}}
    module = _module(tmp_path, class_names=["x", "y", "z"], run_record=record)
    ckpt = {}
    module.on_save_checkpoint(ckpt)
    assert ckpt["logo_tal"]["class_names"] == ["x", "y", "z"]
    fresh = _module(tmp_path)
    fresh.on_load_checkpoint(ckpt)
    assert fresh.run_record["config_raw"] == {"seed": 1}


def test_fusion_relabels_detections_with_top_video_classes(tmp_path):
    path = write_synthetic_scores(
        tmp_path / "s.json", {"a": ["z"], "b": ["y"]}, ["x", "y", "z"], accuracy=1.0
    )
    fusion = ScoreFusion(ExternalScores(path, ["x", "y", "z"]), topk=1)
    module = _module(tmp_path, class_names=["x", "y", "z"], fusion=fusion).eval()
    with torch.no_grad():
        dets = module.detect(_batch())
    assert set(dets[0].labels.tolist()) <= {2} and set(dets[1].labels.tolist()) <= {1}


# Two epochs of two batches with validation each epoch, then the test (as tests/test_train.py).
SHORT = [
    "trainer.max_epochs=2",
    "trainer.limit_train_batches=2",
    "trainer.check_val_every_n_epoch=1",
    "module.warmup_epochs=1",
]


@pytest.mark.slow
def test_postprocess_workers_give_the_inline_results_and_leave_no_process(tmp_path):
    runs = {}
    for workers in (0, 2):
        cfg = tiny_train_config(
            tmp_path / str(workers), *SHORT, f"module.postprocess_workers={workers}"
        )
        metrics, objects = train(cfg)
        runs[workers] = (metrics, objects["module"], tmp_path / str(workers) / "run")
    (inline, _, inline_dir), (pooled, module, pooled_dir) = runs[0], runs[2]
    assert module.postprocessing.worker_seconds > 0  # the workers did the work
    assert not module.postprocessing.started and not multiprocessing.active_children()
    # Validation (both epochs, logged) and test metrics, and the written files, are identical.
    assert {k: v for k, v in pooled.items() if k.startswith(("val/", "test/"))} == {
        k: v for k, v in inline.items() if k.startswith(("val/", "test/"))
    }
    assert any(k.startswith("val/") for k in inline)
    # Every logged value (losses, lr, validation mAPs of both epochs) in the CSV log too.
    csv = [d / "csv" / "metrics.csv" for d in (inline_dir, pooled_dir)]
    assert csv[0].read_text() == csv[1].read_text()
    for name in ("metrics.json", "detections.json", "per_class_ap.csv"):
        assert (inline_dir / name).read_bytes() == (pooled_dir / name).read_bytes(), name


@pytest.mark.slow
def test_a_failing_postprocess_worker_fails_the_run_clearly(tmp_path):
    cfg = tiny_train_config(
        tmp_path,
        "train=false",
        "logger=[]",
        "module.postprocess_workers=1",
        "module.postprocess._target_=helpers.failing_postprocess.FailingPostProcessor",
    )
    with pytest.raises(RuntimeError, match="post-processing failed in a worker process"):
        train(cfg)
    assert not multiprocessing.active_children()


@pytest.mark.slow
def test_an_exception_elsewhere_closes_the_started_pool(tmp_path):
    module = _module(tmp_path, "module.postprocess_workers=1").eval()
    (guard,) = module.configure_callbacks()
    assert isinstance(guard, ClosePostprocessing)
    with torch.no_grad():
        module.validation_step(_batch(), 0)
    assert module.postprocessing.started and multiprocessing.active_children()
    guard.on_exception(None, module, ValueError("e.g. a bad feature file"))
    assert not module.postprocessing.started and not multiprocessing.active_children()


ENCODERS = sorted(p.stem for p in (CONF_DIR / "model" / "encoder").glob("*.yaml"))
HEADS = sorted(p.stem for p in (CONF_DIR / "model" / "head").glob("*.yaml"))


def _training_step(module: TALLitModule, samples: list[Sample], padding: str):
    """Loss and gradients of one training step on ``samples`` padded by ``padding``, from the
    same random state (the noise and drop path draw from it)."""
    module = copy.deepcopy(module)  # the loss normaliser is a buffer that a step moves
    module.log = lambda *args, **kwargs: None
    batch = collate(samples, module.detector.spec.divisor, 128, True, padding)
    torch.manual_seed(1)
    loss = module.training_step(batch, 0)
    loss.backward()
    grads = {n: p.grad for n, p in module.named_parameters() if p.grad is not None}
    return batch.feats.shape[-1], loss.detach(), grads


@pytest.mark.parametrize(
    ("encoder", "head", "extra"),
    [(e, h, ()) for e in ENCODERS for h in HEADS]
    + [("logo", "clff", ("model.use_abs_pe=true",))],  # ActivityNet's position embedding
)
def test_every_encoder_head_pair_trains_the_same_at_either_padding_and_detects(
    tmp_path, encoder, head, extra
):
    """The one contract test of the encoder x head product. Each pair: a training step on
    batch-padded input gives the loss and every gradient of the step on max_seq_len-padded
    input (noise, drop path and all), so the two settings train the same model
    (docs/decisions.md D122); every encoder-branch and head weight learns; and the module turns
    the pair's output into detections inside each video."""
    torch.manual_seed(0)
    module = _module(
        tmp_path,
        f"model/encoder={encoder}",
        f"model/head={head}",
        "module.input_noise=0.1",
        *extra,
    ).train()
    gen = torch.Generator().manual_seed(0)
    samples = [
        Sample(
            feats=torch.rand(C, t, generator=gen),
            segments=seg,
            labels=torch.tensor([i % 3] * len(seg)),
            video_id=f"v{i}",
            video_index=i,
            duration=t / 7.5,
            grid=FeatureGrid(30.0, 4.0, 16.0),
            gt_segments=seg.double() / 7.5,
            gt_labels=torch.tensor([i % 3] * len(seg)),
        )
        for i, (t, seg) in enumerate(
            [(45, torch.tensor([[3.0, 12.0], [20.0, 41.0]])), (29, torch.tensor([[5.0, 9.0]]))]
        )
    ]
    short_len, short_loss, short_grads = _training_step(module, samples, "batch")
    long_len, long_loss, long_grads = _training_step(module, samples, "max_seq_len")
    assert (short_len, long_len) == (48, 128)
    assert torch.isfinite(short_loss) and short_loss > 0
    torch.testing.assert_close(short_loss, long_loss, rtol=1e-5, atol=0)
    assert short_grads.keys() == long_grads.keys() and len(short_grads) > 10
    # Elementwise rtol 1e-5 with an atol at 1e-5 of each tensor's largest value (entries near
    # zero carry the float noise of reordered sums), and a floor at 1e-7 of the model's largest
    # gradient for tensors that are zero in exact arithmetic (a key-norm bias shifts every
    # attention logit of a row alike: ~1e-11 of noise there).
    floor = 1e-7 * max(float(g.abs().max()) for g in long_grads.values())
    for name, grad in short_grads.items():
        atol = max(1e-5 * float(long_grads[name].abs().max()), floor)
        torch.testing.assert_close(
            grad, long_grads[name], rtol=1e-5, atol=atol, msg=lambda m, n=name: f"{n}: {m}"
        )
    learning = [n for n, _ in module.named_parameters() if n.startswith("detector.head.")]
    if encoder != "maxer":  # TemporalMaxer's backbone has only the projection convs
        learning += [n for n, _ in module.named_parameters() if ".encoder.branch." in n]
    assert learning and set(learning) <= short_grads.keys()
    module.eval()
    with torch.no_grad():
        detections = module.detect(collate(samples, module.detector.spec.divisor, 128, False))
    for dets, sample in zip(detections, samples, strict=True):
        assert len(dets.scores) > 0 and ((dets.scores >= 0) & (dets.scores <= 1)).all()
        # clipped to the video, then rounded to 0.1 ms as files hold them
        assert dets.segments.min() >= 0 and dets.segments.max() <= sample.duration + 1e-4
