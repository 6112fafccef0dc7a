"""The synthetic benchmark: the generator (:mod:`.generator`) and fake dataset layouts
(:mod:`.layouts`). ``python -m logo_tal.synthetic --out DIR`` writes the benchmark."""

from logo_tal.prep.synthetic.generator import (
    ANNOTATION_FILE,
    H5_FILE,
    NPY_DIR,
    PRESETS,
    SyntheticConfig,
    generate,
    make_config,
    synthesize,
)

__all__ = [
    "ANNOTATION_FILE",
    "H5_FILE",
    "NPY_DIR",
    "PRESETS",
    "SyntheticConfig",
    "generate",
    "make_config",
    "synthesize",
]
