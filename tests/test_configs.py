"""Every config composes and instantiates: experiments, sweeps, debug presets, encoder x head."""

from __future__ import annotations

from pathlib import Path

import hydra
import pytest
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import OmegaConf

from helpers.lit_config import (
    CONF_DIR,
    TINY,
    compose_config,
    one_torch_thread,  # noqa: E402,F401  (autouse fixture)
    path_overrides,
    tiny_train_config,
)
from logo_tal.app.build import build_datamodule, build_detector, build_module
from logo_tal.app.config_checks import ConfigError, validate_config
from logo_tal.engine.lit_module import TALLitModule
from logo_tal.models.layers import AffineDropPath
from logo_tal.prep.synthetic.layouts import write_synthetic_scores
from logo_tal.utils.run_dirs import safe_name

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
SWEEPS = sorted(p.stem for p in (CONF_DIR / "sweep").glob("*.yaml"))
DEBUGS = sorted(p.stem for p in (CONF_DIR / "debug").glob("*.yaml"))
ENCODERS = sorted(p.stem for p in (CONF_DIR / "model" / "encoder").glob("*.yaml"))
HEADS = sorted(p.stem for p in (CONF_DIR / "model" / "head").glob("*.yaml"))
LOGGERS = sorted(p.stem for p in (CONF_DIR / "logger").glob("*.yaml"))


def _score_file(tmp_path: Path) -> Path:
    return write_synthetic_scores(tmp_path / "scores.json", {}, ["a", "b"])


def _build(cfg):
    detector = build_detector(cfg)
    module = build_module(cfg, detector, None, cfg.protocol.tiou_thresholds)
    return detector, module


def test_expected_groups_exist():
    assert {"thumos", "anet", "synthetic"} <= set(EXPERIMENTS)
    assert {"ablate_encoder", "ablate_head", "ablate_levels", "seeds"} <= set(SWEEPS)
    assert {"fast_dev_run", "overfit", "limit"} <= set(DEBUGS)
    assert {"csv", "wandb", "tensorboard"} <= set(LOGGERS)
    trainers = {p.stem for p in (CONF_DIR / "trainer").glob("*.yaml")}
    assert trainers == {"default", "gpu", "ddp"}  # default is the CPU trainer


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(experiment, tmp_path):
    overrides = [f"experiment={experiment}", *path_overrides(tmp_path)]
    if experiment == "anet":
        # The real CUHK file is not shipped; the stand-in proves the wiring.
        overrides.append(f"protocol.fusion.scores_file={_score_file(tmp_path)}")
    cfg = compose_config("train", overrides)
    validate_config(cfg)
    OmegaConf.resolve(cfg)  # every interpolation resolves
    detector, module = _build(cfg)
    datamodule = build_datamodule(cfg, detector)  # no file is read before prepare/setup
    assert datamodule.input_dim == detector.input_dim
    assert datamodule.pyramid == detector.spec
    assert isinstance(module, TALLitModule)
    assert module.detector is detector
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False)
    assert trainer.max_epochs == cfg.trainer.max_epochs


def test_anet_experiment_fails_early_without_score_file(tmp_path):
    cfg = compose_config("train", ["experiment=anet", *path_overrides(tmp_path)])
    with pytest.raises(
        ConfigError, match="protocol.fusion.scores_file=.*cuhk_val_simp_share.json"
    ):
        validate_config(cfg)


def _sweep_values(spec: str) -> list[str]:
    spec = str(spec)
    if spec.startswith("range("):
        lo, hi = (int(x) for x in spec[len("range(") : -1].split(","))
        return [str(v) for v in range(lo, hi)]
    return spec.split(",")


@pytest.mark.slow
@pytest.mark.parametrize("sweep", SWEEPS)
def test_sweep_is_multirun_and_every_job_composes(sweep, tmp_path):
    cfg = compose_config(
        "train", [f"sweep={sweep}", *TINY, *path_overrides(tmp_path)], hydra_node=True
    )
    assert cfg.hydra.mode == RunMode.MULTIRUN
    assert "${hydra.job.override_dirname}" in OmegaConf.to_container(cfg.hydra.sweep)["subdir"]
    params = cfg.hydra.sweeper.params
    assert params, f"sweep/{sweep}.yaml sets no sweeper params"
    key, spec = next(iter(params.items()))
    for value in _sweep_values(spec):
        # 7 levels need windows longer than the tiny 128 steps (level 6 regresses >= 128).
        job = tiny_train_config(tmp_path, f"{key}={value}", "data.max_seq_len=512")
        validate_config(job)
        _build(job)


@pytest.mark.slow
@pytest.mark.parametrize("encoder", ENCODERS)
@pytest.mark.parametrize("head", HEADS)
def test_every_encoder_head_pair_instantiates_and_runs(encoder, head, tmp_path):
    cfg = tiny_train_config(tmp_path, f"model/encoder={encoder}", f"model/head={head}")
    detector, module = _build(cfg)
    feats, mask = torch.randn(2, 32, 64), torch.ones(2, 64, dtype=torch.bool)
    out = module(feats, mask)
    assert len(out.cls_logits) == cfg.model.num_levels


@pytest.mark.parametrize("debug", DEBUGS)
def test_debug_presets_compose(debug, tmp_path):
    cfg = tiny_train_config(tmp_path, f"debug={debug}")
    OmegaConf.resolve(cfg)
    hydra.utils.instantiate(cfg.trainer, logger=False)


