"""``logo-tal-extract VIDEOS_DIR_OR_FILE --out FEATURES_DIR``: clip features of your own videos.

Decodes each video (PyAV), resamples it to ``--fps``, cuts clips of ``--num-frames`` frames
every ``--feat-stride`` frames (feature ``i`` covers frames ``[i * stride, i * stride + window)``,
:mod:`logo_tal.core.grid`), embeds them with a video backbone (torchvision's, or the built-in
R(2+1)D-18 that needs only torch: ``--implementation``) and writes one ``(T, C)`` float32
``<video>.npy`` per video (or one ``features.h5`` with ``--format h5``) plus
``FEATURES_DIR/extraction.json`` (:mod:`logo_tal.data.extraction_record`). Re-running skips
videos that are already done.

Exit status: 0 every video extracted (or already there); 2 bad arguments or input (one line on
standard error naming the file), including any video that could not be used (the others are
still extracted and recorded).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import torch

from logo_tal.core.errors import EXIT_BAD_INPUT, OneLineArgumentParser, parse_arguments, report
from logo_tal.prep.extract.backbones import BACKBONES, IMPLEMENTATIONS, KINETICS
from logo_tal.prep.extract.pipeline import ExtractionSettings, extract_videos

PROG = "logo-tal-extract"


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface (exposed for documentation and tests)."""
    d = ExtractionSettings()
    p = OneLineArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0].split(": ", 1)[1])
    p.add_argument("videos", help="a video file or a directory of videos (not recursive)")
    p.add_argument("--out", required=True, help="feature directory (created)")
    p.add_argument("--backbone", default=d.backbone, choices=sorted(BACKBONES))
    p.add_argument(
        "--weights",
        default="kinetics400",
        help=f"kinetics400 (torchvision's {KINETICS}, downloaded once), none (random init), "
        "or a state-dict file",
    )
    p.add_argument(
        "--implementation",
        default=d.implementation,
        choices=list(IMPLEMENTATIONS),
        help="torchvision's models, the built-in r2plus1d_18 (needs only torch), or auto: "
        "torchvision when it imports, else built-in",
    )
    p.add_argument("--fps", type=float, default=d.fps, help="resample videos to this rate")
    p.add_argument("--feat-stride", type=int, default=d.feat_stride, help="frames between clips")
    p.add_argument("--num-frames", type=int, default=d.num_frames, help="frames per clip")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="clips per forward pass")
    p.add_argument("--format", default=d.format, choices=["npy", "h5"])
    p.add_argument("--device", default=d.device, help="cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument(
        "--resize",
        type=int,
        nargs="+",
        default=None,
        metavar="N",
        help="override the backbone's resize (H W, or one number for the short side)",
    )
    p.add_argument(
        "--crop", type=int, nargs="+", default=None, metavar="N", help="override the crop (H W)"
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="re-extract videos already done; replace a record with other settings",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the extractor; returns the exit status (0 ok, 2 bad input)."""
    parser = build_parser()
    args = parse_arguments(parser, argv)
    if isinstance(args, int):
        return args
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    settings = ExtractionSettings(
        backbone=args.backbone,
        weights=args.weights,
        fps=args.fps,
        feat_stride=args.feat_stride,
        num_frames=args.num_frames,
        format=args.format,
        resize_size=args.resize,
        crop_size=args.crop,
        implementation=args.implementation,
        batch_size=args.batch_size,
        device=args.device,
    )
    try:
        result = extract_videos(
            args.videos,
            args.out,
            settings,
            overwrite=args.overwrite,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except (ValueError, FileNotFoundError, ImportError) as err:
        return report(PROG, err)
    for message in result.failed.values():
        report(PROG, message)
    r = result.record
    print(
        f"{len(result.written)} extracted, {len(result.skipped)} already done, "
        f"{len(result.failed)} failed -> {r.path} ({r.extractor} via {r.implementation}, "
        f"weights {r.weights}, "
        f"{r.fps:g} fps, stride {r.feat_stride}, window {r.num_frames}, dim {r.feature_dim})",
        file=sys.stderr,
    )
    return EXIT_BAD_INPUT if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
