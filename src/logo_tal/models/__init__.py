"""Pure-PyTorch model side of LoGo: encoder, heads, detector, assignment, losses, inference.

Nothing in this package imports Lightning or Hydra (tests/models/test_purity.py enforces it).
"""
