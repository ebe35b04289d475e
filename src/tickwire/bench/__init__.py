"""Benchmark harnesses: one module per ``tickwire bench NAME``."""
