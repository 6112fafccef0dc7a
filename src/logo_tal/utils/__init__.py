"""Lightning/Hydra-side helpers of the entry points (not imported by ``logo_tal.models``)."""
