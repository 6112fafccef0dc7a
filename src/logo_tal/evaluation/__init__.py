"""Detection evaluation: numpy mAP (``ap``), JSON files (``io``), torchmetrics metric (``metric``).

Nothing is imported here so that ``ap`` and ``io`` stay free of torch.
"""
