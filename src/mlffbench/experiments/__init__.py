"""Experiments beyond the benchmark protocols (TM23 Sec. III.A: what the DFT settings do to learnability)."""
