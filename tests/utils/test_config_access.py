"""select / is_multirun: one way to read optional config keys, composed or read back."""

from __future__ import annotations

from hydra.types import RunMode
from omegaconf import OmegaConf

from logo_tal.utils.config_access import is_multirun, select


def test_select_reads_composed_configs_and_plain_dicts_alike():
    plain = {"model": {"num_levels": 6, "head": None}, "tags": ["a"]}
    composed = OmegaConf.create(
        {**plain, "level": "${model.num_levels}", "out": "${oc.env:NOPE_X}"}
    )
    for cfg in (plain, composed):
        assert select(cfg, "model.num_levels") == 6
        assert select(cfg, "model.head", default=1) is None  # present and null stays null
        assert select(cfg, "model.missing", default=3) == 3
        assert select(cfg, "tags.x") is None
    assert select(composed, "level") == 6  # interpolations resolved
    assert select(composed, "out", default="later") == "later"  # unresolvable here


def test_is_multirun_from_hydra_nodes_and_saved_yaml():
    assert is_multirun(OmegaConf.create({"mode": RunMode.MULTIRUN}))
    assert is_multirun({"mode": "MULTIRUN"})  # hydra.yaml as yaml reads it
    assert not is_multirun(OmegaConf.create({"mode": RunMode.RUN}))
    assert not is_multirun(None) and not is_multirun({})
