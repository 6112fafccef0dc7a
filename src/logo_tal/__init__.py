"""LoGo temporal action localization toolkit."""

__version__ = "0.1.0"

# ${logo_tal.extraction:...} and friends (conf/data/custom.yaml) must exist before any config is
# resolved; registering them here covers every entry point. No torch import.
from logo_tal.extract import resolvers as _data_resolvers  # noqa: E402,F401