@pytest.mark.parametrize("logger", ["csv", "wandb"])
def test_loggers_instantiate_offline(logger, tmp_path, monkeypatch):
    from logo_tal.utils.instantiate import instantiate_loggers

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    cfg = tiny_train_config(tmp_path, f"logger={logger}")
    (built,) = instantiate_loggers(cfg.logger)
    if logger == "wandb":
        assert cfg.logger.wandb.offline is True  # never needs an account or the network
        assert type(built).__name__ == "WandbLogger"


def test_hydra_dirs_keyed_by_task_and_overrides(tmp_path):
    cfg = compose_config("train", ["experiment=synthetic", "sweep=ablate_encoder"], True)
    raw = OmegaConf.to_container(cfg.hydra, resolve=False)
    assert raw["run"]["dir"].startswith("${paths.log_dir}/${task_name}/runs/")
    assert raw["sweep"]["dir"].startswith("${paths.log_dir}/${task_name}/multiruns/")
    assert raw["sweep"]["subdir"] == "${hydra.job.num}_${safe_name:${hydra.job.override_dirname}}"
    assert safe_name("model/encoder=conv,seed=1") == "model-encoder=conv,seed=1"
    assert cfg.task_name == "ablate_encoder"


def test_paths_follow_cwd_and_env(tmp_path, monkeypatch):
    cfg = compose_config("train", ["paths.output_dir=x"], hydra_node=True)
    HydraConfig.instance().set_config(cfg)
    try:
        monkeypatch.delenv("LOGO_TAL_ROOT", raising=False)
        monkeypatch.delenv("LOGO_TAL_DATA_DIR", raising=False)
        assert cfg.paths.root_dir == cfg.hydra.runtime.cwd
        assert cfg.paths.data_dir == f"{cfg.hydra.runtime.cwd}/data"
        monkeypatch.setenv("LOGO_TAL_ROOT", str(tmp_path))
        monkeypatch.setenv("LOGO_TAL_DATA_DIR", str(tmp_path / "elsewhere"))
        assert cfg.paths.root_dir == str(tmp_path)
        assert cfg.paths.data_dir == str(tmp_path / "elsewhere")
        assert cfg.paths.log_dir == f"{tmp_path}/logs"
    finally:
        HydraConfig.instance().cfg = None


@pytest.mark.parametrize("name", ["eval", "predict"])
def test_eval_and_predict_configs_compose(name, tmp_path):
    cfg = compose_config(name, ["ckpt_path=x.ckpt", "paths.output_dir=y"])
    assert cfg.ckpt_path == "x.ckpt"
    if name == "eval":
        assert hydra.utils.instantiate(cfg.trainer, callbacks=[]).logger is None


def test_validate_config_messages(tmp_path):
    cfg = tiny_train_config(tmp_path, "data.max_seq_len=100")
    with pytest.raises(ConfigError, match=r"data.max_seq_len=100 is not a multiple of 8 = 2\*\*"):
        validate_config(cfg)
    cfg = tiny_train_config(tmp_path, "data.max_seq_len=32", "model.num_levels=6")
    with pytest.raises(ConfigError, match="can never be assigned"):
        validate_config(cfg)
    cfg = tiny_train_config(tmp_path, "protocol.tiou_thresholds=[0.5,1.5]")
    with pytest.raises(ConfigError, match="outside"):
        validate_config(cfg)
    cfg = tiny_train_config(tmp_path, "protocol.fusion={scores_file:/no/file.json}")
    with pytest.raises(
        ConfigError, match="protocol.fusion.scores_file=/no/file.json does not exist"
    ):
        validate_config(cfg)


def test_recipe_actionformer_is_actionformers_thumos_recipe_value_by_value():
    cfg = compose_config("train", ["experiment=thumos", "ablation=sa_af", "recipe=actionformer"])
    module, post = cfg.module, cfg.module.postprocess
    assert (module.optimizer.lr, module.weight_decay) == (1e-4, 0.05)
    assert (cfg.data.batch_size, module.warmup_epochs, cfg.trainer.max_epochs) == (2, 5, 35)
    assert cfg.callbacks.ema.decay == 0.999 and module.input_noise == 0.0
    assert cfg.data.crop.widen is True
    encoder = cfg.model.detector.encoder
    assert encoder.drop_path == encoder.stem_drop_path == 0.1
    assert (post.pre_nms_topk, post.multiclass, post.sigma) == (2000, True, 0.5)
    assert (post.voting_thresh, post.max_seg_num, post.min_score) == (0.7, 200, 0.001)
    # The stem blocks get drop path and LayerScale under this recipe only.
    for overrides, stem_scaled in (([], False), (["recipe=actionformer"], True)):
        cfg = compose_config("train", ["experiment=thumos", "ablation=sa_af", *overrides])
        stem = build_detector(cfg).encoder.stem
        assert all(isinstance(b.drop_attn, AffineDropPath) == stem_scaled for b in stem)


def test_every_number_in_experiments_is_commented():
    """Recipe values carry their source (issue requirement): a comment on every scalar line."""
    for path in [*(CONF_DIR / "experiment").glob("*.yaml"), *(CONF_DIR / "recipe").glob("*.yaml")]:
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if not stripped or stripped.startswith("#") or stripped.endswith(":"):
                continue
            key, _, value = stripped.partition(":")
            if key in ("tags", "task_name"):
                continue
            value = value.split("#")[0].strip()
            numeric = value.replace(".", "").replace("-", "").replace("e", "").isdigit()
            if numeric or (value.startswith("[") and any(c.isdigit() for c in value)):
                assert "#" in line, f"{path.name}: uncommented value: {stripped}"
