"""Write synthetic ActivityNet / THUMOS14 data in the ActionFormer/TriDet layout.

python scripts/make_layout.py --out DIR [--dataset anet|thumos|both] [--h5] [--input-dim 64]

then ``python -m logo_tal.train experiment=anet paths.data_dir=DIR`` (or ``experiment=thumos``)
runs as on the real packages; ANet gets a stand-in for the CUHK video-level score file.
"""

import sys

from logo_tal.prep.synthetic.layouts import layout_main

if __name__ == "__main__":
    sys.exit(layout_main())
