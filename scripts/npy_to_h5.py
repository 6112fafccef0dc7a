"""Pack a directory of per-video ``.npy`` features into one HDF5 file.

    python scripts/npy_to_h5.py SRC_DIR DST.h5 [--prefix v_] [--ext .npy] [--compression gzip]

Keys keep the prefix (``<prefix><video>``), so ``H5FeatureStore(DST, prefix)`` returns what
``NpyFeatureStore(SRC_DIR, prefix, ext)`` returns. The work is done by
:func:`logo_tal.data.feature_store.convert_npy_to_h5` (importable).
"""

from __future__ import annotations

import argparse
import sys

from logo_tal.data.feature_store import FeatureFileError, convert_npy_to_h5


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src", help="directory of <prefix><video><ext> files")
    p.add_argument("dst", help="output .h5 / .hdf5 file")
    p.add_argument("--prefix", default="")
    p.add_argument("--ext", default=".npy")
    p.add_argument("--compression", default=None, choices=[None, "gzip", "lzf"])
    args = p.parse_args(argv)
    try:
        n = convert_npy_to_h5(
            args.src, args.dst, args.prefix, args.ext, compression=args.compression
        )
    except (FileNotFoundError, FeatureFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {n} videos to {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
