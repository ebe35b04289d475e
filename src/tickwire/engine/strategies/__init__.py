"""Example strategies shipped with tickwire (see engine/strategy.py for the API)."""
