"""Lightning/Hydra-side helpers of the entry points (not imported by ``logo_tal.models``)."""

# The configs' custom resolvers (${safe_name:...}, ${logo_tal.cwd:}) must exist before any
# config under conf/ is resolved; every entry point imports this package.
from logo_tal.utils import resolvers as _resolvers  # noqa: F401
