"""Multirun summaries: every job of a sweep, grouped by configuration, beside the paper's numbers.

``paper_results`` holds the paper's Tables 1-5; ``summary`` reads a sweep directory and writes
``summary.md``, ``summary.csv`` and ``summary.png``; ``callback`` runs it from Hydra after every
job of a multirun (conf/hydra/default.yaml).
"""
