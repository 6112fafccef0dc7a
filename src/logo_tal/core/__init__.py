"""Floor 0: what every other floor shares: the feature grid, the pyramid's arithmetic,
detections, the evaluation protocols' constants, the ActivityNet JSON reader and the errors.
Imports nothing of the package above it (docs/design.md, "Layers")."""
