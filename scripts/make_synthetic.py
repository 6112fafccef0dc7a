"""Write the synthetic benchmark: same flags as ``python -m logo_tal.data.synthetic``.

python scripts/make_synthetic.py --out data/synthetic [--preset tiny] [--format h5] [--seed 1]
"""

import sys

from logo_tal.data.synthetic.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
