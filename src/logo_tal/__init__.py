"""LoGo temporal action localization toolkit."""

__version__ = "0.1.0"
