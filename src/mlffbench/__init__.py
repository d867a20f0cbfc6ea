"""mlffbench: a benchmark and crash-test system for machine-learned force fields on materials."""

__version__ = "0.1.0"
