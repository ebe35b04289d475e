"""tickwire: kernel-bypass trading from Python.

Layers only look down: mem <- drivers <- wire/stack <- sbe/feed/book/order <- engine <- sim/cli.
"""

__version__ = "0.1.0"
