"""Helpers shared by the train/evaluate/predict tests."""
