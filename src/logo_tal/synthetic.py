"""``python -m logo_tal.synthetic --out DIR``: write the synthetic benchmark."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from logo_tal.prep.synthetic.generator import PRESETS, SyntheticConfig, generate

_KNOBS = [
    f.name
    for f in dataclasses.fields(SyntheticConfig)
    if f.type in ("float", "int") and f.name not in ("fps", "feat_stride", "num_frames")
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m logo_tal.synthetic",
        description="Write the synthetic TAL benchmark (ActivityNet JSON + npy/HDF5 features).",
    )
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--format", default="npy", choices=["npy", "h5"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timelines", default=None, help="real annotation file for timelines")
    for name in _KNOBS:
        kind = int if SyntheticConfig.__dataclass_fields__[name].type == "int" else float
        parser.add_argument("--" + name.replace("_", "-"), type=kind, default=None)
    args = parser.parse_args(argv)
    overrides = {name: getattr(args, name) for name in _KNOBS}
    overrides["timelines"] = args.timelines
    info = generate(args.out, args.preset, args.seed, args.format, **overrides)
    cfg = info["config"]
    print(
        f"wrote {info['num_videos']} videos ({cfg.num_train} training, {cfg.num_test} testing), "
        f"{cfg.num_classes} classes, input_dim {cfg.input_dim}: {info['annotations']}, "
        f"{info['features']}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
